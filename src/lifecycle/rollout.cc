// The rollout controller: sets each model's traffic split as its rollout's state says, keeps the
// state in <repository>/<model>/.flywheel/rollout.json, and judges active rollouts every tick
// (rollout_judge.cc) from the router's per-arm figures and monitoring's label quality.
#include "lifecycle/rollout.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "core/status.h"
#include "lifecycle/registry_file.h"
#include "lifecycle/registry_names.h"
#include "lifecycle/rollout_controller.h"
#include "lifecycle/rollout_format.h"
#include "lifecycle/rollout_json.h"
#include "monitor/metrics.h"
#include "serving/router.h"
#include "serving/server.h"

namespace flywheel::lifecycle {

namespace fs = std::filesystem;

namespace {

std::string Percent(double share) { return absl::StrFormat("%.4g%%", share * 100); }

std::string WithNote(std::string detail, const ChangeAuthor& author) {
  if (!author.note.empty()) absl::StrAppend(&detail, " (", author.note, ")");
  return detail;
}

std::string By(const ChangeAuthor& author) { return author.by.empty() ? "flywheel" : author.by; }

}  // namespace

serving::TrafficSplit SplitFor(const RolloutStatus& status) {
  const RolloutSpec& spec = status.spec;
  serving::TrafficSplit split;
  split.model = spec.model;
  switch (status.state) {
    case RolloutState::kActive:
      if (spec.policy == RolloutPolicy::kShadow) {
        split.arms = {{spec.stable, 1}};
        split.shadow_version = spec.candidate;
        split.shadow_fraction = spec.shadow_fraction;
      } else {
        split.arms = {{spec.stable, 1 - spec.weight}, {spec.candidate, spec.weight}};
        if (spec.policy == RolloutPolicy::kAbTest) split.sticky_parameter = spec.sticky_parameter;
      }
      break;
    case RolloutState::kPromoted:
      split.arms = {{spec.candidate, 1}};
      break;
    case RolloutState::kRolledBack:
      // The candidate keeps an arm of weight 0 (or a shadow share of 0) so that its figures stay
      // visible beside the stable version's.
      split.arms = {{spec.stable, 1}};
      if (spec.policy == RolloutPolicy::kShadow) {
        split.shadow_version = spec.candidate;
      } else {
        split.arms.push_back({spec.candidate, 0});
        if (spec.policy == RolloutPolicy::kAbTest) split.sticky_parameter = spec.sticky_parameter;
      }
      break;
    case RolloutState::kStopped:
      split.arms = {{spec.stable, 1}};
      break;
  }
  return split;
}

void AddEvent(RolloutStatus& status, absl::Time time, std::string kind, std::string detail,
              std::string by) {
  status.events.push_back({time, std::move(kind), std::move(detail), std::move(by)});
  if (status.events.size() > kMaxRolloutEvents) {
    status.events.erase(status.events.begin(),
                        status.events.end() - static_cast<ptrdiff_t>(kMaxRolloutEvents));
  }
}

RolloutController::Impl::Impl(serving::Server* server_in, std::vector<Registry*> registries_in,
                              monitor::Monitoring* monitoring_in, monitor::Registry* metrics_in,
                              RolloutOptions options_in)
    : server(server_in),
      registries(std::move(registries_in)),
      monitoring(monitoring_in),
      metrics(metrics_in),
      options(options_in) {}

absl::StatusOr<Registry*> RolloutController::Impl::Owner(absl::string_view model) const {
  FW_RETURN_IF_ERROR(ValidateModelName(model));
  std::vector<std::string> repositories;
  for (Registry* registry : registries) {
    std::error_code ec;
    if (fs::is_directory(fs::path(registry->repository()) / std::string(model), ec)) {
      return registry;
    }
    repositories.push_back(registry->repository());
  }
  return absl::NotFoundError(absl::StrCat("model '", model, "' has no folder in the model ",
                                          "repositories (", absl::StrJoin(repositories, ", "),
                                          ")"));
}

std::string RolloutController::Impl::FilePath(const Registry& registry, absl::string_view model) {
  return (fs::path(registry.repository()) / std::string(model) / Registry::kFolderName /
          kRolloutFileName)
      .string();
}

absl::Status RolloutController::Impl::Save(const Entry& entry) {
  const std::string& model = entry.status.spec.model;
  const fs::path dir = fs::path(entry.registry->repository()) / model / Registry::kFolderName;
  std::error_code ec;
  fs::create_directory(dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(absl::StrCat("model '", model, "': cannot create folder ",
                                                    dir.string(), ": ", ec.message()));
  }
  FW_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire((dir / Registry::kLockFileName).string()));
  return WriteFileAtomically(FilePath(*entry.registry, model), EncodeRollout(entry.status), {});
}

absl::Status RolloutController::Impl::Route(Entry& entry, absl::Time now) {
  FW_RETURN_IF_ERROR(server->SetTrafficSplit(SplitFor(entry.status)));
  entry.window.Reset();
  if (entry.status.state == RolloutState::kActive) Snapshot(entry, now);
  return absl::OkStatus();
}

void RolloutController::Impl::Snapshot(Entry& entry, absl::Time now) {
  const std::string& model = entry.status.spec.model;
  for (serving::RouteFigures& figures : server->RouteStatistics(model)) {
    if (figures.model == model) {
      entry.window.Add(now, std::move(figures), entry.status.spec.thresholds.window);
      return;
    }
  }
}

absl::StatusOr<int64_t> RolloutController::Impl::ResolveStable(Registry& registry,
                                                               const RolloutSpec& spec) const {
  if (spec.stable > 0) return spec.stable;
  if (std::optional<serving::TrafficSplit> split = server->GetTrafficSplit(spec.model)) {
    int64_t only = 0;
    int live = 0;
    for (const serving::TrafficArm& arm : split->arms) {
      if (arm.weight > 0) {
        only = arm.version;
        ++live;
      }
    }
    if (live == 1) return only;
  }
  if (absl::StatusOr<std::shared_ptr<const ModelRecord>> record = registry.Snapshot(spec.model);
      record.ok()) {
    auto alias = (*record)->aliases.find(spec.alias);
    if (alias != (*record)->aliases.end() && alias->second.version > 0) {
      return alias->second.version;
    }
  }
  int64_t highest = 0;
  for (const serving::ModelIndexEntry& e : server->RepositoryIndex(true)) {
    if (e.name != spec.model || e.state != "READY") continue;
    if (absl::StatusOr<int64_t> v = ParseVersionNumber(e.version); v.ok()) {
      highest = std::max(highest, *v);
    }
  }
  if (highest == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("model '", spec.model, "': no stable version to compare with (no traffic ",
                     "split, no '", spec.alias, "' alias, no ready version); give 'stable'"));
  }
  return highest;
}

absl::Status RolloutController::Impl::CheckReady(absl::string_view model, int64_t version,
                                                 absl::string_view role) const {
  absl::StatusOr<bool> ready = server->ModelReady(std::string(model), absl::StrCat(version));
  if (ready.ok() && *ready) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("model '", model, "' ", role, " version ", version, " is not ready",
                   ready.ok() ? "" : absl::StrCat(" (", ready.status().message(), ")"),
                   "; load it before starting a rollout"));
}

absl::Status RolloutController::Impl::EndRollback(Entry& entry, absl::Time now,
                                                  const std::string& by, const std::string& reason,
                                                  const std::string& metric_reason) {
  RolloutStatus& s = entry.status;
  const RolloutStatus before = s;
  s.state = RolloutState::kRolledBack;
  s.ended = now;
  s.healthy_since = absl::InfinitePast();
  s.reason = reason;
  AddEvent(s, now, "rollback",
           absl::StrCat(
               "candidate ", s.spec.candidate, " ",
               s.spec.policy == RolloutPolicy::kShadow ? "gets no more shadow copies" : "weight 0",
               "; version ", s.spec.stable, " takes all traffic: ", reason),
           by);
  if (absl::Status routed = Route(entry, now); !routed.ok()) {
    entry.status = before;
    return routed;
  }
  if (rollbacks != nullptr) {
    rollbacks
        ->WithLabels({{"model", s.spec.model},
                      {"version", absl::StrCat(s.spec.candidate)},
                      {"reason", metric_reason}})
        .Increment();
  }
  return Save(entry);
}

absl::Status RolloutController::Impl::EndPromote(Entry& entry, absl::Time now,
                                                 const ChangeAuthor& author,
                                                 const std::string& detail) {
  RolloutStatus& s = entry.status;
  FW_RETURN_IF_ERROR(
      entry.registry->Promote(s.spec.model, s.spec.candidate, author, s.spec.alias).status());
  s.state = RolloutState::kPromoted;
  s.ended = now;
  s.reason.clear();
  AddEvent(s, now, "promote",
           WithNote(absl::StrCat("'", s.spec.alias, "' -> version ", s.spec.candidate,
                                 ", which takes all traffic", detail.empty() ? "" : ": ", detail),
                    author),
           By(author));
  FW_RETURN_IF_ERROR(Route(entry, now));
  return Save(entry);
}

RolloutController::RolloutController(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RolloutController::~RolloutController() {
  impl_->stop.Notify();
  if (impl_->thread.joinable()) impl_->thread.join();
  if (impl_->metrics != nullptr && impl_->collector_id >= 0) {
    impl_->metrics->RemoveCollector(impl_->collector_id);
  }
}

absl::StatusOr<std::unique_ptr<RolloutController>> RolloutController::Create(
    serving::Server* server, std::vector<Registry*> registries, monitor::Monitoring* monitoring,
    monitor::Registry* metrics, RolloutOptions options) {
  if (server == nullptr) return absl::InvalidArgumentError("rollouts need a server");
  if (registries.empty()) {
    return absl::InvalidArgumentError("rollouts need the registry of a model repository");
  }
  if (options.tick <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("rollout tick must be longer than 0");
  }
  auto impl = std::make_unique<Impl>(server, std::move(registries), monitoring, metrics, options);
  Impl* raw = impl.get();
  std::unique_ptr<RolloutController> controller(new RolloutController(std::move(impl)));
  if (metrics != nullptr) {
    raw->rollbacks = &metrics->AddCounter(
        "flywheel_rollout_rollbacks_total",
        "Rollouts rolled back, by model, candidate version and reason (error_rate, p99, "
        "disagreement, quality, manual)");
    raw->collector_id =
        metrics->AddCollector([raw](monitor::SampleWriter& writer) { raw->Collect(writer); });
  }
  if (options.start_thread) {
    RolloutController* self = controller.get();
    raw->thread = std::thread([self, raw] {
      while (!raw->stop.WaitForNotificationWithTimeout(raw->options.tick)) self->Tick(absl::Now());
    });
  }
  return controller;
}

absl::Status RolloutController::Restore() {
  std::vector<std::string> errors;
  absl::StatusCode code = absl::StatusCode::kOk;
  absl::MutexLock lock(&impl_->mu);
  for (Registry* registry : impl_->registries) {
    std::error_code ec;
    fs::directory_iterator it(registry->repository(), ec), end;
    for (; !ec && it != end; it.increment(ec)) {
      const std::string model = it->path().filename().string();
      if (!ValidateModelName(model).ok() || impl_->rollouts.count(model) > 0) continue;
      const std::string path = Impl::FilePath(*registry, model);
      absl::StatusOr<std::optional<FileContents>> contents = ReadWholeFile(path);
      absl::StatusOr<RolloutStatus> status =
          !contents.ok()           ? absl::StatusOr<RolloutStatus>(contents.status())
          : !contents->has_value() ? absl::StatusOr<RolloutStatus>(absl::NotFoundError(""))
                                   : DecodeRollout((*contents)->data, path);
      if (absl::IsNotFound(status.status())) continue;
      absl::Status done = status.status();
      if (status.ok()) {
        status->spec.model = model;
        Impl::Entry& entry = impl_->rollouts[model];
        entry.registry = registry;
        entry.status = *std::move(status);
        done = impl_->Route(entry, absl::Now());
        if (!done.ok()) {
          done = absl::Status(done.code(), absl::StrCat("model '", model, "' rollout from ", path,
                                                        ": ", done.message()));
        }
      }
      if (!done.ok()) {
        if (code == absl::StatusCode::kOk) code = done.code();
        errors.emplace_back(done.message());
      }
    }
    if (ec) {
      if (code == absl::StatusCode::kOk) code = absl::StatusCode::kUnavailable;
      errors.push_back(absl::StrCat("cannot list model repository ", registry->repository(), ": ",
                                    ec.message()));
    }
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::Status(code, absl::StrJoin(errors, "; "));
}

absl::StatusOr<RolloutStatus> RolloutController::Start(RolloutSpec spec,
                                                       const ChangeAuthor& author) {
  FW_RETURN_IF_ERROR(ValidateRolloutSpec(spec));
  FW_ASSIGN_OR_RETURN(Registry * registry, impl_->Owner(spec.model));
  absl::MutexLock lock(&impl_->mu);
  auto existing = impl_->rollouts.find(spec.model);
  if (existing != impl_->rollouts.end() && existing->second.status.state == RolloutState::kActive) {
    const RolloutSpec& old = existing->second.status.spec;
    return absl::FailedPreconditionError(absl::StrCat(
        "model '", spec.model, "' already has an active ", RolloutPolicyName(old.policy),
        " rollout of version ", old.candidate, "; promote, roll back or clear it first"));
  }
  FW_ASSIGN_OR_RETURN(spec.stable, impl_->ResolveStable(*registry, spec));
  if (spec.stable == spec.candidate) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rollout spec 'candidate': version ", spec.candidate, " of model '", spec.model,
        "' is already the stable version (the one unversioned requests reach now); name ",
        "the version to compare with in 'stable'"));
  }
  FW_RETURN_IF_ERROR(impl_->CheckReady(spec.model, spec.stable, "stable"));
  FW_RETURN_IF_ERROR(impl_->CheckReady(spec.model, spec.candidate, "candidate"));

  const absl::Time now = absl::Now();
  Impl::Entry entry;
  entry.registry = registry;
  RolloutStatus& s = entry.status;
  s.spec = std::move(spec);
  s.state = RolloutState::kActive;
  s.started = now;
  std::string detail;
  if (s.spec.policy == RolloutPolicy::kShadow) {
    detail = absl::StrCat("shadow: version ", s.spec.candidate, " gets a copy of ",
                          Percent(s.spec.shadow_fraction), " of the requests version ",
                          s.spec.stable, " serves");
  } else {
    detail = absl::StrCat(RolloutPolicyName(s.spec.policy), ": version ", s.spec.candidate,
                          " gets ", Percent(s.spec.weight), " of unversioned traffic",
                          s.spec.policy == RolloutPolicy::kAbTest
                              ? absl::StrCat(" (sticky by '", s.spec.sticky_parameter, "')")
                              : "",
                          ", version ", s.spec.stable, " the rest");
  }
  AddEvent(s, now, "start", WithNote(std::move(detail), author), By(author));
  const std::optional<serving::TrafficSplit> previous =
      impl_->server->GetTrafficSplit(s.spec.model);
  FW_RETURN_IF_ERROR(impl_->Route(entry, now));
  if (absl::Status saved = impl_->Save(entry); !saved.ok()) {
    // Leave the routing as it was: a rollout that is not on disk would not survive a restart.
    if (previous.has_value()) {
      impl_->server->SetTrafficSplit(*previous).IgnoreError();
    } else {
      impl_->server->ClearTrafficSplit(s.spec.model).IgnoreError();
    }
    return saved;
  }
  RolloutStatus result = s;
  impl_->rollouts[result.spec.model] = std::move(entry);
  return result;
}

absl::StatusOr<RolloutStatus> RolloutController::Promote(absl::string_view model,
                                                         const ChangeAuthor& author) {
  absl::MutexLock lock(&impl_->mu);
  FW_ASSIGN_OR_RETURN(Impl::Entry * entry, impl_->Active(model, "promote"));
  FW_RETURN_IF_ERROR(impl_->EndPromote(*entry, absl::Now(), author, ""));
  return entry->status;
}

absl::StatusOr<RolloutStatus> RolloutController::Rollback(absl::string_view model,
                                                          const ChangeAuthor& author) {
  absl::MutexLock lock(&impl_->mu);
  FW_ASSIGN_OR_RETURN(Impl::Entry * entry, impl_->Active(model, "roll back"));
  const std::string reason = WithNote(absl::StrCat("rolled back by ", By(author)), author);
  FW_RETURN_IF_ERROR(impl_->EndRollback(*entry, absl::Now(), By(author), reason, "manual"));
  return entry->status;
}

absl::Status RolloutController::Clear(absl::string_view model, const ChangeAuthor& author) {
  FW_ASSIGN_OR_RETURN(Registry * registry, impl_->Owner(model));
  absl::MutexLock lock(&impl_->mu);
  const std::string path = Impl::FilePath(*registry, model);
  std::error_code ec;
  const bool on_disk = fs::exists(path, ec);
  auto it = impl_->rollouts.find(model);
  if (it == impl_->rollouts.end() && !on_disk) {
    return absl::NotFoundError(absl::StrCat("model '", model, "' has no rollout"));
  }
  if (on_disk) {
    const fs::path dir = fs::path(path).parent_path();
    FW_ASSIGN_OR_RETURN(FileLock lock_file,
                        FileLock::Acquire((dir / Registry::kLockFileName).string()));
    if (!fs::remove(path, ec) && ec) {
      return absl::PermissionDeniedError(
          absl::StrCat("model '", model, "': cannot remove ", path, ": ", ec.message()));
    }
  }
  absl::Status cleared = impl_->server->ClearTrafficSplit(std::string(model));
  if (!cleared.ok() && !absl::IsNotFound(cleared)) return cleared;
  if (it != impl_->rollouts.end()) impl_->rollouts.erase(it);
  (void)author;  // the file that would record who cleared it is gone
  return absl::OkStatus();
}

absl::StatusOr<RolloutStatus> RolloutController::Pin(absl::string_view model, int64_t version,
                                                     const ChangeAuthor& author) {
  if (version <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model '", model, "': cannot pin version ", version));
  }
  FW_ASSIGN_OR_RETURN(Registry * registry, impl_->Owner(model));
  absl::MutexLock lock(&impl_->mu);
  FW_RETURN_IF_ERROR(impl_->CheckReady(model, version, "pinned"));
  const absl::Time now = absl::Now();
  Impl::Entry& entry = impl_->rollouts[std::string(model)];
  const Impl::Entry before = entry;
  entry.registry = registry;
  RolloutStatus& s = entry.status;
  if (s.state == RolloutState::kActive && s.spec.candidate > 0) {
    AddEvent(s, now, "stop",
             absl::StrCat("rollout of version ", s.spec.candidate, " stopped by a pin"),
             By(author));
  }
  s.spec.model = std::string(model);
  s.spec.stable = version;
  s.spec.candidate = 0;
  s.state = RolloutState::kStopped;
  s.started = now;
  s.ended = now;
  s.healthy_since = absl::InfinitePast();
  s.reason = WithNote(absl::StrCat("pinned to version ", version, " by ", By(author)), author);
  s.figures = {};
  AddEvent(s, now, "stop", s.reason, By(author));
  absl::Status done = impl_->Route(entry, now);
  if (done.ok()) done = impl_->Save(entry);
  if (!done.ok()) {
    if (before.registry == nullptr) {
      impl_->rollouts.erase(std::string(model));
    } else {
      entry = before;
    }
    return done;
  }
  return s;
}

absl::StatusOr<RolloutStatus> RolloutController::Get(absl::string_view model) const {
  absl::MutexLock lock(&impl_->mu);
  auto it = impl_->rollouts.find(model);
  if (it == impl_->rollouts.end()) {
    return absl::NotFoundError(absl::StrCat("model '", model, "' has no rollout"));
  }
  return it->second.status;
}

std::vector<RolloutStatus> RolloutController::List() const {
  absl::MutexLock lock(&impl_->mu);
  std::vector<RolloutStatus> all;
  for (const auto& [model, entry] : impl_->rollouts) all.push_back(entry.status);
  return all;
}

void RolloutController::Tick(absl::Time now) {
  absl::MutexLock lock(&impl_->mu);
  for (auto& [model, entry] : impl_->rollouts) {
    if (entry.status.state == RolloutState::kActive) impl_->Judge(entry, now);
  }
}

absl::StatusOr<RolloutController::Impl::Entry*> RolloutController::Impl::Active(
    absl::string_view model, absl::string_view action) {
  auto it = rollouts.find(model);
  if (it == rollouts.end()) {
    return absl::NotFoundError(absl::StrCat("model '", model, "' has no rollout to ", action));
  }
  if (it->second.status.state != RolloutState::kActive) {
    return absl::FailedPreconditionError(
        absl::StrCat("model '", model, "': cannot ", action, " a rollout that is ",
                     RolloutStateName(it->second.status.state), " (only an active one)"));
  }
  return &it->second;
}

}  // namespace flywheel::lifecycle
