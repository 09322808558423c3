// Private to lifecycle/: the state behind LoopRunner, shared by loop.cc (triggers, threads) and
// loop_run.cc (the steps of a run).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "lifecycle/loop.h"

namespace flywheel::lifecycle {

struct LoopSlot {
  LoopDefinition def;
  Registry* registry = nullptr;  // of the repository holding the model
  std::unique_ptr<LoopHistory> history;
  mutable absl::Mutex mu;
  LoopState state ABSL_GUARDED_BY(mu);
  std::thread worker ABSL_GUARDED_BY(mu);
  // The trigger's memory, read by the ticker and reset by StartRun (the ticker's or a request's).
  std::map<std::string, int64_t> label_baseline ABSL_GUARDED_BY(mu);  // version -> joined labels
  absl::Time last_trigger ABSL_GUARDED_BY(mu) = absl::InfinitePast();
  std::atomic<bool> cancel{false};
};

// What a run is about, passed between its steps.
struct RunContext {
  LoopSlot* slot = nullptr;
  int64_t run = 0;
  std::string dir;  // <work_dir>/<loop>/run-<n>
  int64_t champion = 0;
  int64_t candidate = 0;
  // Whether the candidate's folder is in the repository (it must leave again unless promoted).
  bool candidate_in_repository = false;
};

struct LoopRunner::Impl {
  LoopServices services;
  LoopOptions options;
  absl::Time started;
  std::vector<std::unique_ptr<LoopSlot>> slots;
  std::atomic<bool> shutting_down{false};

  std::thread ticker;
  std::mutex ticker_mu;
  std::condition_variable ticker_cv;
  bool ticker_stop = false;

  int collector_id = -1;
  // (loop, outcome) -> runs, for flywheel_loop_runs_total.
  absl::Mutex outcomes_mu;
  std::map<std::pair<std::string, std::string>, int64_t> outcomes ABSL_GUARDED_BY(outcomes_mu);

  LoopSlot* Find(absl::string_view name) const;
  std::map<std::string, int64_t> JoinedLabels(const LoopSlot& slot) const;
  int64_t NewLabels(const LoopSlot& slot, const std::map<std::string, int64_t>& joined) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(slot.mu);
  // Why the loop should run now ("" for not).
  std::string TriggerReason(LoopSlot& slot, absl::Time now);
  void Tick(absl::Time now);
  absl::Status StartRun(LoopSlot& slot, std::string reason);
  void StartTicker();
  void Shutdown();
  void RegisterMetrics();

  // loop_run.cc: one run from trigger to outcome ("promoted", "stopped_at_gate", "rolled_back",
  // "failed", "cancelled"); every step recorded in the history.
  std::string RunOnce(LoopSlot& slot, int64_t run, const std::string& reason);
  // loop_run.cc: at start, finishes the last run when the server stopped in its middle.
  void RecoverInterrupted(LoopSlot& slot);
};

}  // namespace flywheel::lifecycle
