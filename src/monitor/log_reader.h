// Reads a prediction log folder (written by prediction_log.h) back: the records of chosen models,
// versions and time range, in time order across files and model versions. Files cut short by a
// crash, or still being written, read up to their last complete frame; what was skipped is
// counted, never an error.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace flywheel::monitor {

struct LogReaderOptions {
  std::string dir;
  std::optional<std::string> model;           // every model when unset
  std::optional<int64_t> version;             // every version when unset
  absl::Time since = absl::InfinitePast();    // inclusive
  absl::Time until = absl::InfiniteFuture();  // exclusive
  // The label log's layout (label_log.h): `dir`'s own log files are one stream, read as model ""
  // version 0; model and version filters do not apply.
  bool flat = false;
};

struct LogEntry {
  absl::Time time;
  std::string model;
  int64_t version = 0;
  std::string line;  // the record's JSON object, without the newline
};

struct LogReadStats {
  int64_t files = 0;    // files opened
  int64_t frames = 0;   // complete frames read
  int64_t records = 0;  // entries returned
  // An incomplete frame at the end of a file: the process was killed while writing it, or is
  // writing it now.
  int64_t truncated_frames = 0;
  // A frame that fails its checksum or is not zstd: the frame, or the rest of the file when its
  // size cannot be known, is skipped.
  int64_t corrupt_frames = 0;
  int64_t skipped_bytes = 0;  // compressed bytes in the truncated and corrupt frames
  int64_t bad_lines = 0;      // lines without a readable "time"
  int64_t ignored_files = 0;  // files in a stream folder whose names are not log file names
  // The first few problems, one line each ("<file>: ..."), for the command line to print.
  std::vector<std::string> problems;
};

class LogReader {
 public:
  // Finds the streams (<dir>/<model>/<version>/) that pass the filters; reads nothing yet.
  // Fails when `dir` cannot be listed.
  static absl::StatusOr<std::unique_ptr<LogReader>> Open(LogReaderOptions options);
  ~LogReader();

  // The next record in time order into `entry`; false at the end. Records whose times tie keep
  // file order. Within one model version, order is by time in each frame (about a second of
  // records) and by file order across frames: records stamped before being queued, so out of
  // order only by the queueing race of concurrent requests (microseconds).
  // Errors: a file that cannot be opened or read (damaged content is counted in stats instead).
  absl::StatusOr<bool> Next(LogEntry* entry);

  const LogReadStats& stats() const { return stats_; }

 private:
  class Stream;
  explicit LogReader(LogReaderOptions options);

  LogReaderOptions options_;
  LogReadStats stats_;
  std::vector<std::unique_ptr<Stream>> streams_;
  // Streams by the time of their next entry (earliest first; ties by stream index).
  using HeapItem = std::pair<absl::Time, size_t>;
  std::priority_queue<HeapItem, std::vector<HeapItem>, std::greater<HeapItem>> heap_;
  bool started_ = false;
};

// A --since/--until value: RFC 3339 ("2024-05-01T12:00:00Z", any offset and fraction), a UTC
// date ("2024-05-01"), "now", or a signed duration from `now` ("-1h", "-90m", "-1h30m", "-2d";
// units d, h, m, s, ms, us, ns).
absl::StatusOr<absl::Time> ParseTimeArg(absl::string_view text, absl::Time now);

}  // namespace flywheel::monitor
