#include "monitor/log_reader.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "monitor/log_test_util.h"
#include "monitor/prediction_log.h"

namespace flywheel::monitor {
namespace {

using testing_util::LogFiles;
using testing_util::MakeRecord;
using testing_util::ReadAll;
using testing_util::ReadResult;
using testing_util::TempDir;

const absl::Time kStart = absl::FromUnixSeconds(1714564800);  // 2024-05-01T12:00:00Z

// Writes `records` with one frame per record (so that damage can be aimed at one record).
void WriteLog(const std::string& dir, std::vector<PredictionRecord> records, size_t frame_bytes = 1,
              bool direct_io = true) {
  auto log =
      PredictionLog::Create({.dir = dir, .frame_bytes = frame_bytes, .direct_io = direct_io});
  ASSERT_TRUE(log.ok()) << log.status();
  for (auto& r : records) ASSERT_TRUE((*log)->Submit(std::move(r)));
  (*log)->Close();
}

std::vector<std::string> Ids(const ReadResult& read) {
  std::vector<std::string> ids;
  for (const LogEntry& e : read.entries) {
    const size_t begin = e.line.find("\"id\":\"") + 6;
    ids.push_back(e.line.substr(begin, e.line.find('"', begin) - begin));
  }
  return ids;
}

class LogReaderFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Three model versions whose records interleave in time: a/1 at 0,3,6.., a/2 at 1,4,7..,
    // b/1 at 2,5,8..
    std::vector<PredictionRecord> records;
    for (int i = 0; i < 12; ++i) {
      const char* model = i % 3 == 2 ? "b" : "a";
      const int version = i % 3 == 1 ? 2 : 1;
      records.push_back(
          MakeRecord(model, version, i, kStart + absl::Minutes(i),
                     std::string(model) + std::to_string(version) + "-" + std::to_string(i)));
    }
    WriteLog(dir_.path(), std::move(records), /*frame_bytes=*/1 << 20);
  }
  LogReaderOptions Options() {
    LogReaderOptions o;
    o.dir = dir_.path();
    return o;
  }
  TempDir dir_;
};

TEST_F(LogReaderFilterTest, MergesEveryStreamInTimeOrder) {
  const ReadResult read = ReadAll(Options());
  ASSERT_EQ(read.entries.size(), 12u);
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(read.entries[i].time, kStart + absl::Minutes(i));
    EXPECT_EQ(read.entries[i].model, i % 3 == 2 ? "b" : "a");
    EXPECT_EQ(read.entries[i].version, i % 3 == 1 ? 2 : 1);
  }
  EXPECT_EQ(read.stats.files, 3);
  EXPECT_EQ(read.stats.records, 12);
  EXPECT_EQ(read.stats.truncated_frames + read.stats.corrupt_frames + read.stats.bad_lines, 0);
}

TEST_F(LogReaderFilterTest, FiltersByModelVersionAndTime) {
  LogReaderOptions o = Options();
  o.model = "a";
  EXPECT_EQ(Ids(ReadAll(o)), (std::vector<std::string>{"a1-0", "a2-1", "a1-3", "a2-4", "a1-6",
                                                       "a2-7", "a1-9", "a2-10"}));
  o.version = 2;
  EXPECT_EQ(Ids(ReadAll(o)), (std::vector<std::string>{"a2-1", "a2-4", "a2-7", "a2-10"}));
  o.since = kStart + absl::Minutes(4);   // inclusive
  o.until = kStart + absl::Minutes(10);  // exclusive
  EXPECT_EQ(Ids(ReadAll(o)), (std::vector<std::string>{"a2-4", "a2-7"}));
  o = Options();
  o.version = 1;
  o.since = kStart + absl::Minutes(8);
  EXPECT_EQ(Ids(ReadAll(o)), (std::vector<std::string>{"b1-8", "a1-9", "b1-11"}));
  o = Options();
  o.model = "c";
  EXPECT_TRUE(ReadAll(o).entries.empty());
}

TEST_F(LogReaderFilterTest, IgnoresFilesAndFoldersThatAreNotTheLogs) {
  std::ofstream(dir_.path() + "/README") << "not a log";
  std::filesystem::create_directories(dir_.path() + "/a/latest");
  std::ofstream(dir_.path() + "/a/1/notes.txt") << "not a log";
  const ReadResult read = ReadAll(Options());
  EXPECT_EQ(read.entries.size(), 12u);
  EXPECT_EQ(read.stats.ignored_files, 1);
}

// Direct I/O pads every write to 4 KiB with a zstd skippable frame: the reader skips the
// padding without counting it, and a write torn by a kill reads as a truncated frame.
TEST(LogReaderTest, DirectIoPaddingIsSkippedAndATornWriteIsCounted) {
  TempDir dir;
  std::vector<PredictionRecord> records;
  for (int i = 0; i < 5; ++i) records.push_back(MakeRecord("m", 1, i, kStart));
  WriteLog(dir.path(), std::move(records), /*frame_bytes=*/1, /*direct_io=*/true);
  const auto files = LogFiles(dir.path());
  ASSERT_EQ(files.size(), 1u);
  const auto size = std::filesystem::file_size(files[0]);
  // One record a frame, each frame padded to a block of its own (the test folder is on a file
  // system with O_DIRECT, as the project's machines are; tmpfs would write unpadded).
  EXPECT_EQ(size, 5u * 4096u);
  ReadResult read = ReadAll(dir.path());
  EXPECT_EQ(Ids(read), (std::vector<std::string>{"req-0", "req-1", "req-2", "req-3", "req-4"}));
  EXPECT_EQ(read.stats.frames, 5);
  EXPECT_EQ(read.stats.truncated_frames, 0);
  EXPECT_TRUE(read.stats.problems.empty());
  // Keep only the first 100 bytes of the last block: the fifth frame is cut.
  std::filesystem::resize_file(files[0], 4u * 4096u + 100u);
  read = ReadAll(dir.path());
  EXPECT_EQ(Ids(read), (std::vector<std::string>{"req-0", "req-1", "req-2", "req-3"}));
  EXPECT_EQ(read.stats.frames, 4);
  EXPECT_EQ(read.stats.truncated_frames, 1);
}

TEST(LogReaderTest, MissingFolderIsAnError) {
  LogReaderOptions o;
  o.dir = "/nonexistent/flywheel/log";
  auto reader = LogReader::Open(o);
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.status().message().find("/nonexistent/flywheel/log"), std::string::npos);
}

TEST(LogReaderTest, TruncatedLastFrameIsSkippedAndCounted) {
  TempDir dir;
  std::vector<PredictionRecord> records;
  for (int i = 0; i < 5; ++i) records.push_back(MakeRecord("m", 1, i, kStart));
  // Buffered: the file ends with the last frame's bytes, not direct I/O's padding.
  WriteLog(dir.path(), std::move(records), /*frame_bytes=*/1, /*direct_io=*/false);
  const auto files = LogFiles(dir.path());
  ASSERT_EQ(files.size(), 1u);
  // Cut into the last of the five frames, as a kill -9 in the middle of a write would.
  const auto size = std::filesystem::file_size(files[0]);
  std::filesystem::resize_file(files[0], size - 3);
  const ReadResult read = ReadAll(dir.path());
  EXPECT_EQ(Ids(read), (std::vector<std::string>{"req-0", "req-1", "req-2", "req-3"}));
  EXPECT_EQ(read.stats.frames, 4);
  EXPECT_EQ(read.stats.truncated_frames, 1);
  EXPECT_GT(read.stats.skipped_bytes, 0);
  ASSERT_EQ(read.stats.problems.size(), 1u);
  EXPECT_NE(read.stats.problems[0].find("incomplete"), std::string::npos);
}

TEST(LogReaderTest, DamagedFrameIsSkippedAndTheRestRead) {
  TempDir dir;
  std::vector<PredictionRecord> records;
  for (int i = 0; i < 3; ++i) records.push_back(MakeRecord("m", 1, i, kStart));
  WriteLog(dir.path(), std::move(records));
  const std::string file = LogFiles(dir.path())[0];
  // Flip a byte in the middle of the first frame's compressed data: its checksum fails.
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(20);
  char c;
  f.get(c);
  f.seekp(20);
  f.put(static_cast<char>(c ^ 0x55));
  f.close();
  const ReadResult read = ReadAll(dir.path());
  EXPECT_EQ(Ids(read), (std::vector<std::string>{"req-1", "req-2"}));
  EXPECT_EQ(read.stats.corrupt_frames, 1);
}

TEST(LogReaderTest, GarbageAfterTheFramesEndsTheFile) {
  TempDir dir;
  std::vector<PredictionRecord> records;
  for (int i = 0; i < 2; ++i) records.push_back(MakeRecord("m", 1, i, kStart));
  WriteLog(dir.path(), std::move(records));
  const std::string file = LogFiles(dir.path())[0];
  std::ofstream(file, std::ios::app | std::ios::binary) << "this is not zstd at all";
  const ReadResult read = ReadAll(dir.path());
  EXPECT_EQ(read.entries.size(), 2u);
  EXPECT_EQ(read.stats.corrupt_frames, 1);
  EXPECT_EQ(read.stats.skipped_bytes, 23);
}

TEST(LogReaderTest, EmptyFileReadsAsNothing) {
  TempDir dir;
  WriteLog(dir.path(), {MakeRecord("m", 1, 0, kStart)});
  std::ofstream(dir.path() + "/m/1/20300101T000000.000000000Z-000000.jsonl.zst");
  const ReadResult read = ReadAll(dir.path());
  EXPECT_EQ(read.entries.size(), 1u);
  EXPECT_EQ(read.stats.files, 2);
  EXPECT_EQ(read.stats.truncated_frames, 0);
}

TEST(LogReaderTest, OldFilesAreNotReadForARecentSince) {
  TempDir dir;
  testing_util::FakeClock clock(kStart);
  {
    auto log =
        PredictionLog::Create({.dir = dir.path(), .max_file_age = absl::Minutes(30), .clock = [&] {
                                 return clock.Now();
                               }});
    ASSERT_TRUE(log.ok());
    for (int hour = 0; hour < 4; ++hour) {
      ASSERT_TRUE((*log)->Submit(MakeRecord("m", 1, hour)));
      (*log)->Flush();
      clock.Advance(absl::Hours(1));
      (*log)->Flush();  // finishes the file
    }
  }
  ASSERT_EQ(LogFiles(dir.path()).size(), 4u);
  LogReaderOptions o;
  o.dir = dir.path();
  o.since = kStart + absl::Minutes(150);
  const ReadResult read = ReadAll(o);
  EXPECT_EQ(Ids(read), (std::vector<std::string>{"req-3"}));
  EXPECT_EQ(read.stats.files, 2);  // the files started at 2:00 and 3:00
}

TEST(LogReaderTest, TimeArguments) {
  const absl::Time now = kStart;
  EXPECT_EQ(*ParseTimeArg("now", now), now);
  EXPECT_EQ(*ParseTimeArg("-1h", now), now - absl::Hours(1));
  EXPECT_EQ(*ParseTimeArg("-1h30m", now), now - absl::Minutes(90));
  EXPECT_EQ(*ParseTimeArg("-2d", now), now - absl::Hours(48));
  EXPECT_EQ(*ParseTimeArg("-1d12h", now), now - absl::Hours(36));
  EXPECT_EQ(*ParseTimeArg("+5m", now), now + absl::Minutes(5));
  EXPECT_EQ(*ParseTimeArg("2024-05-01T12:00:00Z", now), kStart);
  EXPECT_EQ(*ParseTimeArg("2024-05-01T14:00:00+02:00", now), kStart);
  EXPECT_EQ(*ParseTimeArg("2024-05-01", now), kStart - absl::Hours(12));
  for (const char* bad : {"", "-", "-1x", "-d", "-1.5d", "yesterday", "2024-05-01 12:00", "--1h"}) {
    EXPECT_FALSE(ParseTimeArg(bad, now).ok()) << bad;
  }
}

}  // namespace
}  // namespace flywheel::monitor
