// The OnlineStore contract, run against every implementation: RocksDB in a temporary folder and
// Redis on a redis-server this test starts.
#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "features/redis_test_server.h"
#include "features/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flywheel::features {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

std::map<std::string, std::string> ScanAll(OnlineStore& store, absl::string_view prefix) {
  std::map<std::string, std::string> seen;
  absl::Status s = store.Scan(prefix, [&](absl::string_view key, absl::string_view value) {
    EXPECT_TRUE(seen.emplace(std::string(key), std::string(value)).second) << "visited twice";
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  return seen;
}

class StoreConformanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    if (GetParam() == "rocksdb") {
      dir_ = testing::MakeTempDir("flywheel-store");
      ASSERT_FALSE(dir_.empty());
      url_ = absl::StrCat("rocksdb:", dir_, "/db");
    } else {
      auto redis = testing::SharedRedisServer();
      ASSERT_TRUE(redis.ok()) << redis.status();
      // A namespace per test keeps the tests apart on the shared server.
      url_ = absl::StrCat((*redis)->url(), "?prefix=t", counter++, "&pool=4");
    }
    Reopen();
  }

  void TearDown() override {
    store_.reset();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  void Reopen() {
    store_.reset();
    auto opened = OpenOnlineStore(url_);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = std::move(opened).value();
  }

  void Put(std::vector<std::pair<std::string, std::string>> puts) {
    WriteBatch batch;
    batch.puts = std::move(puts);
    ASSERT_TRUE(store_->Write(batch).ok());
  }

  std::vector<std::optional<std::string>> Get(std::vector<std::string> keys) {
    auto values = store_->MultiGet(keys);
    EXPECT_TRUE(values.ok()) << values.status();
    return values.ok() ? *values : std::vector<std::optional<std::string>>();
  }

  std::string dir_;
  std::string url_;
  std::unique_ptr<OnlineStore> store_;
};

TEST_P(StoreConformanceTest, PutGetOverwriteDelete) {
  Put({{"a", "1"}, {"b", "2"}});
  EXPECT_THAT(Get({"a", "b"}), ElementsAre(Optional(std::string("1")), Optional(std::string("2"))));
  Put({{"a", "3"}});
  EXPECT_THAT(Get({"a"}), ElementsAre(Optional(std::string("3"))));
  WriteBatch del;
  del.deletes = {"a", "never-written"};
  ASSERT_TRUE(store_->Write(del).ok());
  EXPECT_THAT(Get({"a", "b"}), ElementsAre(std::nullopt, Optional(std::string("2"))));
  // An empty value is a value, not a missing key.
  Put({{"empty", ""}});
  EXPECT_THAT(Get({"empty"}), ElementsAre(Optional(std::string())));
  EXPECT_TRUE(store_->Write(WriteBatch{}).ok());
}

TEST_P(StoreConformanceTest, PutsApplyBeforeDeletesAndLastPutWins) {
  WriteBatch batch;
  batch.puts = {{"k", "first"}, {"k", "second"}, {"gone", "x"}};
  batch.deletes = {"gone"};
  ASSERT_TRUE(store_->Write(batch).ok());
  EXPECT_THAT(Get({"k", "gone"}), ElementsAre(Optional(std::string("second")), std::nullopt));
}

TEST_P(StoreConformanceTest, StateAndPositionsCommitTogether) {
  auto none = store_->GetPosition("clicks");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(*none, std::nullopt);

  WriteBatch batch;
  batch.puts = {{StateKey("clicks", "u1"), "state-1"}};
  batch.positions = {{"clicks", "1700000000000-0"}, {"views", "1700000000001-5"}};
  ASSERT_TRUE(store_->Write(batch).ok());
  EXPECT_THAT(*store_->GetPosition("clicks"), Optional(std::string("1700000000000-0")));
  EXPECT_THAT(*store_->GetPosition("views"), Optional(std::string("1700000000001-5")));
  EXPECT_THAT(Get({StateKey("clicks", "u1")}), ElementsAre(Optional(std::string("state-1"))));

  WriteBatch next;
  next.positions = {{"clicks", "1700000000002-0"}};
  next.deletes = {StateKey("clicks", "u1")};
  ASSERT_TRUE(store_->Write(next).ok());
  EXPECT_THAT(*store_->GetPosition("clicks"), Optional(std::string("1700000000002-0")));
  EXPECT_THAT(*store_->GetPosition("views"), Optional(std::string("1700000000001-5")));
  EXPECT_THAT(Get({StateKey("clicks", "u1")}), ElementsAre(std::nullopt));

  // Positions are not state: no scan returns them, whatever the prefix.
  EXPECT_TRUE(ScanAll(*store_, "").empty());
  EXPECT_TRUE(ScanAll(*store_, "clicks").empty());
  // A key named like a source is independent of its position.
  Put({{"clicks", "a value"}});
  EXPECT_THAT(*store_->GetPosition("clicks"), Optional(std::string("1700000000002-0")));
  EXPECT_THAT(Get({"clicks"}), ElementsAre(Optional(std::string("a value"))));
}

TEST_P(StoreConformanceTest, MultiGetKeepsOrderAndMarksMissingKeys) {
  Put({{"k1", "v1"}, {"k3", "v3"}});
  EXPECT_THAT(Get({"k3", "missing", "k1", "k1", "k2"}),
              ElementsAre(Optional(std::string("v3")), std::nullopt, Optional(std::string("v1")),
                          Optional(std::string("v1")), std::nullopt));
  EXPECT_TRUE(Get({}).empty());
  std::vector<std::string> many;
  for (int i = 0; i < 100; ++i) many.push_back(absl::StrCat("missing-", i));
  many.push_back("k1");
  auto values = Get(many);
  ASSERT_EQ(values.size(), 101u);
  EXPECT_EQ(values[99], std::nullopt);
  EXPECT_THAT(values[100], Optional(std::string("v1")));
}

TEST_P(StoreConformanceTest, KeysAndValuesAreBinarySafe) {
  const std::string key = StateKey(std::string("v\0w", 3), std::string("e\x1f\xff\0", 4));
  const std::string value("a\0b\x1f\xff\r\n*", 8);
  Put({{key, value}});
  EXPECT_THAT(Get({key}), ElementsAre(Optional(value)));
  EXPECT_THAT(ScanAll(*store_, std::string("v\0", 2)), ElementsAre(Pair(key, value)));
  WriteBatch batch;
  batch.positions = {{std::string("s\0", 2), std::string("p\0\x1f", 3)}};
  ASSERT_TRUE(store_->Write(batch).ok());
  EXPECT_THAT(*store_->GetPosition(std::string("s\0", 2)), Optional(std::string("p\0\x1f", 3)));
  EXPECT_EQ(*store_->GetPosition("s"), std::nullopt);
}

TEST_P(StoreConformanceTest, ScanReturnsExactlyThePrefix) {
  Put({{StateKey("clicks", "a"), "1"},
       {StateKey("clicks", "b"), "2"},
       {StateKey("clicks_1h", "a"), "3"},
       {"clicks", "4"},
       {"click", "5"},
       {"a*b?[c]\\", "6"},
       {"a*b?[c]\\x", "7"},
       {"axb?[c]\\", "8"},
       {"a*bz[c]\\", "9"},
       {std::string("\xff\xff", 2), "10"}});
  EXPECT_THAT(
      ScanAll(*store_, StateKey("clicks", "")),
      UnorderedElementsAre(Pair(StateKey("clicks", "a"), "1"), Pair(StateKey("clicks", "b"), "2")));
  EXPECT_THAT(
      ScanAll(*store_, "clicks"),
      UnorderedElementsAre(Pair(StateKey("clicks", "a"), "1"), Pair(StateKey("clicks", "b"), "2"),
                           Pair(StateKey("clicks_1h", "a"), "3"), Pair("clicks", "4")));
  // Glob characters in a prefix are literal.
  EXPECT_THAT(ScanAll(*store_, "a*b?[c]\\"),
              UnorderedElementsAre(Pair("a*b?[c]\\", "6"), Pair("a*b?[c]\\x", "7")));
  EXPECT_THAT(ScanAll(*store_, std::string("\xff", 1)),
              ElementsAre(Pair(std::string("\xff\xff", 2), "10")));
  EXPECT_TRUE(ScanAll(*store_, "nothing").empty());
  EXPECT_EQ(ScanAll(*store_, "").size(), 10u);
}

TEST_P(StoreConformanceTest, ScanVisitsManyKeysOnceAndStopsOnError) {
  WriteBatch batch;
  for (int i = 0; i < 5000; ++i) {
    batch.puts.emplace_back(StateKey("v", absl::StrCat("entity-", i)), absl::StrCat(i));
  }
  batch.puts.emplace_back(StateKey("w", "x"), "other view");
  ASSERT_TRUE(store_->Write(batch).ok());
  auto all = ScanAll(*store_, StateKey("v", ""));
  ASSERT_EQ(all.size(), 5000u);
  EXPECT_EQ(all[StateKey("v", "entity-4321")], "4321");

  int visited = 0;
  absl::Status s = store_->Scan("v", [&](absl::string_view, absl::string_view) {
    return ++visited == 3 ? absl::AbortedError("enough") : absl::OkStatus();
  });
  EXPECT_EQ(s, absl::AbortedError("enough"));
  EXPECT_EQ(visited, 3);
}

TEST_P(StoreConformanceTest, VisitorMayUseTheStore) {
  Put({{"p1", "1"}, {"p2", "2"}});
  int visited = 0;
  ASSERT_TRUE(store_
                  ->Scan("p",
                         [&](absl::string_view key, absl::string_view value) {
                           auto again = store_->MultiGet({std::string(key)});
                           EXPECT_TRUE(again.ok());
                           EXPECT_THAT(*again, ElementsAre(Optional(std::string(value))));
                           ++visited;
                           return absl::OkStatus();
                         })
                  .ok());
  EXPECT_EQ(visited, 2);
}

TEST_P(StoreConformanceTest, ConcurrentMultiGetFromEightThreads) {
  WriteBatch batch;
  for (int i = 0; i < 1000; ++i) {
    batch.puts.emplace_back(StateKey("view", absl::StrCat("e", i)), absl::StrCat("value-", i));
  }
  ASSERT_TRUE(store_->Write(batch).ok());
  std::atomic<int> mismatches{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 100; ++round) {
        std::vector<std::string> keys;
        std::vector<int> ids;
        for (int j = 0; j < 20; ++j) {
          const int id = (t * 131 + round * 17 + j * 7) % 1100;  // ids >= 1000 are missing
          ids.push_back(id);
          keys.push_back(StateKey("view", absl::StrCat("e", id)));
        }
        auto values = store_->MultiGet(keys);
        if (!values.ok()) {
          ++failures;
          continue;
        }
        for (size_t j = 0; j < keys.size(); ++j) {
          const std::optional<std::string> want =
              ids[j] < 1000 ? std::optional<std::string>(absl::StrCat("value-", ids[j]))
                            : std::nullopt;
          if ((*values)[j] != want) ++mismatches;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
}

TEST_P(StoreConformanceTest, ConcurrentWritersAndReaders) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        WriteBatch batch;
        batch.puts = {{absl::StrCat("w", t, "-", i), absl::StrCat(i)}};
        batch.positions = {{absl::StrCat("source-", t), absl::StrCat(i)}};
        if (!store_->Write(batch).ok()) ++failures;
        if (!store_->MultiGet({absl::StrCat("w", t, "-", i)}).ok()) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  for (int t = 0; t < 4; ++t) {
    EXPECT_THAT(*store_->GetPosition(absl::StrCat("source-", t)), Optional(std::string("49")));
  }
  EXPECT_EQ(ScanAll(*store_, "w").size(), 200u);
}

TEST_P(StoreConformanceTest, SurvivesReopen) {
  WriteBatch batch;
  batch.puts = {{StateKey("v", "e"), "kept"}, {"doomed", "x"}};
  batch.positions = {{"stream", "42-0"}};
  ASSERT_TRUE(store_->Write(batch).ok());
  WriteBatch del;
  del.deletes = {"doomed"};
  ASSERT_TRUE(store_->Write(del).ok());
  Reopen();
  EXPECT_THAT(Get({StateKey("v", "e"), "doomed"}),
              ElementsAre(Optional(std::string("kept")), std::nullopt));
  EXPECT_THAT(*store_->GetPosition("stream"), Optional(std::string("42-0")));
  EXPECT_THAT(ScanAll(*store_, ""), ElementsAre(Pair(StateKey("v", "e"), "kept")));
}

TEST_P(StoreConformanceTest, DescribeNamesTheBackend) {
  EXPECT_THAT(store_->Describe(), HasSubstr(GetParam() == "rocksdb" ? "rocksdb:" : "redis://"));
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformanceTest, ::testing::Values("rocksdb", "redis"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace flywheel::features
