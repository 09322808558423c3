// The /v1/rollouts endpoints on a real rollout controller over a serving::Server with the example
// `simple` model as versions 1 and 2: start, status, rollback, promote, clear, the admin token,
// and the statuses of bad calls.
#include "api/http/rollout_handler.h"

#include <memory>
#include <string>
#include <vector>

#include "api/http/http_message.h"
#include "api/http/testing/handler_call.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lifecycle/registry.h"
#include "lifecycle/rollout.h"
#include "monitor/metrics.h"
#include "rapidjson/document.h"
#include "serving/server.h"
#include "serving/testing/server_fixture.h"

namespace flywheel::api {
namespace {

using ::testing::HasSubstr;

using Result = http::testing_util::HandlerResult;

class RolloutHandlerTest : public http::testing_util::HandlerTest {
 protected:
  void SetUp() override {
    repo_.AddSimple("simple", {1, 2}, "version_policy { all {} }\n");
    serving::ServerOptions options;
    options.model_repositories = {repo_.string()};
    auto server = serving::Server::Create(options, &metrics_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto registry = lifecycle::Registry::Open(repo_.string());
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = *std::move(registry);
    lifecycle::RolloutOptions rollout_options;
    rollout_options.start_thread = false;
    auto controller = lifecycle::RolloutController::Create(server_.get(), {registry_.get()},
                                                           nullptr, &metrics_, rollout_options);
    ASSERT_TRUE(controller.ok()) << controller.status();
    controller_ = *std::move(controller);
    MakeHandler("");
  }
  void TearDown() override {
    handler_.reset();
    controller_.reset();
    server_.reset();
  }

  void MakeHandler(const std::string& token) {
    handler_.reset();
    RolloutHandlerOptions options;
    options.admin_token = token;
    handler_ = MakeRolloutHandler(controller_.get(), options);
  }

  static constexpr char kCanary[] =
      R"({"policy": "canary", "stable": 1, "candidate": 2, "weight": 0.2,
          "thresholds": {"max_error_rate": 0.05, "min_requests": 50, "window_secs": 60,
                         "max_p99_ms": 250},
          "promote_after_secs": 600, "by": "alice", "note": "new data"})";

  serving::testing_util::ModelRepo repo_;
  monitor::Registry metrics_;
  std::unique_ptr<serving::Server> server_;
  std::unique_ptr<lifecycle::Registry> registry_;
  std::unique_ptr<lifecycle::RolloutController> controller_;
};

TEST_F(RolloutHandlerTest, StartsShowsRollsBackAndClears) {
  Result list = Get("/v1/rollouts");
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(list.json["rollouts"].Size(), 0u);

  Result started = Post("/v1/rollouts/simple", kCanary);
  ASSERT_EQ(started.status, 200) << started.body;
  EXPECT_STREQ(started.json["model"].GetString(), "simple");
  EXPECT_STREQ(started.json["state"].GetString(), "active");
  EXPECT_EQ(started.json["spec"]["candidate"].GetInt64(), 2);
  EXPECT_DOUBLE_EQ(started.json["spec"]["weight"].GetDouble(), 0.2);
  EXPECT_DOUBLE_EQ(started.json["spec"]["thresholds"]["window_secs"].GetDouble(), 60);
  EXPECT_DOUBLE_EQ(started.json["spec"]["thresholds"]["max_p99_ms"].GetDouble(), 250);
  EXPECT_DOUBLE_EQ(started.json["spec"]["promote_after_secs"].GetDouble(), 600);
  EXPECT_STREQ(started.json["events"][0]["by"].GetString(), "alice");
  EXPECT_THAT(started.json["events"][0]["detail"].GetString(), HasSubstr("new data"));
  auto split = server_->GetTrafficSplit("simple");
  ASSERT_TRUE(split.has_value());
  EXPECT_DOUBLE_EQ(split->arms[1].weight, 0.2);

  Result again = Post("/v1/rollouts/simple", kCanary);
  EXPECT_EQ(again.status, 409) << again.body;
  EXPECT_THAT(again.body, HasSubstr("already has an active canary"));

  Result one = Get("/v1/rollouts/simple");
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_TRUE(one.json["figures"].IsObject());
  EXPECT_EQ(Get("/v1/rollouts").json["rollouts"].Size(), 1u);

  Result rolled = Post("/v1/rollouts/simple/rollback", R"({"by": "bob", "note": "too slow"})");
  ASSERT_EQ(rolled.status, 200) << rolled.body;
  EXPECT_STREQ(rolled.json["state"].GetString(), "rolled_back");
  EXPECT_THAT(rolled.json["reason"].GetString(), HasSubstr("bob (too slow)"));
  EXPECT_EQ(Post("/v1/rollouts/simple/promote").status, 409);

  Result cleared = Call(http::bhttp::verb::delete_, "/v1/rollouts/simple");
  ASSERT_EQ(cleared.status, 200) << cleared.body;
  EXPECT_TRUE(cleared.json["cleared"].GetBool());
  EXPECT_EQ(Get("/v1/rollouts/simple").status, 404);
  EXPECT_FALSE(server_->GetTrafficSplit("simple").has_value());
}

TEST_F(RolloutHandlerTest, PromoteMovesTheAlias) {
  ASSERT_EQ(Post("/v1/rollouts/simple", kCanary).status, 200);
  Result promoted = Post("/v1/rollouts/simple/promote", R"({"by": "carol"})");
  ASSERT_EQ(promoted.status, 200) << promoted.body;
  EXPECT_STREQ(promoted.json["state"].GetString(), "promoted");
  EXPECT_EQ(*registry_->Resolve("simple", "production"), 2);
}

TEST_F(RolloutHandlerTest, RefusesBadBodiesAndRoutes) {
  Result unknown = Post("/v1/rollouts/simple", R"({"candidate": 2, "wieght": 0.1})");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_THAT(unknown.body, HasSubstr("'wieght'"));
  Result range = Post("/v1/rollouts/simple", R"({"candidate": 2, "weight": 1.5})");
  EXPECT_EQ(range.status, 400);
  EXPECT_THAT(range.body, HasSubstr("'weight'"));
  Result shadow = Post("/v1/rollouts/simple", R"({"policy": "shadow", "candidate": 2,
                                                   "stable": 1})");
  EXPECT_EQ(shadow.status, 400);
  EXPECT_THAT(shadow.body, HasSubstr("'shadow_fraction'"));
  Result not_ready = Post("/v1/rollouts/simple", R"({"candidate": 7, "stable": 1})");
  EXPECT_EQ(not_ready.status, 409);
  EXPECT_THAT(not_ready.body, HasSubstr("candidate version 7 is not ready"));
  EXPECT_EQ(Post("/v1/rollouts/simple", "").status, 400);
  EXPECT_EQ(Post("/v1/rollouts/nope", R"({"candidate": 2})").status, 404);
  EXPECT_EQ(Post("/v1/rollouts/simple/rollback", R"({"reason": "x"})").status, 400);
  EXPECT_EQ(Post("/v1/rollouts/simple/rollback").status, 404);
  EXPECT_EQ(Get("/v1/rollouts/simple/status").status, 404);
  Result put = Call(http::bhttp::verb::put, "/v1/rollouts/simple");
  EXPECT_EQ(put.status, 405);
  EXPECT_EQ(put.allow, "GET, POST, DELETE");
}

TEST_F(RolloutHandlerTest, ChangesNeedTheAdminToken) {
  MakeHandler("s3cret");
  EXPECT_EQ(Post("/v1/rollouts/simple", kCanary).status, 401);
  EXPECT_EQ(Post("/v1/rollouts/simple", kCanary, "Bearer wrong").status, 403);
  EXPECT_EQ(Get("/v1/rollouts").status, 200);
  EXPECT_EQ(Post("/v1/rollouts/simple", kCanary, "Bearer s3cret").status, 200);
}

}  // namespace
}  // namespace flywheel::api
