// Store URLs: what OpenOnlineStore accepts and how it explains what it does not.
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "features/redis_store.h"
#include "features/redis_test_server.h"
#include "features/rocksdb_store.h"
#include "features/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flywheel::features {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(ParseRedisUrlTest, HostPortDatabaseAndOptions) {
  auto plain = ParseRedisUrl("redis://cache.local");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->server.host, "cache.local");
  EXPECT_EQ(plain->server.port, 6379);
  EXPECT_EQ(plain->server.db, 0);
  EXPECT_EQ(plain->prefix, "flywheel");

  auto full = ParseRedisUrl(
      "redis://10.0.0.5:6380/2?prefix=team-a.v1&pool=16&timeout_ms=250&connect_timeout_ms=50");
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->server.host, "10.0.0.5");
  EXPECT_EQ(full->server.port, 6380);
  EXPECT_EQ(full->server.db, 2);
  EXPECT_EQ(full->prefix, "team-a.v1");
  EXPECT_EQ(full->pool_size, 16);
  EXPECT_EQ(full->server.command_timeout, absl::Milliseconds(250));
  EXPECT_EQ(full->server.connect_timeout, absl::Milliseconds(50));

  auto v6 = ParseRedisUrl("redis://[::1]:7000/");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->server.host, "::1");
  EXPECT_EQ(v6->server.port, 7000);
  EXPECT_EQ(v6->server.Address(), "[::1]:7000");
}

TEST(ParseRedisUrlTest, ExplainsBadUrls) {
  struct Case {
    const char* url;
    const char* why;
  };
  for (const Case& c :
       {Case{"redis://", "missing host"}, Case{"redis://:6379", "missing host"},
        Case{"redis://h:0", "port '0'"}, Case{"redis://h:99999", "port '99999'"},
        Case{"redis://h:", "port ''"}, Case{"redis://h:abc", "port 'abc'"},
        Case{"redis://h/x", "database 'x'"}, Case{"redis://h/-1", "database '-1'"},
        Case{"redis://user:pw@h", "credentials"}, Case{"redis://[::1", "unterminated"},
        Case{"redis://h?prefix=a:b", "prefix 'a:b'"}, Case{"redis://h?prefix=", "prefix ''"},
        Case{"redis://h?pool=0", "pool '0'"}, Case{"redis://h?timeout_ms=-5", "timeout_ms='-5'"},
        Case{"redis://h?colour=blue", "unknown option 'colour'"}}) {
    auto parsed = ParseRedisUrl(c.url);
    ASSERT_FALSE(parsed.ok()) << c.url;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << c.url;
    EXPECT_THAT(parsed.status().message(), HasSubstr(c.url));
    EXPECT_THAT(parsed.status().message(), HasSubstr(c.why));
  }
}

TEST(OpenOnlineStoreTest, ExplainsBadUrls) {
  for (const char* url : {"", "http://host/x", "rediss://host", "redis:host:6379",
                          "rocksdb:", "rocksdb:/tmp/x?sync=maybe", "rocksdb:/tmp/x?cache_mb=0",
                          "rocksdb:/tmp/x?bloom=1"}) {
    auto store = OpenOnlineStore(url);
    ASSERT_FALSE(store.ok()) << url;
    EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument) << url;
    if (*url != '\0') {
      EXPECT_THAT(store.status().message(), HasSubstr(url));
    }
  }
  EXPECT_THAT(OpenOnlineStore("http://host/x").status().message(), HasSubstr("scheme 'http'"));
}

TEST(OpenOnlineStoreTest, RedisDownNamesTheServer) {
  const int port = testing::FreeLoopbackPort();
  auto store = OpenOnlineStore(absl::StrCat("redis://127.0.0.1:", port, "?connect_timeout_ms=500"));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(store.status().message(), HasSubstr(absl::StrCat("127.0.0.1:", port)));
}

TEST(OpenOnlineStoreTest, OpensRocksDbFromPathsAndUrls) {
  const std::string dir = testing::MakeTempDir("flywheel-open");
  ASSERT_FALSE(dir.empty());
  for (const std::string& url :
       {absl::StrCat(dir, "/plain/nested"), absl::StrCat("rocksdb:", dir, "/scheme"),
        absl::StrCat("rocksdb://", dir, "/slashes?sync=true&cache_mb=8")}) {
    auto store = OpenOnlineStore(url);
    ASSERT_TRUE(store.ok()) << url << ": " << store.status();
    EXPECT_THAT((*store)->Describe(), StartsWith(absl::StrCat("rocksdb:", dir)));
    WriteBatch batch;
    batch.puts = {{"k", "v"}};
    EXPECT_TRUE((*store)->Write(batch).ok());
  }
  EXPECT_TRUE(std::filesystem::is_directory(absl::StrCat(dir, "/plain/nested")));

  // One process, one open store per folder: the second open names the folder.
  auto first = OpenOnlineStore(absl::StrCat(dir, "/locked"));
  ASSERT_TRUE(first.ok());
  auto second = OpenOnlineStore(absl::StrCat(dir, "/locked"));
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr(absl::StrCat(dir, "/locked")));

  // A folder where a file is cannot be created.
  auto blocked = OpenOnlineStore(absl::StrCat(dir, "/plain/nested/CURRENT/db"));
  ASSERT_FALSE(blocked.ok());
  EXPECT_THAT(blocked.status().message(), HasSubstr("CURRENT/db"));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

TEST(OpenOnlineStoreTest, RedisStoresWithDifferentPrefixesAndDatabasesAreApart) {
  auto redis = testing::SharedRedisServer();
  ASSERT_TRUE(redis.ok()) << redis.status();
  auto a = OpenOnlineStore(absl::StrCat((*redis)->url(), "?prefix=apart-a"));
  auto b = OpenOnlineStore(absl::StrCat((*redis)->url(), "?prefix=apart-b"));
  auto a5 = OpenOnlineStore(absl::StrCat((*redis)->url(), "/5?prefix=apart-a"));
  ASSERT_TRUE(a.ok() && b.ok() && a5.ok());
  WriteBatch batch;
  batch.puts = {{"k", "from a"}};
  batch.positions = {{"s", "1-0"}};
  ASSERT_TRUE((*a)->Write(batch).ok());
  for (OnlineStore* other : {b->get(), a5->get()}) {
    EXPECT_EQ((*other->MultiGet({"k"}))[0], std::nullopt);
    EXPECT_EQ(*other->GetPosition("s"), std::nullopt);
  }
  EXPECT_THAT((*a5)->Describe(), HasSubstr("/5?prefix=apart-a"));

  RedisStoreOptions bad;
  bad.server = (*redis)->options();
  bad.prefix = "has space";
  EXPECT_EQ(OpenRedisStore(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace flywheel::features
