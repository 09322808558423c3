#include "features/lookup.h"

#include "features/testing/defs.h"
#include "features/testing/memory_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"

namespace flywheel::features {
namespace {

using ::testing::HasSubstr;
using testing::kT0;

class LookupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_ = testing::TestRegistry();
    PipelineOptions options;
    options.clock = [] { return absl::FromUnixSeconds(kT0 + 86400); };
    pipeline_ = std::make_unique<FeaturePipeline>(*registry_, &store_, options);
    // Two users, one of them clicking two items; u2 only long ago.
    // u2 first: after the others its click would be late.
    std::string events = absl::StrCat(
        "[", "{\"user_id\":\"u2\",\"item_id\":\"i1\",\"ts\":", kT0 - 3 * 3600,
        ",\"country\":\"jp\"},", "{\"user_id\":\"u1\",\"item_id\":\"i1\",\"ts\":", kT0,
        ",\"page\":\"home\",\"dwell\":1.5,\"country\":\"fr\",\"age\":31},",
        "{\"user_id\":\"u1\",\"item_id\":\"i2\",\"ts\":", kT0 + 10,
        ",\"page\":\"cart\",\"dwell\":2.5},",
        "{\"user_id\":\"u1\",\"item_id\":\"i1\",\"ts\":", kT0 + 20, ",\"page\":\"home\"}", "]");
    absl::StatusOr<PushResult> pushed = pipeline_->PushJson("clicks", events);
    ASSERT_TRUE(pushed.ok()) << pushed.status();
    ASSERT_EQ(pushed->late, 0);
  }

  testing::MemoryStore store_;
  std::unique_ptr<FeatureRegistry> registry_;
  std::unique_ptr<FeaturePipeline> pipeline_;
};

TEST_F(LookupTest, ValuesAndStatusesPerEntityAndFeature) {
  LookupRequest request;
  request.features = {"user_clicks:clicks_1h",  "user_clicks:country",
                      "user_clicks:last_pages", "user_clicks:mean_dwell_1h",
                      "item_clicks:users_1h",   "pair_clicks:clicks_1d",
                      "user_clicks:nope",       "nope:x"};
  request.entities = {{{"user_id", "u1"}, {"item_id", "i1"}},
                      {{"user_id", "u2"}},
                      {{"user_id", "u3"}, {"item_id", "i9"}}};
  request.now = absl::FromUnixSeconds(kT0 + 3600);
  absl::StatusOr<LookupResult> result = GetOnlineFeatures(*pipeline_, request);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->rows.size(), 3);
  const std::vector<FeatureValue>& u1 = result->rows[0];
  EXPECT_EQ(u1[0].value, Value(int64_t{3}));
  EXPECT_EQ(u1[1].value, Value(std::string("fr")));
  EXPECT_EQ(u1[2].value, Value(std::vector<Scalar>{std::string("home"), std::string("cart"),
                                                   std::string("home")}));
  EXPECT_EQ(u1[3].value, Value(2.0));
  EXPECT_EQ(u1[4].value, Value(int64_t{1}));  // u2's click on i1 is outside the hour
  EXPECT_EQ(u1[5].value, Value(int64_t{2}));  // (u1, i1) twice
  for (int c = 0; c < 6; ++c) EXPECT_EQ(u1[c].status, FeatureStatus::kPresent) << c;
  EXPECT_EQ(u1[6].status, FeatureStatus::kUnknownFeature);
  EXPECT_EQ(u1[7].status, FeatureStatus::kUnknownFeature);
  EXPECT_EQ(result->feature_errors[0], "");
  EXPECT_THAT(result->feature_errors[6], HasSubstr("view 'user_clicks' has no feature 'nope'"));
  EXPECT_THAT(result->feature_errors[7], HasSubstr("unknown view 'nope'"));
  EXPECT_EQ(result->types[2].Name(), "list<string>");
  EXPECT_EQ(result->types[3].Name(), "float64");
  // u2: last seen 4h before `now`, beyond the view's 2h ttl; no item key for item views.
  const std::vector<FeatureValue>& u2 = result->rows[1];
  EXPECT_EQ(u2[0].status, FeatureStatus::kOutsideTtl);
  EXPECT_EQ(u2[1].status, FeatureStatus::kOutsideTtl);
  EXPECT_EQ(u2[4].status, FeatureStatus::kMissingKey);
  EXPECT_EQ(u2[5].status, FeatureStatus::kMissingKey);
  // u3 / i9: never seen.
  for (int c = 0; c < 6; ++c) EXPECT_EQ(result->rows[2][c].status, FeatureStatus::kNotFound);
}

TEST_F(LookupTest, JsonRequestAndResponse) {
  rapidjson::Document body;
  std::string text = R"({"features": ["user_clicks:clicks_10m", "user_clicks:age", "x:y"],
                 "entities": [{"user_id": "u1"}, {"user_id": 5}],
                 "now": )" +
                     std::to_string(kT0 + 600) + "}";
  body.Parse(text.c_str());
  ASSERT_FALSE(body.HasParseError());
  absl::StatusOr<LookupRequest> request = LookupRequestFromJson(body);
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->entities[1][0].second, "5");
  absl::StatusOr<LookupResult> result = GetOnlineFeatures(*pipeline_, *request);
  ASSERT_TRUE(result.ok());
  // clicks_10m is tumbling: at kT0 + 600 the last full ten minutes hold all three clicks when
  // they fall into one window.
  int64_t window_start = (kT0 + 600) / 600 * 600 - 600;
  int64_t expected = 0;
  for (int64_t t : {kT0, kT0 + 10, kT0 + 20})
    expected += t >= window_start && t < window_start + 600;
  EXPECT_EQ(LookupResultToJson(*request, *result),
            absl::StrCat(R"({"features":["user_clicks:clicks_10m","user_clicks:age","x:y"],)",
                         R"("results":[{"entity":{"user_id":"u1"},"values":[)", expected,
                         R"(,31,null],"statuses":["PRESENT","PRESENT","UNKNOWN_FEATURE"]},)",
                         R"({"entity":{"user_id":"5"},"values":[null,null,null],)",
                         R"("statuses":["NOT_FOUND","NOT_FOUND","UNKNOWN_FEATURE"]}],)",
                         R"("errors":{"x:y":"feature 'x:y': unknown view 'x'"}})"));

  for (const char* bad : {R"([])", R"({"entities": []})", R"({"features": [1], "entities": []})",
                          R"({"features": [], "entities": [{"user_id": 1.5}]})",
                          R"({"features": [], "entities": [], "now": "soon"})"}) {
    rapidjson::Document doc;
    doc.Parse(bad);
    EXPECT_FALSE(LookupRequestFromJson(doc).ok()) << bad;
  }
}

TEST_F(LookupTest, TwentyFeaturesOfOneEntity) {
  LookupRequest request;
  for (const FeatureDef& f : registry_->FindView("user_clicks")->features) {
    request.features.push_back("user_clicks:" + f.name);
  }
  for (const FeatureDef& f : registry_->FindView("user_orders")->features) {
    request.features.push_back("user_orders:" + f.name);
  }
  while (request.features.size() < 20) request.features.push_back("user_clicks:clicks_1h");
  request.entities = {{{"user_id", "u1"}}};
  request.now = absl::FromUnixSeconds(kT0 + 120);
  absl::StatusOr<LookupResult> result = GetOnlineFeatures(*pipeline_, request);
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result->rows[0].size(), 20);
  EXPECT_EQ(result->rows[0][0].value, Value(std::string("fr")));  // country
  EXPECT_EQ(result->rows[0][19].value, Value(int64_t{3}));        // clicks_1h
}

TEST_F(LookupTest, StoreReadsOfEveryViewAndEntityTakeOneMultiGet) {
  ASSERT_TRUE(pipeline_->Flush().ok());
  PipelineOptions options;
  options.clock = [] { return absl::FromUnixSeconds(kT0 + 86400); };
  FeaturePipeline fresh(*registry_, &store_, options);  // holds nothing: every read is the store's
  LookupRequest request;
  request.features = {"user_clicks:clicks_1h", "item_clicks:users_1h", "user_clicks:country",
                      "pair_clicks:clicks_1d", "user_orders:nope"};
  request.entities = {{{"user_id", "u1"}, {"item_id", "i1"}},
                      {{"user_id", "u2"}, {"item_id", "i2"}},
                      {{"user_id", "u3"}}};
  request.now = absl::FromUnixSeconds(kT0 + 3600);
  absl::StatusOr<LookupResult> expected = GetOnlineFeatures(*pipeline_, request);
  ASSERT_TRUE(expected.ok()) << expected.status();
  const int before = store_.multi_gets();
  absl::StatusOr<LookupResult> result = GetOnlineFeatures(fresh, request);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(store_.multi_gets() - before, 1);
  ASSERT_EQ(result->rows.size(), expected->rows.size());
  for (size_t r = 0; r < result->rows.size(); ++r) {
    for (size_t c = 0; c < request.features.size(); ++c) {
      EXPECT_EQ(result->rows[r][c].status, expected->rows[r][c].status) << r << " " << c;
      EXPECT_EQ(result->rows[r][c].value, expected->rows[r][c].value) << r << " " << c;
    }
  }
  EXPECT_EQ(result->rows[0][0].value, Value(int64_t{3}));
  EXPECT_EQ(result->rows[2][1].status, FeatureStatus::kMissingKey);

  std::vector<std::string> keys = {"u1", "nobody"};
  std::vector<std::string> numeric = {"user_clicks:clicks_1h", "user_orders:spend_1h"};
  std::vector<float> values(4);
  std::vector<uint8_t> present(4);
  const int numeric_before = store_.multi_gets();
  ASSERT_TRUE(LookupNumericFeatures(fresh, keys, numeric, absl::FromUnixSeconds(kT0 + 3600), -1.0f,
                                    values.data(), present.data())
                  .ok());
  EXPECT_EQ(store_.multi_gets() - numeric_before, 1);
  EXPECT_EQ(values[0], 3.0f);
  EXPECT_EQ(present[0], 1);
  EXPECT_EQ(present[2], 0);
}

TEST_F(LookupTest, NumericFeaturesForInferenceSteps) {
  std::vector<std::string> features = {"user_clicks:clicks_1h", "user_clicks:age",
                                       "user_clicks:mean_dwell_1h"};
  EXPECT_TRUE(ValidateNumericFeatures(*registry_, features).ok());
  absl::Status bad = ValidateNumericFeatures(
      *registry_,
      {"user_clicks:country", "user_clicks:last_pages", "pair_clicks:clicks_1d", "user_clicks:x"});
  EXPECT_THAT(bad.message(), HasSubstr("feature 'user_clicks:country' is string, not a number"));
  EXPECT_THAT(bad.message(),
              HasSubstr("feature 'user_clicks:last_pages' is list<string>, not a number"));
  EXPECT_THAT(bad.message(), HasSubstr("entity 'pair' has 2 key fields"));
  EXPECT_THAT(bad.message(), HasSubstr("view 'user_clicks' has no feature 'x'"));

  std::vector<std::string> keys = {"u1", "nobody", "u2"};
  std::vector<float> values(9);
  std::vector<uint8_t> present(9);
  ASSERT_TRUE(LookupNumericFeatures(*pipeline_, keys, features, absl::FromUnixSeconds(kT0 + 3600),
                                    -1.0f, values.data(), present.data())
                  .ok());
  EXPECT_EQ(values, (std::vector<float>{3, 31, 2, -1, -1, -1, -1, -1, -1}));
  EXPECT_EQ(present, (std::vector<uint8_t>{1, 1, 1, 0, 0, 0, 0, 0, 0}));  // u2: outside ttl
}

TEST_F(LookupTest, ViewsJson) {
  std::string json = ViewsToJson(*registry_);
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  ASSERT_FALSE(doc.HasParseError()) << json;
  ASSERT_EQ(doc["views"].Size(), 4);
  const rapidjson::Value& view = doc["views"][0];
  EXPECT_STREQ(view["name"].GetString(), "user_clicks");
  EXPECT_STREQ(view["ttl"].GetString(), "2h");
  EXPECT_THAT(json, HasSubstr(R"({"name":"last_pages","type":"list<string>","field":"page",)"
                              R"("function":"last_n","window":"1h","every":"1m","n":3})"));
  EXPECT_THAT(json, HasSubstr(R"({"name":"orders","kind":"redis_stream",)"
                              R"("stream":"orders-stream","timestamp":"ts","lateness":"5s"})"));
  EXPECT_THAT(json, HasSubstr(R"({"name":"pair","keys":["user_id","item_id"]})"));
}

}  // namespace
}  // namespace flywheel::features
