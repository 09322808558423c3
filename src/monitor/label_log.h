// The label log: every well-formed label posted to the server (whatever its join outcome), kept
// durably beside the prediction log so that training sets can join labels with logged inputs
// long after the in-memory joiner forgot them (training_set.h).
//
//   auto log = monitor::LabelLog::Create({.dir = "/var/log/flywheel/.labels"});
//   (*log)->Submit({.request_id = "req-42", .row = 0, .label = 1});  // false: dropped
//
// Files: <dir>/<UTC start>-<seq>.jsonl.zst (log_files.h), zstd JSON Lines in whole frames, so a
// killed process leaves files that read up to their last frame, rotated by size and age like the
// prediction log's. One line per label, model and version only when the join knew them:
//   {"id":"req-42","row":0,"label":1,"time":"2024-05-01T12:00:00.123456789Z","model":"rank",
//    "version":3}
// The id is a JSON string, or {"b64":"..."} when it is not UTF-8 (as in the prediction log); the
// label a number, or "NaN"/"Infinity"/"-Infinity"; the version a number when it is one.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "monitor/prediction_log.h"
#include "monitor/writer_signals.h"

namespace flywheel::monitor {

class LogFileWriter;

// The label log's folder inside a prediction log folder: hidden, so it never reads as a model.
inline constexpr char kLabelLogDirName[] = ".labels";

struct LabelRecord {
  std::string request_id;
  int64_t row = 0;
  double label = 0;
  // When the label arrived. The default, the Unix epoch, means "now": Submit stamps it.
  absl::Time time = absl::UnixEpoch();
  // The prediction's model and version, when the join found it; empty otherwise.
  std::string model;
  std::string version;
};

struct LabelLogOptions {
  // Created if missing.
  std::string dir;
  int64_t max_file_bytes = int64_t{64} << 20;
  absl::Duration max_file_age = absl::Hours(1);
  // The most labels accepted and not yet written (about 150 bytes each); Submit drops beyond.
  int64_t queue_capacity = int64_t{1} << 16;
  // Accepted labels are written at least this often.
  absl::Duration flush_interval = absl::Seconds(1);
  int zstd_level = 3;
  // As in PredictionLogOptions: O_DIRECT writes padded to 4 KiB where the file system allows.
  bool direct_io = true;
  // Tests only, as in PredictionLogOptions.
  std::function<absl::Time()> clock;
  std::function<absl::Status(const std::string& path)> before_write;
};

using LabelLogStats = LogStats;

class LabelLog {
 public:
  // Fails when an option is out of range or `dir` cannot be created.
  static absl::StatusOr<std::unique_ptr<LabelLog>> Create(LabelLogOptions options);
  ~LabelLog();  // Close()s
  LabelLog(const LabelLog&) = delete;
  LabelLog& operator=(const LabelLog&) = delete;

  // Queues the label and returns true, or drops it (queue full, log closed) and returns false.
  // Takes a mutex for a moment (labels come in HTTP batches, not on the inference path); never
  // waits for the disk.
  bool Submit(LabelRecord record);
  // Writes every label accepted before the call, then returns.
  void Flush();
  // Refuses new labels, writes the accepted ones and closes the files. Idempotent.
  void Close();

  LabelLogStats Stats() const;
  const LabelLogOptions& options() const { return options_; }

 private:
  explicit LabelLog(LabelLogOptions options);
  void WriterLoop();
  absl::Time Now() const;

  const LabelLogOptions options_;
  // What the shared file writer reads: options_ in its terms.
  PredictionLogOptions writer_options_;
  std::atomic<int64_t> pending_{0};  // accepted, not yet written or failed
  std::atomic<int64_t> dropped_{0};

  WriterSignals signals_;
  std::vector<LabelRecord> queue_;  // guarded by signals_.mu()

  std::unique_ptr<LogFileWriter> writer_;
  std::thread thread_;
  std::once_flag close_once_;
};

// `record` as one label log line, '\n' included.
void AppendLabelJson(const LabelRecord& record, std::string* out);
// A line AppendLabelJson wrote back; errors name what is wrong.
absl::StatusOr<LabelRecord> ParseLabelJson(absl::string_view line);

}  // namespace flywheel::monitor
