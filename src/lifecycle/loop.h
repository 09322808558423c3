// The retraining loop: when a trigger fires (new labels, a schedule, live drift), a run exports a
// training set from the prediction log and its labels, runs the training command, adds the model
// it wrote as a new version, evaluates candidate and champion on the same holdout through the
// server, gates on the margin, then rolls the candidate out as a canary and promotes it after a
// healthy window — or leaves production as it was at the first step that fails. Every step is
// appended to the loop's history (loop_history.h).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "lifecycle/loop_config.h"
#include "lifecycle/loop_history.h"
#include "lifecycle/registry.h"
#include "lifecycle/rollout.h"

namespace flywheel::serving {
class Server;
}  // namespace flywheel::serving

namespace flywheel::monitor {
class Monitoring;
class Registry;
}  // namespace flywheel::monitor

namespace flywheel::lifecycle {

struct LoopServices {
  serving::Server* server = nullptr;
  RolloutController* rollouts = nullptr;
  std::vector<Registry*> registries;  // one per model repository
  // Required: the prediction log, labels and drift the loop reads. Its log must be on.
  monitor::Monitoring* monitoring = nullptr;
  monitor::Registry* metrics = nullptr;  // optional: flywheel_loop_* metrics
  // Each run's files (training set, holdout, model output, training log) go to
  // <work_dir>/<loop>/run-<n>/.
  std::string work_dir;
};

struct LoopOptions {
  absl::Duration tick = absl::Seconds(1);  // how often triggers are checked
  bool start_thread = true;
  // How long a candidate's canary may last before the run gives up on it (rolled back, production
  // untouched): a canary that never sees enough traffic must not hold the loop forever.
  absl::Duration max_canary = absl::Hours(24);
};

// What a loop is doing now, for GET /v1/loops.
struct LoopState {
  std::string name;
  std::string model;
  bool running = false;
  int64_t run = 0;           // the current (or last) run
  std::string step;          // the current step while running
  std::string last_outcome;  // promoted, stopped_at_gate, rolled_back, failed, ...
  int64_t new_labels = 0;    // joined labels since the last run
  absl::Time last_run_end = absl::InfinitePast();
  std::string history_path;
};

class LoopRunner {
 public:
  // Checks each definition against the server (the model exists, its version policy keeps a
  // champion and a candidate loaded, a repository holds it, the prediction log is on).
  static absl::StatusOr<std::unique_ptr<LoopRunner>> Create(std::vector<LoopDefinition> loops,
                                                            LoopServices services,
                                                            LoopOptions options = {});
  ~LoopRunner();  // cancels a training command and waits for running runs

  // Starts a run of `name` now, whatever its trigger (FailedPrecondition while one runs).
  absl::Status RunNow(absl::string_view name, absl::string_view reason);
  absl::StatusOr<LoopState> State(absl::string_view name) const;
  std::vector<LoopState> States() const;
  // The loop's recorded history, oldest first.
  absl::StatusOr<std::vector<LoopEvent>> History(absl::string_view name) const;
  // Checks every idle loop's triggers once (the thread calls it every tick).
  void Tick(absl::Time now = absl::Now());
  // Blocks until `name` has no run in progress (tests).
  void WaitIdle(absl::string_view name) const;

 private:
  friend class LoopRun;  // one run's steps (loop_run.cc)
  struct Impl;
  explicit LoopRunner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

std::string LoopStateToJson(const LoopState& state);

}  // namespace flywheel::lifecycle
