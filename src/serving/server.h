// serving::Server: the transport-neutral inference server. It owns the model repositories, the
// loaded model versions (each with its backend instances and scheduler) and their statistics.
// The HTTP and gRPC front ends in api/ only decode, call these methods, and encode.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "serving/backend.h"
#include "serving/feature_source.h"
#include "serving/infer.h"
#include "serving/router.h"

namespace inference {
class ModelConfig;
}  // namespace inference

namespace flywheel::monitor {
class Monitoring;
class Registry;
}  // namespace flywheel::monitor

namespace flywheel::serving {

enum class ModelControlMode { kNone, kPoll, kExplicit };

struct ServerOptions {
  std::vector<std::string> model_repositories;
  ModelControlMode control_mode = ModelControlMode::kNone;
  int repository_poll_secs = 15;
  // --load-model: models loaded at start in explicit mode; "*" loads every model.
  std::vector<std::string> startup_models;
  // Server readiness requires every model loaded at start to be ready.
  bool strict_readiness = true;
  // Intra-op threads per backend instance (engine sessions).
  int intra_op_threads = 1;
  // Models loaded at once.
  int load_threads = 4;
  // The feature store that `feature_lookup` models read (nullptr: none; such models then fail to
  // load with a message saying so). Must outlive the server.
  const FeatureSource* feature_source = nullptr;
  // Turns a version label that is not a number (an alias such as "production", from the model
  // registry) into a version number. Unset: versions are numbers only. Called per request, under
  // the server's model-table lock: it must be quick and must not call back into the server.
  std::function<absl::StatusOr<int64_t>(const std::string& model, const std::string& label)>
      resolve_version_alias;
  // Model monitoring (drift, delayed labels, prediction log; nullptr: none): each version that
  // loads gets its monitor, which sees every successful request. Must outlive the server.
  monitor::Monitoring* monitoring = nullptr;
};

struct ServerMetadata {
  std::string name;
  std::string version;
  std::vector<std::string> extensions;
};

struct TensorMetadata {
  std::string name;
  std::string datatype;        // KServe name: "FP32", "BYTES"...
  std::vector<int64_t> shape;  // with -1 for the batch dimension when the model batches
};

struct ModelMetadata {
  std::string name;
  std::vector<std::string> versions;
  std::string platform;
  std::vector<TensorMetadata> inputs;
  std::vector<TensorMetadata> outputs;
};

// One row of the repository index.
struct ModelIndexEntry {
  std::string name;
  std::string version;  // empty for a model with no version loaded or tried
  std::string state;    // READY, UNAVAILABLE, LOADING, UNLOADING
  std::string reason;   // why it is UNAVAILABLE
};

struct DurationFigure {
  uint64_t count = 0;
  uint64_t ns = 0;
};

struct BatchFigures {
  int64_t batch_size = 0;
  DurationFigure compute_input, compute_infer, compute_output;
};

// The statistics extension's per model-version record.
struct ModelStatistics {
  std::string name;
  std::string version;
  uint64_t last_inference_ms = 0;
  uint64_t inference_count = 0;
  uint64_t execution_count = 0;
  DurationFigure success, fail, queue, compute_input, compute_infer, compute_output;
  std::vector<BatchFigures> batch_stats;
};

class Server {
 public:
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Scans the repositories and loads models as the control mode says (waiting for the loads);
  // in poll mode starts the poller. `metrics` (optional) receives the nv_* metrics and must
  // outlive the server. A model that fails to load does not fail the server: it is UNAVAILABLE.
  static absl::StatusOr<std::unique_ptr<Server>> Create(ServerOptions options,
                                                        monitor::Registry* metrics);

  bool Live() const;
  // Live, not shutting down, and (strict readiness) every model loaded at start ready.
  bool Ready() const;
  ServerMetadata Metadata() const;

  // version "" means the default version.
  absl::StatusOr<ModelMetadata> GetModelMetadata(const std::string& name,
                                                 const std::string& version) const;
  absl::StatusOr<bool> ModelReady(const std::string& name, const std::string& version) const;
  absl::Status GetModelConfig(const std::string& name, const std::string& version,
                              inference::ModelConfig* config) const;

  // Validates and schedules a request. `done` is called exactly once, possibly before Infer
  // returns (a request rejected at once), otherwise on a scheduler thread.
  void Infer(std::unique_ptr<InferRequest> request, InferCallback done);

  std::vector<ModelIndexEntry> RepositoryIndex(bool ready_only) const;
  // Loads (or reloads) a model; `config_json`, when given, replaces its config.pbtxt. Waits for
  // the load; the previous version keeps serving until the new one is ready.
  absl::Status LoadModel(const std::string& name, const std::optional<std::string>& config_json);
  absl::Status UnloadModel(const std::string& name);
  // Rescans the repository for `name` and loads the versions its policy selects, whatever the
  // control mode: for the retraining loop, which adds a candidate version and takes a rejected
  // one away. Like LoadModel, the versions that stay keep serving throughout.
  absl::Status ReloadModel(const std::string& name);

  // name "" means every model; version "" every loaded version.
  absl::StatusOr<std::vector<ModelStatistics>> Statistics(const std::string& name,
                                                          const std::string& version) const;

  // Traffic routing of requests that name no version (canary, A-B, shadow; serving/router.h).
  // Replaces the model's split after ValidateTrafficSplit; the counters of versions that stay in
  // the split (and of an unchanged shadow version) carry on. The versions need not be loaded: a
  // request routed to one that is not ready fails and counts as a failure of its arm.
  absl::Status SetTrafficSplit(const TrafficSplit& split);
  // Back to the default (the highest ready version); NotFound when the model has no split.
  absl::Status ClearTrafficSplit(const std::string& model);
  std::optional<TrafficSplit> GetTrafficSplit(const std::string& model) const;
  // Per-arm and shadow figures since each split was set; model "" means every model with a split.
  std::vector<RouteFigures> RouteStatistics(const std::string& model) const;

  // SIGTERM: refuse new requests (UNAVAILABLE), then wait up to `timeout_ms` for the ones in
  // flight. Returns true when everything in flight finished.
  bool Drain(int64_t timeout_ms);

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace flywheel::serving
