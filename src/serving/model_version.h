// One loaded, servable model version: its completed configuration, backend, instances behind a
// scheduler, the tensor specs requests are validated against, and its statistics.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model_config.pb.h"
#include "serving/backend.h"
#include "serving/ensemble.h"
#include "serving/feature_source.h"
#include "serving/scheduler.h"
#include "serving/server.h"
#include "serving/stats.h"

namespace flywheel::serving {

struct ModelVersion {
  std::string name;
  int64_t version = 0;
  std::string version_string;
  // The configuration after completion from the model (what GET .../config returns).
  inference::ModelConfig config;
  std::shared_ptr<Backend> backend;
  // Exactly one of the two runs requests: the scheduler (a backend's instances) or, for an
  // ensemble, the ensemble. The ensemble is shared so that a request can hold it without the
  // server's lock (its steps route back through the server).
  std::unique_ptr<Scheduler> scheduler;
  std::shared_ptr<Ensemble> ensemble;
  std::vector<IOSpec> inputs;
  std::vector<IOSpec> outputs;
  std::shared_ptr<ModelStats> stats;
  ModelMetadata metadata;

  ~ModelVersion();
};

struct LoadVersionOptions {
  int intra_op_threads = 1;
  // What feature_lookup models read (nullptr: such models fail to load, saying why).
  const FeatureSource* feature_source = nullptr;
  // Where ensembles find their step models (nullptr: ensembles fail to load).
  StepModels* step_models = nullptr;
  // The configuration's origin, for ensemble errors ("<repo>/<model>/config.pbtxt").
  std::string config_source;
};

// Creates the backend for `model_file` as `config` says (platform/backend), completes the
// configuration from the model, creates the instances and the scheduler, and runs the model's
// warm-up requests. An ensemble instead has its wiring checked against the step models serving
// now (`model_file` is its version folder). The returned version is ready to serve.
absl::StatusOr<std::shared_ptr<ModelVersion>> LoadModelVersion(const std::string& name,
                                                               int64_t version,
                                                               const std::string& model_file,
                                                               inference::ModelConfig config,
                                                               const LoadVersionOptions& options);

// KServe's platform string for metadata: "onnxruntime_onnx", "fil"...
std::string PlatformName(const inference::ModelConfig& config);

}  // namespace flywheel::serving
