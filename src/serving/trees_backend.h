// The tree backend (Triton FIL-compatible): serves XGBoost JSON/UBJSON models with flywheel's
// tree engine. config.pbtxt parameters follow Triton's FIL backend: model_type (xgboost_json,
// xgboost_ubj), output_class, threshold, predict_proba.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model_config.pb.h"
#include "serving/backend.h"

namespace flywheel::serving {

struct TreesBackendOptions {
  int threads = 1;
};

absl::StatusOr<std::unique_ptr<Backend>> CreateTreesBackend(const std::string& model_path,
                                                            const inference::ModelConfig& config,
                                                            const TreesBackendOptions& options);

}  // namespace flywheel::serving
