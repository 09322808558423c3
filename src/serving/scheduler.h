// The per-model scheduler: validated requests are queued (by priority level), formed into
// batches by the dynamic batcher, and executed on the model's instances, one thread per
// instance. Outputs are split back per request and each request's callback is called on the
// instance's thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "serving/backend.h"
#include "serving/infer.h"
#include "serving/request_observer.h"
#include "serving/stats.h"

namespace flywheel::serving {

struct QueuePolicy {
  enum class TimeoutAction { kReject, kDelay };
  TimeoutAction timeout_action = TimeoutAction::kReject;
  // 0: requests never time out in the queue (unless they set their own timeout).
  uint64_t default_timeout_us = 0;
  bool allow_timeout_override = false;
  // 0: unbounded. A request arriving at a full queue is rejected at once with UNAVAILABLE.
  uint32_t max_queue_size = 0;
};

struct SchedulerOptions {
  std::string model_name;
  std::string model_version;
  // 0: the model does not batch; each request executes alone, shapes as given. Otherwise the
  // first dimension of every input and output is the batch dimension.
  int max_batch_size = 0;
  // When false, requests still queue and run on free instances, but each executes alone.
  bool dynamic_batching = false;
  std::vector<int> preferred_batch_sizes;
  uint64_t max_queue_delay_us = 0;
  // 0 or 1: a single level. Levels are 1 (highest) .. priority_levels.
  uint32_t priority_levels = 0;
  uint32_t default_priority_level = 0;
  QueuePolicy default_queue_policy;
  std::map<uint32_t, QueuePolicy> priority_queue_policy;
};

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // `backend` describes inputs and outputs; one thread drives each instance.
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(
      SchedulerOptions options, std::shared_ptr<Backend> backend,
      std::vector<std::unique_ptr<BackendInstance>> instances, std::shared_ptr<ModelStats> stats);

  // Queues a request whose inputs were validated against the model (ValidateRequest). `done` is
  // called exactly once; on a full queue or after Shutdown it is called at once with UNAVAILABLE.
  virtual void Enqueue(std::unique_ptr<InferRequest> request, InferCallback done) = 0;
  // Requests queued or executing.
  virtual int64_t Pending() const = 0;
  // Sets what sees each successful request (monitoring). Call once, before the version serves;
  // later calls are ignored. The scheduler keeps the observer alive as long as it runs.
  virtual void SetObserver(std::shared_ptr<RequestObserver> observer) = 0;
  // Stops accepting new requests, finishes the queued ones, joins the instance threads.
  virtual void Shutdown() = 0;
};

// A model input or output as the configuration declares it (dims without the batch dimension
// when max_batch_size > 0). `reshape`, when set, is the shape the backend receives instead.
struct IOSpec {
  std::string name;
  DataType dtype = DataType::kInvalid;
  std::vector<int64_t> dims;
  bool has_reshape = false;
  std::vector<int64_t> reshape;
  bool optional = false;
};

// Checks a request against the model's declared inputs and outputs: every required input present
// once, no unknown ones, dtypes equal, shapes match the dims (-1 matches any size), the batch
// dimension within max_batch_size, element counts consistent with the data, requested outputs
// known. Puts the inputs in declaration order and applies `reshape`. The error names the model,
// the tensor and what was expected (`model 'rank' input 'x': expected FP32 [-1,256], got INT64
// [4,256]`).
absl::Status ValidateRequest(const std::string& model_name, int max_batch_size,
                             const std::vector<IOSpec>& inputs, const std::vector<IOSpec>& outputs,
                             InferRequest* request);

}  // namespace flywheel::serving
