// serving::Server against real repositories built in a temporary folder from the example
// `simple` model (INT32 add/sub): loading, routing, versions, reload, unload, statistics, drain.
#include "serving/server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "core/npy.h"
#include "model_config.pb.h"
#include "monitor/metrics.h"
#include "serving/testing/server_fixture.h"

namespace flywheel::serving {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing_util::AddSubRequest;
using testing_util::InferSync;

class ServerTest : public ::testing::Test {
 protected:
  std::unique_ptr<Server> Start(ModelControlMode mode = ModelControlMode::kNone,
                                std::vector<std::string> load = {}) {
    ServerOptions options;
    options.model_repositories = {repo_.string()};
    options.control_mode = mode;
    options.startup_models = std::move(load);
    options.repository_poll_secs = 1;
    auto server = Server::Create(options, &registry_);
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? std::move(*server) : nullptr;
  }

  testing_util::ModelRepo repo_;
  monitor::Registry registry_;
};

TEST_F(ServerTest, ServesAddSub) {
  repo_.AddSimple("simple", {1});
  auto server = Start();
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(server->Ready());
  auto r = InferSync(*server, AddSubRequest("simple", 2, 10));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model_name, "simple");
  EXPECT_EQ(r->model_version, "1");
  EXPECT_EQ(r->id, "r10");
  ASSERT_EQ(r->outputs.size(), 2u);
  EXPECT_EQ(r->outputs[0].name, "OUTPUT0");
  EXPECT_EQ(r->outputs[0].data.shape(), (Shape{2, 16}));
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(r->outputs[0].data.data<int32_t>()[i], 10 + i + 1);
    EXPECT_EQ(r->outputs[1].data.data<int32_t>()[i], 10 + i - 1);
  }
  auto stats = server->Statistics("simple", "");
  ASSERT_TRUE(stats.ok());
  ASSERT_EQ(stats->size(), 1u);
  EXPECT_EQ((*stats)[0].success.count, 1u);
  EXPECT_EQ((*stats)[0].inference_count, 2u);
  EXPECT_THAT(registry_.Render(),
              HasSubstr("nv_inference_request_success{model=\"simple\",version=\"1\"} 1"));
}

TEST_F(ServerTest, UnknownModelAndVersionAndBadInput) {
  repo_.AddSimple("simple", {1});
  auto server = Start();
  ASSERT_NE(server, nullptr);
  auto r = InferSync(*server, AddSubRequest("nope", 1));
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  auto req = AddSubRequest("simple", 1);
  req->model_version = "7";
  r = InferSync(*server, std::move(req));
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  req = AddSubRequest("simple", 1);
  req->inputs.pop_back();
  r = InferSync(*server, std::move(req));
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("INPUT1"));
  auto stats = server->Statistics("simple", "1");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ((*stats)[0].fail.count, 1u);
}

TEST_F(ServerTest, VersionPolicyAllServesEveryVersion) {
  repo_.AddSimple("simple", {1, 2, 3}, "version_policy { all {} }\n");
  auto server = Start();
  ASSERT_NE(server, nullptr);
  auto meta = server->GetModelMetadata("simple", "");
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_THAT(meta->versions, ::testing::ElementsAre("1", "2", "3"));
  auto req = AddSubRequest("simple", 1);
  req->model_version = "2";
  auto r = InferSync(*server, std::move(req));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model_version, "2");
  EXPECT_EQ(*server->ModelReady("simple", "3"), true);
}

// A registry alias names a version in the path or in the model_version parameter.
TEST_F(ServerTest, VersionAliasesResolveThroughTheRegistryHook) {
  repo_.AddSimple("simple", {1, 2, 3}, "version_policy { all {} }\n");
  ServerOptions options;
  options.model_repositories = {repo_.string()};
  options.resolve_version_alias = [](const std::string& model,
                                     const std::string& label) -> absl::StatusOr<int64_t> {
    if (model == "simple" && label == "production") return 2;
    return absl::NotFoundError("model '" + model + "' has no alias '" + label + "'");
  };
  auto server = Server::Create(options, &registry_);
  ASSERT_TRUE(server.ok()) << server.status();

  auto req = AddSubRequest("simple", 1);
  req->model_version = "production";
  auto r = InferSync(**server, std::move(req));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model_version, "2");

  req = AddSubRequest("simple", 1);
  req->parameters["model_version"] = std::string("production");
  r = InferSync(**server, std::move(req));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model_version, "2");

  req = AddSubRequest("simple", 1);
  req->model_version = "staging";
  r = InferSync(**server, std::move(req));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("no alias 'staging'"));

  req = AddSubRequest("simple", 1);
  req->model_version = "3";
  r = InferSync(**server, std::move(req));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model_version, "3");
}

// Warm-up requests run before the version is ready and are not in its statistics.
TEST_F(ServerTest, WarmupIsNotCountedInStatistics) {
  repo_.AddSimple(
      "simple", {1},
      "model_warmup [{ name: \"w\" batch_size: 2 count: 3 inputs [\n"
      "  { key: \"INPUT0\" value: { data_type: TYPE_INT32 dims: [16] zero_data: true } },\n"
      "  { key: \"INPUT1\" value: { data_type: TYPE_INT32 dims: [16] zero_data: true } }"
      "]}]\n");
  auto server = Start();
  ASSERT_NE(server, nullptr);
  auto stats = server->Statistics("simple", "");
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_EQ(stats->size(), 1u);
  EXPECT_EQ((*stats)[0].success.count, 0u);
  EXPECT_EQ((*stats)[0].inference_count, 0u);
  EXPECT_EQ((*stats)[0].execution_count, 0u);
  EXPECT_TRUE((*stats)[0].batch_stats.empty());

  ASSERT_TRUE(InferSync(*server, AddSubRequest("simple", 1)).ok());
  stats = server->Statistics("simple", "");
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ((*stats)[0].success.count, 1u);
  EXPECT_EQ((*stats)[0].inference_count, 1u);
}

TEST_F(ServerTest, BrokenModelIsUnavailableWithReasonAndOthersServe) {
  repo_.AddSimple("simple", {1});
  repo_.AddSimple("broken", {1});
  std::ofstream(repo_.path() / "broken/1/model.onnx", std::ios::trunc) << "not an onnx file";
  auto server = Start();
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(InferSync(*server, AddSubRequest("simple", 1)).ok());
  auto r = InferSync(*server, AddSubRequest("broken", 1));
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  bool found = false;
  for (const ModelIndexEntry& e : server->RepositoryIndex(false)) {
    if (e.name == "broken") {
      found = true;
      EXPECT_EQ(e.state, "UNAVAILABLE");
      EXPECT_FALSE(e.reason.empty());
    }
  }
  EXPECT_TRUE(found);
  EXPECT_FALSE(server->Ready());  // strict readiness: a model loaded at start is not ready
}

TEST_F(ServerTest, ExplicitLoadUnloadAndConfigOverride) {
  repo_.AddSimple("simple", {1});
  repo_.AddSimple("other", {1});
  auto server = Start(ModelControlMode::kExplicit, {"simple"});
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(absl::IsUnavailable(InferSync(*server, AddSubRequest("other", 1)).status()) ||
              absl::IsNotFound(InferSync(*server, AddSubRequest("other", 1)).status()));
  ASSERT_TRUE(server->LoadModel("other", std::nullopt).ok());
  EXPECT_TRUE(InferSync(*server, AddSubRequest("other", 1)).ok());
  ASSERT_TRUE(server->UnloadModel("other").ok());
  EXPECT_FALSE(InferSync(*server, AddSubRequest("other", 1)).ok());
  // A config given with the load replaces config.pbtxt: max_batch_size 1 refuses 2 rows.
  ASSERT_TRUE(server
                  ->LoadModel("other", std::string(R"({"name":"other","platform":"onnxruntime_onnx",
                               "max_batch_size":1})"))
                  .ok());
  auto r = InferSync(*server, AddSubRequest("other", 2));
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_TRUE(InferSync(*server, AddSubRequest("other", 1)).ok());
  EXPECT_FALSE(server->LoadModel("missing", std::nullopt).ok());
}

TEST_F(ServerTest, PollReloadDuringTrafficFailsNothing) {
  repo_.AddSimple("simple", {1});
  auto server = Start(ModelControlMode::kPoll);
  ASSERT_NE(server, nullptr);
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::string first_error;
  std::mutex error_mu;
  std::thread client([&] {
    while (!stop.load()) {
      auto r = InferSync(*server, AddSubRequest("simple", 1));
      if (r.ok()) {
        ok++;
      } else {
        failed++;
        std::lock_guard<std::mutex> lock(error_mu);
        if (first_error.empty()) first_error = r.status().ToString();
      }
    }
  });
  // Version 2 appears; the poller loads it and the default version moves to 2.
  repo_.AddSimple("simple", {2});
  bool moved = false;
  for (int i = 0; i < 100 && !moved; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto meta = server->GetModelMetadata("simple", "");
    moved = meta.ok() && meta->versions == std::vector<std::string>{"2"};
  }
  stop = true;
  client.join();
  EXPECT_TRUE(moved);
  EXPECT_EQ(failed.load(), 0) << first_error;
  EXPECT_GT(ok.load(), 0);
}

TEST_F(ServerTest, DrainRefusesNewRequests) {
  repo_.AddSimple("simple", {1});
  auto server = Start();
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(server->Drain(1000));
  EXPECT_FALSE(server->Ready());
  auto r = InferSync(*server, AddSubRequest("simple", 1));
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
}

// The example FIL-style tree model returns XGBoost's own probabilities (fixtures written by
// tools/gen_examples.py with python3-xgboost).
TEST_F(ServerTest, ServesXgboostModelWithFilConfig) {
  const fs::path src = testing_util::SourceDir();
  fs::copy(src / "examples/models/fraud_trees", repo_.path() / "fraud_trees",
           fs::copy_options::recursive);
  auto server = Start();
  ASSERT_NE(server, nullptr);
  auto x = ReadNpy((src / "tests/fixtures/serving/fraud_trees_x.npy").string());
  auto p1 = ReadNpy((src / "tests/fixtures/serving/fraud_trees_p1.npy").string());
  ASSERT_TRUE(x.ok() && p1.ok());
  auto meta = server->GetModelMetadata("fraud_trees", "");
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_EQ(meta->platform, "fil");
  auto req = std::make_unique<InferRequest>();
  req->model_name = "fraud_trees";
  req->inputs.push_back({"input__0", *x, {}});
  auto r = InferSync(*server, std::move(req));
  ASSERT_TRUE(r.ok()) << r.status();
  const Tensor& out = r->outputs[0].data;
  ASSERT_EQ(out.shape(), (Shape{x->dim(0), 2}));
  for (int64_t i = 0; i < x->dim(0); ++i) {
    const float want = p1->data<float>()[i];
    EXPECT_NEAR(out.data<float>()[2 * i + 1], want, 1e-6 * std::max(1.0f, std::abs(want))) << i;
    EXPECT_NEAR(out.data<float>()[2 * i], 1.0f - want, 1e-6) << i;
  }
}

}  // namespace
}  // namespace flywheel::serving
