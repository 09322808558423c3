// The scheduler: a priority RequestQueue behind one mutex, and one thread per backend instance.
// Free instance threads take turns as the batch former (one at a time, so two never wait on the
// same partial batch); the former plans a batch, waits for more requests while the batch is below
// its target and the oldest request's max_queue_delay has not passed, takes it, hands the role
// on, and executes the batch with no lock held.
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "serving/batch_assembly.h"
#include "serving/request_queue.h"
#include "serving/scheduler.h"

namespace flywheel::serving {
namespace {

enum class FailureKind { kRejected, kBackend, kOther };

int64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t SaturatingNsFromUs(uint64_t us) {
  constexpr uint64_t kMaxUs = static_cast<uint64_t>(kNoDeadline / 1000);
  return us >= kMaxUs ? kNoDeadline : static_cast<int64_t>(us * 1000);
}

// Everything an instance thread reuses from one execution to the next.
struct InstanceSlot {
  std::unique_ptr<BackendInstance> instance;
  BatchAssembler assembler;
  BatchPlan plan;
  std::vector<QueuedRequest> batch;
  std::vector<QueuedRequest> expired;
  std::vector<const InferRequest*> requests;
  std::vector<Tensor> inputs;
  std::vector<Tensor> outputs;
  std::vector<std::shared_ptr<const Tensor>> held;
  std::vector<int> output_index;
  std::thread thread;
};

// The state the instance threads share with the scheduler object. Each thread holds a reference,
// so the scheduler may be destroyed from inside one of its own callbacks (the last reference to
// a model version dropping there): that thread is detached and finishes on its own.
class Core : public std::enable_shared_from_this<Core> {
 public:
  Core(SchedulerOptions options, std::shared_ptr<Backend> backend,
       std::vector<std::unique_ptr<BackendInstance>> instances, std::shared_ptr<ModelStats> stats)
      : options_(std::move(options)),
        backend_(std::move(backend)),
        stats_(std::move(stats)),
        queue_(options_) {
    batching_ = options_.dynamic_batching && options_.max_batch_size > 0;
    policy_.max_batch_size = batching_ ? options_.max_batch_size : 0;
    for (int size : options_.preferred_batch_sizes) policy_.preferred_batch_sizes.push_back(size);
    std::sort(policy_.preferred_batch_sizes.begin(), policy_.preferred_batch_sizes.end());
    policy_.preferred_batch_sizes.erase(
        std::unique(policy_.preferred_batch_sizes.begin(), policy_.preferred_batch_sizes.end()),
        policy_.preferred_batch_sizes.end());
    policy_.max_queue_delay_ns = SaturatingNsFromUs(options_.max_queue_delay_us);
    slots_.reserve(instances.size());
    for (auto& instance : instances) {
      slots_.push_back(std::make_unique<InstanceSlot>());
      slots_.back()->instance = std::move(instance);
    }
  }

  void Start() {
    for (size_t i = 0; i < slots_.size(); ++i) {
      InstanceSlot* slot = slots_[i].get();
      slot->thread = std::thread([self = shared_from_this(), slot] { self->Loop(*slot); });
      // Thread names are at most 15 characters; the model name's start is the useful part.
      std::string name = absl::StrCat("fw:", options_.model_name).substr(0, 12);
      pthread_setname_np(slot->thread.native_handle(),
                         absl::StrCat(name, ":", i).substr(0, 15).c_str());
    }
  }

  void Enqueue(std::unique_ptr<InferRequest> request, InferCallback done);
  int64_t Pending() const { return pending_.load(std::memory_order_relaxed); }
  void Shutdown();
  void SetObserver(std::shared_ptr<RequestObserver> observer) {
    std::lock_guard<std::mutex> lock(mu_);
    if (observer_owner_ != nullptr) return;
    observer_owner_ = std::move(observer);
    observer_.store(observer_owner_.get(), std::memory_order_release);
  }

 private:
  void Loop(InstanceSlot& slot);
  // Waits for work as the batch former. False when the scheduler stopped and nothing is left.
  bool NextWork(InstanceSlot& slot);
  void Execute(InstanceSlot& slot);
  void FailBatch(InstanceSlot& slot, const absl::Status& status, FailureKind kind);
  // Answers a request that was accepted (counted as pending).
  void Finish(QueuedRequest& q, absl::StatusOr<InferResponse> result, FailureKind kind);
  // Answers a request at once, before it was accepted.
  void RejectNow(InferCallback& done, int64_t start_ns, const absl::Status& status,
                 FailureKind kind);
  int64_t StartNs(const InferRequest* request, int64_t fallback_ns, int64_t now_ns) const;
  void CountFailure(FailureKind kind, uint64_t duration_ns);
  absl::StatusOr<int> OutputIndex(const std::string& name) const;

  const SchedulerOptions options_;
  const std::shared_ptr<Backend> backend_;
  const std::shared_ptr<ModelStats> stats_;
  bool batching_ = false;
  BatchingPolicy policy_;
  std::vector<std::unique_ptr<InstanceSlot>> slots_;
  std::atomic<int64_t> pending_{0};

  std::mutex mu_;
  // The batch former waits here for requests; a new request or Shutdown wakes it.
  std::condition_variable work_cv_;
  // Free instances wait here for their turn as the batch former.
  std::condition_variable turn_cv_;
  bool former_busy_ = false;
  bool stopping_ = false;
  RequestQueue queue_;

  std::mutex join_mu_;
  bool joined_ = false;

  // Set once (guarded by mu_) and read lock-free on every answer; the core owns it.
  std::shared_ptr<RequestObserver> observer_owner_;
  std::atomic<RequestObserver*> observer_{nullptr};
};

thread_local const Core* tls_core = nullptr;

int64_t Core::StartNs(const InferRequest* request, int64_t fallback_ns, int64_t now_ns) const {
  // arrival_ns is the front end's steady-clock arrival time; anything else falls back.
  if (request != nullptr && request->arrival_ns > 0 && request->arrival_ns <= now_ns) {
    return request->arrival_ns;
  }
  return fallback_ns;
}

void Core::CountFailure(FailureKind kind, uint64_t duration_ns) {
  stats_->fail.Add(duration_ns);
  switch (kind) {
    case FailureKind::kRejected:
      stats_->fail_rejected.fetch_add(1, std::memory_order_relaxed);
      break;
    case FailureKind::kBackend:
      stats_->fail_backend.fetch_add(1, std::memory_order_relaxed);
      break;
    case FailureKind::kOther:
      stats_->fail_other.fetch_add(1, std::memory_order_relaxed);
      break;
  }
}

void Core::RejectNow(InferCallback& done, int64_t start_ns, const absl::Status& status,
                     FailureKind kind) {
  CountFailure(kind, static_cast<uint64_t>(SteadyNowNs() - start_ns));
  if (done) done(status);
}

void Core::Enqueue(std::unique_ptr<InferRequest> request, InferCallback done) {
  const int64_t now = SteadyNowNs();
  const int64_t start = StartNs(request.get(), now, now);
  if (request == nullptr) {
    RejectNow(done, start,
              absl::InvalidArgumentError(
                  absl::StrCat("model '", options_.model_name, "': no request to schedule")),
              FailureKind::kOther);
    return;
  }
  QueuedRequest q;
  q.enqueue_ns = now;
  if (options_.max_batch_size > 0) {
    absl::StatusOr<int64_t> rows =
        BatchRowsOf(*request, options_.model_name, options_.max_batch_size);
    if (!rows.ok()) {
      RejectNow(done, start, rows.status(), FailureKind::kOther);
      return;
    }
    q.rows = *rows;
  }
  // Levels and policies never change after construction: no lock needed to read them.
  q.level = queue_.LevelOf(request->priority);
  q.timeout_us = queue_.TimeoutUsOf(*request, q.level);
  if (q.timeout_us > 0) {
    const int64_t timeout_ns = SaturatingNsFromUs(q.timeout_us);
    q.deadline_ns = now > kNoDeadline - timeout_ns ? kNoDeadline : now + timeout_ns;
  }
  q.request = std::move(request);
  q.done = std::move(done);

  absl::Status status;
  FailureKind kind = FailureKind::kRejected;
  // Once the lock is released the request may be answered, and its callback may drop the last
  // reference to the scheduler: this one keeps the core alive until the notify below.
  std::shared_ptr<Core> self = shared_from_this();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      kind = FailureKind::kOther;
      status = absl::UnavailableError(absl::StrCat("model '", options_.model_name, "' version '",
                                                   options_.model_version,
                                                   "' is shutting down; retry the request"));
    } else {
      status = queue_.Push(q, options_.model_name);
      if (status.ok()) {
        pending_.fetch_add(1, std::memory_order_relaxed);
        stats_->pending.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
  // Notified after unlocking, so the woken thread does not block again on the mutex.
  if (status.ok()) return work_cv_.notify_one();
  RejectNow(q.done, start, status, kind);
}

void Core::Loop(InstanceSlot& slot) {
  tls_core = this;
#ifdef SCHED_BATCH
  // An instance thread is CPU-bound work handed over by the I/O threads. As SCHED_BATCH it does
  // not preempt the I/O thread that woke it, which finishes reading its ready connections first:
  // +5% requests/s for a small model on a saturated 2-core machine (docs/benchmarks.md). Its
  // share of the CPU does not change. Best effort: the thread runs as it is if this fails.
  sched_param batch{};
  pthread_setschedparam(pthread_self(), SCHED_BATCH, &batch);
#endif
  while (NextWork(slot)) {
    for (QueuedRequest& q : slot.expired) {
      const int64_t waited_us = (SteadyNowNs() - q.enqueue_ns) / 1000;
      Finish(q,
             absl::UnavailableError(
                 absl::StrCat("model '", options_.model_name, "': request timeout expired after ",
                              waited_us, " us in the queue (timeout ", q.timeout_us, " us)")),
             FailureKind::kRejected);
    }
    slot.expired.clear();
    if (!slot.batch.empty()) Execute(slot);
    slot.batch.clear();
  }
}

bool Core::NextWork(InstanceSlot& slot) {
  std::unique_lock<std::mutex> lock(mu_);
  turn_cv_.wait(lock, [this] { return !former_busy_; });
  former_busy_ = true;
  bool more = true;
  for (;;) {
    const int64_t now = SteadyNowNs();
    queue_.ExpireTimedOut(now, &slot.expired);
    // Timed-out requests are answered before anything else waits.
    if (!slot.expired.empty()) break;
    if (queue_.empty()) {
      if (stopping_) {
        more = false;
        break;
      }
      work_cv_.wait(lock);
      continue;
    }
    queue_.Plan(policy_, now, stopping_, BatchCompatible, &slot.plan);
    if (slot.plan.ready) {
      queue_.Take(slot.plan.picks, &slot.batch);
      break;
    }
    const int64_t wake_ns = std::min(slot.plan.wake_ns, queue_.next_deadline_ns());
    if (wake_ns == kNoDeadline) {
      work_cv_.wait(lock);
    } else {
      work_cv_.wait_until(lock,
                          std::chrono::steady_clock::time_point(std::chrono::nanoseconds(wake_ns)));
    }
  }
  former_busy_ = false;
  lock.unlock();
  turn_cv_.notify_one();
  return more;
}

absl::StatusOr<int> Core::OutputIndex(const std::string& name) const {
  const std::vector<BackendTensorInfo>& outputs = backend_->outputs();
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i].name == name) return static_cast<int>(i);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("model '", options_.model_name, "': unknown output '", name, "' requested"));
}

void Core::Execute(InstanceSlot& slot) {
  std::vector<QueuedRequest>& batch = slot.batch;
  const int64_t start = SteadyNowNs();
  int64_t total_rows = 0;
  for (const QueuedRequest& q : batch) total_rows += q.rows;

  // A lone request's inputs go to the backend as they are; a batch is concatenated.
  absl::Status status;
  slot.inputs.clear();
  if (batch.size() == 1) {
    for (const InferInput& input : batch[0].request->inputs) slot.inputs.push_back(input.data);
  } else {
    slot.requests.clear();
    for (const QueuedRequest& q : batch) slot.requests.push_back(q.request.get());
    status = slot.assembler.Concat(slot.requests, total_rows, &slot.inputs);
  }
  const int64_t assembled = SteadyNowNs();
  if (status.ok()) status = slot.instance->Execute(slot.inputs, &slot.outputs);
  const int64_t executed = SteadyNowNs();
  // Drop the references to request memory and to the concatenation buffers right away.
  slot.inputs.clear();
  if (!status.ok()) {
    FailBatch(
        slot,
        absl::InternalError(absl::StrCat("model '", options_.model_name, "': ", status.message())),
        FailureKind::kBackend);
    return;
  }
  const size_t num_outputs = backend_->outputs().size();
  if (slot.outputs.size() != num_outputs) {
    FailBatch(
        slot,
        absl::InternalError(absl::StrCat("model '", options_.model_name, "': the backend returned ",
                                         slot.outputs.size(), " outputs, expected ", num_outputs)),
        FailureKind::kBackend);
    return;
  }
  const bool split = batch.size() > 1;
  slot.held.assign(num_outputs, nullptr);
  if (split) {
    for (size_t j = 0; j < num_outputs; ++j) {
      status = CheckBatchedOutput(slot.outputs[j], total_rows, options_.model_name,
                                  backend_->outputs()[j].name);
      if (!status.ok()) {
        FailBatch(slot, status, FailureKind::kBackend);
        return;
      }
    }
  }

  // Responses: each request's outputs as it asked for them, its rows only.
  std::vector<absl::StatusOr<InferResponse>> results;
  results.reserve(batch.size());
  int64_t offset = 0;
  for (QueuedRequest& q : batch) {
    InferRequest& request = *q.request;
    InferResponse response;
    response.model_name = options_.model_name;
    response.model_version = options_.model_version;
    response.id = std::move(request.id);
    absl::Status error;
    auto add = [&](int index, bool binary_data) {
      Tensor data;
      if (!split) {
        data = DetachOutput(slot.outputs[index]);
      } else {
        if (slot.held[index] == nullptr) {
          slot.held[index] = std::make_shared<const Tensor>(DetachOutput(slot.outputs[index]));
        }
        data = SliceRows(slot.held[index], offset, q.rows);
      }
      response.outputs.push_back({backend_->outputs()[index].name, std::move(data), binary_data});
    };
    if (request.outputs.empty()) {
      response.outputs.reserve(num_outputs);
      for (size_t j = 0; j < num_outputs; ++j) add(static_cast<int>(j), false);
    } else {
      response.outputs.reserve(request.outputs.size());
      for (const RequestedOutput& wanted : request.outputs) {
        absl::StatusOr<int> index = OutputIndex(wanted.name);
        if (!index.ok()) {
          error = index.status();
          break;
        }
        add(*index, wanted.binary_data);
      }
    }
    offset += q.rows;
    if (error.ok()) {
      results.push_back(std::move(response));
    } else {
      results.push_back(std::move(error));
    }
  }
  slot.held.clear();
  const int64_t split_done = SteadyNowNs();

  const uint64_t input_ns = static_cast<uint64_t>(assembled - start);
  const uint64_t infer_ns = static_cast<uint64_t>(executed - assembled);
  const uint64_t output_ns = static_cast<uint64_t>(split_done - executed);
  stats_->RecordBatch(total_rows, input_ns, infer_ns, output_ns);
  stats_->inference_count.fetch_add(static_cast<uint64_t>(total_rows), std::memory_order_relaxed);
  stats_->execution_count.fetch_add(1, std::memory_order_relaxed);
  stats_->last_inference_ms.store(WallClockMs(), std::memory_order_relaxed);
  for (size_t i = 0; i < batch.size(); ++i) {
    QueuedRequest& q = batch[i];
    if (results[i].ok()) {
      stats_->queue.Add(static_cast<uint64_t>(start - q.enqueue_ns));
      stats_->compute_input.Add(input_ns);
      stats_->compute_infer.Add(infer_ns);
      stats_->compute_output.Add(output_ns);
    }
    Finish(q, std::move(results[i]), FailureKind::kOther);
  }
}

void Core::FailBatch(InstanceSlot& slot, const absl::Status& status, FailureKind kind) {
  for (QueuedRequest& q : slot.batch) Finish(q, status, kind);
}

void Core::Finish(QueuedRequest& q, absl::StatusOr<InferResponse> result, FailureKind kind) {
  // Before the clock is read: the request's latency includes what monitoring costs it.
  RequestObserver* observer = observer_.load(std::memory_order_acquire);
  if (observer != nullptr && result.ok() && q.request != nullptr) {
    observer->OnSuccess(*q.request, *result);
  }
  const int64_t now = SteadyNowNs();
  const uint64_t duration_ns =
      static_cast<uint64_t>(now - StartNs(q.request.get(), q.enqueue_ns, now));
  if (result.ok()) {
    stats_->success.Add(duration_ns);
    stats_->latency_us.Observe(static_cast<double>(duration_ns) / 1000.0);
  } else {
    CountFailure(kind, duration_ns);
  }
  // The request's memory (often the whole HTTP body) is released before the callback runs.
  q.request.reset();
  pending_.fetch_sub(1, std::memory_order_relaxed);
  stats_->pending.fetch_sub(1, std::memory_order_relaxed);
  InferCallback done = std::move(q.done);
  if (done) done(std::move(result));
}

void Core::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  turn_cv_.notify_all();
  const bool on_instance_thread = tls_core == this;
  std::unique_lock<std::mutex> join_lock(join_mu_, std::defer_lock);
  if (on_instance_thread) {
    // Whoever holds the lock is joining this very thread: waiting for it would deadlock.
    if (!join_lock.try_lock()) return;
  } else {
    join_lock.lock();
  }
  if (joined_) return;
  for (auto& slot : slots_) {
    if (!slot->thread.joinable()) continue;
    if (slot->thread.get_id() == std::this_thread::get_id()) {
      // Shut down from this instance's own callback: it drains with the others and exits by
      // itself once the queue is empty, keeping the core alive until then.
      slot->thread.detach();
    } else {
      slot->thread.join();
    }
  }
  joined_ = true;
}

class SchedulerImpl : public Scheduler {
 public:
  explicit SchedulerImpl(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  ~SchedulerImpl() override { core_->Shutdown(); }

  void Enqueue(std::unique_ptr<InferRequest> request, InferCallback done) override {
    core_->Enqueue(std::move(request), std::move(done));
  }
  int64_t Pending() const override { return core_->Pending(); }
  void SetObserver(std::shared_ptr<RequestObserver> observer) override {
    core_->SetObserver(std::move(observer));
  }
  void Shutdown() override { core_->Shutdown(); }

 private:
  std::shared_ptr<Core> core_;
};

absl::Status CheckOptions(const SchedulerOptions& options, const Backend* backend,
                          const std::vector<std::unique_ptr<BackendInstance>>& instances) {
  const std::string model = absl::StrCat("model '", options.model_name, "'");
  if (backend == nullptr) return absl::InvalidArgumentError(model + ": no backend");
  if (instances.empty()) {
    return absl::InvalidArgumentError(model + ": at least one backend instance is needed");
  }
  for (const auto& instance : instances) {
    if (instance == nullptr) return absl::InvalidArgumentError(model + ": null backend instance");
  }
  if (options.max_batch_size < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(model, ": max_batch_size ", options.max_batch_size, " is negative"));
  }
  for (int size : options.preferred_batch_sizes) {
    if (size < 1 || size > std::max(1, options.max_batch_size)) {
      return absl::InvalidArgumentError(
          absl::StrCat(model, ": preferred_batch_size ", size, " is outside [1, ",
                       std::max(1, options.max_batch_size), "] (max_batch_size)"));
    }
  }
  const uint32_t levels = std::max<uint32_t>(1, options.priority_levels);
  if (options.priority_levels > 0 &&
      (options.default_priority_level < 1 || options.default_priority_level > levels)) {
    return absl::InvalidArgumentError(absl::StrCat(
        model, ": default_priority_level ", options.default_priority_level, " must be in [1, ",
        levels, "] when priority_levels is ", options.priority_levels));
  }
  for (const auto& [level, policy] : options.priority_queue_policy) {
    if (level < 1 || level > levels) {
      return absl::InvalidArgumentError(absl::StrCat(model, ": priority_queue_policy for level ",
                                                     level, " is outside the priority levels [1, ",
                                                     levels, "]"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(
    SchedulerOptions options, std::shared_ptr<Backend> backend,
    std::vector<std::unique_ptr<BackendInstance>> instances, std::shared_ptr<ModelStats> stats) {
  absl::Status status = CheckOptions(options, backend.get(), instances);
  if (!status.ok()) return status;
  if (stats == nullptr) stats = std::make_shared<ModelStats>();
  auto core = std::make_shared<Core>(std::move(options), std::move(backend), std::move(instances),
                                     std::move(stats));
  core->Start();
  return std::make_unique<SchedulerImpl>(std::move(core));
}

}  // namespace flywheel::serving
