#include "features/stream_reader.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "features/redis_test_server.h"
#include "features/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flywheel::features {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

class StreamReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto redis = testing::SharedRedisServer();
    ASSERT_TRUE(redis.ok()) << redis.status();
    server_ = *redis;
    auto connection = RedisConnection::Connect(server_->options());
    ASSERT_TRUE(connection.ok()) << connection.status();
    producer_ = std::move(connection).value();
    auto reader = StreamReader::Open(server_->options());
    ASSERT_TRUE(reader.ok()) << reader.status();
    reader_ = std::move(reader).value();
    static int counter = 0;
    stream_ = absl::StrCat("stream-test-", counter++);
  }

  std::string Add(std::vector<std::pair<std::string, std::string>> fields) {
    auto id = StreamAdd(*producer_, stream_, fields);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? *id : "";
  }

  testing::RedisTestServer* server_ = nullptr;
  std::unique_ptr<RedisConnection> producer_;
  std::unique_ptr<StreamReader> reader_;
  std::string stream_;
};

TEST_F(StreamReaderTest, ReadsFromAPositionInOrder) {
  const std::string id1 = Add({{"user", "u1"}, {"amount", "3"}});
  const std::string id2 = Add({{"user", "u2"}});
  const std::string id3 = Add({{"user", "u3"}});
  auto first = reader_->Read(stream_, "0", 2, absl::ZeroDuration());
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].id, id1);
  EXPECT_THAT((*first)[0].fields, ElementsAre(Pair("user", "u1"), Pair("amount", "3")));
  EXPECT_EQ((*first)[1].id, id2);
  auto rest = reader_->Read(stream_, id2, 100, absl::ZeroDuration());
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ((*rest)[0].id, id3);
  auto none = reader_->Read(stream_, id3, 100, absl::ZeroDuration());
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  // A stream that does not exist yet reads as empty.
  auto missing = reader_->Read("no-such-stream", "0", 10, absl::ZeroDuration());
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->empty());
}

TEST_F(StreamReaderTest, FieldsAreBinarySafe) {
  const std::string field("f\0\x1f", 3);
  const std::string value("{\"a\":\"\xff\0\"}", 9);
  Add({{field, value}});
  auto read = reader_->Read(stream_, "0", 10, absl::ZeroDuration());
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 1u);
  EXPECT_THAT((*read)[0].fields, ElementsAre(Pair(field, value)));
}

TEST_F(StreamReaderTest, BlockingReadWakesOnANewEntry) {
  std::string added;
  std::thread producer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto connection = RedisConnection::Connect(server_->options());
    ASSERT_TRUE(connection.ok());
    auto id = StreamAdd(**connection, stream_, {{"k", "v"}});
    ASSERT_TRUE(id.ok());
    added = *id;
  });
  // "$" is not needed: the stream is empty, so everything after "0" is new.
  auto read = reader_->Read(stream_, "0", 10, absl::Seconds(20));
  producer.join();
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ((*read)[0].id, added);
}

TEST_F(StreamReaderTest, BlockingReadTimesOutEmpty) {
  // A block longer than the command timeout is fine: the socket waits for the block too.
  RedisOptions options = server_->options();
  options.command_timeout = absl::Milliseconds(500);
  auto reader = StreamReader::Open(options);
  ASSERT_TRUE(reader.ok());
  auto read = (*reader)->Read(stream_, "0", 10, absl::Milliseconds(1500));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->empty());
}

TEST_F(StreamReaderTest, ReadsManyStreamsAtOnce) {
  const std::string other = stream_ + "-other";
  Add({{"n", "1"}});
  ASSERT_TRUE(StreamAdd(*producer_, other, {{"n", "2"}}).ok());
  ASSERT_TRUE(StreamAdd(*producer_, other, {{"n", "3"}}).ok());
  auto batches = reader_->ReadMany(
      {StreamCursor{stream_, "0"}, StreamCursor{other, "0"}, StreamCursor{"empty-one", "0"}}, 10,
      absl::ZeroDuration());
  ASSERT_TRUE(batches.ok()) << batches.status();
  ASSERT_EQ(batches->size(), 2u);
  EXPECT_EQ((*batches)[0].stream, stream_);
  EXPECT_EQ((*batches)[0].entries.size(), 1u);
  EXPECT_EQ((*batches)[1].stream, other);
  EXPECT_EQ((*batches)[1].entries.size(), 2u);
}

TEST_F(StreamReaderTest, AddManyAndTrim) {
  std::vector<std::vector<std::pair<std::string, std::string>>> entries;
  for (int i = 0; i < 500; ++i) entries.push_back({{"i", absl::StrCat(i)}});
  auto ids = StreamAddMany(*producer_, stream_, entries);
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_EQ(ids->size(), 500u);
  auto all = reader_->Read(stream_, "0", 1000, absl::ZeroDuration());
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 500u);
  for (size_t i = 0; i < all->size(); ++i) {
    EXPECT_EQ((*all)[i].id, (*ids)[i]);
    EXPECT_THAT((*all)[i].fields, ElementsAre(Pair("i", absl::StrCat(i))));
  }
  auto trimmed = StreamAdd(*producer_, stream_, {{"last", "1"}}, "*", 10);
  ASSERT_TRUE(trimmed.ok());
  auto len = producer_->Command({"XLEN", stream_});
  ASSERT_TRUE(len.ok());
  EXPECT_LT(len->integer, 501);  // MAXLEN ~ trims whole nodes, so only roughly 10
}

TEST_F(StreamReaderTest, ExplainsBadRequests) {
  EXPECT_EQ(reader_->Read(stream_, "0", 0, absl::ZeroDuration()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reader_->Read(stream_, "", 10, absl::ZeroDuration()).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto bad_id = reader_->Read(stream_, "not-an-id", 10, absl::ZeroDuration());
  ASSERT_FALSE(bad_id.ok());
  EXPECT_THAT(bad_id.status().message(), HasSubstr("XREAD"));
  EXPECT_THAT(bad_id.status().message(), HasSubstr(server_->options().Address()));
  EXPECT_EQ(StreamAdd(*producer_, stream_, {}).status().code(), absl::StatusCode::kInvalidArgument);
  const std::string id = Add({{"a", "1"}});
  // An explicit id must grow.
  auto stale = StreamAdd(*producer_, stream_, {{"a", "2"}}, "1-1");
  ASSERT_FALSE(stale.ok());
  EXPECT_THAT(stale.status().message(), HasSubstr("XADD"));
  ASSERT_TRUE(producer_->Command({"SET", "plain-key", "x"}).ok());
  auto wrong_type = reader_->Read("plain-key", "0", 10, absl::ZeroDuration());
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_THAT(wrong_type.status().message(), HasSubstr("WRONGTYPE"));
}

}  // namespace
}  // namespace flywheel::features
