// The prediction log: sampled requests (id, time, model, version, inputs, outputs) written in the
// background to zstd-compressed JSON Lines files, without ever blocking the request path.
//
//   auto log = monitor::PredictionLog::Create({.dir = "/var/log/flywheel/predictions"});
//   monitor::LogSampler sampler(0.1);                       // per model
//   if (sampler.Sample(request.id)) (*log)->Submit(std::move(record));  // false: dropped
//   (*log)->Stats();                                        // for the metrics endpoint
//   (*log)->Close();                                        // at shutdown: drains
//
// Submit only moves the record into a lock-free queue; one writer thread serializes (format in
// log_record.h), compresses and writes. Records accepted but not yet written, queued or waiting
// in the writer's buffers, are at most queue_capacity: Submit drops beyond that and counts the
// drop. Every write appends whole zstd frames, so a process killed at any moment loses at most
// queue_capacity records and leaves files that read back up to their last complete frame.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "monitor/log_record.h"
#include "monitor/writer_signals.h"

namespace flywheel::monitor {

class LogFileWriter;

struct PredictionLogOptions {
  // Root folder; files go to <dir>/<model>/<version>/ (see log_files.h). Created if missing.
  std::string dir;
  // A file is finished when the next frame would take it past this many compressed bytes.
  int64_t max_file_bytes = int64_t{64} << 20;
  // ... or when it was started this long ago (checked at every flush).
  absl::Duration max_file_age = absl::Hours(1);
  // The most records accepted and not yet written; also the most a kill -9 can lose.
  int64_t queue_capacity = 16384;
  // Buffered records are compressed and written at least this often.
  absl::Duration flush_interval = absl::Seconds(1);
  // A model version's buffer is written as one frame once it holds this much JSON.
  size_t frame_bytes = size_t{1} << 20;
  // The writer's CPU is the cost of logging at 100%. On the MLP ranker's records (256 FP32,
  // base64), measured on a busy 2-core machine: level 1 compresses 1.56x for ~3 us a record,
  // level 3 1.57x for ~1.5x that, level -1 1.16x for about two thirds (~2 us). The default is the
  // fast level: a log of every request must cost the request path as little as possible.
  int zstd_level = -1;
  // Write files with O_DIRECT where the file system allows it (ext4, xfs; not tmpfs): each write
  // is padded to a 4 KiB boundary with a zstd skippable frame, which every zstd reader skips.
  // Buffered writes copy each byte into the page cache, which on the 2-core benchmark machine
  // cost 0.8 to 2.3 ns a byte of CPU (the more, the fuller memory and disk), against 0.07 with
  // direct I/O (dd of 1 GB): a log of every request writes ~100 MB/s and keeps no use for the
  // cached pages. Falls back to buffered writes where refused.
  bool direct_io = true;
  // kBase64 writes numeric tensors as base64 bytes (~1 us for those records), kArray as decimal
  // numbers (readable with `zstd -dc | jq`, but ~8x the serialization time); the reader and
  // `flywheel log cat` take both, and cat prints kArray.
  TensorDataFormat data_format = TensorDataFormat::kBase64;
  // Tests only. The wall clock used for stamping records, naming files and file age.
  std::function<absl::Time()> clock;
  // Tests only: called on the writer thread before each write to `path`; an error is taken as
  // the write's error (fault injection), and a slow hook is a slow disk.
  std::function<absl::Status(const std::string& path)> before_write;
};

// A log's counters since Create (the prediction log's and the label log's); each is monotonic
// except queued.
struct LogStats {
  int64_t written = 0;  // records in frames the OS accepted (survive a kill -9)
  // Refused by Submit: queue full, log closed, or (prediction log) no model name.
  int64_t dropped = 0;
  int64_t failed = 0;  // accepted, then lost to a write error
  int64_t write_errors = 0;
  int64_t bytes_written = 0;  // compressed bytes
  int64_t files_opened = 0;
  int64_t queued = 0;  // accepted, not yet written or failed
};
using PredictionLogStats = LogStats;

class PredictionLog {
 public:
  // Fails when an option is out of range or `dir` cannot be created.
  static absl::StatusOr<std::unique_ptr<PredictionLog>> Create(PredictionLogOptions options);
  // Close()s.
  ~PredictionLog();
  PredictionLog(const PredictionLog&) = delete;
  PredictionLog& operator=(const PredictionLog&) = delete;

  // Queues `record` for writing and returns true, or drops it and returns false (queue full,
  // log closed, empty model name). Never blocks and never serializes: safe on any request
  // thread. Tensors are moved (a tensor's buffer is shared, not copied), except views when
  // record.keep_alive is null (see log_record.h).
  bool Submit(PredictionRecord&& record);

  // Writes every record accepted before the call, then returns. Blocks; not for request paths.
  void Flush();
  // Refuses new records, writes every accepted one, closes the files and stops the writer.
  // Idempotent.
  void Close();

  PredictionLogStats Stats() const;
  const PredictionLogOptions& options() const { return options_; }

 private:
  struct Node;

  explicit PredictionLog(PredictionLogOptions options);
  // Producer side of the queue (any thread) and its consumer (the writer thread).
  void Push(Node* node);
  enum class PopResult { kItem, kEmpty, kBusy };
  PopResult Pop(Node** node);
  void WriterLoop();
  absl::Time Now() const;

  const PredictionLogOptions options_;
  // Records buffered by the writer before it writes them all as frames (a quarter of the queue).
  const int64_t wake_threshold_;
  // Records queued and not yet taken by the writer; each time it climbs through kWakeBatch the
  // writer is woken, so that records (and the request bodies they keep alive) are serialized
  // while still in cache and freed in small batches rather than thousands at once.
  static constexpr int64_t kWakeBatch = 256;
  std::atomic<int64_t> queued_{0};

  // A multi-producer single-consumer linked queue (D. Vyukov's): producers exchange head_, the
  // writer follows tail_. stub_ keeps it non-empty.
  std::atomic<Node*> head_;
  Node* tail_;
  std::unique_ptr<Node> stub_;

  std::atomic<int64_t> pending_{0};  // accepted, not yet written or failed
  std::atomic<bool> closed_{false};
  std::atomic<int64_t> dropped_{0};

  WriterSignals signals_;
  // Serializes, compresses and writes; used by the writer thread only (its counters by Stats).
  std::unique_ptr<LogFileWriter> writer_;
  std::thread thread_;
  std::once_flag close_once_;
};

}  // namespace flywheel::monitor
