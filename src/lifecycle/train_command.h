// Runs a training command: any executable, with placeholders filled in, its own process group,
// a timeout, and its output (stdout and stderr together) written to a log file.
#pragma once

#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace flywheel::lifecycle {

struct TrainCommandOptions {
  std::vector<std::string> argv;  // after placeholder substitution; argv[0] absolute or on PATH
  std::map<std::string, std::string> env;  // added to the server's environment
  std::string working_dir;                 // empty: the current one
  absl::Duration timeout = absl::Minutes(30);
  std::string log_path;  // stdout + stderr go here (created, truncated)
  // Set to true by another thread to stop the command early (killed like a timeout).
  const std::atomic<bool>* cancel = nullptr;
};

struct TrainCommandResult {
  int exit_code = -1;      // when it exited
  int signal = 0;          // when a signal ended it
  bool timed_out = false;  // killed after `timeout` (or cancelled)
  absl::Duration wall;
  std::string log_tail;  // the last ~2 KB of its output, for messages
};

// Runs the command to completion (blocking the caller). An error only when it could not be
// started (no such executable, a bad working dir, the log not writable): a command that fails is
// a result with a nonzero exit code. On timeout the whole process group gets SIGTERM, then
// SIGKILL 5 s later.
absl::StatusOr<TrainCommandResult> RunTrainCommand(const TrainCommandOptions& options);

// Replaces {name} by values.at(name) in `text`; an unknown {name} is an error naming it. "{{"
// and "}}" are literal braces.
absl::StatusOr<std::string> SubstitutePlaceholders(
    const std::string& text, const std::map<std::string, std::string>& values);

}  // namespace flywheel::lifecycle
