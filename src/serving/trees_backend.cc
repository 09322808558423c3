#include "serving/trees_backend.h"

namespace flywheel::serving {

absl::StatusOr<std::unique_ptr<Backend>> CreateTreesBackend(const std::string& model_path,
                                                            const inference::ModelConfig& config,
                                                            const TreesBackendOptions&) {
  return absl::UnimplementedError("model '" + config.name() + "' (" + model_path +
                                  "): the fil backend is not available in this build yet");
}

}  // namespace flywheel::serving
