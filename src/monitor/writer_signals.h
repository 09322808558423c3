// The handshake between a log's callers and its writer thread, shared by the prediction log and
// the label log (internal to monitor/): early wake-ups, Flush() waiting until the writer has
// passed everything accepted before it, Close(), and the writer's exit.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace flywheel::monitor {

class WriterSignals {
 public:
  // What the writer was asked for when its wait ended.
  struct Round {
    uint64_t flush_gen = 0;     // pass to FlushedLocked once everything queued is written
    bool flush_wanted = false;  // a Flush() is waiting
    bool closing = false;       // Close() was called
  };

  // Guards the signals; a log may guard its own state with it too (the label log's queue).
  std::mutex& mu() { return mu_; }

  // Caller side, any thread. WakeLocked and closing_locked need mu() held.
  void WakeLocked() {
    wake_ = true;
    writer_cv_.notify_one();
  }
  bool closing_locked() const { return closing_; }
  // Blocks until the writer has finished a round that began after this call (or has exited).
  void Flush() {
    std::unique_lock<std::mutex> lock(mu_);
    const uint64_t gen = ++flush_requested_;
    writer_cv_.notify_one();
    flushed_cv_.wait(lock, [&] { return flush_done_ >= gen || writer_exited_; });
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
    writer_cv_.notify_one();
  }

  // Writer side. Waits, with `lock` holding mu(), until woken, a flush or close is asked for, or
  // `deadline`.
  Round WaitLocked(std::unique_lock<std::mutex>& lock,
                   std::chrono::steady_clock::time_point deadline) {
    if (!wake_ && !closing_ && flush_requested_ == flush_done_) {
      writer_cv_.wait_until(lock, deadline);
    }
    wake_ = false;
    return {flush_requested_, flush_requested_ != flush_done_, closing_};
  }
  // With mu() held: the flushes of `gen` and before are done.
  void FlushedLocked(uint64_t gen) {
    if (gen > flush_done_) {
      flush_done_ = gen;
      flushed_cv_.notify_all();
    }
  }
  // The writer thread is about to return: releases every Flush() still waiting.
  void WriterExited() {
    std::lock_guard<std::mutex> lock(mu_);
    writer_exited_ = true;
    flushed_cv_.notify_all();
  }

 private:
  // std::mutex rather than absl::Mutex: ThreadSanitizer sees through it (Debian's Abseil is not
  // built with TSan annotations), and it is off the request path anyway.
  std::mutex mu_;
  std::condition_variable writer_cv_;
  std::condition_variable flushed_cv_;
  // Guarded by mu_:
  bool wake_ = false;
  bool closing_ = false;
  uint64_t flush_requested_ = 0;
  uint64_t flush_done_ = 0;
  bool writer_exited_ = false;
};

}  // namespace flywheel::monitor
