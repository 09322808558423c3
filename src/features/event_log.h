// The offline event log: every accepted event, appended per source into zstd-compressed JSON-lines
// files partitioned by event-time hour, and read back in event-time order for training exports.
//
// Layout: <dir>/<source>/<YYYY-MM-DD>/<HH>-<NNNNNN>.jsonl.zst (UTC). Each Append writes, per
// hour it touches, one complete zstd frame (with checksum) of lines {"t":<unix micros>,"e":<event>}
// to the open file of that hour; a process starts new files rather than append to files a crash
// may have cut short, so a damaged frame can only be the last of its file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace flywheel::features {

// One event as the log keeps it. `time` is kept to the microsecond; `json` is one JSON value (a
// line break in it is whitespace between tokens and becomes a space).
struct LoggedEvent {
  absl::Time time;
  std::string json;
};

struct EventLogOptions {
  std::string dir;
  // fsync every file an Append wrote to before it returns: a batch that returned OK survives a
  // power loss. Without it, it survives a crash of the process.
  bool sync = true;
  int compression_level = 3;
  // Files kept open (one per source and hour written recently); the least recently used closes.
  int max_open_files = 64;
};

class EventLog {
 public:
  // Creates `dir` when missing.
  static absl::StatusOr<std::unique_ptr<EventLog>> Open(const EventLogOptions& options);
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Appends the events of one source (letters, digits, '_', '-', '.'; not starting with '.'),
  // each with a time in the years 1000..9999 and non-blank JSON text; a bad one fails the batch.
  // Thread-safe; concurrent appends share their fsyncs. On OK every event is written (and synced
  // when options.sync); on error none of the events of a failed hour file was kept.
  absl::Status Append(absl::string_view source, absl::Span<const LoggedEvent> events);

  const std::string& dir() const { return options_.dir; }

 private:
  struct File;
  explicit EventLog(const EventLogOptions& options) : options_(options) {}
  absl::StatusOr<std::shared_ptr<File>> FileFor(absl::string_view source, int64_t hour)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteFrame(File& file, absl::string_view frame) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Closes a file after an error (once no append uses it): the next append starts a new one.
  void Retire(const File& file) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const EventLogOptions options_;
  absl::Mutex mu_;
  // Open files by "<source>/<hour>".
  absl::flat_hash_map<std::string, std::shared_ptr<File>> files_ ABSL_GUARDED_BY(mu_);
  uint64_t clock_ ABSL_GUARDED_BY(mu_) = 0;  // orders files_ by last use
};

// An event read back, with the source it was appended to.
struct EventLogEntry {
  std::string source;
  absl::Time time;
  std::string json;
};

// Reads the events of some sources with from <= time < to, in event-time order; equal times come
// in the order of `sources`, then in append order. Holds one hour of events in memory at a time.
class EventLogReader {
 public:
  // Lists the files to read. A source without a folder has no events; a missing `dir` is an error.
  static absl::StatusOr<std::unique_ptr<EventLogReader>> Open(absl::string_view dir,
                                                              std::vector<std::string> sources,
                                                              absl::Time from, absl::Time to);

  // Fills `entry` with the next event and returns true, or returns false after the last one.
  // A file whose last frame is cut short or damaged (a crash while appending) yields the frames
  // before it and is listed in truncated_files(); a damaged frame followed by others is a
  // DataLoss error naming the file and offset.
  absl::StatusOr<bool> Next(EventLogEntry* entry);

  // Files read so far whose last frame was incomplete or damaged, and thus skipped.
  const std::vector<std::string>& truncated_files() const { return truncated_files_; }

 private:
  struct HourFile {
    size_t source_index;
    int64_t seq;
    std::string path;
  };
  EventLogReader() = default;
  absl::Status LoadHour(absl::Span<const HourFile> files);
  absl::Status ReadFile(const HourFile& file);

  std::vector<std::string> sources_;
  absl::Time from_;
  absl::Time to_;
  // Hours (unix hours) with files, ascending, and their files in source then sequence order.
  std::vector<std::pair<int64_t, std::vector<HourFile>>> hours_;
  size_t next_hour_ = 0;
  std::vector<EventLogEntry> buffer_;  // the current hour, sorted
  size_t next_event_ = 0;
  std::vector<std::string> truncated_files_;
};

// Reads everything EventLogReader would yield into memory.
absl::StatusOr<std::vector<EventLogEntry>> ReadEventLog(absl::string_view dir,
                                                        std::vector<std::string> sources,
                                                        absl::Time from, absl::Time to);

}  // namespace flywheel::features
