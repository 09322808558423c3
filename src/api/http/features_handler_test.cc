// The /v1/features/ endpoints on a real FeatureService (embedded store in a temporary folder):
// pushes all or nothing with error positions, lookups with per-item statuses, views, routing.
#include "api/http/features_handler.h"

#include <filesystem>
#include <fstream>
#include <future>
#include <string>

#include "absl/strings/str_cat.h"
#include "api/http/http_message.h"
#include "api/http/testing/handler_call.h"
#include "features/service.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"
#include "zlib.h"

namespace flywheel::api {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kT0 = 1700000000;

constexpr char kDefinitions[] = R"(
entities:
  user: {keys: [user_id]}
  pair: {keys: [user_id, item_id]}
  item: {keys: [item_id]}
sources:
  clicks: {kind: push, timestamp: ts}
views:
  user_clicks:
    entity: user
    source: clicks
    ttl: 1h
    schema: {page: string}
    fields: {country: string}
    aggregations:
      clicks_1d: count over 1d, every 1h
      recent_pages: last_n(page, 2) over 1d, every 1h
  pair_clicks:
    entity: pair
    source: clicks
    aggregations: {clicks_1d: "count over 1d, every 1h"}
  items:
    entity: item
    source: clicks
    aggregations: {clicks_1d: "count over 1d, every 1h"}
)";

using Result = http::testing_util::HandlerResult;

class FeaturesHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/flywheel-features-handler-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    root_ = pattern;
    std::filesystem::create_directories(root_ + "/defs");
    std::ofstream(root_ + "/defs/defs.yaml") << kDefinitions;
    features::FeatureServiceOptions options;
    options.definitions_dir = root_ + "/defs";
    options.data_dir = root_ + "/data";
    options.sync_event_log = false;
    // Lookups without a time read at kT0 + 50 minutes: past the end of the hour of kT0 (hour +
    // 800 s), so its hourly windows are closed.
    options.pipeline.clock = [] { return absl::FromUnixSeconds(kT0 + 3000); };
    auto service = features::FeatureService::Start(options, nullptr);
    ASSERT_TRUE(service.ok()) << service.status();
    service_ = std::move(*service);
    handler_ = MakeFeaturesHandler(service_.get());
  }
  void TearDown() override {
    handler_.reset();
    service_.reset();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  Result Call(http::bhttp::verb method, const std::string& target, const std::string& body = "",
              const std::string& content_encoding = "") {
    return http::testing_util::CallHandler(*handler_, method, target, body,
                                           {{"Content-Encoding", content_encoding}});
  }
  Result Post(const std::string& target, const std::string& body,
              const std::string& content_encoding = "") {
    return Call(http::bhttp::verb::post, target, body, content_encoding);
  }

  std::string root_;
  std::unique_ptr<features::FeatureService> service_;
  std::shared_ptr<http::Handler> handler_;
};

std::string Click(const std::string& user, int64_t t, const std::string& page = "home") {
  return absl::StrCat(R"({"user_id": ")", user, R"(", "item_id": "i1", "ts": )", t,
                      R"(, "page": ")", page, R"(", "country": "fr"})");
}

TEST_F(FeaturesHandlerTest, PushThenLookUpWithStatuses) {
  Result push = Post("/v1/features/push",
                     absl::StrCat(R"({"source": "clicks", "events": [)", Click("u1", kT0), ",",
                                  Click("u1", kT0 + 60, "cart"), "]}"));
  ASSERT_EQ(push.status, 200) << push.body;
  EXPECT_EQ(push.body, R"({"source":"clicks","accepted":2,"late":0})");

  // Plain keys read the key of each single-key view; the pair view needs both keys.
  Result online = Post(
      "/v1/features/online",
      R"({"features": ["user_clicks:country", "user_clicks:recent_pages", "pair_clicks:clicks_1d",
                            "user_clicks:nope", "ghost:x"],
               "entities": ["u1", "u2"]})");
  ASSERT_EQ(online.status, 200) << online.body;
  ASSERT_TRUE(online.json.IsObject() && online.json.HasMember("results")) << online.body;
  const auto& results = online.json["results"];
  ASSERT_EQ(results.Size(), 2u);
  EXPECT_STREQ(results[0]["entity"]["user_id"].GetString(), "u1");
  EXPECT_STREQ(results[0]["values"][0].GetString(), "fr");
  ASSERT_TRUE(results[0]["values"][1].IsArray()) << online.body;
  ASSERT_EQ(results[0]["values"][1].Size(), 2u) << online.body;
  EXPECT_STREQ(results[0]["values"][1][0].GetString(), "cart");
  EXPECT_STREQ(results[0]["values"][1][1].GetString(), "home");
  auto status = [&](int row, int column) {
    return std::string(results[row]["statuses"][column].GetString());
  };
  EXPECT_EQ(status(0, 0), "PRESENT");
  EXPECT_EQ(status(0, 2), "MISSING_KEY");
  EXPECT_EQ(status(0, 3), "UNKNOWN_FEATURE");
  EXPECT_EQ(status(0, 4), "UNKNOWN_FEATURE");
  EXPECT_EQ(status(1, 0), "NOT_FOUND");
  EXPECT_TRUE(results[1]["values"][0].IsNull());
  ASSERT_TRUE(online.json.HasMember("errors"));
  EXPECT_TRUE(online.json["errors"].HasMember("user_clicks:nope"));
  EXPECT_TRUE(online.json["errors"].HasMember("ghost:x"));

  // Objects carry several keys; a time after the ttl reads OUTSIDE_TTL.
  online = Post("/v1/features/online",
                absl::StrCat(R"({"features": ["pair_clicks:clicks_1d", "user_clicks:country"],
                                 "entities": [{"user_id": "u1", "item_id": "i1"}], "now": )",
                             kT0 + 3 * 3600, "}"));
  ASSERT_EQ(online.status, 200) << online.body;
  ASSERT_TRUE(online.json["results"][0]["values"][0].IsInt64()) << online.body;
  EXPECT_EQ(online.json["results"][0]["values"][0].GetInt64(), 2);
  EXPECT_STREQ(online.json["results"][0]["statuses"][1].GetString(), "OUTSIDE_TTL");
}

TEST_F(FeaturesHandlerTest, MalformedBatchIsRefusedWhole) {
  Result push =
      Post("/v1/features/push",
           absl::StrCat(R"({"source": "clicks", "events": [)", Click("u1", kT0),
                        R"(, {"ts": 1700000000}, {"user_id": "u1", "ts": "yesterday"}, )",
                        R"({"user_id": "u1", "item_id": "i1", "ts": 1700000000, "page": 7}]})"));
  ASSERT_EQ(push.status, 400) << push.body;
  EXPECT_THAT(push.body, HasSubstr("event 1: field 'user_id' missing"));
  ASSERT_TRUE(push.json.HasMember("errors"));
  const auto& errors = push.json["errors"];
  ASSERT_EQ(errors.Size(), 3u);
  EXPECT_EQ(errors[0]["event"].GetInt(), 1);
  EXPECT_EQ(errors[1]["event"].GetInt(), 2);
  EXPECT_THAT(errors[1]["message"].GetString(), HasSubstr("timestamp"));
  EXPECT_EQ(errors[2]["event"].GetInt(), 3);
  EXPECT_THAT(errors[2]["message"].GetString(), HasSubstr("field 'page'"));
  // Nothing of the batch was applied, not even its good first event.
  Result online =
      Post("/v1/features/online", R"({"features": ["user_clicks:clicks_1d"], "entities": ["u1"]})");
  ASSERT_EQ(online.status, 200) << online.body;
  EXPECT_STREQ(online.json["results"][0]["statuses"][0].GetString(), "NOT_FOUND");
}

TEST_F(FeaturesHandlerTest, BadRequestsNameTheProblem) {
  Result r = Post("/v1/features/push", "{not json");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("not valid JSON"));
  r = Post("/v1/features/push", R"({"events": []})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("'source'"));
  r = Post("/v1/features/push", R"({"source": "clicks", "events": {}})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("'events'"));
  r = Post("/v1/features/push", R"({"source": "taps", "events": []})");
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("unknown source 'taps'"));
  r = Post("/v1/features/online", R"({"features": "user_clicks:country", "entities": ["u1"]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("'features'"));
  r = Post("/v1/features/online", R"({"features": ["user_clicks:country"], "entities": [1.5]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("entities[0]"));
  r = Post("/v1/features/online",
           R"({"features": ["user_clicks:country", "items:clicks_1d"], "entities": ["u1"]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("ambiguous"));
  r = Post("/v1/features/online", "");
  EXPECT_EQ(r.status, 400);
}

TEST_F(FeaturesHandlerTest, CompressedPushAndOversizedBody) {
  const std::string body =
      absl::StrCat(R"({"source": "clicks", "events": [)", Click("u3", kT0), "]}");
  uLongf size = compressBound(body.size());
  std::string compressed(size, '\0');
  ASSERT_EQ(compress2(reinterpret_cast<Bytef*>(compressed.data()), &size,
                      reinterpret_cast<const Bytef*>(body.data()), body.size(), 6),
            Z_OK);
  compressed.resize(size);
  Result push = Post("/v1/features/push", compressed, "deflate");
  ASSERT_EQ(push.status, 200) << push.body;
  EXPECT_EQ(push.json["accepted"].GetInt(), 1);
  EXPECT_EQ(Post("/v1/features/push", compressed, "br").status, 415);
  // Inflated past the limit: 413, before anything is parsed.
  FeaturesHandlerOptions small;
  small.max_request_bytes = 16;
  handler_ = MakeFeaturesHandler(service_.get(), small);
  EXPECT_EQ(Post("/v1/features/push", compressed, "deflate").status, 413);
}

TEST_F(FeaturesHandlerTest, ViewsAndRouting) {
  Result views = Call(http::bhttp::verb::get, "/v1/features/views");
  ASSERT_EQ(views.status, 200);
  ASSERT_TRUE(views.json.HasMember("views"));
  EXPECT_EQ(views.json["views"].Size(), 3u);
  EXPECT_THAT(views.body, HasSubstr("\"user_clicks\""));
  Result wrong = Call(http::bhttp::verb::get, "/v1/features/push");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.allow, "POST");
  wrong = Post("/v1/features/views", "{}");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.allow, "GET");
  Result missing = Call(http::bhttp::verb::get, "/v1/features/nothing");
  EXPECT_EQ(missing.status, 404);
  EXPECT_THAT(missing.body, HasSubstr("/v1/features/push"));
}

}  // namespace
}  // namespace flywheel::api
