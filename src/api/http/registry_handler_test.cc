// The /v1/registry/ endpoints on real registries in temporary model repositories: every
// endpoint, the admin token (401/403 on changes, reads open), error statuses, and routing to the
// repository that has the model.
#include "api/http/registry_handler.h"

#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "api/http/http_message.h"
#include "api/http/testing/handler_call.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lifecycle/registry.h"
#include "rapidjson/document.h"

namespace flywheel::api {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

using Result = http::testing_util::HandlerResult;

class RegistryHandlerTest : public http::testing_util::HandlerTest {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/flywheel-registry-handler-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    root_ = pattern;
    for (const char* dir : {"a/rank/1", "a/rank/2", "a/rank/3", "b/fraud/1", "b/fraud/2"}) {
      fs::create_directories(fs::path(root_) / dir);
    }
    for (const char* repo : {"a", "b"}) {
      auto registry = lifecycle::Registry::Open(root_ + "/" + repo);
      ASSERT_TRUE(registry.ok()) << registry.status();
      registries_.push_back(std::move(*registry));
    }
    MakeHandler("");
  }
  void TearDown() override {
    handler_.reset();
    registries_.clear();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  void MakeHandler(const std::string& token) {
    handler_.reset();
    RegistryHandlerOptions options;
    options.admin_token = token;
    handler_ = MakeRegistryHandler({registries_[0].get(), registries_[1].get()}, options);
  }

  std::string root_;
  std::vector<std::unique_ptr<lifecycle::Registry>> registries_;
};

TEST_F(RegistryHandlerTest, ListsModelsOfEveryRepository) {
  Result r = Get("/v1/registry/models");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto& models = r.json["models"];
  ASSERT_EQ(models.Size(), 2u) << r.body;
  EXPECT_STREQ(models[0]["model"].GetString(), "fraud");
  EXPECT_STREQ(models[1]["model"].GetString(), "rank");
  EXPECT_EQ(models[1]["versions"].Size(), 3u);

  Result one = Get("/v1/registry/models/fraud");
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_STREQ(one.json["model"].GetString(), "fraud");
  EXPECT_THAT(one.json["registry_file"].GetString(), HasSubstr("/b/fraud/.flywheel/"));
}

TEST_F(RegistryHandlerTest, RegistersShowsAndUpdatesVersionMetadata) {
  Result reg = Post("/v1/registry/models/rank/versions/2",
                    R"({"training_data": "s3://logs/2026-11", "code_revision": "abc123",
                        "parameters": {"depth": "6"}, "metrics": {"auc": 0.91}, "parent": 1,
                        "description": "more data", "by": "alice"})");
  ASSERT_EQ(reg.status, 200) << reg.body;
  EXPECT_STREQ(reg.json["metadata"]["registered_by"].GetString(), "alice");

  // Registered already: a conflict unless updated or replaced.
  Result again = Post("/v1/registry/models/rank/versions/2", R"({"description": "x"})");
  EXPECT_EQ(again.status, 409) << again.body;
  Result update =
      Post("/v1/registry/models/rank/versions/2", R"({"update": true, "metrics": {"ndcg": 0.5}})");
  ASSERT_EQ(update.status, 200) << update.body;

  Result show = Get("/v1/registry/models/rank/versions/2");
  ASSERT_EQ(show.status, 200) << show.body;
  EXPECT_TRUE(show.json["registered"].GetBool());
  const auto& m = show.json["metadata"];
  EXPECT_STREQ(m["code_revision"].GetString(), "abc123");
  EXPECT_STREQ(m["description"].GetString(), "more data");
  EXPECT_DOUBLE_EQ(m["metrics"]["auc"].GetDouble(), 0.91);
  EXPECT_DOUBLE_EQ(m["metrics"]["ndcg"].GetDouble(), 0.5);

  Result replace =
      Post("/v1/registry/models/rank/versions/2", R"({"replace": true, "description": "fresh"})");
  ASSERT_EQ(replace.status, 200) << replace.body;
  show = Get("/v1/registry/models/rank/versions/2");
  ASSERT_EQ(show.status, 200) << show.body;
  EXPECT_STREQ(show.json["metadata"]["code_revision"].GetString(), "") << show.body;

  // Same view as the library.
  auto version = registries_[0]->Show("rank", "2");
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(version->metadata.description, "fresh");
}

TEST_F(RegistryHandlerTest, RegistrationErrors) {
  EXPECT_EQ(Post("/v1/registry/models/rank/versions/9", "{}").status, 404);
  EXPECT_EQ(Post("/v1/registry/models/rank/versions/production", "{}").status, 400);
  EXPECT_EQ(Post("/v1/registry/models/rank/versions/1", R"({"metrics": {"auc": "x"}})").status,
            400);
  EXPECT_EQ(Post("/v1/registry/models/rank/versions/1", R"({"parameters": {"d": 6}})").status, 400);
  Result unknown = Post("/v1/registry/models/rank/versions/1", R"({"descripton": "typo"})");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_THAT(unknown.body, HasSubstr("descripton"));
  EXPECT_EQ(
      Post("/v1/registry/models/rank/versions/1", R"({"update": true, "replace": true})").status,
      400);
  EXPECT_EQ(Post("/v1/registry/models/rank/versions/1", "{not json").status, 400);
  EXPECT_EQ(Post("/v1/registry/models/rank/versions/1", "[1]").status, 400);
}

TEST_F(RegistryHandlerTest, AliasesPromoteAndRollback) {
  Result set = Post("/v1/registry/models/rank/aliases/staging",
                    R"({"version": "2", "note": "try it", "by": "bob"})");
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_STREQ(set.json["change"]["action"].GetString(), "set");
  EXPECT_EQ(set.json["change"]["to"].GetInt64(), 2);
  EXPECT_STREQ(set.json["change"]["by"].GetString(), "bob");
  EXPECT_STREQ(set.json["change"]["note"].GetString(), "try it");

  Result p1 = Post("/v1/registry/models/rank/promote", R"({"version": 1})");
  ASSERT_EQ(p1.status, 200) << p1.body;
  EXPECT_STREQ(p1.json["change"]["alias"].GetString(), "production");
  EXPECT_STREQ(p1.json["change"]["by"].GetString(), "http");
  // A version may be named by an alias.
  Result p2 = Post("/v1/registry/models/rank/promote", R"({"version": "staging"})");
  ASSERT_EQ(p2.status, 200) << p2.body;
  EXPECT_EQ(p2.json["change"]["to"].GetInt64(), 2);

  Result by_alias = Get("/v1/registry/models/rank/versions/production");
  ASSERT_EQ(by_alias.status, 200) << by_alias.body;
  EXPECT_EQ(by_alias.json["version"].GetInt64(), 2);
  auto resolved = registries_[0]->Resolve("rank", "production");
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(*resolved, 2);

  Result back = Post("/v1/registry/models/rank/rollback", "");
  ASSERT_EQ(back.status, 200) << back.body;
  EXPECT_STREQ(back.json["change"]["action"].GetString(), "rollback");
  EXPECT_EQ(back.json["change"]["to"].GetInt64(), 1);
  // Nothing earlier left.
  Result none = Post("/v1/registry/models/rank/rollback", R"({"alias": "production"})");
  EXPECT_EQ(none.status, 409) << none.body;

  Result model = Get("/v1/registry/models/rank");
  ASSERT_EQ(model.status, 200);
  EXPECT_EQ(model.json["aliases"]["production"]["version"].GetInt64(), 1);
  EXPECT_EQ(model.json["history"].Size(), 4u) << model.body;

  Result removed = Delete("/v1/registry/models/rank/aliases/staging");
  ASSERT_EQ(removed.status, 200) << removed.body;
  EXPECT_STREQ(removed.json["change"]["action"].GetString(), "remove");
  EXPECT_EQ(Delete("/v1/registry/models/rank/aliases/staging").status, 404);
  EXPECT_EQ(Get("/v1/registry/models/rank/versions/staging").status, 404);
}

TEST_F(RegistryHandlerTest, ChangeErrors) {
  EXPECT_EQ(Post("/v1/registry/models/rank/aliases/staging", "{}").status, 400);
  EXPECT_EQ(Post("/v1/registry/models/rank/aliases/staging", R"({"version": "7"})").status, 404);
  EXPECT_EQ(Post("/v1/registry/models/rank/aliases/Bad%20Name", R"({"version": "1"})").status, 400);
  EXPECT_EQ(Post("/v1/registry/models/rank/aliases/123", R"({"version": "1"})").status, 400);
  EXPECT_EQ(Post("/v1/registry/models/rank/promote", R"({"version": "nope"})").status, 404);
  EXPECT_EQ(Post("/v1/registry/models/rank/promote", R"({"version": 0})").status, 400);
  EXPECT_EQ(Post("/v1/registry/models/rank/promote", R"({"version": true})").status, 400);
  EXPECT_EQ(Post("/v1/registry/models/rank/rollback", R"({"alias": "canary"})").status, 404);
  EXPECT_EQ(Post("/v1/registry/models/rank/rollback", R"({"by": 3})").status, 400);
  EXPECT_EQ(Get("/v1/registry/models/ghost").status, 404);
  EXPECT_EQ(Post("/v1/registry/models/ghost/promote", R"({"version": 1})").status, 404);
  EXPECT_EQ(Get("/v1/registry/models/.flywheel").status, 400);
  EXPECT_EQ(Get("/v1/registry/models/rank/versions/9").status, 404);
}

TEST_F(RegistryHandlerTest, RoutesAndMethods) {
  EXPECT_EQ(Get("/v1/registry/nothing").status, 404);
  EXPECT_EQ(Get("/v1/registry/models/rank/promote/x").status, 404);
  Result wrong = Call(http::bhttp::verb::put, "/v1/registry/models/rank/aliases/production");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.allow, "POST, DELETE");
  EXPECT_EQ(Get("/v1/registry/models/rank/promote").status, 405);
  EXPECT_EQ(Post("/v1/registry/models").status, 405);
}

TEST_F(RegistryHandlerTest, AdminTokenGuardsChangesOnly) {
  MakeHandler("s3cret");
  Result missing = Post("/v1/registry/models/rank/promote", R"({"version": 1})");
  EXPECT_EQ(missing.status, 401) << missing.body;
  EXPECT_EQ(missing.www_authenticate, "Bearer");
  EXPECT_EQ(Post("/v1/registry/models/rank/promote", R"({"version": 1})", "Basic abc").status, 401);
  EXPECT_EQ(Post("/v1/registry/models/rank/promote", R"({"version": 1})", "Bearer nope").status,
            403);
  EXPECT_EQ(Delete("/v1/registry/models/rank/aliases/production").status, 401);
  EXPECT_EQ(Post("/v1/registry/models/rank/versions/1", "{}").status, 401);
  // Nothing changed.
  EXPECT_FALSE(registries_[0]->Resolve("rank", "production").ok());

  Result ok = Post("/v1/registry/models/rank/promote", R"({"version": 1})", "Bearer s3cret");
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(Get("/v1/registry/models/rank/versions/production").status, 200);
  EXPECT_EQ(Get("/v1/registry/models").status, 200);
}

}  // namespace
}  // namespace flywheel::api
