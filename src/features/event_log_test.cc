#include "features/event_log.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "features/redis_test_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flywheel::features {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

// 2023-11-14 22:13:20 UTC.
const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

LoggedEvent At(absl::Duration offset, std::string json) { return {kT0 + offset, std::move(json)}; }

class EventLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("flywheel-event-log");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::unique_ptr<EventLog> Open(EventLogOptions options = {}) {
    options.dir = dir_;
    auto log = EventLog::Open(options);
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? std::move(log).value() : nullptr;
  }

  std::vector<EventLogEntry> ReadAll(std::vector<std::string> sources,
                                     absl::Time from = absl::InfinitePast(),
                                     absl::Time to = absl::InfiniteFuture()) {
    auto events = ReadEventLog(dir_, std::move(sources), from, to);
    EXPECT_TRUE(events.ok()) << events.status();
    return events.ok() ? *events : std::vector<EventLogEntry>();
  }

  std::vector<std::string> Files() const {
    std::vector<std::string> files;
    for (const auto& item : fs::recursive_directory_iterator(dir_)) {
      if (item.is_regular_file()) files.push_back(fs::relative(item.path(), dir_).string());
    }
    std::sort(files.begin(), files.end());
    return files;
  }

  std::string dir_;
};

std::vector<std::string> Jsons(const std::vector<EventLogEntry>& events) {
  std::vector<std::string> out;
  for (const EventLogEntry& e : events) out.push_back(absl::StrCat(e.source, ":", e.json));
  return out;
}

TEST_F(EventLogTest, RoundTripInEventTimeOrderAcrossFilesAndSources) {
  auto log = Open();
  ASSERT_NE(log, nullptr);
  // Out of order within a batch, across batches, across hours and across sources.
  ASSERT_TRUE(
      log->Append("clicks", {At(absl::Minutes(50), R"({"n":3})"),
                             At(absl::Minutes(1), R"({"n":1})"), At(absl::Hours(2), R"({"n":5})")})
          .ok());
  ASSERT_TRUE(log->Append("views",
                          {At(absl::Minutes(1), R"({"v":1})"), At(absl::Minutes(30), R"({"v":2})")})
                  .ok());
  ASSERT_TRUE(log->Append("clicks", {At(absl::Minutes(30), R"({"n":2})"),
                                     At(absl::Minutes(70), R"({"n":4})")})
                  .ok());
  auto events = ReadAll({"clicks", "views"});
  // Equal times: the order of the sources asked for, then append order.
  EXPECT_THAT(
      Jsons(events),
      ElementsAre(R"(clicks:{"n":1})", R"(views:{"v":1})", R"(clicks:{"n":2})", R"(views:{"v":2})",
                  R"(clicks:{"n":3})", R"(clicks:{"n":4})", R"(clicks:{"n":5})"));
  EXPECT_EQ(events[0].time, kT0 + absl::Minutes(1));
  EXPECT_EQ(events[6].time, kT0 + absl::Hours(2));
  EXPECT_THAT(Jsons(ReadAll({"views", "clicks"}))[0], R"(views:{"v":1})");
  EXPECT_THAT(Jsons(ReadAll({"views"})), ElementsAre(R"(views:{"v":1})", R"(views:{"v":2})"));
}

TEST_F(EventLogTest, PartitionsFilesByUtcHour) {
  auto log = Open();
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->Append("clicks",
                          {At(absl::ZeroDuration(), "{}"), At(absl::Minutes(47), "{}"),  // 23:00:20
                           At(absl::Hours(2), "{}")})  // 00:13:20 next day
                  .ok());
  ASSERT_TRUE(log->Append("clicks", {At(absl::Minutes(1), "{}")}).ok());
  EXPECT_THAT(Files(), ElementsAre("clicks/2023-11-14/22-000000.jsonl.zst",
                                   "clicks/2023-11-14/23-000000.jsonl.zst",
                                   "clicks/2023-11-15/00-000000.jsonl.zst"));
  // Another writer (a restarted process) starts new files beside the old ones.
  log.reset();
  log = Open();
  ASSERT_TRUE(log->Append("clicks", {At(absl::Minutes(2), "{\"again\":1}")}).ok());
  EXPECT_TRUE(fs::exists(fs::path(dir_) / "clicks/2023-11-14/22-000001.jsonl.zst"));
  EXPECT_EQ(ReadAll({"clicks"}).size(), 5u);
}

TEST_F(EventLogTest, ReadsAHalfOpenTimeRange) {
  auto log = Open();
  ASSERT_NE(log, nullptr);
  std::vector<LoggedEvent> events;
  for (int m = 0; m < 180; m += 10) events.push_back(At(absl::Minutes(m), absl::StrCat(m)));
  ASSERT_TRUE(log->Append("s", events).ok());
  auto range = ReadAll({"s"}, kT0 + absl::Minutes(40), kT0 + absl::Minutes(100));
  EXPECT_THAT(Jsons(range), ElementsAre("s:40", "s:50", "s:60", "s:70", "s:80", "s:90"));
  EXPECT_TRUE(ReadAll({"s"}, kT0 + absl::Minutes(100), kT0 + absl::Minutes(100)).empty());
  EXPECT_TRUE(ReadAll({"s"}, kT0 + absl::Hours(9), kT0 + absl::Hours(10)).empty());
  EXPECT_TRUE(ReadAll({"never-written"}).empty());
}

TEST_F(EventLogTest, KeepsJsonTextOnOneLine) {
  auto log = Open();
  ASSERT_NE(log, nullptr);
  const std::string pretty = "{\n  \"text\": \"caf\xc3\xa9 } \\n {\",\r\n  \"n\": [1, 2]\n}";
  ASSERT_TRUE(log->Append("s", {At(absl::Microseconds(7), pretty)}).ok());
  auto events = ReadAll({"s"});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].json, "{   \"text\": \"caf\xc3\xa9 } \\n {\",    \"n\": [1, 2] }");
  EXPECT_EQ(events[0].time, kT0 + absl::Microseconds(7));
}

TEST_F(EventLogTest, ToleratesACutShortLastFrame) {
  auto log = Open();
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->Append("s", {At(absl::Seconds(1), "1"), At(absl::Seconds(2), "2")}).ok());
  const fs::path file = fs::path(dir_) / "s/2023-11-14/22-000000.jsonl.zst";
  const auto first_frame = fs::file_size(file);
  ASSERT_TRUE(log->Append("s", {At(absl::Seconds(3), "3")}).ok());
  log.reset();

  fs::resize_file(file, fs::file_size(file) - 3);
  auto reader = EventLogReader::Open(dir_, {"s"}, absl::InfinitePast(), absl::InfiniteFuture());
  ASSERT_TRUE(reader.ok());
  std::vector<std::string> seen;
  EventLogEntry entry;
  while (*(*reader)->Next(&entry)) seen.push_back(entry.json);
  EXPECT_THAT(seen, ElementsAre("1", "2"));
  EXPECT_THAT((*reader)->truncated_files(), ElementsAre(file.string()));

  // Cut inside the first frame: nothing complete is left.
  fs::resize_file(file, first_frame / 2);
  EXPECT_TRUE(ReadAll({"s"}).empty());

  // Zeros after complete frames (a crash after the file grew, before the data landed).
  fs::remove(file);
  log = Open();
  ASSERT_TRUE(log->Append("s", {At(absl::Seconds(1), "1")}).ok());
  log.reset();
  const fs::path next = fs::path(dir_) / "s/2023-11-14/22-000000.jsonl.zst";
  {
    std::ofstream out(next, std::ios::binary | std::ios::app);
    out << std::string(100, '\0');
  }
  EXPECT_THAT(Jsons(ReadAll({"s"})), ElementsAre("s:1"));
}

TEST_F(EventLogTest, DamageBeforeTheLastFrameIsDataLoss) {
  auto log = Open();
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->Append("s", {At(absl::Seconds(1), R"({"first":true})")}).ok());
  const fs::path file = fs::path(dir_) / "s/2023-11-14/22-000000.jsonl.zst";
  const auto first_frame = fs::file_size(file);
  ASSERT_TRUE(log->Append("s", {At(absl::Seconds(2), R"({"second":true})")}).ok());
  log.reset();
  {
    // Flip a byte of the first frame's checksum (its last 4 bytes).
    std::fstream io(file, std::ios::binary | std::ios::in | std::ios::out);
    io.seekg(static_cast<std::streamoff>(first_frame - 2));
    char c = 0;
    io.get(c);
    io.seekp(static_cast<std::streamoff>(first_frame - 2));
    io.put(static_cast<char>(c ^ 0x5a));
  }
  auto events = ReadEventLog(dir_, {"s"}, absl::InfinitePast(), absl::InfiniteFuture());
  ASSERT_FALSE(events.ok());
  EXPECT_EQ(events.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(events.status().message(), HasSubstr(file.string()));
  EXPECT_THAT(events.status().message(), HasSubstr("byte 0"));
}

TEST_F(EventLogTest, ExplainsBadInput) {
  auto log = Open();
  ASSERT_NE(log, nullptr);
  for (const char* source : {"", ".hidden", "a/b", "..", "sp ace"}) {
    auto s = log->Append(source, {At(absl::ZeroDuration(), "{}")});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << source;
  }
  auto empty = log->Append("s", {At(absl::ZeroDuration(), "{}"), At(absl::ZeroDuration(), " \n")});
  EXPECT_EQ(empty.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.message(), HasSubstr("event 1 of 2"));
  EXPECT_TRUE(ReadAll({"s"}).empty());  // nothing of the rejected batch was written
  EXPECT_TRUE(log->Append("s", {}).ok());
  auto far = log->Append("s", {{absl::InfiniteFuture(), "{}"}});
  EXPECT_EQ(far.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(far.message(), HasSubstr("outside the years"));

  EventLogOptions bad;
  bad.dir = dir_;
  bad.compression_level = 99;
  EXPECT_EQ(EventLog::Open(bad).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EventLog::Open(EventLogOptions{}).status().code(), absl::StatusCode::kInvalidArgument);
  auto missing =
      ReadEventLog(dir_ + "/missing", {"s"}, absl::InfinitePast(), absl::InfiniteFuture());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr(dir_ + "/missing"));
  EXPECT_EQ(
      ReadEventLog(dir_, {"../etc"}, absl::InfinitePast(), absl::InfiniteFuture()).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST_F(EventLogTest, ConcurrentAppendsAllArrive) {
  auto log = Open();
  ASSERT_NE(log, nullptr);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < 25; ++b) {
        std::vector<LoggedEvent> batch;
        for (int i = 0; i < 4; ++i) {
          // Spread over two hours so threads share files.
          batch.push_back(At(absl::Seconds((t * 977 + b * 131 + i * 37) % 7200),
                             absl::StrCat(R"({"t":)", t, R"(,"b":)", b, R"(,"i":)", i, "}")));
        }
        if (!log->Append(t % 2 == 0 ? "even" : "odd", batch).ok()) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  auto events = ReadAll({"even", "odd"});
  ASSERT_EQ(events.size(), 8u * 25 * 4);
  EXPECT_TRUE(std::is_sorted(events.begin(), events.end(),
                             [](const auto& a, const auto& b) { return a.time < b.time; }));
  std::set<std::string> unique;
  for (const auto& e : events) unique.insert(e.json);
  EXPECT_EQ(unique.size(), events.size());
}

TEST_F(EventLogTest, FewOpenFilesAndNoSync) {
  EventLogOptions options;
  options.sync = false;
  options.max_open_files = 1;
  auto log = Open(options);
  ASSERT_NE(log, nullptr);
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(log->Append("s", {At(absl::Hours(i % 2), absl::StrCat(i))}).ok());
  }
  // Every reopen of an hour started a new file; all of them are read.
  EXPECT_EQ(Files().size(), 6u);
  EXPECT_THAT(Jsons(ReadAll({"s"})), ElementsAre("s:0", "s:2", "s:4", "s:1", "s:3", "s:5"));
}

TEST_F(EventLogTest, TimesBeforeTheEpoch) {
  auto log = Open();
  ASSERT_NE(log, nullptr);
  const absl::Time before = absl::FromUnixMicros(-1);
  ASSERT_TRUE(log->Append("s", {{before, "\"old\""}, {absl::UnixEpoch(), "\"epoch\""}}).ok());
  EXPECT_TRUE(fs::exists(fs::path(dir_) / "s/1969-12-31/23-000000.jsonl.zst"));
  auto events = ReadAll({"s"}, before, absl::UnixEpoch() + absl::Seconds(1));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].time, before);
  EXPECT_EQ(events[0].json, "\"old\"");
}

}  // namespace
}  // namespace flywheel::features
