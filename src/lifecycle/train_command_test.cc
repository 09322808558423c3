#include "lifecycle/train_command.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flywheel::lifecycle {
namespace {

using ::testing::HasSubstr;

class TrainCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat("train_command_test_", ::getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  TrainCommandOptions Shell(const std::string& script) {
    TrainCommandOptions o;
    o.argv = {"sh", "-c", script};
    o.log_path = (dir_ / "train.log").string();
    o.timeout = absl::Seconds(60);
    return o;
  }
  std::string ReadFile(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::filesystem::path dir_;
};

// True once `pid` is gone or a zombie (killed, not yet reaped by init).
bool ProcessEnded(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat) return true;
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const size_t paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() &&
         (text[paren + 2] == 'Z' || text[paren + 2] == 'X');
}

TEST_F(TrainCommandTest, ExitZeroWithOutputInTheLog) {
  absl::StatusOr<TrainCommandResult> r = RunTrainCommand(Shell("echo training; echo done >&2"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->signal, 0);
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(ReadFile(dir_ / "train.log"), "training\ndone\n");
  EXPECT_EQ(r->log_tail, "training\ndone\n");
}

TEST_F(TrainCommandTest, NonzeroExitIsAResult) {
  absl::StatusOr<TrainCommandResult> r = RunTrainCommand(Shell("echo 'bad input' >&2; exit 3"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->log_tail, "bad input\n");
}

TEST_F(TrainCommandTest, LogTailIsTheLastTwoKilobytes) {
  absl::StatusOr<TrainCommandResult> r =
      RunTrainCommand(Shell("i=0; while [ $i -lt 1000 ]; do echo line$i; i=$((i+1)); done"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LE(r->log_tail.size(), 2048u);
  EXPECT_GE(r->log_tail.size(), 2000u);
  EXPECT_TRUE(absl::EndsWith(r->log_tail, "line999\n"));
  EXPECT_GT(ReadFile(dir_ / "train.log").size(), 5000u);
}

TEST_F(TrainCommandTest, TimeoutKillsTheWholeProcessGroup) {
  const std::string pid_file = (dir_ / "child.pid").string();
  TrainCommandOptions o = Shell(absl::StrCat("sleep 60 & echo $! > ", pid_file, "; sleep 60"));
  o.timeout = absl::Seconds(1);
  absl::StatusOr<TrainCommandResult> r = RunTrainCommand(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->signal, SIGTERM);
  EXPECT_EQ(r->exit_code, -1);

  int child = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(pid_file)), &child));
  ASSERT_GT(child, 0);
  // The background sleep was in the group: it is killed too (reaped by init some time later).
  bool ended = false;
  for (int i = 0; i < 500 && !ended; ++i) {
    ended = ProcessEnded(child);
    if (!ended) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(ended) << "child " << child << " still running";
}

TEST_F(TrainCommandTest, IgnoringSigtermGetsSigkill) {
  TrainCommandOptions o = Shell("trap '' TERM; echo ready; while :; do sleep 1; done");
  o.timeout = absl::Seconds(1);
  absl::StatusOr<TrainCommandResult> r = RunTrainCommand(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->signal, SIGKILL);
}

TEST_F(TrainCommandTest, CancelStopsTheCommand) {
  std::atomic<bool> cancel{false};
  TrainCommandOptions o = Shell("sleep 60");
  o.cancel = &cancel;
  std::thread canceller([&cancel] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    cancel = true;
  });
  absl::StatusOr<TrainCommandResult> r = RunTrainCommand(o);
  canceller.join();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->timed_out);
  EXPECT_NE(r->signal, 0);
}

TEST_F(TrainCommandTest, EnvIsAddedToTheInheritedOne) {
  ::setenv("FLYWHEEL_TRAIN_TEST_INHERITED", "kept", 1);
  TrainCommandOptions o =
      Shell("echo \"$OMP_NUM_THREADS $FLYWHEEL_TRAIN_TEST_INHERITED $FLYWHEEL_OVERRIDDEN\"");
  ::setenv("FLYWHEEL_OVERRIDDEN", "old", 1);
  o.env = {{"OMP_NUM_THREADS", "1"}, {"FLYWHEEL_OVERRIDDEN", "new"}};
  absl::StatusOr<TrainCommandResult> r = RunTrainCommand(o);
  ::unsetenv("FLYWHEEL_TRAIN_TEST_INHERITED");
  ::unsetenv("FLYWHEEL_OVERRIDDEN");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->log_tail, "1 kept new\n");
}

TEST_F(TrainCommandTest, WorkingDirAndRelativeExecutable) {
  std::filesystem::create_directories(dir_ / "work");
  {
    std::ofstream script(dir_ / "work" / "train.sh");
    script << "#!/bin/sh\npwd\n";
  }
  std::filesystem::permissions(dir_ / "work" / "train.sh", std::filesystem::perms::owner_all);
  TrainCommandOptions o;
  o.argv = {"./train.sh"};
  o.working_dir = (dir_ / "work").string();
  o.log_path = (dir_ / "train.log").string();
  absl::StatusOr<TrainCommandResult> r = RunTrainCommand(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->log_tail, std::filesystem::canonical(dir_ / "work").string() + "\n");
}

TEST_F(TrainCommandTest, StartErrorsNameTheExecutableOrPath) {
  TrainCommandOptions o;
  o.log_path = (dir_ / "train.log").string();
  o.argv = {"flywheel-no-such-trainer", "--x"};
  absl::StatusOr<TrainCommandResult> r = RunTrainCommand(o);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("'flywheel-no-such-trainer'"));
  EXPECT_THAT(r.status().message(), HasSubstr("PATH"));

  o.argv = {"/nonexistent/train"};
  r = RunTrainCommand(o);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("/nonexistent/train"));

  o.argv = {(dir_ / "train.log").string()};  // exists, not executable
  { std::ofstream(dir_ / "train.log") << "x"; }
  r = RunTrainCommand(o);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("not an executable"));

  o.argv = {"sh", "-c", "true"};
  o.working_dir = (dir_ / "missing").string();
  r = RunTrainCommand(o);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("missing"));

  o.working_dir.clear();
  o.log_path = (dir_ / "no-dir" / "train.log").string();
  r = RunTrainCommand(o);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("no-dir/train.log"));

  o.argv.clear();
  EXPECT_FALSE(RunTrainCommand(o).ok());
}

TEST(SubstitutePlaceholders, FillsKnownNames) {
  const std::map<std::string, std::string> values = {
      {"train", "/tmp/run1/train.csv"}, {"output", "/tmp/run1/out"}, {"run", "1"}};
  EXPECT_EQ(*SubstitutePlaceholders("--train={train}", values), "--train=/tmp/run1/train.csv");
  EXPECT_EQ(*SubstitutePlaceholders("{output}/{run}{run}", values), "/tmp/run1/out/11");
  EXPECT_EQ(*SubstitutePlaceholders("plain", values), "plain");
  EXPECT_EQ(*SubstitutePlaceholders("", values), "");
}

TEST(SubstitutePlaceholders, LiteralBraces) {
  const std::map<std::string, std::string> values = {{"run", "7"}};
  EXPECT_EQ(*SubstitutePlaceholders("{{\"run\": {run}}}", values), "{\"run\": 7}");
  EXPECT_EQ(*SubstitutePlaceholders("{{run}}", values), "{run}");
}

TEST(SubstitutePlaceholders, Errors) {
  const std::map<std::string, std::string> values = {{"train", "t"}, {"output", "o"}};
  absl::StatusOr<std::string> s = SubstitutePlaceholders("--x={trian}", values);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("unknown placeholder {trian}"));
  EXPECT_THAT(s.status().message(), HasSubstr("{output} {train}"));
  s = SubstitutePlaceholders("{train", values);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("unclosed '{'"));
  s = SubstitutePlaceholders("a}b", values);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("'}'"));
  EXPECT_FALSE(SubstitutePlaceholders("{}", values).ok());
}

}  // namespace
}  // namespace flywheel::lifecycle
