#include "serving/request_queue.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"

namespace flywheel::serving {
namespace {

// A batch looks this far past the first request for compatible ones; a longer run of requests
// that cannot join it is not worth holding the queue's lock for.
constexpr size_t kMaxScan = 1024;

bool Preferred(const std::vector<int64_t>& sizes, int64_t rows) {
  return std::binary_search(sizes.begin(), sizes.end(), rows);
}

// Removes the moved-out entries (null requests) of one FIFO, whose picked indices run from `first`
// to `last`, `count` of them; the common case, a prefix, erases without a pass over the rest.
void EraseTaken(std::deque<QueuedRequest>& fifo, size_t first, size_t last, size_t count) {
  if (first == 0 && last + 1 == count) {
    fifo.erase(fifo.begin(), fifo.begin() + static_cast<std::ptrdiff_t>(count));
    return;
  }
  auto begin = fifo.begin() + static_cast<std::ptrdiff_t>(first);
  fifo.erase(std::remove_if(begin, fifo.end(),
                            [](const QueuedRequest& q) { return q.request == nullptr; }),
             fifo.end());
}

}  // namespace

int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

RequestQueue::RequestQueue(const SchedulerOptions& options) {
  const uint32_t n = std::max<uint32_t>(1, options.priority_levels);
  std::vector<Level>(n).swap(levels_);
  for (uint32_t i = 0; i < n; ++i) {
    auto it = options.priority_queue_policy.find(i + 1);
    levels_[i].policy =
        it != options.priority_queue_policy.end() ? it->second : options.default_queue_policy;
  }
  // Without a valid default level, unprioritised requests take the lowest level: requests that
  // ask for a priority are served before them.
  const uint32_t d = options.default_priority_level;
  default_level_ = d >= 1 && d <= n ? d - 1 : n - 1;
}

uint32_t RequestQueue::LevelOf(uint32_t priority) const {
  if (priority == 0 || priority > levels_.size()) return default_level_;
  return priority - 1;
}

uint64_t RequestQueue::TimeoutUsOf(const InferRequest& request, uint32_t level) const {
  const QueuePolicy& policy = levels_[level].policy;
  const uint64_t fallback = policy.default_timeout_us;
  if (!policy.allow_timeout_override || request.timeout_us == 0) return fallback;
  // As in Triton, a request may shorten the model's timeout but not lengthen it.
  return fallback == 0 ? request.timeout_us : std::min(request.timeout_us, fallback);
}

absl::Status RequestQueue::Push(QueuedRequest& item, const std::string& model) {
  Level& level = levels_[item.level];
  const uint32_t limit = level.policy.max_queue_size;
  if (limit > 0 && level.size() >= limit) {
    return absl::UnavailableError(absl::StrCat(
        "model '", model, "': request rejected, the queue is full: ", level.size(),
        " requests waiting at priority level ", item.level + 1, " (max_queue_size ", limit, ")"));
  }
  next_deadline_ns_ = std::min(next_deadline_ns_, item.deadline_ns);
  level.waiting.push_back(std::move(item));
  ++size_;
  return absl::OkStatus();
}

void RequestQueue::ExpireTimedOut(int64_t now_ns, std::vector<QueuedRequest>* rejected) {
  if (now_ns < next_deadline_ns_) return;
  for (Level& level : levels_) {
    bool any = false;
    for (QueuedRequest& q : level.waiting) {
      if (q.deadline_ns > now_ns) continue;
      any = true;
      if (level.policy.timeout_action == QueuePolicy::TimeoutAction::kReject) {
        rejected->push_back(std::move(q));
        --size_;
      } else {
        // A delayed request never times out again; it waits behind the punctual ones.
        q.deadline_ns = kNoDeadline;
        level.delayed.push_back(std::move(q));
      }
    }
    if (any) {
      level.waiting.erase(std::remove_if(level.waiting.begin(), level.waiting.end(),
                                         [](const QueuedRequest& q) { return !q.request; }),
                          level.waiting.end());
    }
  }
  RecomputeNextDeadline();
}

void RequestQueue::RecomputeNextDeadline() {
  next_deadline_ns_ = kNoDeadline;
  for (const Level& level : levels_) {
    for (const QueuedRequest& q : level.waiting) {
      next_deadline_ns_ = std::min(next_deadline_ns_, q.deadline_ns);
    }
  }
}

void RequestQueue::Plan(
    const BatchingPolicy& policy, int64_t now_ns, bool flush,
    absl::FunctionRef<bool(const InferRequest&, const InferRequest&)> compatible,
    BatchPlan* plan) const {
  plan->picks.clear();
  plan->rows = 0;
  plan->ready = false;
  plan->wake_ns = kNoDeadline;

  const int64_t max_rows = policy.max_batch_size;
  const std::vector<int64_t>& preferred = policy.preferred_batch_sizes;
  // The batch stops growing at the largest preferred size, or else at max_batch_size.
  const int64_t target = preferred.empty() ? max_rows : preferred.back();
  const InferRequest* first = nullptr;
  int64_t oldest_ns = kNoDeadline;
  // The longest prefix of the picks whose rows are a preferred size.
  size_t preferred_picks = 0;
  int64_t preferred_rows = 0;
  // True when the batch cannot grow: full, or the next compatible request does not fit.
  bool closed = false;
  size_t scanned = 0;

  for (uint32_t l = 0; l < levels_.size() && !closed; ++l) {
    for (int pass = 0; pass < 2 && !closed; ++pass) {
      const std::deque<QueuedRequest>& fifo = pass == 0 ? levels_[l].waiting : levels_[l].delayed;
      for (size_t i = 0; i < fifo.size(); ++i) {
        const QueuedRequest& q = fifo[i];
        if (first != nullptr) {
          if (++scanned > kMaxScan) {
            closed = true;
            break;
          }
          if (!compatible(*first, *q.request)) continue;
          if (plan->rows + q.rows > max_rows) {
            closed = true;
            break;
          }
        } else {
          first = q.request.get();
        }
        plan->picks.push_back({l, pass == 1, i});
        plan->rows += q.rows;
        oldest_ns = std::min(oldest_ns, q.enqueue_ns);
        if (Preferred(preferred, plan->rows)) {
          preferred_picks = plan->picks.size();
          preferred_rows = plan->rows;
        }
        // Without batching a request executes alone.
        if (max_rows == 0 || plan->rows >= target) {
          closed = true;
          break;
        }
      }
    }
  }

  if (max_rows == 0) {
    plan->ready = true;
    return;
  }
  const int64_t delay_end_ns = oldest_ns > kNoDeadline - policy.max_queue_delay_ns
                                   ? kNoDeadline
                                   : oldest_ns + policy.max_queue_delay_ns;
  if (!closed && !flush && now_ns < delay_end_ns) {
    plan->wake_ns = delay_end_ns;
    return;
  }
  plan->ready = true;
  // A batch that missed every preferred size falls back to the largest preferred one it passed.
  if (preferred_picks > 0 && !Preferred(preferred, plan->rows)) {
    plan->picks.resize(preferred_picks);
    plan->rows = preferred_rows;
  }
}

void RequestQueue::Take(const std::vector<QueuePosition>& picks, std::vector<QueuedRequest>* out) {
  for (const QueuePosition& p : picks) {
    Level& level = levels_[p.level];
    std::deque<QueuedRequest>& fifo = p.delayed ? level.delayed : level.waiting;
    out->push_back(std::move(fifo[p.index]));
  }
  // Picks are in service order: grouped by FIFO, indices ascending within one.
  size_t begin = 0;
  while (begin < picks.size()) {
    size_t end = begin;
    while (end < picks.size() && picks[end].level == picks[begin].level &&
           picks[end].delayed == picks[begin].delayed) {
      ++end;
    }
    Level& level = levels_[picks[begin].level];
    std::deque<QueuedRequest>& fifo = picks[begin].delayed ? level.delayed : level.waiting;
    EraseTaken(fifo, picks[begin].index, picks[end - 1].index, end - begin);
    begin = end;
  }
  size_ -= picks.size();
}

}  // namespace flywheel::serving
