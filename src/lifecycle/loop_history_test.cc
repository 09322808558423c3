#include "lifecycle/loop_history.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flywheel::lifecycle {
namespace {

using ::testing::HasSubstr;

class LoopHistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = std::filesystem::path(::testing::TempDir()) /
            absl::StrCat("loop_history_test_", ::getpid(), "_",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(repo_);
    std::filesystem::create_directories(repo_ / "fraud");
  }
  void TearDown() override { std::filesystem::remove_all(repo_); }

  static LoopEvent Event(int64_t run, const std::string& step, const std::string& status) {
    LoopEvent e;
    e.time = absl::FromUnixMicros(1714564801500123);  // 2024-05-01T12:00:01.500123Z
    e.loop = "fraud-retrain";
    e.model = "fraud";
    e.run = run;
    e.step = step;
    e.status = status;
    return e;
  }

  std::filesystem::path repo_;
};

TEST_F(LoopHistoryTest, PathFor) {
  EXPECT_EQ(LoopHistory::PathFor("/models", "fraud", "fraud-retrain"),
            "/models/fraud/.flywheel/loop-fraud-retrain.jsonl");
  EXPECT_EQ(LoopHistory::PathFor("/models/", "fraud", "x"), "/models/fraud/.flywheel/loop-x.jsonl");
}

TEST_F(LoopHistoryTest, JsonRoundTrip) {
  LoopEvent e = Event(7, "evaluate", "ok");
  e.detail = "candidate 0.91 vs champion 0.89 \"quoted\"\nnext line";
  e.champion = 3;
  e.candidate = 4;
  e.figures = {{"rows_train", 1200}, {"champion_auc", 0.89}, {"candidate_auc", 0.9125}};
  const std::string json = LoopEventToJson(e);
  EXPECT_EQ(json.find('\n'), std::string::npos);
  EXPECT_THAT(json, HasSubstr("\"time\":\"2024-05-01T12:00:01.500123Z\""));
  absl::StatusOr<LoopEvent> back = ParseLoopEvent(json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->time, e.time);
  EXPECT_EQ(back->loop, e.loop);
  EXPECT_EQ(back->model, e.model);
  EXPECT_EQ(back->run, 7);
  EXPECT_EQ(back->step, "evaluate");
  EXPECT_EQ(back->status, "ok");
  EXPECT_EQ(back->detail, e.detail);
  EXPECT_EQ(back->champion, 3);
  EXPECT_EQ(back->candidate, 4);
  EXPECT_EQ(back->figures, e.figures);
}

TEST_F(LoopHistoryTest, NonFiniteFiguresAreLeftOut) {
  LoopEvent e = Event(1, "gate", "failed");
  e.figures = {{"nan", std::nan("")}, {"ok", 1.5}};
  absl::StatusOr<LoopEvent> back = ParseLoopEvent(LoopEventToJson(e));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->figures, (std::map<std::string, double>{{"ok", 1.5}}));
}

TEST_F(LoopHistoryTest, ParseErrorsNameTheField) {
  EXPECT_FALSE(ParseLoopEvent("{\"time\":").ok());
  EXPECT_FALSE(ParseLoopEvent("[]").ok());
  absl::StatusOr<LoopEvent> e = ParseLoopEvent(
      R"({"time":"yesterday","loop":"l","model":"m","run":1,"step":"train","status":"ok"})");
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.status().message(), HasSubstr("'time'"));
  e = ParseLoopEvent(R"({"time":"2024-05-01T12:00:00Z","loop":"l","model":"m","step":"train",
                       "status":"ok"})");
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.status().message(), HasSubstr("'run' is missing"));
  e = ParseLoopEvent(R"({"time":"2024-05-01T12:00:00Z","loop":"l","model":"m","run":"1",
                       "step":"train","status":"ok"})");
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.status().message(), HasSubstr("'run' is not an integer"));
}

TEST_F(LoopHistoryTest, AppendReadAndLastRun) {
  LoopHistory history(LoopHistory::PathFor(repo_.string(), "fraud", "fraud-retrain"));
  absl::StatusOr<LoopHistory::ReadResult> empty = history.Read();
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->events.empty());
  EXPECT_EQ(*history.LastRun(), 0);

  ASSERT_TRUE(history.Append(Event(1, "trigger", "ok")).ok());
  ASSERT_TRUE(history.Append(Event(1, "done", "ok")).ok());
  ASSERT_TRUE(history.Append(Event(2, "trigger", "ok")).ok());
  EXPECT_TRUE(std::filesystem::is_directory(repo_ / "fraud" / ".flywheel"));

  absl::StatusOr<LoopHistory::ReadResult> read = history.Read();
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->events.size(), 3u);
  EXPECT_EQ(read->bad_lines, 0);
  EXPECT_EQ(read->events[1].step, "done");
  EXPECT_EQ(read->events[2].run, 2);
  EXPECT_EQ(*history.LastRun(), 2);
}

TEST_F(LoopHistoryTest, TornLastLineIsSkippedAndCounted) {
  LoopHistory history(LoopHistory::PathFor(repo_.string(), "fraud", "l"));
  ASSERT_TRUE(history.Append(Event(1, "trigger", "ok")).ok());
  ASSERT_TRUE(history.Append(Event(2, "trigger", "ok")).ok());
  const std::string whole = LoopEventToJson(Event(3, "train", "started"));
  {
    std::ofstream out(history.path(), std::ios::app);
    out << whole.substr(0, whole.size() / 2);  // a crash mid-append
  }
  absl::StatusOr<LoopHistory::ReadResult> read = history.Read();
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->events.size(), 2u);
  EXPECT_EQ(read->bad_lines, 1);
  EXPECT_EQ(*history.LastRun(), 2);

  // The next append starts on a line of its own only if the torn one ended; the reader still
  // finds every complete line after it.
  {
    std::ofstream out(history.path(), std::ios::app);
    out << "\n";
  }
  ASSERT_TRUE(history.Append(Event(3, "trigger", "ok")).ok());
  read = history.Read();
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->events.size(), 3u);
  EXPECT_EQ(read->bad_lines, 1);
}

TEST_F(LoopHistoryTest, ConcurrentAppendsAreAllPresent) {
  LoopHistory history(LoopHistory::PathFor(repo_.string(), "fraud", "busy"));
  constexpr int kThreads = 8;
  constexpr int kEach = 25;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&history, t] {
      for (int i = 0; i < kEach; ++i) {
        LoopEvent e = Event(t * 1000 + i, "train", "ok");
        e.detail = std::string(300 + i, 'a' + t);  // long enough to expose interleaving
        EXPECT_TRUE(history.Append(e).ok());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  absl::StatusOr<LoopHistory::ReadResult> read = history.Read();
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->bad_lines, 0);
  ASSERT_EQ(read->events.size(), static_cast<size_t>(kThreads * kEach));
  std::set<int64_t> runs;
  for (const LoopEvent& e : read->events) {
    runs.insert(e.run);
    const int t = static_cast<int>(e.run / 1000);
    EXPECT_EQ(e.detail, std::string(300 + e.run % 1000, 'a' + t));
  }
  EXPECT_EQ(runs.size(), static_cast<size_t>(kThreads * kEach));
}

TEST_F(LoopHistoryTest, MissingModelFolderIsAnError) {
  LoopHistory history(LoopHistory::PathFor(repo_.string(), "absent", "l"));
  absl::Status s = history.Append(Event(1, "trigger", "ok"));
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("absent/.flywheel"));
  EXPECT_FALSE(std::filesystem::exists(repo_ / "absent"));
}

}  // namespace
}  // namespace flywheel::lifecycle
