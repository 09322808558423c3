// A process killed with SIGKILL while logging: its files read back, and what it lost is within
// the queue bound.
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "monitor/log_test_util.h"
#include "monitor/prediction_log.h"

namespace flywheel::monitor {
namespace {

using testing_util::MakeRecord;
using testing_util::ReadAll;
using testing_util::TempDir;

// Shared with the child: what it has told the parent so far.
struct Progress {
  std::atomic<int64_t> accepted;  // Submit calls that returned true
  std::atomic<int64_t> written;   // Stats().written, read after each Submit
};

constexpr int64_t kCapacity = 64;

[[noreturn]] void LogUntilKilled(const std::string& dir, Progress* progress) {
  auto log = PredictionLog::Create({.dir = dir,
                                    .max_file_bytes = 16 << 10,
                                    .queue_capacity = kCapacity,
                                    .flush_interval = absl::Milliseconds(1),
                                    .frame_bytes = 2048});
  if (!log.ok()) _exit(3);
  for (int64_t i = 0;; ++i) {
    if ((*log)->Submit(MakeRecord("m", 1, static_cast<float>(i)))) {
      progress->accepted.store(progress->accepted.load() + 1);
    }
    progress->written.store((*log)->Stats().written);
    if (i % 64 == 0) std::this_thread::yield();  // let the writer keep up, mostly
  }
}

TEST(LogCrashTest, KilledWriterLosesAtMostTheQueue) {
  TempDir dir;
  void* shared =
      mmap(nullptr, sizeof(Progress), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(shared, MAP_FAILED);
  auto* progress = new (shared) Progress{{0}, {0}};

  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) LogUntilKilled(dir.path(), progress);

  // Kill it mid-stream, after several files' worth of records.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (progress->written.load() < 5000 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the child exited by itself with status " << status;
  const int64_t accepted = progress->accepted.load();
  const int64_t written = progress->written.load();
  ASSERT_GE(written, 5000) << "the child wrote too little in 60 s";

  const auto read = ReadAll(dir.path());
  const int64_t readable = static_cast<int64_t>(read.entries.size());
  // Every record the log had reported written is in a complete frame. (`written` was published
  // after the log counted it, so the true count at the kill is at least this.)
  EXPECT_GE(readable, written);
  // Nothing is read that was not accepted: at most one accepted record was not yet published.
  EXPECT_LE(readable, accepted + 1);
  // The loss: records accepted but unwritten are never more than the queue capacity.
  EXPECT_LE(accepted - readable, kCapacity);
  EXPECT_EQ(read.stats.corrupt_frames, 0);
  EXPECT_EQ(read.stats.bad_lines, 0);
  EXPECT_LE(read.stats.truncated_frames, 1);  // only the frame being written at the kill
  EXPECT_GT(testing_util::LogFiles(dir.path()).size(), 1u);  // rotation happened while logging
  // Every record read is whole, and they come in submission order (one producer, so time order
  // too); ids skip only the records Submit dropped.
  int64_t last = -1;
  for (int64_t i = 0; i < readable; ++i) {
    const std::string& line = read.entries[i].line;
    const size_t at = line.find("\"id\":\"req-");
    ASSERT_NE(at, std::string::npos) << line;
    const int64_t id = std::stoll(line.substr(at + 10));
    ASSERT_GT(id, last) << "record " << i;
    last = id;
  }
  munmap(shared, sizeof(Progress));
}

}  // namespace
}  // namespace flywheel::monitor
