// The writer-thread half of the prediction log and the label log (internal to monitor/): JSON
// lines buffered per stream (a model version's folder, or the label log's one folder), compressed
// into whole zstd frames and appended to the stream's current file, with rotation by size and
// age. Single-threaded; only the counters are read from other threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "monitor/log_record.h"
#include "monitor/prediction_log.h"

struct ZSTD_CCtx_s;

namespace flywheel::monitor {

class LogFileWriter {
 public:
  // `pending` is the log's count of accepted, unwritten records: decremented here as records
  // are written or lost. `name` starts error reports ("label log").
  LogFileWriter(const PredictionLogOptions& options, std::atomic<int64_t>* pending,
                std::string name = "prediction log");
  ~LogFileWriter();  // CloseAll()
  LogFileWriter(const LogFileWriter&) = delete;
  LogFileWriter& operator=(const LogFileWriter&) = delete;

  // Serializes `record` into its stream's buffer; writes the buffer as a frame once it holds
  // frame_bytes.
  void Add(const PredictionRecord& record);
  // Appends one JSON line ('\n' included) to the stream whose files go straight into
  // options.dir (the label log's layout); frames as Add does.
  void AddLine(absl::string_view line);
  // Writes every stream's buffer as a frame.
  void WriteAll();
  // Finishes files started max_file_age before `now`, and forgets idle streams.
  void FinishOldFiles(absl::Time now);
  // Writes the buffers and closes every file (with fdatasync).
  void CloseAll();
  int64_t buffered_records() const { return buffered_records_; }
  // The counters below with the log's own: `dropped` by its Submit, queued from `pending`.
  LogStats Stats(int64_t dropped) const;

  std::atomic<int64_t> written{0};
  std::atomic<int64_t> failed{0};
  std::atomic<int64_t> write_errors{0};
  std::atomic<int64_t> bytes_written{0};
  std::atomic<int64_t> files_opened{0};

 private:
  struct Stream {
    std::string model;
    int64_t version = 0;
    std::string dir;
    std::string buffer;  // JSON lines not yet in a frame
    int64_t records = 0;
    int fd = -1;
    std::string path;
    int64_t file_bytes = 0;
    absl::Time opened;
    int64_t next_seq = 0;
    bool direct = false;  // fd was opened with O_DIRECT
  };

  Stream& StreamFor(const PredictionRecord& record);
  void Buffered(Stream& s);
  std::string Describe(const Stream& s) const;
  void WriteFrame(Stream& s);
  bool OpenFile(Stream& s, std::string* error);
  void FinishFile(Stream& s, bool sync);
  // The buffer's records are lost: count them, and report `error` (at most once a minute).
  void Fail(Stream& s, const std::string& error);
  void Done(Stream& s);
  absl::Time Now() const;

  const PredictionLogOptions& options_;
  std::atomic<int64_t>* const pending_;
  const std::string name_;
  ZSTD_CCtx_s* cctx_ = nullptr;
  // Compressed frames are built here: 4 KiB-aligned, as O_DIRECT writes need.
  char* frame_ = nullptr;
  size_t frame_capacity_ = 0;
  // Cleared once the file system refuses O_DIRECT, so that later files do not try again.
  bool try_direct_ = true;
  absl::flat_hash_map<std::pair<std::string, int64_t>, std::unique_ptr<Stream>> streams_;
  Stream* last_ = nullptr;  // most records come in runs of one model version
  int64_t buffered_records_ = 0;
  absl::Time last_report_ = absl::InfinitePast();
  int64_t unreported_errors_ = 0;
};

}  // namespace flywheel::monitor
