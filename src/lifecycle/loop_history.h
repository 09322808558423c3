// The durable history of a retraining loop: one JSON line per step of each run, appended and
// fsynced in <repository>/<model>/.flywheel/loop-<name>.jsonl, read back by `flywheel loop
// status` and GET /v1/loops. A crash mid-append leaves at most a torn last line, which readers
// skip (and count).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace flywheel::lifecycle {

// One step of a run. `step` is one of: trigger, export, train, register, evaluate, gate, canary,
// promote, rollback, done. `status`: started, ok, failed, skipped.
struct LoopEvent {
  absl::Time time = absl::InfinitePast();
  std::string loop;
  std::string model;
  int64_t run = 0;  // 1, 2, ... per loop
  std::string step;
  std::string status;
  std::string detail;    // human-readable: why, what
  int64_t champion = 0;  // version numbers, 0 when not known yet
  int64_t candidate = 0;
  std::map<std::string, double> figures;  // e.g. rows_train, champion_auc, candidate_auc
};

class LoopHistory {
 public:
  // <repository>/<model>/.flywheel/loop-<loop>.jsonl; the folder is made on first append.
  static std::string PathFor(const std::string& repository, const std::string& model,
                             const std::string& loop);

  explicit LoopHistory(std::string path);
  const std::string& path() const { return path_; }

  // Appends one line and fsyncs it. Thread-safe.
  absl::Status Append(const LoopEvent& event);

  struct ReadResult {
    std::vector<LoopEvent> events;  // oldest first
    int64_t bad_lines = 0;
  };
  // A missing file reads as no events.
  absl::StatusOr<ReadResult> Read() const;
  // The highest run number recorded (0 for none): a restarted server goes on from there.
  absl::StatusOr<int64_t> LastRun() const;

 private:
  std::string path_;
};

std::string LoopEventToJson(const LoopEvent& event);
absl::StatusOr<LoopEvent> ParseLoopEvent(const std::string& line);

}  // namespace flywheel::lifecycle
