#include "features/redis_client.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "features/redis_test_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flywheel::features {
namespace {

using ::testing::HasSubstr;

// A server of its own: some tests kill and restart it.
class RedisClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = testing::RedisTestServer::Start();
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = std::move(started).value();
  }

  std::unique_ptr<RedisConnection> Connect(RedisOptions options) {
    auto connection = RedisConnection::Connect(options);
    EXPECT_TRUE(connection.ok()) << connection.status();
    return connection.ok() ? std::move(connection).value() : nullptr;
  }
  std::unique_ptr<RedisConnection> Connect() { return Connect(server_->options()); }

  std::unique_ptr<testing::RedisTestServer> server_;
};

TEST_F(RedisClientTest, BinarySafeCommandsAndReplyTypes) {
  auto c = Connect();
  ASSERT_NE(c, nullptr);
  const std::string key("k\0\x1f", 3);
  const std::string value("v\0\r\n\xff", 5);
  auto set = c->Command({"SET", key, value});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->type, RedisReply::Type::kStatus);
  EXPECT_EQ(set->str, "OK");
  auto get = c->Command({"GET", key});
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->type, RedisReply::Type::kString);
  EXPECT_EQ(get->str, value);
  auto missing = c->Command({"GET", "nope"});
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->is_nil());
  auto incr = c->Command({"INCRBY", "n", "41"});
  ASSERT_TRUE(incr.ok());
  EXPECT_EQ(incr->type, RedisReply::Type::kInteger);
  EXPECT_EQ(incr->integer, 41);
  auto mget = c->Command({"MGET", key, "nope"});
  ASSERT_TRUE(mget.ok());
  ASSERT_EQ(mget->type, RedisReply::Type::kArray);
  ASSERT_EQ(mget->elements.size(), 2u);
  EXPECT_EQ(mget->elements[0].str, value);
  EXPECT_TRUE(mget->elements[1].is_nil());
}

TEST_F(RedisClientTest, ErrorReplyNamesServerAndCommandButNotValues) {
  auto c = Connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Command({"SET", "text", "secret-value"}).ok());
  auto incr = c->Command({"incr", "text"});
  ASSERT_FALSE(incr.ok());
  EXPECT_EQ(incr.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(incr.status().message(), HasSubstr(absl::StrCat("127.0.0.1:", server_->port())));
  EXPECT_THAT(incr.status().message(), HasSubstr("INCR"));
  EXPECT_THAT(incr.status().message(), HasSubstr("not an integer"));
  EXPECT_THAT(incr.status().message(), ::testing::Not(HasSubstr("secret-value")));
  // The connection still works after an error reply.
  EXPECT_TRUE(c->Command({"PING"}).ok());
  EXPECT_FALSE(c->Command({}).ok());
}

TEST_F(RedisClientTest, PipelineKeepsOrderAndErrorReplies) {
  auto c = Connect();
  ASSERT_NE(c, nullptr);
  std::vector<RedisArgs> commands = {
      {"SET", "a", "1"}, {"INCR", "a"}, {"HGET", "a", "f"}, {"GET", "a"}};
  auto replies = c->Pipeline(commands);
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ(replies->size(), 4u);
  EXPECT_EQ((*replies)[0].str, "OK");
  EXPECT_EQ((*replies)[1].integer, 2);
  EXPECT_TRUE((*replies)[2].is_error());
  EXPECT_THAT((*replies)[2].str, HasSubstr("WRONGTYPE"));
  EXPECT_EQ((*replies)[3].str, "2");
  auto none = c->Pipeline({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(RedisClientTest, SelectsTheDatabase) {
  RedisOptions db3 = server_->options();
  db3.db = 3;
  auto c3 = Connect(db3);
  auto c0 = Connect();
  ASSERT_NE(c3, nullptr);
  ASSERT_NE(c0, nullptr);
  ASSERT_TRUE(c3->Command({"SET", "only-in-3", "x"}).ok());
  EXPECT_TRUE(c0->Command({"GET", "only-in-3"})->is_nil());
  EXPECT_EQ(c3->Command({"GET", "only-in-3"})->str, "x");

  RedisOptions bad = server_->options();
  bad.db = 100000;
  auto refused = RedisConnection::Connect(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("SELECT 100000"));
}

TEST(RedisClientDownTest, ConnectErrorNamesHostAndPort) {
  RedisOptions options;
  options.host = "127.0.0.1";
  options.port = testing::FreeLoopbackPort();
  auto c = RedisConnection::Connect(options);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(c.status().message(), HasSubstr(absl::StrCat("127.0.0.1:", options.port)));
  EXPECT_THAT(c.status().message(), HasSubstr("cannot connect"));

  RedisPool pool(options, 2);
  auto lease = pool.Acquire();
  ASSERT_FALSE(lease.ok());
  EXPECT_THAT(lease.status().message(), HasSubstr(absl::StrCat("127.0.0.1:", options.port)));
}

TEST_F(RedisClientTest, ReconnectsOnceAfterTheServerRestarted) {
  auto c = Connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Command({"SET", "k", "before"}).ok());
  ASSERT_TRUE(server_->Restart().ok());
  // The old socket is dead; a retryable command goes through on a new connection.
  auto get = c->Command({"GET", "k"});
  ASSERT_TRUE(get.ok()) << get.status();
  EXPECT_TRUE(get->is_nil());  // the restarted server is empty
  // A command that must not be sent twice notices the dead socket before sending.
  ASSERT_TRUE(server_->Restart().ok());
  auto incr = c->Command({"INCR", "once"}, RedisRetry::kNever);
  ASSERT_TRUE(incr.ok()) << incr.status();
  EXPECT_EQ(incr->integer, 1);
}

TEST_F(RedisClientTest, ServerDownMidwayFailsWithAddressAndRecoversLater) {
  auto c = Connect();
  ASSERT_NE(c, nullptr);
  const int port = server_->port();
  server_->Stop();
  auto get = c->Command({"GET", "k"});
  ASSERT_FALSE(get.ok());
  EXPECT_EQ(get.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(get.status().message(), HasSubstr(absl::StrCat("127.0.0.1:", port)));
  EXPECT_THAT(get.status().message(), HasSubstr("GET"));
  EXPECT_FALSE(c->connected());
  ASSERT_TRUE(server_->Restart().ok());
  EXPECT_TRUE(c->Command({"PING"}).ok());
  EXPECT_TRUE(c->connected());
}

TEST_F(RedisClientTest, CommandTimeoutIsDeadlineExceeded) {
  RedisOptions options = server_->options();
  options.command_timeout = absl::Milliseconds(100);
  auto c = Connect(options);
  ASSERT_NE(c, nullptr);
  // BLPOP waits 2 s for a list nobody fills: longer than the command timeout.
  auto blocked = c->Command({"BLPOP", "empty-list", "2"});
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(blocked.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(blocked.status().message(), HasSubstr("BLPOP"));
  // A longer timeout for one call lets the same wait finish.
  auto waited = c->Command({"BLPOP", "empty-list", "0.2"}, RedisRetry::kOnce, absl::Seconds(5));
  ASSERT_TRUE(waited.ok()) << waited.status();
  EXPECT_TRUE(waited->is_nil());
  EXPECT_TRUE(c->Command({"PING"}).ok());
}

TEST_F(RedisClientTest, PoolSharesFewConnectionsAmongManyThreads) {
  RedisPool pool(server_->options(), 3);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        auto lease = pool.Acquire();
        if (!lease.ok() || !(*lease)->Command({"INCR", "counter"}).ok()) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  auto lease = pool.Acquire();
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ((*lease)->Command({"GET", "counter"})->str, "1600");
  auto clients = (*lease)->Command({"CLIENT", "LIST"});
  ASSERT_TRUE(clients.ok());
  // At most 3 connections from the pool (plus none other: the readiness probe has closed).
  EXPECT_LE(std::count(clients->str.begin(), clients->str.end(), '\n'), 3);
}

TEST_F(RedisClientTest, LeasesMoveAndReturnOnce) {
  RedisPool pool(server_->options(), 1);
  auto first = pool.Acquire();
  ASSERT_TRUE(first.ok());
  RedisPool::Lease moved = std::move(first).value();
  EXPECT_TRUE(moved->Command({"PING"}).ok());
  moved = RedisPool::Lease();   // returned here
  auto again = pool.Acquire();  // would wait forever if the lease had not come back
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE((*again)->Command({"PING"}).ok());
}

}  // namespace
}  // namespace flywheel::features
