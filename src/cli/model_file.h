// A model file the command line can run: an ONNX model (the engine's Session) or an XGBoost
// JSON/UBJSON model (the tree engine's Forest), behind one small interface so that `flywheel
// infer` and `flywheel bench` treat both alike.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/tensor.h"
#include "engine/session.h"

namespace flywheel::cli {

class ModelFile {
 public:
  virtual ~ModelFile() = default;
  // Picks the engine by the file name: .json and .ubj are XGBoost models, anything else ONNX.
  // `threads` is the intra-op (ONNX) or row-parallel (trees) thread count.
  static absl::StatusOr<std::unique_ptr<ModelFile>> Load(const std::string& path, int threads);

  virtual const std::vector<engine::TensorInfo>& inputs() const = 0;
  virtual const std::vector<engine::TensorInfo>& outputs() const = 0;
  virtual absl::Status Run(absl::Span<const Tensor> inputs, std::vector<Tensor>* outputs) const = 0;
  virtual size_t WeightBytes() const = 0;
  virtual std::map<std::string, int> OpCounts() const = 0;
};

}  // namespace flywheel::cli
