#include "monitor/quality.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/tensor_values.h"
#include "monitor/hyperloglog.h"

namespace flywheel::monitor {
namespace {

enum class Retired : uint8_t { kJoined, kDropped };

// (request id, row) -> 64 bits. Ids are not kept: at 2^18 pending predictions the chance that
// any two collide is about 2^-28.
uint64_t KeyOf(absl::string_view request_id, int64_t row) {
  return HashBytes(request_id) + HashNumber(static_cast<double>(row)) * 0x9e3779b97f4a7c15ULL;
}

}  // namespace

struct LabelJoiner::Shard {
  struct Pending {
    QualityWindow* window = nullptr;
    uint64_t sequence = 0;
    Prediction prediction;
  };
  struct Arrival {
    int64_t time_ns;
    uint64_t key;
    uint64_t sequence;
  };

  // Drops predictions older than the horizon, and the oldest beyond the memory bound. `order`
  // keeps entries of labelled or replaced predictions until they reach its front; twice the bound
  // limits them too.
  void Evict(int64_t now_ns, int64_t horizon_ns, size_t cap) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    while (!order.empty() && (order.front().time_ns < now_ns - horizon_ns || pending.size() > cap ||
                              order.size() > 2 * cap)) {
      const Arrival a = order.front();
      order.pop_front();
      auto it = pending.find(a.key);
      if (it != pending.end() && it->second.sequence == a.sequence) {
        pending.erase(it);
        Retire(a.key, Retired::kDropped, cap);
        ++dropped;
      }
    }
  }
  // Remembers why a key left (for twice as many keys as may be pending), so that a late label is
  // told apart from an unknown one.
  void Retire(uint64_t key, Retired why, size_t cap) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    retired[key] = why;
    retired_order.push_back(key);
    while (retired_order.size() > 2 * cap) {
      retired.erase(retired_order.front());
      retired_order.pop_front();
    }
  }

  absl::Mutex mu;
  absl::flat_hash_map<uint64_t, Pending> pending ABSL_GUARDED_BY(mu);
  std::deque<Arrival> order ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<uint64_t, Retired> retired ABSL_GUARDED_BY(mu);
  std::deque<uint64_t> retired_order ABSL_GUARDED_BY(mu);
  uint64_t sequence ABSL_GUARDED_BY(mu) = 0;
  int64_t predictions ABSL_GUARDED_BY(mu) = 0;
  int64_t dropped ABSL_GUARDED_BY(mu) = 0;
  int64_t joined ABSL_GUARDED_BY(mu) = 0;
  int64_t unknown ABSL_GUARDED_BY(mu) = 0;
  int64_t expired ABSL_GUARDED_BY(mu) = 0;
  int64_t duplicate ABSL_GUARDED_BY(mu) = 0;
  int64_t invalid ABSL_GUARDED_BY(mu) = 0;
};

absl::string_view TaskKindName(TaskKind task) {
  switch (task) {
    case TaskKind::kBinary:
      return "binary";
    case TaskKind::kMulticlass:
      return "multiclass";
    case TaskKind::kRegression:
      return "regression";
    default:
      return "auto";
  }
}

absl::string_view LabelOutcomeName(LabelOutcome outcome) {
  switch (outcome) {
    case LabelOutcome::kJoined:
      return "joined";
    case LabelOutcome::kUnknown:
      return "unknown";
    case LabelOutcome::kExpired:
      return "expired";
    case LabelOutcome::kDuplicate:
      return "duplicate";
    default:
      return "invalid";
  }
}

LabelJoiner::LabelJoiner(const QualityOptions& options) : options_(options) {
  options_.shards = std::clamp(options_.shards, 1, 1024);
  options_.max_pending = std::max<int64_t>(options_.max_pending, options_.shards);
  options_.window = std::max<int64_t>(options_.window, 1);
  for (int i = 0; i < options_.shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

LabelJoiner::~LabelJoiner() = default;

LabelJoiner::Shard& LabelJoiner::ShardOf(uint64_t key) const {
  return *shards_[(key >> 40) % shards_.size()];
}

QualityWindow* LabelJoiner::Window(absl::string_view model, absl::string_view version,
                                   TaskKind task) {
  absl::MutexLock lock(&windows_mu_);
  auto& window = windows_[{std::string(model), std::string(version)}];
  if (window == nullptr) {
    window = std::make_unique<QualityWindow>(std::string(model), std::string(version), task,
                                             options_.window);
  }
  return window.get();
}

void LabelJoiner::RecordPrediction(QualityWindow* window, absl::string_view request_id, int64_t row,
                                   absl::Span<const float> prediction, absl::Time now) {
  if (window == nullptr || request_id.empty() || prediction.empty()) return;
  const uint64_t key = KeyOf(request_id, row);
  const int64_t now_ns = absl::ToUnixNanos(now);
  const size_t cap = static_cast<size_t>(options_.max_pending / options_.shards);
  Shard& shard = ShardOf(key);
  absl::MutexLock lock(&shard.mu);
  shard.Evict(now_ns, absl::ToInt64Nanoseconds(options_.horizon), cap);
  Shard::Pending& p = shard.pending[key];
  p.window = window;
  p.sequence = ++shard.sequence;
  p.prediction.assign(prediction.begin(), prediction.end());
  shard.order.push_back({now_ns, key, p.sequence});
  ++shard.predictions;
  // Keeps the bound exact even when no older prediction has expired.
  shard.Evict(now_ns, absl::ToInt64Nanoseconds(options_.horizon), cap);
}

absl::Status LabelJoiner::RecordOutput(QualityWindow* window, absl::string_view request_id,
                                       const Tensor& output, bool single_row, absl::Time now) {
  if (output.empty()) return absl::InvalidArgumentError("quality: an empty output tensor");
  const int64_t rows = single_row || output.rank() == 0 ? 1 : output.dim(0);
  if (rows <= 0) return absl::OkStatus();
  const int64_t width = output.NumElements() / rows;
  if (width <= 0) return absl::OkStatus();
  Prediction values;
  const bool numeric = VisitNumeric(output, [&](auto get) {
    for (int64_t r = 0; r < rows; ++r) {
      values.clear();
      for (int64_t k = 0; k < width; ++k) values.push_back(static_cast<float>(get(r * width + k)));
      RecordPrediction(window, request_id, r, values, now);
    }
  });
  if (!numeric) {
    return absl::InvalidArgumentError(absl::StrCat("quality: cannot read predictions from ",
                                                   output.DebugString(),
                                                   "; expected a numeric tensor"));
  }
  return absl::OkStatus();
}

LabelOutcome LabelJoiner::AddLabel(absl::string_view request_id, int64_t row, double label,
                                   absl::Time now, const QualityWindow** window) {
  if (window != nullptr) *window = nullptr;
  const uint64_t key = KeyOf(request_id, row);
  const size_t cap = static_cast<size_t>(options_.max_pending / options_.shards);
  Shard& shard = ShardOf(key);
  absl::MutexLock lock(&shard.mu);
  shard.Evict(absl::ToUnixNanos(now), absl::ToInt64Nanoseconds(options_.horizon), cap);
  auto it = shard.pending.find(key);
  if (it != shard.pending.end()) {
    if (window != nullptr) *window = it->second.window;
    if (!it->second.window->Add(it->second.prediction, label)) {
      ++shard.invalid;
      return LabelOutcome::kInvalid;
    }
    shard.pending.erase(it);
    shard.Retire(key, Retired::kJoined, cap);
    ++shard.joined;
    return LabelOutcome::kJoined;
  }
  auto retired = shard.retired.find(key);
  if (retired == shard.retired.end()) {
    ++shard.unknown;
    return LabelOutcome::kUnknown;
  }
  if (retired->second == Retired::kJoined) {
    ++shard.duplicate;
    return LabelOutcome::kDuplicate;
  }
  ++shard.expired;
  return LabelOutcome::kExpired;
}

LabelCounts LabelJoiner::Counts(absl::Time now) const {
  LabelCounts c;
  const int64_t now_ns = absl::ToUnixNanos(now);
  const size_t cap = static_cast<size_t>(options_.max_pending / options_.shards);
  for (const auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    shard->Evict(now_ns, absl::ToInt64Nanoseconds(options_.horizon), cap);
    c.predictions += shard->predictions;
    c.pending += static_cast<int64_t>(shard->pending.size());
    c.dropped += shard->dropped;
    c.joined += shard->joined;
    c.unknown += shard->unknown;
    c.expired += shard->expired;
    c.duplicate += shard->duplicate;
    c.invalid += shard->invalid;
  }
  return c;
}

std::vector<const QualityWindow*> LabelJoiner::Windows(const absl::string_view* model) const {
  std::vector<const QualityWindow*> windows;
  absl::MutexLock lock(&windows_mu_);
  for (const auto& [key, window] : windows_) {
    if (model == nullptr || key.first == *model) windows.push_back(window.get());
  }
  return windows;
}

std::vector<QualityReport> LabelJoiner::Compute() const {
  std::vector<QualityReport> reports;
  for (const QualityWindow* w : Windows(nullptr)) reports.push_back(w->Compute());
  return reports;
}

std::vector<QualityReport> LabelJoiner::Compute(absl::string_view model) const {
  std::vector<QualityReport> reports;
  for (const QualityWindow* w : Windows(&model)) reports.push_back(w->Compute());
  return reports;
}

std::map<std::string, int64_t> LabelJoiner::JoinedCounts(absl::string_view model) const {
  std::map<std::string, int64_t> counts;
  for (const QualityWindow* w : Windows(&model)) counts[w->version()] = w->joined();
  return counts;
}

void LabelJoiner::Collect(SampleWriter& writer) const {
  const LabelCounts c = Counts();
  writer.Add("flywheel_predictions_recorded_total",
             "Predictions recorded to be joined with delayed labels", "counter", {},
             static_cast<double>(c.predictions));
  writer.Add("flywheel_predictions_pending", "Predictions waiting for their label", "gauge", {},
             static_cast<double>(c.pending));
  writer.Add("flywheel_predictions_dropped_total",
             "Predictions dropped unlabelled (label horizon or memory bound)", "counter", {},
             static_cast<double>(c.dropped));
  for (auto [outcome, value] :
       {std::pair{LabelOutcome::kJoined, c.joined}, std::pair{LabelOutcome::kUnknown, c.unknown},
        std::pair{LabelOutcome::kExpired, c.expired},
        std::pair{LabelOutcome::kDuplicate, c.duplicate},
        std::pair{LabelOutcome::kInvalid, c.invalid}}) {
    writer.Add("flywheel_labels_total", "Labels received, by what became of them", "counter",
               {{"outcome", std::string(LabelOutcomeName(outcome))}}, static_cast<double>(value));
  }
  for (const QualityReport& r : Compute()) AppendQualityMetrics(r, writer);
}

}  // namespace flywheel::monitor
