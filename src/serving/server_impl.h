// Private to serving/: the state behind serving::Server. The model table maps each model name to
// its serving versions and the state of every version tried; `mu` guards it. Requests take it
// shared, loads and unloads exclusively only to swap versions in or out.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "serving/ensemble.h"
#include "serving/model_version.h"
#include "serving/repository.h"
#include "serving/router_impl.h"
#include "serving/server.h"

namespace flywheel::serving {

// What the index reports for one version (or for the model, version 0, when the failure is
// before any version: a bad config.pbtxt, no version folder).
struct VersionState {
  std::string state;  // READY, UNAVAILABLE, LOADING, UNLOADING
  std::string reason;
};

struct ModelEntry {
  std::optional<ModelLocation> location;
  // The repository fingerprint the serving versions were loaded from (poll mode).
  std::string fingerprint;
  std::map<int64_t, std::shared_ptr<ModelVersion>> versions;
  std::map<int64_t, VersionState> states;
};

struct Server::Impl : public StepModels {
  Impl(ServerOptions opts, monitor::Registry* registry);
  ~Impl() override;

  absl::Status Start();
  void Stop();
  bool Ready() const;
  bool Drain(int64_t timeout_ms);
  void RequestFinished();

  // The version a request addresses: `version` "" is the highest serving version. REQUIRES: mu
  // held (shared is enough).
  absl::StatusOr<const ModelVersion*> FindVersion(const std::string& name,
                                                  const std::string& version) const
      ABSL_SHARED_LOCKS_REQUIRED(mu);

  // Finds, validates and schedules a request (Server::Infer, and every ensemble step). An
  // ensemble runs outside the lock, since its steps come back here.
  void RouteStep(std::unique_ptr<InferRequest> request, InferCallback done) override;
  // Server::Infer's path for a request the router chose an arm for: sends it to the arm's
  // version, records its outcome for the arm, and sends the shadow copy when chosen.
  void InferRouted(std::unique_ptr<InferRequest> request, RouteDecision route, InferCallback done);
  absl::StatusOr<StepModelInfo> DescribeStep(const std::string& model,
                                             int64_t version) const override;
  // Whether every step model of an ensemble version serves now (nested ensembles included);
  // otherwise *reason says which does not. True for a version that is not an ensemble.
  bool StepsServing(const ModelVersion& mv, std::string* reason, int depth = 0) const
      ABSL_SHARED_LOCKS_REQUIRED(mu);
  bool Serving(const std::string& name) const;

  std::vector<ModelIndexEntry> Index(bool ready_only) const;
  // Rescans the repositories for `name` and loads it (a new config when config_json is set).
  absl::Status LoadByName(const std::string& name, const std::optional<std::string>& config_json);
  absl::Status Unload(const std::string& name, const std::string& reason);

  // Loads every model in `names` (found in `found`), several at once; ensembles after the models
  // their steps name.
  void LoadMany(const std::map<std::string, ModelLocation>& found,
                const std::vector<std::string>& names);
  void LoadParallel(const std::map<std::string, ModelLocation>& found,
                    const std::vector<std::string>& names);
  // `names` and, transitively, the step models of the ensembles among them that are in `found`
  // and not serving (explicit mode loads them with the ensemble, as Triton does).
  std::vector<std::string> WithStepModels(const std::map<std::string, ModelLocation>& found,
                                          const std::vector<std::string>& names) const;
  absl::Status Load(const ModelLocation& location, const std::optional<std::string>& config_json);
  void PollOnce();
  void PollLoop();
  void RegisterMetrics();

  const ServerOptions options;
  monitor::Registry* const metrics;
  int collector_id = -1;

  std::atomic<bool> draining{false};
  std::atomic<int64_t> in_flight{0};
  std::mutex idle_mu;
  std::condition_variable idle_cv;

  // Traffic splits; consulted by Server::Infer only, never by ensemble steps.
  Router router;

  mutable absl::Mutex mu;
  std::map<std::string, ModelEntry> models ABSL_GUARDED_BY(mu);
  // Models loaded at start: with strict readiness the server is ready once they all are.
  std::set<std::string> startup_models ABSL_GUARDED_BY(mu);

  // One load or unload of a model at a time; different models load in parallel.
  std::mutex load_locks_mu;
  std::map<std::string, std::shared_ptr<std::mutex>> load_locks;
  std::shared_ptr<std::mutex> LoadLock(const std::string& name);

  std::thread poller;
  std::mutex poll_mu;
  std::condition_variable poll_cv;
  bool stopping = false;
};

}  // namespace flywheel::serving
