#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>

namespace flywheel {

struct ThreadPool::Job {
  Job(int64_t n, int64_t chunk, absl::FunctionRef<void(int64_t, int64_t)> fn)
      : n(n), chunk(chunk), fn(fn) {}
  const int64_t n;
  const int64_t chunk;
  absl::FunctionRef<void(int64_t, int64_t)> fn;
  std::atomic<int64_t> next{0};
  std::atomic<int> workers_inside{0};
};

ThreadPool::ThreadPool(int num_threads) {
  jobs_.reserve(64);
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::RunChunks(Job& job) {
  for (;;) {
    int64_t begin = job.next.fetch_add(job.chunk, std::memory_order_relaxed);
    if (begin >= job.n) return;
    job.fn(begin, std::min(begin + job.chunk, job.n));
  }
}

void ThreadPool::ParallelFor(int64_t n, int64_t grain,
                             absl::FunctionRef<void(int64_t, int64_t)> fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  int64_t max_chunks = std::min<int64_t>((n + grain - 1) / grain, num_threads());
  if (max_chunks <= 1 || workers_.empty()) {
    fn(0, n);
    return;
  }
  // Twice as many chunks as threads evens out uneven chunk costs without much overhead.
  int64_t chunks = std::min<int64_t>((n + grain - 1) / grain, 2 * num_threads());
  Job job(n, (n + chunks - 1) / chunks, fn);
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(&job);
  }
  generation_.fetch_add(1, std::memory_order_release);
  cv_.notify_all();
  RunChunks(job);
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.erase(std::find(jobs_.begin(), jobs_.end(), &job));
  }
  // No worker can enter the job now; wait for those inside to finish their chunks.
  while (job.workers_inside.load(std::memory_order_acquire) != 0) std::this_thread::yield();
}

void ThreadPool::WorkerLoop() {
  uint64_t seen = generation_.load(std::memory_order_acquire);
  for (;;) {
    // Spin briefly before sleeping: model runs issue many short ParallelFor calls back to back,
    // and a condition-variable wake-up costs more than most of them.
    auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
    while (generation_.load(std::memory_order_acquire) == seen &&
           std::chrono::steady_clock::now() < spin_until) {
    }
    Job* job = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto open_job = [&]() -> Job* {
        for (Job* j : jobs_) {
          if (j->next.load(std::memory_order_relaxed) < j->n) return j;
        }
        return nullptr;
      };
      cv_.wait(lock, [&] { return stop_ || (job = open_job()) != nullptr; });
      if (stop_) return;
      seen = generation_.load(std::memory_order_acquire);
      if (job != nullptr) job->workers_inside.fetch_add(1, std::memory_order_acq_rel);
    }
    if (job == nullptr) continue;
    RunChunks(*job);
    job->workers_inside.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace flywheel
