// The Backend interface: what the scheduler needs from a framework (our ONNX engine, the tree
// engine, later others). A Backend is one loaded model version; it creates Instances, each an
// independent executor (its own engine session) driven by one scheduler thread at a time.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/tensor.h"

namespace flywheel::serving {

// A model input or output as the backend sees it. dims include the batch dimension when the
// model batches (-1 for a dimension fixed at run time).
struct BackendTensorInfo {
  std::string name;
  DataType dtype = DataType::kInvalid;
  std::vector<int64_t> dims;
};

class BackendInstance {
 public:
  virtual ~BackendInstance() = default;
  // Runs one (possibly batched) execution. `inputs` are in the order of Backend::inputs(); the
  // instance writes one tensor per Backend::outputs() entry into *outputs, reusing its buffers
  // where it can. Called by one thread at a time.
  virtual absl::Status Execute(absl::Span<const Tensor> inputs, std::vector<Tensor>* outputs) = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const std::vector<BackendTensorInfo>& inputs() const = 0;
  virtual const std::vector<BackendTensorInfo>& outputs() const = 0;
  // A new independent instance (instance_group count creates this many).
  virtual absl::StatusOr<std::unique_ptr<BackendInstance>> CreateInstance() = 0;
};

}  // namespace flywheel::serving
