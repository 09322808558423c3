#include "features/export.h"

#include <algorithm>
#include <map>
#include <random>

#include "features/lookup.h"
#include "features/pipeline.h"
#include "features/testing/defs.h"
#include "features/testing/reference.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flywheel::features {
namespace {

using testing::Click;
using ::testing::HasSubstr;
using testing::kSecondNs;
using testing::kT0;

constexpr const char* kClickViews[] = {"user_clicks", "item_clicks", "pair_clicks"};

class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_ = testing::TestRegistry();
    for (const char* view : kClickViews) {
      for (const FeatureDef& f : registry_->FindView(view)->features) {
        features_.push_back(absl::StrCat(view, ":", f.name));
      }
    }
  }

  std::vector<ExportEvent> Events(const std::vector<Click>& clicks) {
    std::vector<ExportEvent> events;
    for (const Click& c : clicks) events.push_back(ExportEvent{"clicks", c.json});
    return events;
  }

  std::unique_ptr<FeatureRegistry> registry_;
  std::vector<std::string> features_;
};

TEST_F(ExportTest, RandomDataMatchesBruteForce) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937_64 rng(seed);
    // Events over ten hours in any order (the export sorts them), with equal times.
    std::vector<Click> clicks;
    for (int i = 0; i < 1500; ++i) {
      int64_t ts = kT0 + static_cast<int64_t>(rng() % (10 * 3600));
      clicks.push_back(testing::RandomClick(rng, ts, 8, 5));
    }
    for (int i = 0; i < 100; ++i) {  // exact duplicates of times
      Click c = testing::RandomClick(rng, clicks[rng() % clicks.size()].ts_seconds, 8, 5);
      clicks.push_back(std::move(c));
    }
    std::vector<SpineRow> rows;
    for (int i = 0; i < 400; ++i) {
      SpineRow row;
      row.keys = {{"user_id", absl::StrCat("u", rng() % 9)},
                  {"item_id", absl::StrCat("i", rng() % 6)},
                  {"label", "1"}};
      int64_t t = kT0 - 3600 + static_cast<int64_t>(rng() % (13 * 3600));
      // Some rows exactly at an event's time, which must then be included.
      if (i % 10 == 0) t = clicks[rng() % clicks.size()].ts_seconds;
      row.time = absl::FromUnixSeconds(t);
      rows.push_back(std::move(row));
    }
    ExportStats stats;
    absl::StatusOr<std::vector<std::vector<FeatureValue>>> out =
        PointInTimeJoin(*registry_, rows, features_, Events(clicks), &stats);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(stats.events, clicks.size());
    EXPECT_EQ(stats.applied, clicks.size());
    EXPECT_EQ(stats.invalid, 0);
    // The reference sees each entity's events in input order (ties: the later one is newer).
    size_t column = 0;
    for (const char* view_name : kClickViews) {
      const ViewDef& view = *registry_->FindView(view_name);
      std::map<std::string, std::vector<testing::RefEvent>> by_key;
      for (const Click& c : clicks) by_key[testing::ClickKey(view_name, c)].push_back(c.ref);
      for (size_t f = 0; f < view.features.size(); ++f, ++column) {
        for (size_t r = 0; r < rows.size(); ++r) {
          Click probe;
          probe.user = rows[r].keys[0].second;
          probe.item = rows[r].keys[1].second;
          FeatureValue expected = testing::Reference(
              view, view.features[f], by_key[testing::ClickKey(view_name, probe)],
              absl::ToUnixNanos(rows[r].time), /*see_future=*/false);
          const FeatureValue& actual = (*out)[r][column];
          ASSERT_TRUE(testing::Matches(view.features[f], actual, expected))
              << features_[column] << " row " << r << ": got " << testing::Describe(actual)
              << ", expected " << testing::Describe(expected);
        }
      }
    }
  }
}

TEST_F(ExportTest, EqualsWhatTheOnlinePathShowedAtEachRowTime) {
  std::mt19937_64 rng(3);
  std::vector<Click> clicks;
  int64_t t = kT0;
  for (int i = 0; i < 2000; ++i) {
    t += static_cast<int64_t>(rng() % 10);
    clicks.push_back(testing::RandomClick(rng, t, 6, 4));
  }
  PipelineOptions options;
  options.clock = [] { return absl::FromUnixSeconds(kT0 + 365 * 86400); };
  FeaturePipeline pipeline(*registry_, nullptr, options);
  std::vector<SpineRow> rows;
  std::vector<std::vector<FeatureValue>> online;
  for (size_t i = 0; i < clicks.size(); ++i) {
    ASSERT_TRUE(pipeline.PushJson("clicks", "[" + clicks[i].json + "]").ok());
    // A lookup right after the last event at or before its time.
    if (i % 50 == 49 && i + 1 < clicks.size() && clicks[i + 1].ts_seconds > clicks[i].ts_seconds) {
      LookupRequest request;
      request.features = features_;
      request.entities = {{{"user_id", clicks[i].user}, {"item_id", clicks[i].item}}};
      request.now = absl::FromUnixSeconds(clicks[i].ts_seconds);
      absl::StatusOr<LookupResult> result = GetOnlineFeatures(pipeline, request);
      ASSERT_TRUE(result.ok());
      online.push_back(result->rows[0]);
      rows.push_back(SpineRow{request.entities[0], *request.now});
    }
  }
  absl::StatusOr<std::vector<std::vector<FeatureValue>>> out =
      PointInTimeJoin(*registry_, rows, features_, Events(clicks));
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), online.size());
  for (size_t r = 0; r < online.size(); ++r) {
    for (size_t c = 0; c < features_.size(); ++c) {
      EXPECT_EQ((*out)[r][c], online[r][c])
          << features_[c] << " row " << r << ": " << testing::Describe((*out)[r][c]) << " vs "
          << testing::Describe(online[r][c]);
    }
  }
}

TEST_F(ExportTest, StreamedEventsMustBeInTimeOrder) {
  std::vector<std::string> json = {
      absl::StrCat("{\"user_id\":\"u\",\"item_id\":\"i\",\"ts\":", kT0 + 10, "}"),
      absl::StrCat("{\"user_id\":\"u\",\"item_id\":\"i\",\"ts\":", kT0, "}")};
  size_t next = 0;
  ExportEventStream stream = [&](ExportEvent* e) -> absl::StatusOr<bool> {
    if (next == json.size()) return false;
    *e = ExportEvent{"clicks", json[next++]};
    return true;
  };
  absl::StatusOr<std::vector<std::vector<FeatureValue>>> out =
      PointInTimeJoin(*registry_, {}, {"user_clicks:clicks_1h"}, stream);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(out.status().message(), HasSubstr("event 1 of source 'clicks'"));

  EXPECT_THAT(PointInTimeJoin(*registry_, {}, {"user_clicks:nope"}, absl::Span<const ExportEvent>())
                  .status()
                  .message(),
              HasSubstr("view 'user_clicks' has no feature 'nope'"));
}

TEST_F(ExportTest, SpineCsvInAndTrainingCsvOut) {
  absl::StatusOr<Spine> spine = ReadSpineCsv(
      "user_id,timestamp,note\r\nu1,1700000100,\"a, \"\"quoted\"\" note\"\n"
      "u2,2023-11-14T22:15:00Z,\n\nu9,1700000100.5,x\n");
  ASSERT_TRUE(spine.ok()) << spine.status();
  ASSERT_EQ(spine->rows.size(), 3);
  EXPECT_EQ(spine->rows[0].time, absl::FromUnixSeconds(1700000100));
  EXPECT_EQ(spine->rows[1].time, absl::FromUnixSeconds(1700000100));
  EXPECT_EQ(spine->rows[2].time, absl::FromUnixMillis(1700000100500));
  EXPECT_EQ(spine->rows[0].keys, (EntityRow{{"user_id", "u1"}, {"note", "a, \"quoted\" note"}}));
  std::vector<ExportEvent> events;
  std::vector<std::string> json = {
      absl::StrCat("{\"user_id\":\"u1\",\"item_id\":\"i\",\"ts\":", kT0,
                   ",\"page\":\"a\",\"dwell\":0.25,\"country\":\"fr\"}"),
      absl::StrCat("{\"user_id\":\"u1\",\"item_id\":\"i\",\"ts\":", kT0 + 50,
                   ",\"page\":\"b\",\"dwell\":0.5}"),
      "{not json", absl::StrCat("{\"user_id\":\"u2\",\"ts\":", kT0, "}"),
      absl::StrCat("{\"user_id\":\"u2\",\"item_id\":\"i\",\"ts\":", kT0 + 200, "}")};
  for (const std::string& j : json) events.push_back(ExportEvent{"clicks", j});
  events.push_back(ExportEvent{"elsewhere", "{}"});
  std::vector<std::string> features = {"user_clicks:country", "user_clicks:last_pages",
                                       "user_clicks:dwell_1h", "pair_clicks:clicks_1d"};
  ExportStats stats;
  absl::StatusOr<std::vector<std::vector<FeatureValue>>> out =
      PointInTimeJoin(*registry_, spine->rows, features, events, &stats);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(stats.invalid, 2);
  EXPECT_EQ(stats.unknown_source, 1);
  EXPECT_EQ(WriteExportCsv(*spine, features, *out),
            "user_id,timestamp,note,user_clicks:country,user_clicks:last_pages,"
            "user_clicks:dwell_1h,pair_clicks:clicks_1d\n"
            "u1,1700000100,\"a, \"\"quoted\"\" note\",fr,\"[\"\"b\"\",\"\"a\"\"]\",0.75,\n"
            "u2,2023-11-14T22:15:00Z,,,,,\n"
            "u9,1700000100.5,x,,,,\n");

  EXPECT_THAT(ReadSpineCsv("user_id,time\nu1,1\n").status().message(),
              HasSubstr("spine: no 'timestamp' column (columns: user_id, time)"));
  EXPECT_THAT(ReadSpineCsv("user_id,timestamp\nu1,1\nu2\n").status().message(),
              HasSubstr("spine line 3: expected 2 cells, got 1"));
  EXPECT_THAT(ReadSpineCsv("user_id,timestamp\nu1,soon\n").status().message(),
              HasSubstr("spine line 2: column 'timestamp': bad timestamp 'soon'"));
  EXPECT_THAT(ReadSpineCsv("a,timestamp\n\"open,1\n").status().message(), HasSubstr("not closed"));
  EXPECT_EQ(ValueToCell(Value(0.1)), "0.1");
  EXPECT_EQ(ValueToCell(Value(true)), "true");
  EXPECT_EQ(CsvCell("plain"), "plain");
  EXPECT_EQ(CsvCell("two\nlines"), "\"two\nlines\"");
}

}  // namespace
}  // namespace flywheel::features
