// Transport-neutral inference request and response. The HTTP and gRPC front ends decode into an
// InferRequest, serving::Server schedules it, and the response comes back through a callback on a
// worker thread (never the caller's I/O thread).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace flywheel::serving {

// A request or tensor parameter: KServe v2 allows bool, integer, double and string values.
using ParameterValue = std::variant<bool, int64_t, double, std::string>;
using Parameters = std::map<std::string, ParameterValue>;

struct InferInput {
  std::string name;
  // The tensor's declared dtype and shape are the request's; data may be a view on the request
  // body (kept alive by InferRequest::body) or an owning tensor decoded from JSON.
  Tensor data;
  Parameters parameters;
};

struct RequestedOutput {
  std::string name;
  // HTTP only: return this output in the binary section instead of JSON.
  bool binary_data = false;
  Parameters parameters;
};

struct InferRequest {
  std::string model_name;
  // Empty means the model's default version (the highest ready version under its policy).
  std::string model_version;
  std::string id;
  Parameters parameters;
  std::vector<InferInput> inputs;
  // Empty means every output of the model.
  std::vector<RequestedOutput> outputs;
  // 0 takes the model's default_priority_level; 1 is the highest priority.
  uint32_t priority = 0;
  // Queue timeout in microseconds; 0 takes the model's default queue policy. Honoured only when
  // the policy allows overriding it.
  uint64_t timeout_us = 0;
  // Keeps alive the memory that input views point into (the HTTP body or the gRPC message).
  std::shared_ptr<const void> body;
  // Set by the front end when the request arrived, for end-to-end latency.
  int64_t arrival_ns = 0;
};

struct InferOutput {
  std::string name;
  Tensor data;
  // Mirrors RequestedOutput::binary_data for the HTTP encoder.
  bool binary_data = false;
};

struct InferResponse {
  std::string model_name;
  std::string model_version;
  std::string id;
  Parameters parameters;
  std::vector<InferOutput> outputs;
};

// Called exactly once per request, on a scheduler thread, with the response or the error.
// Error codes follow Triton's mapping: INVALID_ARGUMENT (400) for a bad request, NOT_FOUND (404)
// for an unknown model or version, UNAVAILABLE (503) for a model that is not ready or a full
// queue, DEADLINE_EXCEEDED for a queue timeout, INTERNAL (500) for a failed execution.
using InferCallback = std::function<void(absl::StatusOr<InferResponse>)>;

}  // namespace flywheel::serving
