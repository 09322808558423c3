// LoopRunner: one worker thread per loop run, triggers checked on a ticker thread. The steps of a
// run are in loop_run.cc.
#include "lifecycle/loop.h"

#include <sys/stat.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "lifecycle/loop_impl.h"
#include "lifecycle/registry_json_write.h"
#include "model_config.pb.h"
#include "monitor/metrics.h"
#include "monitor/monitoring.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#include "serving/server.h"

namespace flywheel::lifecycle {
namespace {

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Whether the model's version policy can serve a champion and a candidate at once.
absl::Status CheckVersionPolicy(serving::Server& server, const LoopDefinition& def) {
  inference::ModelConfig config;
  FW_RETURN_IF_ERROR(server.GetModelConfig(def.model, "", &config));
  const inference::ModelVersionPolicy& policy = config.version_policy();
  if (policy.has_all()) return absl::OkStatus();
  if (policy.has_specific()) {
    return absl::FailedPreconditionError(absl::StrCat(
        def.source_file, ": loop '", def.name, "': model '", def.model,
        "' has version_policy specific, which would never load the versions the loop adds; use "
        "version_policy { latest { num_versions: 2 } } or { all {} }"));
  }
  const int64_t latest = policy.has_latest() ? policy.latest().num_versions() : 1;
  if (latest < 2) {
    return absl::FailedPreconditionError(absl::StrCat(
        def.source_file, ": loop '", def.name, "': model '", def.model, "' loads only its latest ",
        "version, so a candidate would replace the champion before its canary; set "
        "version_policy { latest { num_versions: 2 } } (or { all {} }) in its config.pbtxt"));
  }
  return absl::OkStatus();
}

}  // namespace

LoopRunner::LoopRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<LoopRunner>> LoopRunner::Create(std::vector<LoopDefinition> loops,
                                                               LoopServices services,
                                                               LoopOptions options) {
  if (services.server == nullptr || services.rollouts == nullptr) {
    return absl::InvalidArgumentError("retraining loops need the server and its rollouts");
  }
  if (services.monitoring == nullptr || services.monitoring->prediction_log() == nullptr) {
    return absl::FailedPreconditionError(
        "retraining loops train on the prediction log: start the server with --log-dir");
  }
  if (services.work_dir.empty()) {
    return absl::InvalidArgumentError("retraining loops need a work folder (--data-dir)");
  }
  auto impl = std::make_unique<Impl>();
  impl->services = std::move(services);
  impl->options = options;
  impl->started = absl::Now();
  std::map<std::string, int> names;
  for (LoopDefinition& def : loops) {
    if (names[def.name]++ > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(def.source_file, ": a second loop named '", def.name, "'"));
    }
    auto slot = std::make_unique<LoopSlot>();
    for (Registry* registry : impl->services.registries) {
      if (IsDirectory(absl::StrCat(registry->repository(), "/", def.model))) {
        slot->registry = registry;
        break;
      }
    }
    if (slot->registry == nullptr) {
      return absl::NotFoundError(absl::StrCat(def.source_file, ": loop '", def.name, "': model '",
                                              def.model, "' is in no model repository"));
    }
    FW_RETURN_IF_ERROR(CheckVersionPolicy(*impl->services.server, def));
    slot->history = std::make_unique<LoopHistory>(
        LoopHistory::PathFor(slot->registry->repository(), def.model, def.name));
    FW_ASSIGN_OR_RETURN(int64_t last_run, slot->history->LastRun());
    {
      absl::MutexLock lock(&slot->mu);
      slot->state.name = def.name;
      slot->state.model = def.model;
      slot->state.run = last_run;
      slot->state.history_path = slot->history->path();
      slot->last_trigger = impl->started;
    }
    slot->def = std::move(def);
    impl->slots.push_back(std::move(slot));
  }
  // Before any trigger: a run the last server left unfinished must not leave its candidate in
  // the repository (it would push the champion out of the version policy) or its canary running.
  for (const auto& slot : impl->slots) impl->RecoverInterrupted(*slot);
  impl->RegisterMetrics();
  std::unique_ptr<LoopRunner> runner(new LoopRunner(std::move(impl)));
  if (options.start_thread) runner->impl_->StartTicker();
  return runner;
}

LoopRunner::~LoopRunner() { impl_->Shutdown(); }

absl::Status LoopRunner::RunNow(absl::string_view name, absl::string_view reason) {
  LoopSlot* slot = impl_->Find(name);
  if (slot == nullptr) return absl::NotFoundError(absl::StrCat("no loop named '", name, "'"));
  return impl_->StartRun(*slot, reason.empty() ? "started by request" : std::string(reason));
}

absl::StatusOr<LoopState> LoopRunner::State(absl::string_view name) const {
  LoopSlot* slot = impl_->Find(name);
  if (slot == nullptr) return absl::NotFoundError(absl::StrCat("no loop named '", name, "'"));
  absl::MutexLock lock(&slot->mu);
  return slot->state;
}

std::vector<LoopState> LoopRunner::States() const {
  std::vector<LoopState> states;
  for (const auto& slot : impl_->slots) {
    absl::MutexLock lock(&slot->mu);
    states.push_back(slot->state);
  }
  return states;
}

absl::StatusOr<std::vector<LoopEvent>> LoopRunner::History(absl::string_view name) const {
  LoopSlot* slot = impl_->Find(name);
  if (slot == nullptr) return absl::NotFoundError(absl::StrCat("no loop named '", name, "'"));
  FW_ASSIGN_OR_RETURN(LoopHistory::ReadResult read, slot->history->Read());
  return std::move(read.events);
}

void LoopRunner::Tick(absl::Time now) { impl_->Tick(now); }

void LoopRunner::WaitIdle(absl::string_view name) const {
  LoopSlot* slot = impl_->Find(name);
  if (slot == nullptr) return;
  absl::MutexLock lock(&slot->mu);
  slot->mu.Await(absl::Condition(
      +[](LoopState* state) { return !state->running; }, &slot->state));
}

// --- Impl ---

LoopSlot* LoopRunner::Impl::Find(absl::string_view name) const {
  for (const auto& slot : slots) {
    if (slot->def.name == name) return slot.get();
  }
  return nullptr;
}

std::map<std::string, int64_t> LoopRunner::Impl::JoinedLabels(const LoopSlot& slot) const {
  // Only the counts: checked every tick, this must not compute every window's figures.
  return services.monitoring->labels().JoinedCounts(slot.def.model);
}

int64_t LoopRunner::Impl::NewLabels(const LoopSlot& slot,
                                    const std::map<std::string, int64_t>& joined) const {
  // Per version against its own baseline, so that versions coming and going never make the count
  // go backwards.
  int64_t fresh = 0;
  for (const auto& [version, count] : joined) {
    auto base = slot.label_baseline.find(version);
    fresh += std::max<int64_t>(0, count - (base == slot.label_baseline.end() ? 0 : base->second));
  }
  return fresh;
}

std::string LoopRunner::Impl::TriggerReason(LoopSlot& slot, absl::Time now) {
  const LoopTrigger& trigger = slot.def.trigger;
  const std::map<std::string, int64_t> joined = JoinedLabels(slot);
  int64_t fresh = 0;
  absl::Time last_end;
  absl::Time last_trigger;
  {
    absl::MutexLock lock(&slot.mu);
    fresh = NewLabels(slot, joined);
    slot.state.new_labels = fresh;
    if (slot.state.running) return "";
    last_end = slot.state.last_run_end;
    last_trigger = slot.last_trigger;
  }
  if (last_end != absl::InfinitePast() && now - last_end < trigger.min_interval) return "";
  if (trigger.new_labels.has_value() && fresh >= *trigger.new_labels) {
    return absl::StrCat(fresh, " new labels (trigger: ", *trigger.new_labels, ")");
  }
  if (trigger.every.has_value() && now - last_trigger >= *trigger.every) {
    return absl::StrCat("schedule: every ", absl::FormatDuration(*trigger.every));
  }
  if (trigger.drift_psi.has_value()) {
    auto drift = services.monitoring->Drift(slot.def.model);
    if (drift.ok()) {
      for (const monitor::VersionDrift& v : *drift) {
        for (const monitor::FeatureDrift& f : v.report.features) {
          if (f.psi.has_value() && *f.psi > *trigger.drift_psi) {
            return absl::StrCat("drift: version ", v.version, " feature '", f.name, "' PSI ",
                                *f.psi, " > ", *trigger.drift_psi);
          }
        }
      }
    }
  }
  return "";
}

void LoopRunner::Impl::Tick(absl::Time now) {
  for (const auto& slot : slots) {
    std::string reason = TriggerReason(*slot, now);
    if (reason.empty()) continue;
    absl::Status started = StartRun(*slot, reason);
    (void)started;  // a run that started meanwhile (RunNow) is fine: the trigger waits for it
  }
}

absl::Status LoopRunner::Impl::StartRun(LoopSlot& slot, std::string reason) {
  std::thread previous;
  int64_t run = 0;
  {
    absl::MutexLock lock(&slot.mu);
    if (slot.state.running) {
      return absl::FailedPreconditionError(absl::StrCat("loop '", slot.def.name,
                                                        "' is running (run ", slot.state.run,
                                                        ", step ", slot.state.step, ")"));
    }
    if (shutting_down.load()) return absl::UnavailableError("the server is shutting down");
    slot.state.running = true;
    slot.state.step = "trigger";
    run = ++slot.state.run;
    previous = std::move(slot.worker);
  }
  if (previous.joinable()) previous.join();
  // The labels counted for this run are spent: the next trigger counts from here.
  std::map<std::string, int64_t> baseline = JoinedLabels(slot);
  {
    absl::MutexLock lock(&slot.mu);
    slot.label_baseline = std::move(baseline);
    slot.last_trigger = absl::Now();
  }
  slot.cancel.store(false);
  // Made under the lock, so that the worker (whose last act takes the lock) cannot finish before
  // it is stored.
  absl::MutexLock lock(&slot.mu);
  slot.worker = std::thread([this, &slot, run, reason = std::move(reason)] {
    const std::string outcome = RunOnce(slot, run, reason);
    {
      absl::MutexLock outcomes_lock(&outcomes_mu);
      outcomes[{slot.def.name, outcome}]++;
    }
    absl::MutexLock slot_lock(&slot.mu);
    slot.state.running = false;
    slot.state.step.clear();
    slot.state.last_outcome = outcome;
    slot.state.last_run_end = absl::Now();
  });
  return absl::OkStatus();
}

void LoopRunner::Impl::StartTicker() {
  ticker = std::thread([this] {
    std::unique_lock<std::mutex> lock(ticker_mu);
    while (!ticker_stop) {
      lock.unlock();
      Tick(absl::Now());
      lock.lock();
      ticker_cv.wait_for(lock, absl::ToChronoMilliseconds(options.tick),
                         [this] { return ticker_stop; });
    }
  });
}

void LoopRunner::Impl::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(ticker_mu);
    ticker_stop = true;
  }
  ticker_cv.notify_all();
  if (ticker.joinable()) ticker.join();
  shutting_down.store(true);
  for (const auto& slot : slots) {
    std::thread worker;
    {
      absl::MutexLock lock(&slot->mu);
      slot->cancel.store(true);
      worker = std::move(slot->worker);
    }
    if (worker.joinable()) worker.join();
  }
  if (services.metrics != nullptr && collector_id >= 0) {
    services.metrics->RemoveCollector(collector_id);
  }
}

void LoopRunner::Impl::RegisterMetrics() {
  if (services.metrics == nullptr) return;
  collector_id = services.metrics->AddCollector([this](monitor::SampleWriter& w) {
    for (const auto& slot : slots) {
      absl::MutexLock lock(&slot->mu);
      const monitor::Labels labels{{"loop", slot->def.name}, {"model", slot->def.model}};
      w.Add("flywheel_loop_running", "1 while a run of the retraining loop is in progress", "gauge",
            labels, slot->state.running ? 1 : 0);
      w.Add("flywheel_loop_new_labels", "Joined labels since the loop's last run", "gauge", labels,
            static_cast<double>(slot->state.new_labels));
      w.Add("flywheel_loop_run", "The loop's current or last run number", "gauge", labels,
            static_cast<double>(slot->state.run));
    }
    absl::MutexLock lock(&outcomes_mu);
    for (const auto& [key, count] : outcomes) {
      w.Add("flywheel_loop_runs_total", "Runs of the retraining loop by outcome", "counter",
            {{"loop", key.first}, {"outcome", key.second}}, static_cast<double>(count));
    }
  });
}

std::string LoopStateToJson(const LoopState& state) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("name");
  JsonStr(w, state.name);
  w.Key("model");
  JsonStr(w, state.model);
  w.Key("running");
  w.Bool(state.running);
  w.Key("run");
  w.Int64(state.run);
  w.Key("step");
  JsonStr(w, state.step);
  w.Key("last_outcome");
  JsonStr(w, state.last_outcome);
  w.Key("last_run_end");
  JsonTime(w, state.last_run_end);
  w.Key("new_labels");
  w.Int64(state.new_labels);
  w.Key("history");
  JsonStr(w, state.history_path);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace flywheel::lifecycle
