// FeatureService: pushes logged before they are applied (and refused whole when the log fails),
// restart from the data folder, Redis Stream sources consumed from the committed position with
// each entry in the event log once, and the Prometheus metrics.
#include "features/service.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "features/event_log.h"
#include "features/feature_source_adapter.h"
#include "features/ingest_log.h"
#include "features/redis_test_server.h"
#include "features/stream_reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "monitor/metrics.h"

namespace flywheel::features {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kT0 = 1700000000;  // 2023-11-14T22:13:20Z

constexpr char kDefinitions[] = R"(
entities:
  user: {keys: [user_id]}
sources:
  clicks: {kind: push, timestamp: ts, lateness: 10m}
  orders: {kind: redis_stream, stream: orders-stream, timestamp: ts, timestamp_unit: ms}
views:
  user_clicks:
    entity: user
    source: clicks
    schema: {dwell: float64}
    fields: {country: string}
    aggregations:
      clicks_1d: count over 1d, every 1h
      dwell_1d: sum(dwell) over 1d, every 1h
  user_orders:
    entity: user
    source: orders
    schema: {amount: int64, gift: bool}
    aggregations:
      orders_1d: count over 1d, every 1h
      spend_1d: sum(amount) over 1d, every 1h
      last_gift: last(gift) over 1d, every 1h
)";

// Push-only definitions: the service then needs no Redis.
constexpr char kPushDefinitions[] = R"(
entities:
  user: {keys: [user_id]}
sources:
  clicks: {kind: push, timestamp: ts, lateness: 10m}
views:
  user_clicks:
    entity: user
    source: clicks
    schema: {dwell: float64}
    fields: {country: string}
    aggregations:
      clicks_1d: count over 1d, every 1h
      dwell_1d: sum(dwell) over 1d, every 1h
)";

class FeatureServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::MakeTempDir("flywheel-service");
    ASSERT_FALSE(root_.empty());
    defs_ = root_ + "/defs";
    std::filesystem::create_directories(defs_);
    WriteDefinitions(kPushDefinitions);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  void WriteDefinitions(const char* yaml) {
    std::ofstream(defs_ + "/features.yaml", std::ios::trunc) << yaml;
  }

  FeatureServiceOptions Options() {
    FeatureServiceOptions options;
    options.definitions_dir = defs_;
    options.data_dir = root_ + "/data";
    options.flush_interval = absl::Milliseconds(20);
    options.sync_event_log = false;
    options.stream_block = absl::Milliseconds(50);
    options.pipeline.clock = [] { return absl::FromUnixSeconds(kT0 + 2 * 3600); };
    return options;
  }

  static rapidjson::Document Json(const std::string& text) {
    rapidjson::Document doc;
    doc.Parse(text.c_str());
    EXPECT_FALSE(doc.HasParseError()) << text;
    return doc;
  }

  // "view:feature" of `user` at kT0 + 2h.
  static FeatureValue Read(const FeatureService& service, const std::string& feature,
                           const std::string& user) {
    LookupRequest request;
    request.features = {feature};
    request.entities = {{{"user_id", user}}};
    request.now = absl::FromUnixSeconds(kT0 + 2 * 3600);
    absl::StatusOr<LookupResult> result = service.Lookup(request);
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) return {};
    return result->rows[0][0];
  }

  std::vector<EventLogEntry> Logged(const std::string& source) {
    auto events = ReadEventLog(root_ + "/data/events", {source}, absl::UnixEpoch(),
                               absl::FromUnixSeconds(kT0 + 365 * 24 * 3600));
    EXPECT_TRUE(events.ok()) << events.status();
    return events.ok() ? *events : std::vector<EventLogEntry>{};
  }

  std::string root_;
  std::string defs_;
};

std::string Clicks(const std::string& user, int n, int64_t t, double dwell = 1.5) {
  std::string out = "[";
  for (int i = 0; i < n; ++i) {
    absl::StrAppend(&out, i ? "," : "", "{\"user_id\":\"", user, "\",\"ts\":", t + i,
                    ",\"dwell\":", dwell, ",\"country\":\"fr\"}");
  }
  return out + "]";
}

TEST_F(FeatureServiceTest, PushIsLoggedAppliedAndSurvivesARestart) {
  {
    auto service = FeatureService::Start(Options(), nullptr);
    ASSERT_TRUE(service.ok()) << service.status();
    rapidjson::Document events = Json(Clicks("u1", 3, kT0));
    auto outcome = (*service)->Push("clicks", events);
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    EXPECT_EQ(outcome->accepted, 3u);
    EXPECT_EQ(Read(**service, "user_clicks:clicks_1d", "u1").value, Value(int64_t{3}));
    EXPECT_EQ(Read(**service, "user_clicks:country", "u1").value, Value(std::string("fr")));
    // Late: more than 10 minutes behind the newest event. Dropped, not logged.
    rapidjson::Document late = Json(Clicks("u1", 1, kT0 - 3600));
    outcome = (*service)->Push("clicks", late);
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    EXPECT_EQ(outcome->accepted, 0u);
    EXPECT_EQ(outcome->late, 1u);
    ASSERT_TRUE((*service)->Stop().ok());
  }
  std::vector<EventLogEntry> logged = Logged("clicks");
  ASSERT_EQ(logged.size(), 3u);
  EXPECT_EQ(logged[0].time, absl::FromUnixSeconds(kT0));
  EXPECT_THAT(logged[0].json, HasSubstr("\"user_id\":\"u1\""));
  // A new service on the same folder restores the state.
  auto service = FeatureService::Start(Options(), nullptr);
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_EQ(Read(**service, "user_clicks:clicks_1d", "u1").value, Value(int64_t{3}));
  EXPECT_EQ(Read(**service, "user_clicks:dwell_1d", "u1").value, Value(4.5));
}

// A crash after acknowledged pushes and before their state was flushed: the store a restart finds
// holds only what was committed before them, the event log holds them all.
TEST_F(FeatureServiceTest, RestartReplaysAcknowledgedPushesExactlyOnce) {
  const std::string committed = root_ + "/committed";
  {
    auto service = FeatureService::Start(Options(), nullptr);
    ASSERT_TRUE(service.ok()) << service.status();
    rapidjson::Document events = Json(Clicks("u1", 3, kT0));
    ASSERT_TRUE((*service)->Push("clicks", events).ok());
    ASSERT_TRUE((*service)->Stop().ok());
  }
  std::filesystem::copy(root_ + "/data/features", committed);
  std::vector<std::pair<std::string, FeatureValue>> before;
  const std::vector<std::string> users = {"u1", "u2"};
  const std::vector<std::string> features = {"user_clicks:clicks_1d", "user_clicks:dwell_1d",
                                             "user_clicks:country"};
  {
    FeatureServiceOptions options = Options();
    options.flush_interval = absl::Hours(1);
    auto service = FeatureService::Start(options, nullptr);
    ASSERT_TRUE(service.ok()) << service.status();
    EXPECT_EQ((*service)->replayed_events(), 0u);
    // Acknowledged, never flushed to `committed`: u1 gets more, u2 is new, one event is late.
    rapidjson::Document more = Json(Clicks("u1", 2, kT0 + 60, 2.5));
    ASSERT_TRUE((*service)->Push("clicks", more).ok());
    rapidjson::Document other = Json(Clicks("u2", 4, kT0 + 120, 0.5));
    ASSERT_TRUE((*service)->Push("clicks", other).ok());
    rapidjson::Document late = Json(Clicks("u2", 1, kT0 - 3600));
    auto outcome = (*service)->Push("clicks", late);
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    EXPECT_EQ(outcome->late, 1u);
    for (const std::string& user : users) {
      for (const std::string& feature : features) {
        before.emplace_back(user + " " + feature, Read(**service, feature, user));
      }
    }
    EXPECT_EQ(before[0].second.value, Value(int64_t{5}));
  }
  auto check = [&](const FeatureService& service) {
    size_t i = 0;
    for (const std::string& user : users) {
      for (const std::string& feature : features) {
        FeatureValue got = Read(service, feature, user);
        EXPECT_EQ(got.status, before[i].second.status) << before[i].first;
        EXPECT_EQ(got.value, before[i].second.value) << before[i].first;
        ++i;
      }
    }
  };
  FeatureServiceOptions crashed = Options();
  crashed.online_store = "rocksdb:" + committed;
  crashed.flush_interval = absl::Hours(1);
  // Crashing again before the replayed state is flushed replays the same events again.
  const std::string committed_again = root_ + "/committed-again";
  std::filesystem::copy(committed, committed_again);
  for (const std::string& store : {committed_again, committed}) {
    crashed.online_store = "rocksdb:" + store;
    auto service = FeatureService::Start(crashed, nullptr);
    ASSERT_TRUE(service.ok()) << service.status();
    EXPECT_EQ((*service)->replayed_events(), 6u);
    check(**service);
    ASSERT_TRUE((*service)->Stop().ok());
  }
  // Once committed, a restart replays nothing and applies nothing twice; new pushes continue the
  // ingestion sequence.
  {
    auto service = FeatureService::Start(crashed, nullptr);
    ASSERT_TRUE(service.ok()) << service.status();
    EXPECT_EQ((*service)->replayed_events(), 0u);
    check(**service);
    rapidjson::Document next = Json(Clicks("u3", 1, kT0 + 180));
    ASSERT_TRUE((*service)->Push("clicks", next).ok());
  }
  // The replay logged nothing again: each event once, sequences 1..10 in push order.
  std::vector<EventLogEntry> logged = Logged("clicks");
  ASSERT_EQ(logged.size(), 10u);
  std::vector<uint64_t> sequences;
  for (const EventLogEntry& entry : logged) {
    std::optional<uint64_t> sequence = LoggedPushSequence(entry.json);
    ASSERT_TRUE(sequence.has_value()) << entry.json;
    sequences.push_back(*sequence);
  }
  std::sort(sequences.begin(), sequences.end());
  for (size_t i = 0; i < sequences.size(); ++i) EXPECT_EQ(sequences[i], i + 1);
  auto service = FeatureService::Start(crashed, nullptr);
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_EQ((*service)->replayed_events(), 0u);
  EXPECT_EQ(Read(**service, "user_clicks:clicks_1d", "u3").value, Value(int64_t{1}));
}

TEST(IngestLogTest, PushedEventsLeadWithTheirSequence) {
  rapidjson::Document events;
  events.Parse(R"([{"user_id":"a","ts":1700000000,"_push_seq":"mine"},{"user_id":"b","ts":1}])");
  ASSERT_FALSE(events.HasParseError());
  ParsedEvents parsed;
  parsed.size = 2;
  parsed.input_index = {0, 1};
  parsed.times = {1700000000000000000, 1000000000};
  std::vector<uint8_t> admitted = {1, 1};
  std::vector<LoggedEvent> out;
  EXPECT_EQ(LogPushedEvents(events, parsed, admitted, 41, &out), 2u);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].json, R"({"_push_seq":41,"user_id":"a","ts":1700000000})");
  EXPECT_EQ(out[1].json, R"({"_push_seq":42,"user_id":"b","ts":1})");
  EXPECT_EQ(LoggedPushSequence(out[1].json), std::optional<uint64_t>(42));
  EXPECT_EQ(LoggedPushSequence(R"({"user_id":"a"})"), std::nullopt);
  EXPECT_EQ(LoggedPushSequence(R"({"_stream_id":"1-0","a":1})"), std::nullopt);
  EXPECT_EQ(LoggedStreamId(out[0].json), "");
}

TEST_F(FeatureServiceTest, MalformedBatchChangesNothing) {
  auto service = FeatureService::Start(Options(), nullptr);
  ASSERT_TRUE(service.ok()) << service.status();
  rapidjson::Document events = Json(
      R"([{"user_id": "u1", "ts": 1700000000}, {"ts": 1700000001}, {"user_id": "u1", "ts": "x"}])");
  std::vector<EventError> errors;
  auto outcome = (*service)->Push("clicks", events, &errors);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(outcome.status().message(), HasSubstr("event 1: field 'user_id' missing"));
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[1].index, 2u);
  EXPECT_EQ(Read(**service, "user_clicks:clicks_1d", "u1").status, FeatureStatus::kNotFound);
  EXPECT_TRUE(Logged("clicks").empty());
  rapidjson::Document other = Json("[]");
  EXPECT_EQ((*service)->Push("nope", other).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(FeatureServiceTest, FailedLogAppendRefusesTheBatch) {
  auto service = FeatureService::Start(Options(), nullptr);
  ASSERT_TRUE(service.ok()) << service.status();
  // A file where the source's log folder goes: every append fails.
  std::ofstream(root_ + "/data/events/clicks") << "in the way";
  rapidjson::Document events = Json(Clicks("u1", 2, kT0 + 3600));
  auto outcome = (*service)->Push("clicks", events);
  ASSERT_FALSE(outcome.ok());
  EXPECT_THAT(outcome.status().message(), HasSubstr("event log"));
  EXPECT_EQ(Read(**service, "user_clicks:clicks_1d", "u1").status, FeatureStatus::kNotFound);
  // The refused batch did not move the watermark: an hour earlier is not late.
  std::filesystem::remove(root_ + "/data/events/clicks");
  rapidjson::Document earlier = Json(Clicks("u1", 1, kT0));
  outcome = (*service)->Push("clicks", earlier);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(outcome->accepted, 1u);
  EXPECT_EQ(Read(**service, "user_clicks:clicks_1d", "u1").value, Value(int64_t{1}));
  // Pushes after Stop are refused.
  ASSERT_TRUE((*service)->Stop().ok());
  EXPECT_EQ((*service)->Push("clicks", earlier).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(FeatureServiceTest, BadDefinitionsAndStoresFailAtStart) {
  WriteDefinitions("views:\n  v: {entity: nobody, source: none}\n");
  auto service = FeatureService::Start(Options(), nullptr);
  ASSERT_FALSE(service.ok());
  EXPECT_THAT(service.status().message(), HasSubstr("features.yaml:2"));
  WriteDefinitions(kDefinitions);
  service = FeatureService::Start(Options(), nullptr);
  ASSERT_FALSE(service.ok());
  EXPECT_THAT(service.status().message(), HasSubstr("--stream-redis"));
  FeatureServiceOptions options = Options();
  options.online_store = "redis://127.0.0.1:1";
  service = FeatureService::Start(options, nullptr);
  ASSERT_FALSE(service.ok());
  EXPECT_THAT(service.status().message(), HasSubstr("online store"));
}

TEST_F(FeatureServiceTest, MetricsCountEventsAndLookups) {
  monitor::Registry registry;
  auto service = FeatureService::Start(Options(), &registry);
  ASSERT_TRUE(service.ok()) << service.status();
  rapidjson::Document events = Json(Clicks("u1", 4, kT0));
  ASSERT_TRUE((*service)->Push("clicks", events).ok());
  rapidjson::Document bad = Json(R"([{"ts": 1}, {"ts": 2}])");
  ASSERT_FALSE((*service)->Push("clicks", bad).ok());
  Read(**service, "user_clicks:clicks_1d", "u1");
  const std::string text = registry.Render();
  EXPECT_THAT(text,
              HasSubstr("flywheel_feature_events_total{outcome=\"accepted\",source=\"clicks\"} 4"));
  EXPECT_THAT(text,
              HasSubstr("flywheel_feature_events_total{outcome=\"rejected\",source=\"clicks\"} 2"));
  EXPECT_THAT(text, HasSubstr("flywheel_feature_entities{view=\"user_clicks\"} 1"));
  EXPECT_THAT(text, HasSubstr("flywheel_feature_lookup_latency_us_count{path=\"http\"} 1"));
  service->reset();
  EXPECT_THAT(registry.Render(), ::testing::Not(HasSubstr("flywheel_feature_events_total")));
}

TEST_F(FeatureServiceTest, ServesAFeatureLookupStep) {
  monitor::Registry registry;
  auto service = FeatureService::Start(Options(), &registry);
  ASSERT_TRUE(service.ok()) << service.status();
  rapidjson::Document events = Json(Clicks("u1", 3, kT0, 2.0));
  ASSERT_TRUE((*service)->Push("clicks", events).ok());
  ServiceFeatureSource source(service->get());
  const std::vector<std::string> features = {"user_clicks:clicks_1d", "user_clicks:dwell_1d"};
  ASSERT_TRUE(source.Validate(features).ok());
  absl::Status bad = source.Validate({"user_clicks:country", "user_clicks:nope"});
  EXPECT_THAT(bad.message(), HasSubstr("user_clicks:country"));
  EXPECT_THAT(bad.message(), HasSubstr("nope"));
  const std::vector<std::string> keys = {"u1", "u2"};
  float values[4];
  uint8_t present[4];
  ASSERT_TRUE(source.Lookup(keys, features, -1.0f, values, present).ok());
  EXPECT_EQ(values[0], 3.0f);
  EXPECT_EQ(values[1], 6.0f);
  EXPECT_EQ(present[0] + present[1], 2);
  EXPECT_EQ(values[2], -1.0f);
  EXPECT_EQ(present[2] + present[3], 0);
  EXPECT_THAT(registry.Render(),
              HasSubstr("flywheel_feature_lookup_latency_us_count{path=\"inference\"} 1"));
}

TEST(IngestLogTest, StreamEntriesBecomeTypedJsonThatParsesTheSame) {
  auto registry = FeatureRegistry::Parse({{"f.yaml", kDefinitions}});
  ASSERT_TRUE(registry.ok()) << registry.status();
  const SourceDef& source = *registry->FindSource("orders");
  std::vector<StreamEntry> entries = {
      {"1-0",
       {{"user_id", "u1"},
        {"ts", "1700000000123"},
        {"amount", "42"},
        {"gift", "1"},
        {"note", "a \"quoted\" text"},
        {"amount", "7"}}},
      {"1-1", {{"user_id", "u2"}, {"ts", "1700000000124"}}},
  };
  EventParser parser(source);
  ParsedEvents parsed;
  ASSERT_TRUE(parser.ParseFields(entries[0].fields, 0, &parsed, nullptr));
  ASSERT_TRUE(parser.ParseFields(entries[1].fields, 1, &parsed, nullptr));
  std::vector<uint8_t> admitted = {1, 1};
  std::vector<LoggedEvent> logged;
  LogStreamEntries(source, entries, parsed, admitted, &logged);
  ASSERT_EQ(logged.size(), 2u);
  EXPECT_EQ(logged[0].json,
            R"({"_stream_id":"1-0","user_id":"u1","ts":"1700000000123","amount":42,"gift":true,)"
            R"("note":"a \"quoted\" text"})");
  EXPECT_EQ(logged[0].time, absl::FromUnixMillis(1700000000123));
  EXPECT_EQ(LoggedStreamId(logged[1].json), "1-1");
  // Read back as a pushed event would be, the values are the same.
  rapidjson::Document doc;
  doc.Parse(logged[0].json.c_str());
  ParsedEvents again;
  ASSERT_TRUE(parser.ParseJsonEvent(doc, 0, &again, nullptr));
  EXPECT_EQ(again.times[0], parsed.times[0]);
  ASSERT_EQ(again.values.size(), source.value_fields.size());
  for (size_t f = 0; f < source.value_fields.size(); ++f) {
    EXPECT_EQ(again.values[f].present, parsed.values[f].present);
    EXPECT_EQ(again.values[f].bits, parsed.values[f].bits);
  }
  // Only admitted entries are logged.
  logged.clear();
  admitted = {0, 1};
  LogStreamEntries(source, entries, parsed, admitted, &logged);
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_EQ(LoggedStreamId(logged[0].json), "1-1");
}

TEST(IngestLogTest, DuplicateFilterDropsRepeatedStreamEntriesOnly) {
  StreamDuplicateFilter filter;
  const absl::Time t = absl::FromUnixSeconds(kT0);
  EXPECT_FALSE(filter.Duplicate("orders", t, R"({"_stream_id":"5-0","a":1})"));
  EXPECT_FALSE(filter.Duplicate("orders", t, R"({"_stream_id":"5-1","a":1})"));
  EXPECT_TRUE(filter.Duplicate("orders", t, R"({"_stream_id":"5-0","a":1})"));
  EXPECT_FALSE(filter.Duplicate("other", t, R"({"_stream_id":"5-0","a":1})"));
  // Pushed events carry no id: equal ones are distinct events.
  EXPECT_FALSE(filter.Duplicate("clicks", t, R"({"a":1})"));
  EXPECT_FALSE(filter.Duplicate("clicks", t, R"({"a":1})"));
  EXPECT_FALSE(filter.Duplicate("orders", t + absl::Seconds(1), R"({"_stream_id":"6-0"})"));
  EXPECT_EQ(filter.dropped(), 1u);
}

class FeatureServiceRedisTest : public FeatureServiceTest {
 protected:
  void SetUp() override {
    FeatureServiceTest::SetUp();
    WriteDefinitions(kDefinitions);
    auto redis = testing::RedisTestServer::Start();
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = std::move(*redis);
    auto connection = RedisConnection::Connect(redis_->options());
    ASSERT_TRUE(connection.ok()) << connection.status();
    producer_ = std::move(*connection);
  }

  void AddOrders(int first, int n) {
    std::vector<std::vector<std::pair<std::string, std::string>>> entries;
    for (int i = first; i < first + n; ++i) {
      entries.push_back({{"user_id", absl::StrCat("u", i % 3)},
                         {"ts", absl::StrCat(kT0 * 1000 + i)},
                         {"amount", absl::StrCat(i)}});
    }
    ASSERT_TRUE(StreamAddMany(*producer_, "orders-stream", entries).ok());
  }

  // Waits until the three users' order counts add up to `total`.
  void WaitForOrders(const FeatureService& service, int64_t total) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    int64_t seen = 0;
    while (absl::Now() < deadline) {
      seen = 0;
      for (const char* user : {"u0", "u1", "u2"}) {
        FeatureValue v = Read(service, "user_orders:orders_1d", user);
        if (v.present()) seen += std::get<int64_t>(v.value);
      }
      if (seen == total) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL() << "saw " << seen << " orders, expected " << total;
  }

  std::unique_ptr<testing::RedisTestServer> redis_;
  std::unique_ptr<RedisConnection> producer_;
};

TEST_F(FeatureServiceRedisTest, StreamSourceResumesFromTheCommittedPosition) {
  FeatureServiceOptions options = Options();
  options.stream_redis = redis_->url();
  options.stream_batch = 7;
  AddOrders(0, 50);
  {
    monitor::Registry registry;
    auto service = FeatureService::Start(options, &registry);
    ASSERT_TRUE(service.ok()) << service.status();
    WaitForOrders(**service, 50);
    EXPECT_THAT(registry.Render(),
                HasSubstr("flywheel_feature_stream_entries_total{source=\"orders\",stream=\"orders-"
                          "stream\"} 50"));
    ASSERT_TRUE((*service)->Stop().ok());
  }
  AddOrders(50, 30);
  {
    auto service = FeatureService::Start(options, nullptr);
    ASSERT_TRUE(service.ok()) << service.status();
    WaitForOrders(**service, 80);
    // Give a wrongly re-read batch time to show up; the counts must not move.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    WaitForOrders(**service, 80);
    int64_t spend = 0;
    for (const char* user : {"u0", "u1", "u2"}) {
      spend += std::get<int64_t>(Read(**service, "user_orders:spend_1d", user).value);
    }
    EXPECT_EQ(spend, 79 * 80 / 2);
  }
  std::vector<EventLogEntry> logged = Logged("orders");
  StreamDuplicateFilter filter;
  size_t unique = 0;
  for (const EventLogEntry& e : logged) unique += !filter.Duplicate(e.source, e.time, e.json);
  EXPECT_EQ(unique, 80u);
}

TEST_F(FeatureServiceRedisTest, RedisOnlineStoreServesLookupsAndStreams) {
  FeatureServiceOptions options = Options();
  options.online_store = redis_->url();  // the streams default to the same server
  auto service = FeatureService::Start(options, nullptr);
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_TRUE((*service)->lookups_may_block());
  rapidjson::Document events = Json(Clicks("u9", 2, kT0));
  ASSERT_TRUE((*service)->Push("clicks", events).ok());
  AddOrders(0, 6);
  WaitForOrders(**service, 6);
  ASSERT_TRUE((*service)->Stop().ok());
  service->reset();
  // A second server on the same Redis reads what the first committed.
  auto second = FeatureService::Start(options, nullptr);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(Read(**second, "user_clicks:clicks_1d", "u9").value, Value(int64_t{2}));
  WaitForOrders(**second, 6);
}

}  // namespace
}  // namespace flywheel::features
