// Model control: loading at start, explicit load/unload, repository polling, and the swap that
// lets a new version serve before the old one retires. Part of Server::Impl (server_impl.h).
#include <algorithm>
#include <chrono>
#include <functional>
#include <future>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"
#include "monitor/metrics.h"
#include "serving/model_config.h"
#include "serving/monitoring_hook.h"
#include "serving/server_impl.h"

namespace flywheel::serving {
namespace {

constexpr char kReady[] = "READY";
constexpr char kUnavailable[] = "UNAVAILABLE";
constexpr char kLoading[] = "LOADING";

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The step models of `location`'s configuration when it is an ensemble (none otherwise, or when
// the configuration cannot be read: its load reports that).
std::vector<std::string> StepModelsOf(const ModelLocation& location) {
  auto config = ReadModelConfig(location);
  if (!config.ok() || PlatformOf(*config) != ModelPlatform::kEnsemble) return {};
  return EnsembleStepModels(*config);
}

// Ensembles load after the models their steps name: each model's wave is one past the deepest of
// its step models among `names` (wave 0 for models that are not ensembles).
std::vector<std::vector<std::string>> LoadWaves(const std::map<std::string, ModelLocation>& found,
                                                const std::vector<std::string>& names) {
  const std::set<std::string> wanted(names.begin(), names.end());
  std::map<std::string, std::vector<std::string>> steps;
  for (const std::string& name : names) {
    for (std::string& step : StepModelsOf(found.at(name))) {
      if (wanted.count(step) != 0 && step != name) steps[name].push_back(std::move(step));
    }
  }
  std::map<std::string, size_t> wave;
  // Ensembles naming each other stop at the depth bound; their loads report what is missing.
  std::function<size_t(const std::string&, size_t)> depth = [&](const std::string& name,
                                                                size_t guard) -> size_t {
    if (auto it = wave.find(name); it != wave.end()) return it->second;
    size_t w = 0;
    if (guard <= names.size()) {
      for (const std::string& step : steps[name]) w = std::max(w, depth(step, guard + 1) + 1);
    }
    wave[name] = w;
    return w;
  };
  std::vector<std::vector<std::string>> waves;
  for (const std::string& name : names) {
    const size_t w = depth(name, 0);
    if (waves.size() <= w) waves.resize(w + 1);
    waves[w].push_back(name);
  }
  return waves;
}

}  // namespace

Server::Impl::Impl(ServerOptions opts, monitor::Registry* registry)
    : options(std::move(opts)), metrics(registry) {}

Server::Impl::~Impl() { Stop(); }

std::shared_ptr<std::mutex> Server::Impl::LoadLock(const std::string& name) {
  std::lock_guard<std::mutex> lock(load_locks_mu);
  auto& m = load_locks[name];
  if (m == nullptr) m = std::make_shared<std::mutex>();
  return m;
}

absl::Status Server::Impl::Start() {
  if (options.model_repositories.empty()) {
    return absl::InvalidArgumentError("no model repository given (--model-repository DIR)");
  }
  FW_ASSIGN_OR_RETURN(auto found, ScanRepositories(options.model_repositories));
  std::vector<std::string> names;
  if (options.control_mode == ModelControlMode::kExplicit) {
    for (const std::string& name : options.startup_models) {
      if (name == "*") {
        names.clear();
        for (const auto& [n, loc] : found) names.push_back(n);
        break;
      }
      if (found.count(name) == 0) {
        return absl::NotFoundError(absl::StrCat("--load-model ", name, ": no model '", name,
                                                "' in the model repositories"));
      }
      names.push_back(name);
    }
    names = WithStepModels(found, names);
  } else {
    for (const auto& [n, loc] : found) names.push_back(n);
  }
  {
    absl::MutexLock lock(&mu);
    for (const auto& [n, loc] : found) models[n].location = loc;
    startup_models.insert(names.begin(), names.end());
  }
  RegisterMetrics();
  LoadMany(found, names);
  if (options.control_mode == ModelControlMode::kPoll) {
    poller = std::thread([this] { PollLoop(); });
  }
  return absl::OkStatus();
}

void Server::Impl::Stop() {
  {
    std::lock_guard<std::mutex> lock(poll_mu);
    stopping = true;
  }
  poll_cv.notify_all();
  if (poller.joinable()) poller.join();
  if (metrics != nullptr && collector_id >= 0) {
    metrics->RemoveCollector(collector_id);
    collector_id = -1;
  }
  // Retire every version outside the lock: each scheduler finishes its queue and joins.
  std::vector<std::shared_ptr<ModelVersion>> retired;
  {
    absl::MutexLock lock(&mu);
    for (auto& [name, entry] : models) {
      for (auto& [v, mv] : entry.versions) retired.push_back(std::move(mv));
      entry.versions.clear();
    }
  }
  retired.clear();
}

bool Server::Impl::Ready() const {
  if (draining.load()) return false;
  if (!options.strict_readiness) return true;
  absl::ReaderMutexLock lock(&mu);
  for (const std::string& name : startup_models) {
    auto it = models.find(name);
    if (it == models.end() || it->second.versions.empty()) return false;
  }
  return true;
}

void Server::Impl::RequestFinished() {
  if (in_flight.fetch_sub(1, std::memory_order_acq_rel) == 1 && draining.load()) {
    std::lock_guard<std::mutex> lock(idle_mu);
    idle_cv.notify_all();
  }
}

bool Server::Impl::Drain(int64_t timeout_ms) {
  draining.store(true, std::memory_order_release);
  std::unique_lock<std::mutex> lock(idle_mu);
  return idle_cv.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                          [this] { return in_flight.load() == 0; });
}

absl::StatusOr<const ModelVersion*> Server::Impl::FindVersion(const std::string& name,
                                                              const std::string& version) const {
  auto it = models.find(name);
  if (it == models.end()) {
    return absl::NotFoundError(absl::StrCat("unknown model '", name, "'"));
  }
  const ModelEntry& entry = it->second;
  if (version.empty()) {
    if (entry.versions.empty()) {
      std::string reason;
      for (const auto& [v, st] : entry.states) {
        if (!st.reason.empty()) reason = st.reason;
      }
      return absl::UnavailableError(
          absl::StrCat("model '", name, "' is not ready", reason.empty() ? "" : ": ", reason));
    }
    return entry.versions.rbegin()->second.get();
  }
  int64_t v = 0;
  if (!absl::SimpleAtoi(version, &v)) {
    if (!options.resolve_version_alias) {
      return absl::InvalidArgumentError(
          absl::StrCat("model '", name, "': version '", version, "' is not a positive integer"));
    }
    // An alias ("production") names whichever version the model registry points it at now.
    FW_ASSIGN_OR_RETURN(v, options.resolve_version_alias(name, version));
  }
  if (v <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model '", name, "': version '", version, "' is not a positive integer"));
  }
  auto loaded = entry.versions.find(v);
  if (loaded != entry.versions.end()) return loaded->second.get();
  auto st = entry.states.find(v);
  if (st != entry.states.end()) {
    return absl::UnavailableError(
        absl::StrCat("model '", name, "' version ", v, " is not ready (", st->second.state, ")",
                     st->second.reason.empty() ? "" : ": ", st->second.reason));
  }
  return absl::NotFoundError(absl::StrCat("model '", name, "' has no version ", v));
}

std::vector<ModelIndexEntry> Server::Impl::Index(bool ready_only) const {
  absl::ReaderMutexLock lock(&mu);
  std::vector<ModelIndexEntry> out;
  for (const auto& [name, entry] : models) {
    if (entry.states.empty() && entry.versions.empty()) {
      if (!ready_only) out.push_back({name, "", "", ""});
      continue;
    }
    for (const auto& [v, st] : entry.states) {
      ModelIndexEntry row{name, v > 0 ? std::to_string(v) : "", st.state, st.reason};
      // A loaded ensemble is only as available as its step models are now.
      auto loaded = entry.versions.find(v);
      std::string reason;
      if (st.state == kReady && loaded != entry.versions.end() &&
          !StepsServing(*loaded->second, &reason)) {
        row.state = kUnavailable;
        row.reason = reason;
      }
      if (ready_only && row.state != kReady) continue;
      out.push_back(std::move(row));
    }
  }
  return out;
}

absl::Status Server::Impl::LoadByName(const std::string& name,
                                      const std::optional<std::string>& config_json) {
  FW_ASSIGN_OR_RETURN(auto found, ScanRepositories(options.model_repositories));
  auto it = found.find(name);
  if (it == found.end()) {
    return absl::NotFoundError(absl::StrCat("no model '", name, "' in the model repositories (",
                                            absl::StrJoin(options.model_repositories, ", "), ")"));
  }
  {
    absl::MutexLock lock(&mu);
    models[name].location = it->second;
  }
  // An ensemble's step models that do not serve yet load first, as Triton does.
  absl::StatusOr<inference::ModelConfig> config =
      config_json.has_value() ? ModelConfigFromJson(*config_json) : ReadModelConfig(it->second);
  if (config.ok() && PlatformOf(*config) == ModelPlatform::kEnsemble) {
    std::vector<std::string> steps;
    for (const std::string& step : EnsembleStepModels(*config)) {
      if (step != name && found.count(step) != 0 && !Serving(step)) steps.push_back(step);
    }
    if (!steps.empty()) {
      steps = WithStepModels(found, steps);
      {
        absl::MutexLock lock(&mu);
        for (const std::string& step : steps) models[step].location = found.at(step);
      }
      LoadMany(found, steps);
    }
  }
  return Load(it->second, config_json);
}

std::vector<std::string> Server::Impl::WithStepModels(
    const std::map<std::string, ModelLocation>& found,
    const std::vector<std::string>& names) const {
  std::vector<std::string> out = names;
  std::set<std::string> seen(names.begin(), names.end());
  for (size_t i = 0; i < out.size(); ++i) {
    auto loc = found.find(out[i]);
    if (loc == found.end()) continue;
    for (const std::string& step : StepModelsOf(loc->second)) {
      if (found.count(step) != 0 && !Serving(step) && seen.insert(step).second) {
        out.push_back(step);
      }
    }
  }
  return out;
}

void Server::Impl::LoadMany(const std::map<std::string, ModelLocation>& found,
                            const std::vector<std::string>& names) {
  for (const std::vector<std::string>& wave : LoadWaves(found, names)) LoadParallel(found, wave);
}

void Server::Impl::LoadParallel(const std::map<std::string, ModelLocation>& found,
                                const std::vector<std::string>& names) {
  // A bounded number of loads at once; each model's failure stays in its own index entry.
  const size_t parallel = std::max(1, options.load_threads);
  std::vector<std::future<void>> running;
  for (const std::string& name : names) {
    if (running.size() >= parallel) {
      running.front().wait();
      running.erase(running.begin());
    }
    const ModelLocation& loc = found.at(name);
    running.push_back(std::async(std::launch::async, [this, &loc] {
      absl::Status st = Load(loc, std::nullopt);
      (void)st;  // recorded in the model's index entry
    }));
  }
  for (auto& f : running) f.wait();
}

absl::Status Server::Impl::Load(const ModelLocation& location,
                                const std::optional<std::string>& config_json) {
  const std::string& name = location.name;
  std::shared_ptr<std::mutex> model_lock = LoadLock(name);
  std::lock_guard<std::mutex> serial(*model_lock);
  const std::string fingerprint = Fingerprint(location);

  // Marks the model (version 0) or a version with a state; the model-level entry is dropped once
  // a version state exists.
  auto set_state = [this, &name](int64_t version, const std::string& state,
                                 const std::string& reason) {
    absl::MutexLock lock(&mu);
    ModelEntry& entry = models[name];
    if (version > 0) entry.states.erase(0);
    entry.states[version] = {state, reason};
  };
  auto fail_model = [&](const absl::Status& st) {
    {
      absl::MutexLock lock(&mu);
      ModelEntry& entry = models[name];
      // A model that is serving keeps serving what it has; the failure is reported on the model.
      entry.fingerprint = fingerprint;
      if (entry.versions.empty()) entry.states.clear();
      entry.states[0] = {kUnavailable, std::string(st.message())};
    }
    return st;
  };

  if (!location.error.empty()) {
    return fail_model(absl::InvalidArgumentError(location.error));
  }
  absl::StatusOr<inference::ModelConfig> config;
  if (config_json.has_value()) {
    config = ModelConfigFromJson(*config_json);
    if (config.ok()) {
      config = PrepareModelConfig(location, *std::move(config),
                                  "config parameter of the load request for '" + name + "'");
    }
  } else {
    config = ReadModelConfig(location);
  }
  if (!config.ok()) return fail_model(config.status());
  auto versions = SelectVersions(location, *config);
  if (!versions.ok()) return fail_model(versions.status());
  if (versions->empty()) {
    return fail_model(absl::NotFoundError(
        absl::StrCat("model '", name, "' has no version folder (", location.path,
                     "/<version>/) that its version_policy selects")));
  }

  std::map<int64_t, std::shared_ptr<ModelVersion>> loaded;
  std::map<int64_t, VersionState> states;
  absl::Status first_error;
  for (const ModelVersionDir& dir : *versions) {
    set_state(dir.version, kLoading, "");
    const auto version_start = std::chrono::steady_clock::now();
    LoadVersionOptions load_options;
    load_options.intra_op_threads = options.intra_op_threads;
    load_options.feature_source = options.feature_source;
    load_options.step_models = this;
    load_options.config_source = config_json.has_value()
                                     ? "config parameter of the load request for '" + name + "'"
                                     : location.path + "/config.pbtxt";
    auto mv = LoadModelVersion(name, dir.version, dir.model_file, *config, load_options);
    if (mv.ok()) {
      absl::Status monitored = AttachMonitoring(options.monitoring, **mv, dir.path);
      if (!monitored.ok()) mv = monitored;
    }
    if (mv.ok()) {
      (*mv)->stats->load_duration_secs.store(SecondsSince(version_start));
      loaded[dir.version] = std::move(*mv);
      states[dir.version] = {kReady, ""};
    } else {
      states[dir.version] = {kUnavailable, std::string(mv.status().message())};
      if (first_error.ok()) first_error = mv.status();
    }
  }

  // The swap: new versions serve from here on; the ones they replace retire after the lock is
  // released, finishing the requests already queued on them.
  std::vector<std::shared_ptr<ModelVersion>> retired;
  {
    absl::MutexLock lock(&mu);
    ModelEntry& entry = models[name];
    entry.location = location;
    entry.fingerprint = fingerprint;
    for (auto& [v, mv] : entry.versions) {
      auto replacement = loaded.find(v);
      if (replacement != loaded.end()) {
        retired.push_back(std::move(mv));
      } else if (states.count(v) != 0) {
        // Reload of this version failed: keep serving the old one, report why.
        loaded[v] = std::move(mv);
        states[v].reason = "reload failed, previous load still serving: " + states[v].reason;
        states[v].state = kReady;
      } else {
        retired.push_back(std::move(mv));  // no longer selected by the version policy
      }
    }
    entry.versions = std::move(loaded);
    entry.states = std::move(states);
  }
  retired.clear();
  return first_error;
}

absl::Status Server::Impl::Unload(const std::string& name, const std::string& reason) {
  std::shared_ptr<std::mutex> model_lock = LoadLock(name);
  std::lock_guard<std::mutex> serial(*model_lock);
  std::vector<std::shared_ptr<ModelVersion>> retired;
  {
    absl::MutexLock lock(&mu);
    auto it = models.find(name);
    if (it == models.end()) {
      return absl::NotFoundError(absl::StrCat("unknown model '", name, "'"));
    }
    for (auto& [v, mv] : it->second.versions) retired.push_back(std::move(mv));
    it->second.versions.clear();
    it->second.states.clear();
    it->second.states[0] = {kUnavailable, reason};
    it->second.fingerprint.clear();
  }
  retired.clear();
  return absl::OkStatus();
}

void Server::Impl::PollOnce() {
  auto found = ScanRepositories(options.model_repositories);
  if (!found.ok()) return;  // a repository that vanished for a moment: try again next round
  std::vector<std::string> changed;
  std::vector<std::string> removed;
  {
    absl::ReaderMutexLock lock(&mu);
    for (const auto& [name, loc] : *found) {
      auto it = models.find(name);
      if (it == models.end() || it->second.fingerprint != Fingerprint(loc)) changed.push_back(name);
    }
    for (const auto& [name, entry] : models) {
      if (found->count(name) == 0 && !entry.versions.empty()) removed.push_back(name);
    }
  }
  // An ensemble that failed to load for want of a step model that loads now is retried.
  const std::set<std::string> loading(changed.begin(), changed.end());
  for (const auto& [name, loc] : *found) {
    if (loading.count(name) != 0 || Serving(name)) continue;
    for (const std::string& step : StepModelsOf(loc)) {
      if (loading.count(step) != 0) {
        changed.push_back(name);
        break;
      }
    }
  }
  for (const std::string& name : removed) {
    (void)Unload(name, "removed from the model repository");
    absl::MutexLock lock(&mu);
    models.erase(name);
  }
  LoadMany(*found, changed);
}

void Server::Impl::PollLoop() {
  std::unique_lock<std::mutex> lock(poll_mu);
  while (!stopping) {
    poll_cv.wait_for(lock, std::chrono::seconds(std::max(1, options.repository_poll_secs)));
    if (stopping) break;
    lock.unlock();
    PollOnce();
    lock.lock();
  }
}

}  // namespace flywheel::serving
