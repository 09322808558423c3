// Private to serving/: the scheduler's queue of waiting requests, one FIFO per priority level with
// that level's policy (size limit, queue timeout, REJECT or DELAY on timeout), and the dynamic
// batcher's choice of which queued requests execute together next.
#pragma once

#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "serving/infer.h"
#include "serving/scheduler.h"

namespace flywheel::serving {

// Steady-clock nanoseconds: what the queue's times and deadlines are measured in.
int64_t SteadyNowNs();

inline constexpr int64_t kNoDeadline = std::numeric_limits<int64_t>::max();

struct QueuedRequest {
  std::unique_ptr<InferRequest> request;
  InferCallback done;
  int64_t enqueue_ns = 0;
  // When the request times out in the queue; kNoDeadline when it never does.
  int64_t deadline_ns = kNoDeadline;
  // The request's timeout, for the message when it expires.
  uint64_t timeout_us = 0;
  // Batch elements (the first dimension) the request carries; 1 when the model does not batch.
  int64_t rows = 1;
  // 0-based index of the priority level (level 1 is index 0).
  uint32_t level = 0;
};

// Where a request sits in the queue, for a batch plan.
struct QueuePosition {
  uint32_t level = 0;
  bool delayed = false;
  size_t index = 0;
};

// Which queued requests to execute next, or how long to wait for more.
struct BatchPlan {
  std::vector<QueuePosition> picks;
  int64_t rows = 0;
  // True: execute `picks` now. False: wait until `wake_ns` (or until a request arrives).
  bool ready = false;
  int64_t wake_ns = kNoDeadline;
};

// The dynamic batcher's parameters.
struct BatchingPolicy {
  // 0: every request executes alone.
  int64_t max_batch_size = 0;
  // Sorted ascending, each in [1, max_batch_size].
  std::vector<int64_t> preferred_batch_sizes;
  int64_t max_queue_delay_ns = 0;
};

// Not thread-safe: the scheduler guards it with its mutex.
class RequestQueue {
 public:
  // REQUIRES: options already checked by Scheduler::Create.
  explicit RequestQueue(const SchedulerOptions& options);

  // The 0-based level a request's priority maps to: 0 or out-of-range priorities take the
  // default level, as Triton does.
  uint32_t LevelOf(uint32_t priority) const;
  // The queue timeout in microseconds that applies to a request (0: none): the level's default,
  // or the request's own when the policy allows it and it is shorter.
  uint64_t TimeoutUsOf(const InferRequest& request, uint32_t level) const;

  // Queues `item` (its level, rows, enqueue time and deadline already set). A full level leaves
  // `item` untouched and returns UNAVAILABLE naming `model` and the limit.
  absl::Status Push(QueuedRequest& item, const std::string& model);

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  // The earliest queue deadline of a waiting request (kNoDeadline: none).
  int64_t next_deadline_ns() const { return next_deadline_ns_; }

  // Handles requests whose deadline passed by `now_ns`: REJECT ones are removed and appended to
  // *rejected; DELAY ones move behind the requests of their level that have not timed out.
  void ExpireTimedOut(int64_t now_ns, std::vector<QueuedRequest>* rejected);

  // Decides the next execution into *plan (its vector's capacity is reused). `compatible(a, b)`
  // says whether two requests may share a batch; only requests compatible with the first in
  // service order join it, in order. With `flush` (shutting down) nothing waits for more.
  // REQUIRES: !empty().
  void Plan(const BatchingPolicy& policy, int64_t now_ns, bool flush,
            absl::FunctionRef<bool(const InferRequest&, const InferRequest&)> compatible,
            BatchPlan* plan) const;

  // Moves the planned requests, in plan order, to the end of *out and removes them.
  void Take(const std::vector<QueuePosition>& picks, std::vector<QueuedRequest>* out);

 private:
  struct Level {
    QueuePolicy policy;
    std::deque<QueuedRequest> waiting;
    // Timed-out requests of a DELAY level; served after `waiting`.
    std::deque<QueuedRequest> delayed;
    size_t size() const { return waiting.size() + delayed.size(); }
  };
  void RecomputeNextDeadline();

  std::vector<Level> levels_;
  uint32_t default_level_ = 0;
  size_t size_ = 0;
  int64_t next_deadline_ns_ = kNoDeadline;
};

}  // namespace flywheel::serving
