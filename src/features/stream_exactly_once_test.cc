// Exactly-once state from a Redis Stream: a consumer process that commits per-user counts and the
// stream position in one store write is killed with SIGKILL at arbitrary points and restarted;
// the final counts must equal the events, with nothing lost or counted twice. Runs against both
// stores. The consumer is this test binary itself, re-run with a filter selecting the child test.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "features/redis_test_server.h"
#include "features/store.h"
#include "features/stream_reader.h"
#include "gtest/gtest.h"

namespace flywheel::features {
namespace {

constexpr char kUrlEnv[] = "FLYWHEEL_EXACTLY_ONCE_STORE";
constexpr char kPortEnv[] = "FLYWHEEL_EXACTLY_ONCE_REDIS_PORT";
constexpr char kStreamEnv[] = "FLYWHEEL_EXACTLY_ONCE_STREAM";
constexpr int kEvents = 3000;
constexpr int kUsers = 13;

std::string ProgressKey(const std::string& stream) { return absl::StrCat("progress:", stream); }

// Reads small batches after the committed position and commits the new counts together with the
// position of the batch's last entry.
absl::Status ConsumeAll(OnlineStore& store, StreamReader& reader, const std::string& stream,
                        const std::function<void()>& after_commit) {
  FW_ASSIGN_OR_RETURN(std::optional<std::string> committed, store.GetPosition(stream));
  std::string position = committed.value_or("0");
  while (true) {
    FW_ASSIGN_OR_RETURN(std::vector<StreamEntry> entries,
                        reader.Read(stream, position, 7, absl::ZeroDuration()));
    if (entries.empty()) return absl::OkStatus();
    std::map<std::string, int64_t> added;
    for (const StreamEntry& entry : entries) added[StateKey("count", entry.fields[0].second)]++;
    std::vector<std::string> keys;
    for (const auto& [key, n] : added) keys.push_back(key);
    FW_ASSIGN_OR_RETURN(auto current, store.MultiGet(keys));
    WriteBatch batch;
    for (size_t i = 0; i < keys.size(); ++i) {
      int64_t count = 0;
      if (current[i].has_value() && !absl::SimpleAtoi(*current[i], &count)) {
        return absl::DataLossError(absl::StrCat("bad count under ", keys[i]));
      }
      batch.puts.emplace_back(keys[i], absl::StrCat(count + added[keys[i]]));
    }
    position = entries.back().id;
    batch.positions.emplace_back(stream, position);
    FW_RETURN_IF_ERROR(store.Write(batch));
    after_commit();
  }
}

// The consumer process; does nothing unless the parent test started it.
TEST(StreamExactlyOnceChild, DISABLED_Consume) {
  const char* url = std::getenv(kUrlEnv);
  const char* port = std::getenv(kPortEnv);
  const char* stream = std::getenv(kStreamEnv);
  if (url == nullptr || port == nullptr || stream == nullptr) GTEST_SKIP() << "not a child";
  RedisOptions options;
  ASSERT_TRUE(absl::SimpleAtoi(port, &options.port));
  auto store = OpenOnlineStore(url);
  ASSERT_TRUE(store.ok()) << store.status();
  auto reader = StreamReader::Open(options);
  ASSERT_TRUE(reader.ok()) << reader.status();
  auto progress = RedisConnection::Connect(options);
  ASSERT_TRUE(progress.ok()) << progress.status();
  absl::Status done = ConsumeAll(**store, **reader, stream, [&] {
    auto counted = (*progress)->Command({"INCR", ProgressKey(stream)}, RedisRetry::kNever);
    ASSERT_TRUE(counted.ok()) << counted.status();
  });
  ASSERT_TRUE(done.ok()) << done;
}

class StreamExactlyOnceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto redis = testing::SharedRedisServer();
    ASSERT_TRUE(redis.ok()) << redis.status();
    server_ = *redis;
    dir_ = testing::MakeTempDir("flywheel-exactly-once");
    ASSERT_FALSE(dir_.empty());
    static int counter = 0;
    stream_ = absl::StrCat("exactly-once-", GetParam(), "-", counter++);
    url_ = GetParam() == "rocksdb" ? absl::StrCat("rocksdb:", dir_, "/db")
                                   : absl::StrCat(server_->url(), "?prefix=", stream_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Starts the consumer; its output goes to a log printed when something fails.
  pid_t StartChild() {
    const std::string log = absl::StrCat(dir_, "/child.log");
    std::vector<std::string> args = {"/proc/self/exe",
                                     "--gtest_filter=StreamExactlyOnceChild.DISABLED_Consume",
                                     "--gtest_also_run_disabled_tests"};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    setenv(kUrlEnv, url_.c_str(), 1);
    setenv(kPortEnv, absl::StrCat(server_->port()).c_str(), 1);
    setenv(kStreamEnv, stream_.c_str(), 1);
    const pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      execv(argv[0], argv.data());
      _exit(127);
    }
    unsetenv(kUrlEnv);
    unsetenv(kPortEnv);
    unsetenv(kStreamEnv);
    return pid;
  }

  std::string ChildLog() const {
    std::ifstream in(absl::StrCat(dir_, "/child.log"));
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  int64_t Progress(RedisConnection& connection) {
    auto reply = connection.Command({"GET", ProgressKey(stream_)});
    int64_t n = 0;
    if (reply.ok() && !reply->is_nil()) {
      EXPECT_TRUE(absl::SimpleAtoi(reply->str, &n));
    }
    return n;
  }

  testing::RedisTestServer* server_ = nullptr;
  std::string dir_;
  std::string stream_;
  std::string url_;
};

TEST_P(StreamExactlyOnceTest, KillNineNeitherLosesNorDoubleCounts) {
  auto producer = RedisConnection::Connect(server_->options());
  ASSERT_TRUE(producer.ok()) << producer.status();
  std::map<std::string, int64_t> expected;
  std::vector<std::vector<std::pair<std::string, std::string>>> entries;
  for (int i = 0; i < kEvents; ++i) {
    const std::string user = absl::StrCat("u", (i * 7) % kUsers);
    expected[StateKey("count", user)]++;
    entries.push_back({{"user", user}, {"seq", absl::StrCat(i)}});
  }
  auto ids = StreamAddMany(**producer, stream_, entries);
  ASSERT_TRUE(ids.ok()) << ids.status();

  // Each round lets a new consumer commit some batches past the last round, then kills it
  // wherever it happens to be: between batches, inside MultiGet, inside Write.
  for (int round = 1; round <= 4; ++round) {
    const pid_t child = StartChild();
    ASSERT_GT(child, 0);
    int status = 0;
    bool exited = false;
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (Progress(**producer) < round * 60 && absl::Now() < deadline) {
      if (waitpid(child, &status, WNOHANG) == child) {
        exited = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    if (!exited) {
      kill(child, SIGKILL);
      waitpid(child, &status, 0);
    }
    ASSERT_TRUE(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0))
        << "consumer failed:\n"
        << ChildLog();
  }

  auto store = OpenOnlineStore(url_);
  ASSERT_TRUE(store.ok()) << store.status();
  auto reader = StreamReader::Open(server_->options());
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(ConsumeAll(**store, **reader, stream_, [] {}).ok());

  std::map<std::string, int64_t> counted;
  ASSERT_TRUE((*store)
                  ->Scan(StateKey("count", ""),
                         [&](absl::string_view key, absl::string_view value) {
                           int64_t n = 0;
                           EXPECT_TRUE(absl::SimpleAtoi(value, &n));
                           counted[std::string(key)] = n;
                           return absl::OkStatus();
                         })
                  .ok());
  EXPECT_EQ(counted, expected) << ChildLog();
  EXPECT_EQ(*(*store)->GetPosition(stream_), ids->back());
}

INSTANTIATE_TEST_SUITE_P(Backends, StreamExactlyOnceTest, ::testing::Values("rocksdb", "redis"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace flywheel::features
