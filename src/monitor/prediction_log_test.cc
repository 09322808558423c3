#include "monitor/prediction_log.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "monitor/log_files.h"
#include "monitor/log_test_util.h"

namespace flywheel::monitor {
namespace {

using testing_util::FakeClock;
using testing_util::Fp32;
using testing_util::LogFiles;
using testing_util::MakeRecord;
using testing_util::ReadAll;
using testing_util::TempDir;

const absl::Time kStart = absl::FromUnixSeconds(1714564800);  // 2024-05-01T12:00:00Z

std::unique_ptr<PredictionLog> MustCreate(PredictionLogOptions options) {
  auto log = PredictionLog::Create(std::move(options));
  EXPECT_TRUE(log.ok()) << log.status();
  return log.ok() ? *std::move(log) : nullptr;
}

TEST(PredictionLogTest, RecordsComeBackInTimeOrderWithTheirContent) {
  TempDir dir;
  // One frame: the reader orders by time within a frame (across frames, file order).
  auto log = MustCreate({.dir = dir.path(), .flush_interval = absl::Hours(1)});
  for (int i = 0; i < 20; ++i) {
    // Submitted out of time order; read back in time order.
    const int k = (i * 7) % 20;
    ASSERT_TRUE(log->Submit(MakeRecord("rank", 1, k, kStart + absl::Seconds(k))));
  }
  log->Close();
  EXPECT_EQ(log->Stats().written, 20);
  EXPECT_EQ(log->Stats().queued, 0);
  const auto read = ReadAll(dir.path());
  ASSERT_EQ(read.entries.size(), 20u);
  for (int k = 0; k < 20; ++k) {
    EXPECT_EQ(read.entries[k].time, kStart + absl::Seconds(k));
    EXPECT_EQ(read.entries[k].model, "rank");
    EXPECT_EQ(read.entries[k].version, 1);
    EXPECT_NE(read.entries[k].line.find("\"id\":\"req-" + std::to_string(k) + "\""),
              std::string::npos);
  }
  const auto files = LogFiles(dir.path());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(std::filesystem::path(files[0]).parent_path(),
            std::filesystem::path(dir.path()) / "rank" / "1");
}

TEST(PredictionLogTest, SubmitStampsUnsetTimesWithTheClock) {
  TempDir dir;
  FakeClock clock(kStart);
  auto log = MustCreate({.dir = dir.path(), .clock = [&] { return clock.Now(); }});
  ASSERT_TRUE(log->Submit(MakeRecord("m", 1, 0)));
  log->Close();
  const auto read = ReadAll(dir.path());
  ASSERT_EQ(read.entries.size(), 1u);
  EXPECT_EQ(read.entries[0].time, kStart);
}

TEST(PredictionLogTest, RotatesBySize) {
  TempDir dir;
  // One record per frame, and a file holds one frame: one file per record.
  auto log = MustCreate({.dir = dir.path(), .max_file_bytes = 1, .frame_bytes = 1});
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(log->Submit(MakeRecord("m", 2, i, kStart)));
  log->Close();
  EXPECT_EQ(LogFiles(dir.path()).size(), 12u);
  EXPECT_EQ(log->Stats().files_opened, 12);
  const auto read = ReadAll(dir.path());
  ASSERT_EQ(read.entries.size(), 12u);
  // Equal times keep file order, which is write order.
  for (int i = 0; i < 12; ++i) {
    EXPECT_NE(read.entries[i].line.find("\"id\":\"req-" + std::to_string(i) + "\""),
              std::string::npos)
        << i;
  }
}

TEST(PredictionLogTest, LargerFilesHoldManyFrames) {
  TempDir dir;
  auto log = MustCreate({.dir = dir.path(), .max_file_bytes = 1 << 20, .frame_bytes = 1});
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(log->Submit(MakeRecord("m", 2, i, kStart)));
  log->Close();
  EXPECT_EQ(LogFiles(dir.path()).size(), 1u);
  const auto read = ReadAll(dir.path());
  EXPECT_EQ(read.entries.size(), 12u);
  EXPECT_EQ(read.stats.frames, 12);
}

TEST(PredictionLogTest, RotatesByAge) {
  TempDir dir;
  FakeClock clock(kStart);
  auto log = MustCreate(
      {.dir = dir.path(), .max_file_age = absl::Hours(1), .clock = [&] { return clock.Now(); }});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(log->Submit(MakeRecord("m", 1, i)));
  log->Flush();
  clock.Advance(absl::Minutes(59));
  ASSERT_TRUE(log->Submit(MakeRecord("m", 1, 3)));
  log->Flush();
  EXPECT_EQ(LogFiles(dir.path()).size(), 1u);  // not yet an hour old
  clock.Advance(absl::Minutes(2));
  log->Flush();  // the file is an hour old: finished
  for (int i = 4; i < 6; ++i) ASSERT_TRUE(log->Submit(MakeRecord("m", 1, i)));
  log->Close();
  const auto files = LogFiles(dir.path());
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(std::filesystem::path(files[0]).filename().string(), LogFileName(kStart, 0));
  auto second = ParseLogFileName(std::filesystem::path(files[1]).filename().string());
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->start, kStart + absl::Minutes(61));
  EXPECT_EQ(ReadAll(dir.path()).entries.size(), 6u);
}

TEST(PredictionLogTest, FullQueueDropsAndCountsWhileTheWriterIsBlocked) {
  TempDir dir;
  absl::Notification release;
  auto log =
      MustCreate({.dir = dir.path(), .queue_capacity = 8, .before_write = [&](const std::string&) {
                    release.WaitForNotification();
                    return absl::OkStatus();
                  }});
  int accepted = 0;
  for (int i = 0; i < 20; ++i) accepted += log->Submit(MakeRecord("m", 1, i)) ? 1 : 0;
  // No write can finish while the disk is stuck, so exactly the capacity is accepted.
  EXPECT_EQ(accepted, 8);
  EXPECT_EQ(log->Stats().dropped, 12);
  EXPECT_EQ(log->Stats().queued, 8);
  release.Notify();
  log->Close();
  EXPECT_EQ(log->Stats().written, 8);
  EXPECT_EQ(log->Stats().queued, 0);
  EXPECT_EQ(ReadAll(dir.path()).entries.size(), 8u);
}

TEST(PredictionLogTest, CloseDrainsEverythingAndRefusesMore) {
  TempDir dir;
  // Nothing would be written for an hour but for Close.
  auto log =
      MustCreate({.dir = dir.path(), .queue_capacity = 100000, .flush_interval = absl::Hours(1)});
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(log->Submit(MakeRecord("m", 1, i)));
  log->Close();
  EXPECT_EQ(log->Stats().written, 1000);
  EXPECT_FALSE(log->Submit(MakeRecord("m", 1, 0)));
  EXPECT_EQ(log->Stats().dropped, 1);
  log->Close();  // again: nothing happens
  EXPECT_EQ(ReadAll(dir.path()).entries.size(), 1000u);
}

TEST(PredictionLogTest, FlushWritesWhatWasAccepted) {
  TempDir dir;
  auto log = MustCreate({.dir = dir.path(), .flush_interval = absl::Hours(1)});
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(log->Submit(MakeRecord("m", 1, i)));
  log->Flush();
  EXPECT_EQ(log->Stats().written, 10);
  EXPECT_EQ(ReadAll(dir.path()).entries.size(), 10u);  // readable while the log is open
}

TEST(PredictionLogTest, InjectedWriteErrorIsCountedAndTheLogGoesOn) {
  TempDir dir;
  std::atomic<int> failures_left{1};
  auto log = MustCreate({.dir = dir.path(),
                         .flush_interval = absl::Hours(1),
                         .before_write = [&](const std::string&) {
                           return failures_left.fetch_sub(1) > 0
                                      ? absl::ResourceExhaustedError("No space left on device")
                                      : absl::OkStatus();
                         }});
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(log->Submit(MakeRecord("m", 1, i)));
  log->Flush();
  EXPECT_EQ(log->Stats().failed, 5);
  EXPECT_EQ(log->Stats().write_errors, 1);
  EXPECT_EQ(log->Stats().written, 0);
  for (int i = 5; i < 8; ++i) ASSERT_TRUE(log->Submit(MakeRecord("m", 1, i)));
  log->Close();
  EXPECT_EQ(log->Stats().written, 3);
  EXPECT_EQ(ReadAll(dir.path()).entries.size(), 3u);
}

TEST(PredictionLogTest, UnwritableFolderIsCountedThenRecovers) {
  TempDir dir;
  auto log = MustCreate({.dir = dir.path()});
  // A file where the model's folder should be: every write for it fails.
  std::ofstream(std::filesystem::path(dir.path()) / "m") << "in the way";
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(log->Submit(MakeRecord("m", 1, i)));
  ASSERT_TRUE(log->Submit(MakeRecord("other", 1, 9)));
  log->Flush();
  EXPECT_EQ(log->Stats().failed, 4);
  EXPECT_GE(log->Stats().write_errors, 1);
  EXPECT_EQ(log->Stats().written, 1);  // other models are unaffected
  std::filesystem::remove(std::filesystem::path(dir.path()) / "m");
  ASSERT_TRUE(log->Submit(MakeRecord("m", 1, 5)));
  log->Close();
  EXPECT_EQ(log->Stats().written, 2);
  EXPECT_EQ(ReadAll(dir.path()).entries.size(), 2u);
}

TEST(PredictionLogTest, ViewsAreCopiedWithoutKeepAlive) {
  TempDir dir;
  auto log = MustCreate({.dir = dir.path(), .flush_interval = absl::Hours(1)});
  float buffer[2] = {1.5f, 2.5f};
  PredictionRecord r = MakeRecord("m", 1, 0);
  r.inputs.emplace_back("view", Tensor::View(DataType::kFp32, Shape{2}, buffer));
  ASSERT_TRUE(log->Submit(std::move(r)));
  buffer[0] = buffer[1] = -1;  // the request is answered, its body reused
  log->Close();
  const auto read = ReadAll(dir.path());
  ASSERT_EQ(read.entries.size(), 1u);
  auto record = ParseRecordJson(read.entries[0].line);
  ASSERT_TRUE(record.ok()) << record.status();
  ASSERT_EQ(record->inputs.size(), 2u);
  const Tensor& view = record->inputs[1].second;
  EXPECT_EQ(view.data<float>()[0], 1.5f);
  EXPECT_EQ(view.data<float>()[1], 2.5f);
}

TEST(PredictionLogTest, RecordsWithoutModelAreDropped) {
  TempDir dir;
  auto log = MustCreate({.dir = dir.path()});
  EXPECT_FALSE(log->Submit(MakeRecord("", 1, 0)));
  EXPECT_EQ(log->Stats().dropped, 1);
}

TEST(PredictionLogTest, BadOptionsAreRefused) {
  TempDir dir;
  EXPECT_FALSE(PredictionLog::Create({}).ok());
  EXPECT_FALSE(PredictionLog::Create({.dir = dir.path(), .queue_capacity = 0}).ok());
  EXPECT_FALSE(
      PredictionLog::Create({.dir = dir.path(), .max_file_age = absl::ZeroDuration()}).ok());
  EXPECT_FALSE(PredictionLog::Create({.dir = dir.path(), .zstd_level = 99}).ok());
  const std::string file = dir.path() + "/file";
  std::ofstream(file) << "x";
  auto status = PredictionLog::Create({.dir = file}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
}

TEST(PredictionLogTest, ConcurrentProducersLoseNothingThatWasAccepted) {
  TempDir dir;
  auto log = MustCreate({.dir = dir.path(), .queue_capacity = 512, .frame_bytes = 4096});
  constexpr int kThreads = 8;
  constexpr int kPerThread = 3000;
  std::atomic<int64_t> accepted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string model = "model" + std::to_string((t + i) % 3);
        if (log->Submit(MakeRecord(model, t % 2, i))) accepted.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  log->Close();
  const PredictionLogStats stats = log->Stats();
  EXPECT_EQ(stats.written, accepted.load());
  EXPECT_EQ(stats.written + stats.dropped, kThreads * kPerThread);
  EXPECT_EQ(stats.failed, 0);
  EXPECT_GT(stats.bytes_written, 0);
  EXPECT_EQ(static_cast<int64_t>(ReadAll(dir.path()).entries.size()), accepted.load());
}

}  // namespace
}  // namespace flywheel::monitor
