#include "features/pipeline.h"

#include <atomic>
#include <map>
#include <random>
#include <thread>

#include "features/lookup.h"
#include "features/testing/defs.h"
#include "features/testing/memory_store.h"
#include "features/testing/reference.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flywheel::features {
namespace {

using testing::Click;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::kSecondNs;
using testing::kT0;
using testing::MemoryStore;

// A fixed clock well after the test events, so none is refused as being in the future.
PipelineOptions TestOptions(int shards = 4) {
  PipelineOptions options;
  options.shards = shards;
  options.clock = [] { return absl::FromUnixSeconds(kT0 + 100 * 24 * 3600); };
  return options;
}

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override { registry_ = testing::TestRegistry(); }

  // Every feature of the clicks views for every entity in `clicks`, from `pipeline`, at `now`.
  std::vector<FeatureValue> ReadAll(const FeaturePipeline& pipeline,
                                    const std::vector<Click>& clicks, absl::Time now) {
    std::vector<FeatureValue> out;
    for (const char* view_name : {"user_clicks", "item_clicks", "pair_clicks"}) {
      int v = registry_->ViewIndex(view_name);
      std::vector<std::string> keys;
      for (const Click& c : clicks) keys.push_back(testing::ClickKey(view_name, c));
      std::vector<int> features(registry_->views()[v].features.size());
      for (size_t f = 0; f < features.size(); ++f) features[f] = static_cast<int>(f);
      std::vector<FeatureValue> values;
      EXPECT_TRUE(pipeline.ReadView(v, keys, features, now, &values).ok());
      out.insert(out.end(), values.begin(), values.end());
    }
    return out;
  }

  // Checks every feature of every entity against the reference over the accepted clicks.
  void ExpectMatchesReference(const FeaturePipeline& pipeline, const std::vector<Click>& accepted,
                              int64_t now_seconds) {
    for (const char* view_name : {"user_clicks", "item_clicks", "pair_clicks"}) {
      const ViewDef& view = *registry_->FindView(view_name);
      std::map<std::string, std::vector<testing::RefEvent>> by_key;
      for (const Click& c : accepted) by_key[testing::ClickKey(view_name, c)].push_back(c.ref);
      std::vector<std::string> keys;
      for (const auto& [key, events] : by_key) keys.push_back(key);
      std::vector<int> features(view.features.size());
      for (size_t f = 0; f < features.size(); ++f) features[f] = static_cast<int>(f);
      std::vector<FeatureValue> values;
      ASSERT_TRUE(pipeline
                      .ReadView(registry_->ViewIndex(view_name), keys, features,
                                absl::FromUnixSeconds(now_seconds), &values)
                      .ok());
      for (size_t k = 0; k < keys.size(); ++k) {
        for (size_t f = 0; f < features.size(); ++f) {
          FeatureValue expected = testing::Reference(view, view.features[f], by_key[keys[k]],
                                                     now_seconds * kSecondNs, true);
          const FeatureValue& actual = values[k * features.size() + f];
          EXPECT_TRUE(testing::Matches(view.features[f], actual, expected))
              << view_name << ":" << view.features[f].name << " of '" << keys[k] << "': got "
              << testing::Describe(actual) << ", expected " << testing::Describe(expected);
        }
      }
    }
  }

  std::unique_ptr<FeatureRegistry> registry_;
};

TEST_F(PipelineTest, PushedEventsMatchTheReferenceWithLateOnesDropped) {
  MemoryStore store;
  FeaturePipeline pipeline(*registry_, &store, TestOptions());
  std::mt19937_64 rng(7);
  std::vector<Click> accepted;
  int64_t max_ts = 0;
  int64_t base = kT0;
  size_t late = 0;
  for (int batch = 0; batch < 40; ++batch) {
    std::vector<Click> clicks;
    std::vector<uint32_t> expected_late;
    for (int i = 0; i < 50; ++i) {
      base += static_cast<int64_t>(rng() % 6);
      // Mostly within the minute of lateness; every 20th is two minutes behind.
      int64_t behind =
          i % 20 == 19 ? 120 + static_cast<int64_t>(rng() % 60) : static_cast<int64_t>(rng() % 60);
      Click c = testing::RandomClick(rng, base - behind, 6, 4);
      bool is_late = max_ts != 0 && c.ts_seconds < max_ts - 60;
      if (is_late) {
        expected_late.push_back(i);
      } else {
        max_ts = std::max(max_ts, c.ts_seconds);
        accepted.push_back(c);
      }
      clicks.push_back(std::move(c));
    }
    absl::StatusOr<PushResult> result = pipeline.PushJson("clicks", testing::JsonArray(clicks));
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->late_events, expected_late);
    EXPECT_EQ(result->accepted, clicks.size() - expected_late.size());
    ASSERT_EQ(result->times.size(), clicks.size());
    EXPECT_EQ(result->times[0], absl::FromUnixSeconds(clicks[0].ts_seconds));
    late += expected_late.size();
    if (batch % 10 == 9) {
      for (int64_t now : {max_ts - 60, max_ts, max_ts + 1800, max_ts + 7300}) {
        ExpectMatchesReference(pipeline, accepted, now);
      }
    }
  }
  PipelineStats stats = pipeline.Stats();
  EXPECT_EQ(stats.events_accepted, accepted.size());
  EXPECT_EQ(stats.events_late, late);
  EXPECT_GT(late, 0);
  ASSERT_EQ(stats.sources.size(), 2);
  EXPECT_EQ(stats.sources[0].name, "clicks");
  EXPECT_EQ(stats.sources[0].late, late);
  EXPECT_EQ(stats.sources[0].watermark, absl::FromUnixSeconds(max_ts - 60));
  // 6 users, 4 items, up to 24 pairs.
  EXPECT_EQ(stats.views[0].entities, 6);
  EXPECT_EQ(stats.views[1].entities, 4);
  EXPECT_GT(stats.tiles, 0);
}

// Apply folds a batch through a prefetching pipeline that holds pointers to states while it
// inserts new entities: batches that grow the hash map many times over, with the same entity
// repeated close together, must still match the reference.
TEST_F(PipelineTest, LargeBatchesOfNewAndRepeatedEntitiesMatchTheReference) {
  FeaturePipeline pipeline(*registry_, nullptr, TestOptions(/*shards=*/1));
  std::mt19937_64 rng(23);
  std::vector<Click> accepted;
  int64_t ts = kT0;
  for (int batch = 0; batch < 3; ++batch) {
    std::vector<Click> clicks;
    for (int i = 0; i < 3000; ++i) {
      // Windows roll over; a copy of an event at most 50 s old is never late (lateness 1m).
      if (i % 97 == 0) ts += 1 + static_cast<int64_t>(rng() % 50);
      Click c = testing::RandomClick(rng, ts, 2500, 400);
      // Every 5th event repeats one of the last 1 to 20 (within and beyond the prefetch
      // distance).
      if (i % 5 == 4) c = clicks[clicks.size() - 1 - rng() % std::min<size_t>(20, i)];
      clicks.push_back(c);
      accepted.push_back(std::move(c));
    }
    absl::StatusOr<PushResult> result = pipeline.PushJson("clicks", testing::JsonArray(clicks));
    ASSERT_TRUE(result.ok()) << result.status();
    ASSERT_EQ(result->late, 0);
  }
  EXPECT_GT(pipeline.Stats().views[0].entities, 2000);
  ExpectMatchesReference(pipeline, accepted, ts);
  ExpectMatchesReference(pipeline, accepted, ts + 1800);
}

TEST_F(PipelineTest, AMalformedEventRefusesTheWholeBatch) {
  MemoryStore store;
  FeaturePipeline pipeline(*registry_, &store, TestOptions());
  std::string batch =
      absl::StrCat("[", "{\"user_id\":\"u1\",\"item_id\":\"i1\",\"ts\":", kT0, "},",  // fine
                   "{\"item_id\":\"i1\",\"ts\":", kT0, "},",                          // no user_id
                   "{\"user_id\":\"u1\",\"item_id\":\"i1\"},",  // no timestamp
                   "{\"user_id\":\"u1\",\"item_id\":\"i1\",\"ts\":", kT0, ",\"age\":\"old\"},",
                   "{\"user_id\":1.5,\"item_id\":\"i1\",\"ts\":", kT0, "},",
                   "{\"user_id\":\"u1\",\"item_id\":\"i1\",\"ts\":\"yesterday\"},",
                   "{\"user_id\":\"u1\",\"item_id\":\"i1\",\"ts\":", kT0 + 400 * 24 * 3600, "},",
                   "{\"user_id\":\"\",\"item_id\":\"i1\",\"ts\":", kT0, "},", "42", "]");
  std::vector<EventError> errors;
  absl::StatusOr<PushResult> result = pipeline.PushJson("clicks", batch, &errors);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(result.status().message(),
              HasSubstr("source 'clicks': event 1: field 'user_id' missing; event 2: timestamp "
                        "field 'ts' missing; event 3: field 'age': expected int64, got a string"));
  ASSERT_EQ(errors.size(), 8);
  EXPECT_EQ(errors[7].ToString(), "event 8: expected an object, got an integer");
  EXPECT_EQ(errors[0].index, 1);
  EXPECT_EQ(errors[3].ToString(),
            "event 4: key field 'user_id': expected a string or an integer, got a number");
  EXPECT_THAT(errors[4].ToString(), HasSubstr("event 5: field 'ts': bad timestamp 'yesterday'"));
  EXPECT_THAT(errors[5].ToString(), HasSubstr("event 6: field 'ts': timestamp"));
  EXPECT_THAT(errors[5].ToString(), HasSubstr("is too far in the future"));
  EXPECT_THAT(errors[6].ToString(), HasSubstr("event 7: key field 'user_id' is empty"));
  // Nothing was applied, not even the good first event.
  PipelineStats stats = pipeline.Stats();
  EXPECT_EQ(stats.events_accepted, 0);
  EXPECT_EQ(stats.entities, 0);

  EXPECT_THAT(pipeline.PushJson("clicks", "[{").status().message(),
              HasSubstr("not valid JSON at byte"));
  EXPECT_THAT(pipeline.PushJson("clicks", "{}").status().message(),
              HasSubstr("expected a JSON array"));
  EXPECT_EQ(pipeline.PushJson("nope", "[]").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(pipeline.PushJson("orders", "[]").status().message(),
              HasSubstr("reads the Redis stream 'orders-stream'"));
  // Integer keys are the same entity as their decimal text; 3.0 is an integer; an empty batch
  // is fine. (user_id is also a string value field of item_clicks, so it stays a string.)
  ASSERT_TRUE(pipeline
                  .PushJson("clicks", absl::StrCat("[{\"user_id\":\"u42\",\"item_id\":7,\"ts\":",
                                                   kT0, ",\"age\":3.0}]"))
                  .ok());
  std::vector<FeatureValue> values;
  ASSERT_TRUE(pipeline
                  .ReadView(registry_->ViewIndex("user_clicks"), {"u42"},
                            {registry_->FindView("user_clicks")->FeatureIndex("age")},
                            absl::FromUnixSeconds(kT0 + 1), &values)
                  .ok());
  EXPECT_EQ(values[0].value, Value(int64_t{3}));
  ASSERT_TRUE(pipeline
                  .ReadView(registry_->ViewIndex("pair_clicks"),
                            {"u42\x1e"
                             "7"},
                            {0}, absl::FromUnixSeconds(kT0 + 3600), &values)
                  .ok());
  EXPECT_EQ(values[0].value, Value(int64_t{1}));
  EXPECT_TRUE(pipeline.PushJson("clicks", "[]").ok());
}

TEST_F(PipelineTest, FlushAndRestoreGiveIdenticalLookups) {
  MemoryStore store;
  std::mt19937_64 rng(11);
  std::vector<Click> clicks;
  int64_t base = kT0;
  {
    FeaturePipeline pipeline(*registry_, &store, TestOptions());
    for (int batch = 0; batch < 10; ++batch) {
      std::vector<Click> part;
      for (int i = 0; i < 100; ++i) {
        base += static_cast<int64_t>(rng() % 8);
        part.push_back(testing::RandomClick(rng, base - static_cast<int64_t>(rng() % 30), 20, 8));
      }
      ASSERT_TRUE(pipeline.PushJson("clicks", testing::JsonArray(part)).ok());
      clicks.insert(clicks.end(), part.begin(), part.end());
      if (batch % 3 == 0) {
        ASSERT_TRUE(pipeline.Flush().ok());
      }
    }
    ASSERT_TRUE(pipeline.Flush().ok());
    EXPECT_EQ(pipeline.Stats().flushes, 4);  // the last flush had nothing to write
    FeaturePipeline restored(*registry_, &store, TestOptions(7));  // other shard count
    ASSERT_TRUE(restored.Restore().ok());
    EXPECT_EQ(restored.Stats().restored, pipeline.Stats().entities);
    for (int64_t now : {base - 30, base, base + 900, base + 5000}) {
      std::vector<FeatureValue> a = ReadAll(pipeline, clicks, absl::FromUnixSeconds(now));
      std::vector<FeatureValue> b = ReadAll(restored, clicks, absl::FromUnixSeconds(now));
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i], b[i]) << i << ": " << testing::Describe(a[i]) << " vs "
                              << testing::Describe(b[i]);
      }
    }
    // The watermark came back too: an event older than it is still late.
    absl::StatusOr<PushResult> late = restored.PushJson(
        "clicks",
        absl::StrCat("[{\"user_id\":\"u1\",\"item_id\":\"i1\",\"ts\":", base - 200, "}]"));
    ASSERT_TRUE(late.ok());
    EXPECT_EQ(late->late, 1);
  }
  // A pipeline that never restored reads entities it does not hold from the store.
  FeaturePipeline reader(*registry_, &store, TestOptions());
  int gets = store.multi_gets();
  std::vector<FeatureValue> values;
  const ViewDef& view = *registry_->FindView("user_clicks");
  ASSERT_TRUE(reader
                  .ReadView(registry_->ViewIndex("user_clicks"), {clicks[0].user, "nobody"},
                            {view.FeatureIndex("clicks_1h")}, absl::FromUnixSeconds(base), &values)
                  .ok());
  EXPECT_EQ(store.multi_gets(), gets + 1);
  EXPECT_EQ(values[0].status, FeatureStatus::kPresent);
  EXPECT_EQ(values[1].status, FeatureStatus::kNotFound);
}

TEST_F(PipelineTest, StreamBatchesCommitTheirPositionWithTheState) {
  MemoryStore store;
  auto entry = [](std::string id, std::string user, int64_t ts_ms, std::string amount) {
    StreamEntry e;
    e.id = std::move(id);
    e.fields = {
        {"user_id", std::move(user)}, {"ts", absl::StrCat(ts_ms)}, {"amount", std::move(amount)}};
    return e;
  };
  const int64_t ms = kT0 * 1000;
  {
    FeaturePipeline pipeline(*registry_, &store, TestOptions());
    EXPECT_EQ(pipeline.Position("orders"), std::nullopt);
    std::vector<StreamEntry> entries = {
        entry("1-0", "u1", ms, "10"), entry("2-0", "u1", ms + 1000, "lots"),
        entry("3-0", "u2", ms + 2000, "7"), entry("4-0", "u1", ms - 60000, "1")};  // late
    entries[1].fields.push_back({"extra", "ignored"});
    absl::StatusOr<StreamApplyResult> result = pipeline.ApplyStreamBatch("orders", entries, "4-0");
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->accepted, 2);
    EXPECT_EQ(result->late, 1);
    EXPECT_EQ(result->invalid, 1);
    ASSERT_EQ(result->errors.size(), 1);
    EXPECT_EQ(result->errors[0].ToString(), "event 1: field 'amount': expected int64, got 'lots'");
    EXPECT_EQ(pipeline.Position("orders"), "4-0");
    EXPECT_THAT(pipeline.ApplyStreamBatch("clicks", {}, "1").status().message(),
                HasSubstr("is a push source"));
    ASSERT_TRUE(pipeline.Flush().ok());
    // Applied but not flushed: lost with the process, and read again from position 4-0.
    ASSERT_TRUE(
        pipeline.ApplyStreamBatch("orders", {entry("5-0", "u1", ms + 3000, "100")}, "5-0").ok());
  }
  FeaturePipeline restored(*registry_, &store, TestOptions());
  ASSERT_TRUE(restored.Restore().ok());
  EXPECT_EQ(restored.Position("orders"), "4-0");
  const ViewDef& view = *registry_->FindView("user_orders");
  std::vector<FeatureValue> values;
  ASSERT_TRUE(restored
                  .ReadView(registry_->ViewIndex("user_orders"), {"u1", "u2"},
                            {view.FeatureIndex("spend_1h"), view.FeatureIndex("max_order_1d")},
                            absl::FromUnixSeconds(kT0 + 3600), &values)
                  .ok());
  EXPECT_EQ(values[0].value, Value(int64_t{10}));
  EXPECT_EQ(values[1].value, Value(int64_t{10}));
  EXPECT_EQ(values[2].value, Value(int64_t{7}));
  EXPECT_EQ(restored.Stats().sources[1].position, "4-0");
}

TEST_F(PipelineTest, AFailedFlushKeepsTheChangesForTheNextOne) {
  MemoryStore store;
  FeaturePipeline pipeline(*registry_, &store, TestOptions());
  ASSERT_TRUE(
      pipeline
          .ApplyStreamBatch(
              "orders",
              {StreamEntry{"9-0",
                           {{"user_id", "u1"}, {"ts", absl::StrCat(kT0 * 1000)}, {"amount", "5"}}}},
              "9-0")
          .ok());
  store.set_fail_writes(true);
  absl::Status status = pipeline.Flush();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("flushing 1 feature states to memory"));
  EXPECT_TRUE(store.data().empty());
  store.set_fail_writes(false);
  ASSERT_TRUE(pipeline.Flush().ok());
  EXPECT_THAT(store.data(), ElementsAre(::testing::Key(StateKey("user_orders", "u1"))));
  EXPECT_EQ(*store.GetPosition("orders"), "9-0");
  PipelineStats stats = pipeline.Stats();
  EXPECT_EQ(stats.flush_failures, 1);
  EXPECT_EQ(stats.flushes, 1);
  // Nothing changed since: the next flush writes nothing.
  int writes = store.writes();
  ASSERT_TRUE(pipeline.Flush().ok());
  EXPECT_EQ(store.writes(), writes);
}

TEST_F(PipelineTest, ExpiredEntitiesAreEvictedFromMemoryAndStore) {
  MemoryStore store;
  FeaturePipeline pipeline(*registry_, &store, TestOptions());
  auto click = [](const std::string& user, int64_t ts) {
    return absl::StrCat("{\"user_id\":\"", user, "\",\"item_id\":\"i\",\"ts\":", ts, "}");
  };
  ASSERT_TRUE(pipeline.PushJson("clicks", absl::StrCat("[", click("old", kT0), "]")).ok());
  ASSERT_TRUE(pipeline.Flush().ok());
  EXPECT_EQ(store.data().count(StateKey("user_clicks", "old")), 1);
  // Two hours and a bit later the user's ttl (2h) and windows (1h + 5m) are over; the item and
  // pair views keep it longer (pair_clicks: 1d windows).
  ASSERT_TRUE(
      pipeline.PushJson("clicks", absl::StrCat("[", click("new", kT0 + 2 * 3600 + 120), "]")).ok());
  ASSERT_TRUE(pipeline.Flush().ok());
  EXPECT_EQ(store.data().count(StateKey("user_clicks", "old")), 0);
  EXPECT_EQ(store.data().count(StateKey("user_clicks", "new")), 1);
  EXPECT_EQ(store.data().count(StateKey("pair_clicks", "old\x1ei")), 1);
  EXPECT_EQ(pipeline.Stats().evicted, 1);
  EXPECT_EQ(pipeline.Stats().views[0].entities, 1);
  // Lookups of an evicted entity read NOT_FOUND (the store no longer has it either).
  std::vector<FeatureValue> values;
  ASSERT_TRUE(pipeline
                  .ReadView(registry_->ViewIndex("user_clicks"), {"old"}, {0},
                            absl::FromUnixSeconds(kT0 + 3 * 3600), &values)
                  .ok());
  EXPECT_EQ(values[0].status, FeatureStatus::kNotFound);
}

TEST_F(PipelineTest, ConcurrentPushesLookupsAndBackgroundFlushes) {
  MemoryStore store;
  FeaturePipeline pipeline(*registry_, &store, TestOptions());
  pipeline.StartBackgroundFlush(absl::Milliseconds(1));
  constexpr int kWriters = 3, kBatches = 60, kPerBatch = 20, kUsers = 5;
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int b = 0; b < kBatches; ++b) {
        std::string batch = "[";
        for (int i = 0; i < kPerBatch; ++i) {
          absl::StrAppend(&batch, i ? "," : "", "{\"user_id\":\"w", w, "-u", i % kUsers,
                          "\",\"item_id\":\"i\",\"ts\":", kT0 + b % 50, "}");
        }
        batch += "]";
        absl::StatusOr<PushResult> result = pipeline.PushJson("clicks", batch);
        ASSERT_TRUE(result.ok()) << result.status();
        EXPECT_EQ(result->late, 0);
      }
    });
  }
  std::atomic<bool> done{false};
  std::thread reader([&] {
    std::vector<FeatureValue> values;
    while (!done) {
      ASSERT_TRUE(pipeline
                      .ReadView(registry_->ViewIndex("user_clicks"), {"w0-u0", "w1-u1"}, {2},
                                absl::FromUnixSeconds(kT0 + 120), &values)
                      .ok());
    }
  });
  for (std::thread& t : writers) t.join();
  done = true;
  reader.join();
  // The background thread flushes on its own (waiting for it at most a generous while).
  for (int i = 0; i < 30000 && pipeline.Stats().flushes == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_GE(pipeline.Stats().flushes, 1);
  pipeline.StopBackgroundFlush();
  EXPECT_TRUE(pipeline.last_background_flush().ok());
  ASSERT_TRUE(pipeline.Flush().ok());

  FeaturePipeline restored(*registry_, &store, TestOptions());
  ASSERT_TRUE(restored.Restore().ok());
  std::vector<std::string> users;
  for (int w = 0; w < kWriters; ++w) {
    for (int u = 0; u < kUsers; ++u) users.push_back(absl::StrCat("w", w, "-u", u));
  }
  std::vector<FeatureValue> values;
  const ViewDef& view = *registry_->FindView("user_clicks");
  ASSERT_TRUE(restored
                  .ReadView(registry_->ViewIndex("user_clicks"), users,
                            {view.FeatureIndex("clicks_1h")}, absl::FromUnixSeconds(kT0 + 120),
                            &values)
                  .ok());
  for (size_t u = 0; u < users.size(); ++u) {
    EXPECT_EQ(values[u].value, Value(int64_t{kBatches * kPerBatch / kUsers})) << users[u];
  }
}

TEST_F(PipelineTest, WorksWithoutAStore) {
  FeaturePipeline pipeline(*registry_, nullptr, TestOptions(1));
  ASSERT_TRUE(pipeline.Restore().ok());
  ASSERT_TRUE(pipeline
                  .PushJson("clicks", absl::StrCat("[{\"user_id\":\"u\",\"item_id\":\"i\",\"ts\":",
                                                   kT0, ",\"country\":\"fr\"}]"))
                  .ok());
  ASSERT_TRUE(pipeline.Flush().ok());
  std::vector<FeatureValue> values;
  ASSERT_TRUE(pipeline
                  .ReadView(registry_->ViewIndex("user_clicks"), {"u"}, {0},
                            absl::FromUnixSeconds(kT0), &values)
                  .ok());
  EXPECT_EQ(values[0].value, Value(std::string("fr")));
}

}  // namespace
}  // namespace flywheel::features
