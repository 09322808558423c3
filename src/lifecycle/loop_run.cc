// One run of a retraining loop: export, train, add the version, evaluate, gate, canary, promote.
// Production is touched at two points only: the candidate's folder joins the repository (while
// unversioned traffic is pinned to the champion), and the canary. Every failure before promotion
// takes the candidate out again.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"
#include "lifecycle/loop_eval.h"
#include "lifecycle/loop_impl.h"
#include "lifecycle/train_command.h"
#include "monitor/monitoring.h"
#include "monitor/training_set.h"
#include "serving/server.h"

namespace flywheel::lifecycle {
namespace {

namespace fs = std::filesystem;

// A step's failure: the history gets `detail`, the run ends with `outcome`.
struct StepError {
  std::string outcome;
  std::string detail;
};

std::string ModelDir(const LoopSlot& slot) {
  return absl::StrCat(slot.registry->repository(), "/", slot.def.model);
}

// The highest version number anywhere: on disk, registered, or archived by an earlier run (a
// number is never given twice).
absl::StatusOr<int64_t> NextVersion(const LoopSlot& slot) {
  int64_t highest = 0;
  auto scan = [&highest](const std::string& dir) {
    std::error_code ec;
    for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
      int64_t v = 0;
      std::string name = e.path().filename().string();
      const size_t dash = name.find('-');
      if (dash != std::string::npos) name = name.substr(0, dash);
      if (absl::SimpleAtoi(name, &v)) highest = std::max(highest, v);
    }
  };
  scan(ModelDir(slot));
  scan(absl::StrCat(ModelDir(slot), "/", Registry::kFolderName, "/archive"));
  FW_ASSIGN_OR_RETURN(ModelInfo info, slot.registry->List(slot.def.model));
  for (const VersionInfo& v : info.versions) highest = std::max(highest, v.version);
  return highest + 1;
}

RolloutPolicy ToRolloutPolicy(LoopRolloutPolicy policy) {
  switch (policy) {
    case LoopRolloutPolicy::kAbTest:
      return RolloutPolicy::kAbTest;
    case LoopRolloutPolicy::kShadow:
      return RolloutPolicy::kShadow;
    case LoopRolloutPolicy::kCanary:
      break;
  }
  return RolloutPolicy::kCanary;
}

}  // namespace

class LoopRun {
 public:
  LoopRun(LoopRunner::Impl& impl, LoopSlot& slot, int64_t run)
      : impl_(impl),
        slot_(slot),
        def_(slot.def),
        author_{absl::StrCat("loop:", slot.def.name), ""} {
    ctx_.slot = &slot;
    ctx_.run = run;
    ctx_.dir = absl::StrCat(impl.services.work_dir, "/", def_.name, "/run-", run);
    author_.note = absl::StrCat("retraining loop '", def_.name, "' run ", run);
  }

  // Finishes a run that a crash or kill interrupted (its history has no `done`), as the run
  // would have on a failure: an active canary of its candidate is rolled back, and a candidate
  // that was not promoted leaves the repository, so that the version policy keeps the champion.
  void Recover(const LoopEvent& last) {
    ctx_.champion = last.champion;
    ctx_.candidate = last.candidate;
    if (ctx_.candidate == 0) {
      // Killed between moving the candidate in and recording it: the registry knows it.
      absl::StatusOr<ModelInfo> info = slot_.registry->List(def_.model);
      for (const VersionInfo& v : info.ok() ? info->versions : std::vector<VersionInfo>{}) {
        const auto& p = v.metadata.parameters;
        auto loop = p.find("loop");
        auto run = p.find("run");
        if (v.registered && loop != p.end() && loop->second == def_.name && run != p.end() &&
            run->second == absl::StrCat(ctx_.run)) {
          ctx_.candidate = v.version;
          if (ctx_.champion == 0) ctx_.champion = v.metadata.parent;
        }
      }
    }
    step_ = last.step;
    std::string outcome = "failed";
    std::error_code ec;
    const bool on_disk =
        ctx_.candidate > 0 && fs::exists(absl::StrCat(ModelDir(slot_), "/", ctx_.candidate), ec);
    absl::StatusOr<RolloutStatus> rollout = impl_.services.rollouts->Get(def_.model);
    const bool ours =
        rollout.ok() && ctx_.candidate > 0 && rollout->spec.candidate == ctx_.candidate;
    if (ours && rollout->state == RolloutState::kPromoted) {
      outcome = "promoted";  // it died after the promotion, before recording the end
    } else {
      if (ours && rollout->state == RolloutState::kActive) {
        absl::StatusOr<RolloutStatus> back = impl_.services.rollouts->Rollback(def_.model, author_);
        Record("rollback", back.ok() ? "ok" : "failed",
               back.ok() ? "the canary of an interrupted run was rolled back"
                         : std::string(back.status().message()));
        outcome = "rolled_back";
      }
      if (on_disk && ctx_.champion > 0 && ctx_.candidate != ctx_.champion) RetireCandidate();
    }
    Record("done", outcome == "promoted" ? "ok" : "failed",
           absl::StrCat(outcome, ": run ", ctx_.run, " was interrupted at ", last.step,
                        " (the server stopped); finished at start"));
  }

  std::string Run(const std::string& reason) {
    Record("trigger", "ok", reason);
    std::string outcome;
    absl::StatusOr<std::string> result = Steps();
    if (result.ok()) {
      outcome = *result;
    } else {
      outcome = "failed";
      Record(step_, "failed", std::string(result.status().message()));
    }
    if (ctx_.candidate_in_repository) RetireCandidate();
    Record("done", outcome == "promoted" ? "ok" : "failed", outcome);
    return outcome;
  }

 private:
  // The steps; an error status ends the run as "failed" at the current step, a returned string is
  // the outcome.
  absl::StatusOr<std::string> Steps() {
    Enter("export");
    FW_ASSIGN_OR_RETURN(ctx_.champion, Champion());
    std::error_code ec;
    fs::create_directories(ctx_.dir, ec);
    if (ec) {
      return absl::InternalError(absl::StrCat("cannot create ", ctx_.dir, ": ", ec.message()));
    }
    const absl::Time now = absl::Now();
    monitor::TrainingSetOptions set;
    set.log_dir = impl_.services.monitoring->options().log_dir;
    set.model = def_.model;
    set.since = now - def_.data.window;
    set.holdout_fraction = def_.data.holdout;
    set.train_path = ctx_.dir + "/train.csv";
    set.holdout_path = ctx_.dir + "/holdout.csv";
    FW_ASSIGN_OR_RETURN(monitor::TrainingSetStats stats, monitor::BuildTrainingSet(set));
    const int64_t rows = stats.train_rows + stats.holdout_rows;
    std::map<std::string, double> figures{{"train_rows", static_cast<double>(stats.train_rows)},
                                          {"holdout_rows", static_cast<double>(stats.holdout_rows)},
                                          {"predictions", static_cast<double>(stats.predictions)},
                                          {"labels", static_cast<double>(stats.labels)}};
    if (rows < def_.data.min_rows || stats.train_rows == 0 || stats.holdout_rows == 0) {
      Record(
          "export", "skipped",
          absl::StrCat(rows, " labelled rows in the last ", absl::FormatDuration(def_.data.window),
                       " (", stats.train_rows, " train, ", stats.holdout_rows,
                       " holdout); the loop needs ", def_.data.min_rows),
          figures);
      return std::string("not_enough_data");
    }
    Record("export", "ok",
           absl::StrCat(stats.train_rows, " training rows, ", stats.holdout_rows,
                        " holdout rows from the prediction log of the last ",
                        absl::FormatDuration(def_.data.window)),
           figures);

    Enter("train");
    FW_ASSIGN_OR_RETURN(std::string model_file, Train());

    Enter("register");
    FW_RETURN_IF_ERROR(AddCandidate(model_file, stats, now));

    Enter("evaluate");
    FW_ASSIGN_OR_RETURN(Holdout holdout, ReadHoldout(set.holdout_path));
    FW_ASSIGN_OR_RETURN(Evaluation champion, EvaluateVersion(*impl_.services.server, def_.model,
                                                             ctx_.champion, holdout));
    FW_ASSIGN_OR_RETURN(Evaluation candidate, EvaluateVersion(*impl_.services.server, def_.model,
                                                              ctx_.candidate, holdout));
    const GateMetric metric = def_.evaluate.metric;
    const std::string name = GateMetricName(metric);
    FW_ASSIGN_OR_RETURN(double champion_value, MetricValue(champion.report, metric));
    FW_ASSIGN_OR_RETURN(double candidate_value, MetricValue(candidate.report, metric));
    std::map<std::string, double> scores{{"champion_" + name, champion_value},
                                         {"candidate_" + name, candidate_value},
                                         {"holdout_rows", static_cast<double>(holdout.rows)}};
    Record("evaluate", "ok",
           absl::StrCat(name, " on ", holdout.rows, " holdout rows: candidate v", ctx_.candidate,
                        " ", candidate_value, ", champion v", ctx_.champion, " ", champion_value),
           scores);
    absl::StatusOr<VersionMetadata> updated = slot_.registry->Update(
        def_.model, ctx_.candidate,
        [&](VersionMetadata& m) {
          m.metrics["holdout_" + name] = candidate_value;
          m.metrics["champion_holdout_" + name] = champion_value;
        },
        author_);
    FW_RETURN_IF_ERROR(updated.status());

    Enter("gate");
    const double margin = def_.evaluate.margin;
    const bool passes = HigherIsBetter(metric) ? candidate_value >= champion_value + margin
                                               : candidate_value <= champion_value - margin;
    const std::string comparison = absl::StrCat(
        "candidate ", name, " ", candidate_value, " vs champion ", champion_value, ", margin ",
        margin, HigherIsBetter(metric) ? " (higher is better)" : " (lower is better)");
    if (!passes) {
      Record("gate", "failed", "the candidate does not beat the champion: " + comparison, scores);
      return std::string("stopped_at_gate");
    }
    Record("gate", "ok", "the candidate beats the champion: " + comparison, scores);

    Enter("canary");
    return Canary();
  }

  // The version unversioned traffic reaches now: the rollout's (promoted candidate, or stable
  // after a rollback or a pin), else the promotion alias, else the highest serving version.
  absl::StatusOr<int64_t> Champion() {
    serving::Server& server = *impl_.services.server;
    int64_t champion = 0;
    absl::StatusOr<RolloutStatus> rollout = impl_.services.rollouts->Get(def_.model);
    if (rollout.ok()) {
      if (rollout->state == RolloutState::kActive) {
        return absl::FailedPreconditionError(absl::StrCat(
            "model '", def_.model, "' has an active ", RolloutPolicyName(rollout->spec.policy),
            " rollout of version ", rollout->spec.candidate, "; the loop waits for it to end"));
      }
      champion = rollout->state == RolloutState::kPromoted ? rollout->spec.candidate
                                                           : rollout->spec.stable;
    } else if (absl::StatusOr<int64_t> alias =
                   slot_.registry->Resolve(def_.model, def_.rollout.alias);
               alias.ok()) {
      champion = *alias;
    } else {
      FW_ASSIGN_OR_RETURN(serving::ModelMetadata metadata, server.GetModelMetadata(def_.model, ""));
      for (const std::string& v : metadata.versions) {
        int64_t n = 0;
        if (absl::SimpleAtoi(v, &n)) champion = std::max(champion, n);
      }
    }
    FW_ASSIGN_OR_RETURN(bool ready, server.ModelReady(def_.model, absl::StrCat(champion)));
    if (champion <= 0 || !ready) {
      return absl::FailedPreconditionError(
          absl::StrCat("model '", def_.model, "': the champion (version ", champion,
                       ") is not serving, so there is nothing to compare a candidate with"));
    }
    return champion;
  }

  // Runs the training command; returns the model file's path.
  absl::StatusOr<std::string> Train() {
    const std::string output = ctx_.dir + "/output";
    std::error_code ec;
    fs::remove_all(output, ec);
    fs::create_directories(output, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot create ", output, ": ", ec.message()));
    const std::map<std::string, std::string> values{
        {"train", ctx_.dir + "/train.csv"},
        {"holdout", ctx_.dir + "/holdout.csv"},
        {"output", output},
        {"champion", absl::StrCat(ModelDir(slot_), "/", ctx_.champion)},
        {"model", def_.model},
        {"run", absl::StrCat(ctx_.run)}};
    TrainCommandOptions command;
    for (const std::string& arg : def_.train.command) {
      FW_ASSIGN_OR_RETURN(std::string filled, SubstitutePlaceholders(arg, values));
      command.argv.push_back(std::move(filled));
    }
    for (const auto& [key, value] : def_.train.env) {
      FW_ASSIGN_OR_RETURN(command.env[key], SubstitutePlaceholders(value, values));
    }
    // Relative paths in the command (a script beside the definition) resolve against its folder.
    command.working_dir = fs::absolute(fs::path(def_.source_file)).parent_path().string();
    command.timeout = def_.train.timeout;
    command.log_path = ctx_.dir + "/train.log";
    command.cancel = &slot_.cancel;
    Record("train", "started", absl::StrJoin(command.argv, " "));
    FW_ASSIGN_OR_RETURN(TrainCommandResult result, RunTrainCommand(command));
    std::map<std::string, double> figures{{"seconds", absl::ToDoubleSeconds(result.wall)}};
    if (result.timed_out || result.exit_code != 0) {
      const std::string why =
          result.timed_out ? absl::StrCat("timed out after ", absl::FormatDuration(command.timeout))
          : result.signal != 0 ? absl::StrCat("killed by signal ", result.signal)
                               : absl::StrCat("exited with status ", result.exit_code);
      return absl::AbortedError(absl::StrCat("the training command ", why, " (log ",
                                             command.log_path, "): ", result.log_tail));
    }
    const std::string model_file = output + "/" + def_.train.model_file;
    if (!fs::is_regular_file(model_file, ec) || fs::file_size(model_file, ec) == 0) {
      return absl::AbortedError(absl::StrCat("the training command succeeded but wrote no ",
                                             def_.train.model_file, " into ", output, " (log ",
                                             command.log_path, ")"));
    }
    Record("train", "ok",
           absl::StrCat("wrote ", def_.train.model_file, " in ",
                        absl::FormatDuration(absl::Trunc(result.wall, absl::Milliseconds(1)))),
           figures);
    return model_file;
  }

  // Pins traffic to the champion, moves the training output into the repository as the next
  // version, registers it and loads it.
  absl::Status AddCandidate(const std::string& model_file, const monitor::TrainingSetStats& stats,
                            absl::Time exported) {
    FW_RETURN_IF_ERROR(impl_.services.rollouts->Pin(def_.model, ctx_.champion, author_).status());
    FW_ASSIGN_OR_RETURN(ctx_.candidate, NextVersion(slot_));
    const std::string staging =
        absl::StrCat(ModelDir(slot_), "/", Registry::kFolderName, "/incoming-", ctx_.candidate);
    const std::string target = absl::StrCat(ModelDir(slot_), "/", ctx_.candidate);
    std::error_code ec;
    fs::remove_all(staging, ec);
    fs::create_directories(staging, ec);
    if (!ec) {
      // Everything the command wrote travels with the model file (e.g. ONNX external data).
      fs::copy(fs::path(model_file).parent_path(), staging, fs::copy_options::recursive, ec);
    }
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot stage the candidate in ", staging, ": ", ec.message()));
    }
    // One rename: the server's poll sees no version folder or a complete one.
    if (::rename(staging.c_str(), target.c_str()) != 0) {
      return absl::InternalError(
          absl::StrCat("cannot move ", staging, " to ", target, ": ", std::strerror(errno)));
    }
    ctx_.candidate_in_repository = true;
    VersionMetadata metadata;
    metadata.version = ctx_.candidate;
    metadata.training_data =
        absl::StrCat("prediction log ", impl_.services.monitoring->options().log_dir, " of model ",
                     def_.model, " from ", absl::FormatTime(exported - def_.data.window), " to ",
                     absl::FormatTime(exported), ": ", stats.train_rows, " training rows");
    metadata.code_revision = absl::StrJoin(def_.train.command, " ");
    metadata.parameters = {{"loop", def_.name},
                           {"run", absl::StrCat(ctx_.run)},
                           {"holdout", absl::StrCat(def_.data.holdout)}};
    metadata.parent = ctx_.champion;
    metadata.description = author_.note;
    FW_RETURN_IF_ERROR(
        slot_.registry->Register(def_.model, metadata, author_, /*replace=*/true).status());
    FW_RETURN_IF_ERROR(impl_.services.server->ReloadModel(def_.model));
    serving::Server& server = *impl_.services.server;
    for (int64_t v : {ctx_.candidate, ctx_.champion}) {
      absl::StatusOr<bool> ready = server.ModelReady(def_.model, absl::StrCat(v));
      if (!ready.ok() || !*ready) {
        return absl::FailedPreconditionError(absl::StrCat(
            "after adding version ", ctx_.candidate, ", version ", v, " of model '", def_.model,
            "' is not serving", ready.ok() ? "" : absl::StrCat(": ", ready.status().message())));
      }
    }
    Record("register", "ok",
           absl::StrCat("version ", ctx_.candidate, " added to ", ModelDir(slot_),
                        ", registered and loaded beside champion ", ctx_.champion,
                        "; unversioned traffic stays on the champion"));
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Canary() {
    const LoopRollout& r = def_.rollout;
    RolloutSpec spec;
    spec.model = def_.model;
    spec.policy = ToRolloutPolicy(r.policy);
    spec.stable = ctx_.champion;
    spec.candidate = ctx_.candidate;
    spec.weight = r.weight;
    spec.sticky_parameter = r.sticky_parameter;
    spec.shadow_fraction = r.shadow_fraction;
    spec.thresholds.max_error_rate = r.max_error_rate;
    spec.thresholds.max_p99_ms = r.max_p99_ms;
    spec.thresholds.max_disagreement = r.max_disagreement;
    spec.thresholds.max_quality_drop = r.max_quality_drop;
    spec.thresholds.quality_metric = GateMetricName(def_.evaluate.metric);
    spec.thresholds.min_requests = r.min_requests;
    spec.thresholds.window = r.healthy_for;
    spec.alias = r.alias;
    RolloutController& rollouts = *impl_.services.rollouts;
    FW_ASSIGN_OR_RETURN(RolloutStatus started, rollouts.Start(spec, author_));
    Record("canary", "started",
           absl::StrCat(RolloutPolicyName(spec.policy), " of version ", ctx_.candidate, " against ",
                        ctx_.champion,
                        spec.policy == RolloutPolicy::kShadow
                            ? absl::StrCat(", shadow share ", spec.shadow_fraction)
                            : absl::StrCat(", weight ", spec.weight),
                        "; promotion after ", absl::FormatDuration(r.healthy_for),
                        " healthy with at least ", r.min_requests, " requests"));
    const absl::Time deadline = started.started + impl_.options.max_canary;
    while (true) {
      if (slot_.cancel.load()) {
        FW_RETURN_IF_ERROR(rollouts.Rollback(def_.model, author_).status());
        Record("rollback", "ok", "the server is shutting down: the canary was rolled back");
        return std::string("cancelled");
      }
      FW_ASSIGN_OR_RETURN(RolloutStatus status, rollouts.Get(def_.model));
      const std::map<std::string, double> figures = CanaryFigures(status.figures);
      if (status.spec.candidate != ctx_.candidate) {
        return absl::AbortedError(absl::StrCat("the rollout of model '", def_.model,
                                               "' was replaced by one of version ",
                                               status.spec.candidate));
      }
      if (status.state == RolloutState::kRolledBack) {
        Record("rollback", "ok", "the canary was rolled back: " + status.reason, figures);
        return std::string("rolled_back");
      }
      if (status.state == RolloutState::kPromoted) {
        ctx_.candidate_in_repository = false;  // it serves now
        Record("promote", "ok", "promoted while the loop waited", figures);
        return std::string("promoted");
      }
      if (status.state == RolloutState::kStopped) {
        return absl::AbortedError("the rollout was stopped: " + status.reason);
      }
      const absl::Time now = absl::Now();
      if (status.healthy_since != absl::InfinitePast() &&
          now - status.healthy_since >= r.healthy_for &&
          status.figures.candidate_requests >= r.min_requests) {
        FW_RETURN_IF_ERROR(rollouts.Promote(def_.model, author_).status());
        ctx_.candidate_in_repository = false;
        Record("canary", "ok",
               absl::StrCat("healthy for ", absl::FormatDuration(now - status.healthy_since),
                            " over ", status.figures.candidate_requests, " candidate requests"),
               figures);
        Record("promote", "ok",
               absl::StrCat("version ", ctx_.candidate, " is '", r.alias,
                            "' and takes all unversioned traffic"),
               figures);
        return std::string("promoted");
      }
      if (now >= deadline) {
        FW_RETURN_IF_ERROR(rollouts.Rollback(def_.model, author_).status());
        Record("rollback", "ok",
               absl::StrCat("the canary was not healthy long enough within ",
                            absl::FormatDuration(impl_.options.max_canary), " (",
                            status.figures.candidate_requests, " candidate requests)"),
               figures);
        return std::string("rolled_back");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }

  static std::map<std::string, double> CanaryFigures(const RolloutFigures& f) {
    std::map<std::string, double> out{
        {"candidate_requests", static_cast<double>(f.candidate_requests)},
        {"candidate_failed", static_cast<double>(f.candidate_failed)},
        {"stable_requests", static_cast<double>(f.stable_requests)}};
    if (f.candidate_error_rate) out["candidate_error_rate"] = *f.candidate_error_rate;
    if (f.candidate_p99_ms) out["candidate_p99_ms"] = *f.candidate_p99_ms;
    if (f.stable_p99_ms) out["stable_p99_ms"] = *f.stable_p99_ms;
    if (f.shadow_disagreement) out["shadow_disagreement"] = *f.shadow_disagreement;
    if (f.candidate_quality) out["candidate_quality"] = *f.candidate_quality;
    if (f.stable_quality) out["stable_quality"] = *f.stable_quality;
    return out;
  }

  // Takes a candidate that will not be promoted out of the version space (into
  // .flywheel/archive/), so that the version policy keeps the champion loaded next time, and
  // reloads the model. Traffic is pinned to the champion first.
  void RetireCandidate() {
    RolloutController& rollouts = *impl_.services.rollouts;
    absl::StatusOr<RolloutStatus> rollout = rollouts.Get(def_.model);
    if (!rollout.ok() || rollout->state == RolloutState::kActive ||
        rollout->state == RolloutState::kStopped) {
      absl::StatusOr<RolloutStatus> pinned = rollouts.Pin(def_.model, ctx_.champion, author_);
      if (!pinned.ok()) {
        Record("retire", "failed", std::string(pinned.status().message()));
        return;
      }
    }
    const std::string archive =
        absl::StrCat(ModelDir(slot_), "/", Registry::kFolderName, "/archive");
    const std::string from = absl::StrCat(ModelDir(slot_), "/", ctx_.candidate);
    const std::string to = absl::StrCat(archive, "/", ctx_.candidate, "-run", ctx_.run);
    std::error_code ec;
    std::string done;  // what happened to the folder
    if (!fs::exists(from, ec)) {
      done = absl::StrCat("version ", ctx_.candidate, "'s folder ", from, " is gone already");
    } else {
      fs::create_directories(archive, ec);
      if (ec || ::rename(from.c_str(), to.c_str()) != 0) {
        Record("retire", "failed",
               absl::StrCat("cannot move ", from, " to ", to, ": ",
                            ec ? ec.message() : std::strerror(errno)));
        return;
      }
      done = absl::StrCat("version ", ctx_.candidate, " moved to ", to);
    }
    ctx_.candidate_in_repository = false;
    absl::Status reloaded = impl_.services.server->ReloadModel(def_.model);
    Record("retire", reloaded.ok() ? "ok" : "failed",
           reloaded.ok()
               ? absl::StrCat(done, "; version ", ctx_.champion, " serves")
               : absl::StrCat(done, ", but reloading the model failed: ", reloaded.message()));
  }

  void Enter(const std::string& step) {
    step_ = step;
    absl::MutexLock lock(&slot_.mu);
    slot_.state.step = step;
  }

  void Record(const std::string& step, const std::string& status, const std::string& detail,
              const std::map<std::string, double>& figures = {}) {
    LoopEvent event;
    event.time = absl::Now();
    event.loop = def_.name;
    event.model = def_.model;
    event.run = ctx_.run;
    event.step = step;
    event.status = status;
    event.detail = detail;
    event.champion = ctx_.champion;
    event.candidate = ctx_.candidate;
    event.figures = figures;
    absl::Status written = slot_.history->Append(event);
    if (!written.ok()) {
      std::fprintf(stderr, "loop '%s': cannot record step %s: %s\n", def_.name.c_str(),
                   step.c_str(), std::string(written.message()).c_str());
    }
  }

  LoopRunner::Impl& impl_;
  LoopSlot& slot_;
  const LoopDefinition& def_;
  ChangeAuthor author_;
  RunContext ctx_;
  std::string step_ = "trigger";
};

void LoopRunner::Impl::RecoverInterrupted(LoopSlot& slot) {
  absl::StatusOr<LoopHistory::ReadResult> read = slot.history->Read();
  if (!read.ok() || read->events.empty()) return;
  const int64_t run = read->events.back().run;
  const LoopEvent* last = nullptr;
  for (const LoopEvent& e : read->events) {
    if (e.run != run) continue;
    if (e.step == "done") return;  // it finished
    last = &e;
  }
  if (last == nullptr) return;
  LoopRun(*this, slot, run).Recover(*last);
}

std::string LoopRunner::Impl::RunOnce(LoopSlot& slot, int64_t run, const std::string& reason) {
  LoopRun one(*this, slot, run);
  return one.Run(reason);
}

}  // namespace flywheel::lifecycle
