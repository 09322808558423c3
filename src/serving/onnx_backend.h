// The ONNX backend: serves a model.onnx file with flywheel's own engine. Each instance owns an
// engine Session, so instances run truly in parallel with their own memory plans.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "serving/backend.h"

namespace flywheel::serving {

struct OnnxBackendOptions {
  int intra_op_threads = 1;
};

absl::StatusOr<std::unique_ptr<Backend>> CreateOnnxBackend(const std::string& model_path,
                                                           const OnnxBackendOptions& options);

}  // namespace flywheel::serving
