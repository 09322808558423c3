#include "monitor/prediction_log.h"

#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "monitor/log_file_writer.h"

namespace flywheel::monitor {

struct PredictionLog::Node {
  std::atomic<Node*> next{nullptr};
  PredictionRecord record;
};

namespace {

// Tensors that only view memory: their owner may free it as soon as the request is answered.
void CopyViews(NamedTensors& tensors) {
  for (auto& [name, t] : tensors) {
    if (t.dtype() != DataType::kBytes && !t.empty() && !t.owns_data() && t.ByteSize() > 0) {
      t = t.Clone();
    }
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<PredictionLog>> PredictionLog::Create(PredictionLogOptions options) {
  if (options.dir.empty()) {
    return absl::InvalidArgumentError("prediction log: no folder given (dir is empty)");
  }
  if (options.max_file_bytes <= 0 || options.queue_capacity <= 0 || options.frame_bytes == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prediction log: max_file_bytes (", options.max_file_bytes, "), queue_capacity (",
        options.queue_capacity, ") and frame_bytes (", options.frame_bytes, ") must be positive"));
  }
  if (options.max_file_age <= absl::ZeroDuration() ||
      options.flush_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("prediction log: max_file_age (", absl::FormatDuration(options.max_file_age),
                     ") and flush_interval (", absl::FormatDuration(options.flush_interval),
                     ") must be positive"));
  }
  if (options.zstd_level < ZSTD_minCLevel() || options.zstd_level > ZSTD_maxCLevel()) {
    return absl::InvalidArgumentError(absl::StrCat("prediction log: zstd level ",
                                                   options.zstd_level, " is outside [",
                                                   ZSTD_minCLevel(), ", ", ZSTD_maxCLevel(), "]"));
  }
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec || !std::filesystem::is_directory(options.dir, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("prediction log: cannot create folder '", options.dir,
                     "': ", ec ? ec.message() : "a file of that name is in the way"));
  }
  return std::unique_ptr<PredictionLog>(new PredictionLog(std::move(options)));
}

PredictionLog::PredictionLog(PredictionLogOptions options)
    : options_(std::move(options)),
      wake_threshold_(std::max<int64_t>(1, options_.queue_capacity / 4)),
      stub_(std::make_unique<Node>()) {
  head_.store(stub_.get());
  tail_ = stub_.get();
  writer_ = std::make_unique<LogFileWriter>(options_, &pending_);
  thread_ = std::thread([this] { WriterLoop(); });
}

PredictionLog::~PredictionLog() { Close(); }

absl::Time PredictionLog::Now() const { return options_.clock ? options_.clock() : absl::Now(); }

bool PredictionLog::Submit(PredictionRecord&& record) {
  if (record.model.empty()) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  // Count first, then check closed_: Close sets closed_ and then waits for pending_ to reach
  // zero, so a record either sees closed_ or is waited for (both sequentially consistent).
  const int64_t n = pending_.fetch_add(1);
  if (n >= options_.queue_capacity || closed_.load()) {
    pending_.fetch_sub(1);
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (record.time == absl::UnixEpoch()) record.time = Now();
  if (record.keep_alive == nullptr) {
    CopyViews(record.inputs);
    CopyViews(record.outputs);
    CopyViews(record.features);
  }
  Node* node = new Node;
  node->record = std::move(record);
  Push(node);
  // Wake the writer each time kWakeBatch records wait (or a quarter of the capacity, if less);
  // otherwise it wakes on its flush interval. One producer in many takes the lock.
  const int64_t queued = queued_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (queued == std::min(kWakeBatch, wake_threshold_) || n + 1 == wake_threshold_) {
    std::lock_guard<std::mutex> lock(signals_.mu());
    signals_.WakeLocked();
  }
  return true;
}

void PredictionLog::Push(Node* node) {
  node->next.store(nullptr, std::memory_order_relaxed);
  Node* prev = head_.exchange(node, std::memory_order_acq_rel);
  prev->next.store(node, std::memory_order_release);
}

PredictionLog::PopResult PredictionLog::Pop(Node** node) {
  Node* tail = tail_;
  Node* next = tail->next.load(std::memory_order_acquire);
  if (tail == stub_.get()) {
    if (next == nullptr) {
      return head_.load(std::memory_order_acquire) == tail ? PopResult::kEmpty : PopResult::kBusy;
    }
    tail_ = next;
    tail = next;
    next = next->next.load(std::memory_order_acquire);
  }
  if (next != nullptr) {
    tail_ = next;
    *node = tail;
    return PopResult::kItem;
  }
  // `tail` is the last node: a producer is between its exchange and its link, or the stub must
  // go behind `tail` before `tail` can be taken.
  if (tail != head_.load(std::memory_order_acquire)) return PopResult::kBusy;
  Push(stub_.get());
  next = tail->next.load(std::memory_order_acquire);
  if (next != nullptr) {
    tail_ = next;
    *node = tail;
    return PopResult::kItem;
  }
  return PopResult::kBusy;
}

void PredictionLog::WriterLoop() {
  using Clock = std::chrono::steady_clock;
  // Clamped so that time arithmetic cannot overflow on an absurd interval.
  const auto interval =
      absl::ToChronoNanoseconds(std::min(options_.flush_interval, absl::Hours(24 * 365)));
  // Wake at least this often, also to finish files that reached max_file_age while idle.
  const auto wake_period = absl::ToChronoNanoseconds(
      std::min({options_.flush_interval, options_.max_file_age, absl::Hours(1)}));
  Clock::time_point last_write = Clock::now();
  for (;;) {
    WriterSignals::Round round;
    {
      std::unique_lock<std::mutex> lock(signals_.mu());
      round =
          signals_.WaitLocked(lock, std::min(last_write + interval, Clock::now() + wake_period));
    }
    // Take what is queued, but at most one capacity's worth, so that a flood of producers
    // cannot keep the writer from writing.
    bool emptied = false;
    for (int64_t taken = 0; taken < options_.queue_capacity;) {
      Node* node = nullptr;
      const PopResult result = Pop(&node);
      if (result == PopResult::kEmpty) {
        emptied = true;
        break;
      }
      if (result == PopResult::kBusy) {
        std::this_thread::yield();  // a producer is one store away from linking its record
        continue;
      }
      queued_.fetch_sub(1, std::memory_order_relaxed);
      writer_->Add(node->record);
      delete node;
      ++taken;
    }
    const Clock::time_point now = Clock::now();
    if (round.closing || now - last_write >= interval || round.flush_wanted ||
        writer_->buffered_records() >= wake_threshold_) {
      writer_->WriteAll();
      last_write = now;
    }
    writer_->FinishOldFiles(Now());
    if (emptied) {
      std::lock_guard<std::mutex> lock(signals_.mu());
      signals_.FlushedLocked(round.flush_gen);
    }
    if (round.closing && pending_.load() == 0) break;
  }
  writer_->CloseAll();
  signals_.WriterExited();
}

void PredictionLog::Flush() { signals_.Flush(); }

void PredictionLog::Close() {
  std::call_once(close_once_, [this] {
    closed_.store(true);
    signals_.Close();
    thread_.join();
  });
}

PredictionLogStats PredictionLog::Stats() const {
  return writer_->Stats(dropped_.load(std::memory_order_relaxed));
}

}  // namespace flywheel::monitor
