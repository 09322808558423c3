// A fixed pool of worker threads for intra-op parallelism. ParallelFor splits a range into chunks
// that the calling thread and the workers take in turn; several threads may call ParallelFor on
// one pool at the same time.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"

namespace flywheel {

class ThreadPool {
 public:
  // `num_threads` is the total parallelism, the caller included: num_threads - 1 workers start.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) on disjoint chunks covering [0, n), each at least `grain` long (the last
  // may be shorter), and returns when all are done. Runs inline when one chunk suffices.
  void ParallelFor(int64_t n, int64_t grain, absl::FunctionRef<void(int64_t, int64_t)> fn);

 private:
  struct Job;
  void WorkerLoop();
  static void RunChunks(Job& job);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Job*> jobs_;  // open jobs with chunks left; guarded by mu_
  std::atomic<uint64_t> generation_{0};
  bool stop_ = false;  // guarded by mu_
};

}  // namespace flywheel
