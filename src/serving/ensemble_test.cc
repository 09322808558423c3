// Ensembles through serving::Server, from repositories written in a temporary folder with the
// example `simple` model (INT32 add/sub), the feature ranker and a fake feature store: sequences,
// parallel branches, feature_lookup steps, dynamic batching of steps, failing steps, step models
// unloaded and loaded again, nesting. Configuration errors are in ensemble_config_test.cc and the
// plan's execution order in ensemble_plan_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "absl/strings/str_replace.h"
#include "model_config.pb.h"
#include "monitor/metrics.h"
#include "serving/ensemble_test_util.h"
#include "serving/server.h"

namespace flywheel::serving {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing_util::Bytes;
using testing_util::FakeFeatureSource;
using testing_util::Ints;
using testing_util::ModelRepo;

// The steps of add_twice: (a+b, a-b), then their sum and difference, 2a and 2b.
const char kAddTwice[] = R"cfg(
  name: "add_twice"
  platform: "ensemble"
  max_batch_size: 8
  input [
    { name: "a" data_type: TYPE_INT32 dims: [ 16 ] },
    { name: "b" data_type: TYPE_INT32 dims: [ 16 ] }
  ]
  output [
    { name: "twice_a" data_type: TYPE_INT32 dims: [ 16 ] },
    { name: "twice_b" data_type: TYPE_INT32 dims: [ 16 ] }
  ]
  ensemble_scheduling {
    step [
      {
        model_name: "simple"
        model_version: -1
        input_map { key: "INPUT0" value: "a" }
        input_map { key: "INPUT1" value: "b" }
        output_map { key: "OUTPUT0" value: "sum" }
        output_map { key: "OUTPUT1" value: "diff" }
      },
      {
        model_name: "simple"
        model_version: -1
        input_map { key: "INPUT0" value: "sum" }
        input_map { key: "INPUT1" value: "diff" }
        output_map { key: "OUTPUT0" value: "twice_a" }
        output_map { key: "OUTPUT1" value: "twice_b" }
      }
    ]
  }
)cfg";

// A diamond: a+b and 2b in parallel (two different models), then (a+b) - 2b = a-b.
const char kDiamond[] = R"cfg(
  name: "diamond"
  platform: "ensemble"
  max_batch_size: 0
  input [
    { name: "a" data_type: TYPE_INT32 dims: [ 1, 16 ] },
    { name: "b" data_type: TYPE_INT32 dims: [ 1, 16 ] }
  ]
  output [ { name: "a_minus_b" data_type: TYPE_INT32 dims: [ 1, 16 ] } ]
  ensemble_scheduling {
    step [
      {
        model_name: "simple"
        model_version: -1
        input_map { key: "INPUT0" value: "a" }
        input_map { key: "INPUT1" value: "b" }
        output_map { key: "OUTPUT0" value: "sum" }
      },
      {
        model_name: "other"
        model_version: 1
        input_map { key: "INPUT0" value: "b" }
        input_map { key: "INPUT1" value: "b" }
        output_map { key: "OUTPUT0" value: "two_b" }
      },
      {
        model_name: "simple"
        model_version: -1
        input_map { key: "INPUT0" value: "sum" }
        input_map { key: "INPUT1" value: "two_b" }
        output_map { key: "OUTPUT1" value: "a_minus_b" }
      }
    ]
  }
)cfg";

// One user id and N candidate item ids -> N scores: two feature lookups, then the ranker.
const char kRankWithFeatures[] = R"cfg(
  name: "rank_with_features"
  platform: "ensemble"
  input [
    { name: "user_id" data_type: TYPE_STRING dims: [ 1 ] },
    { name: "item_ids" data_type: TYPE_STRING dims: [ -1 ] }
  ]
  output [ { name: "scores" data_type: TYPE_FP32 dims: [ -1 ] } ]
  ensemble_scheduling {
    step [
      {
        model_name: "user_features"
        model_version: -1
        input_map { key: "key" value: "user_id" }
        output_map { key: "values" value: "user_vector" }
      },
      {
        model_name: "item_features"
        model_version: -1
        input_map { key: "item_id" value: "item_ids" }
        output_map { key: "item_values" value: "item_matrix" }
      },
      {
        model_name: "ranker"
        model_version: -1
        input_map { key: "user" value: "user_vector" }
        input_map { key: "items" value: "item_matrix" }
        output_map { key: "score" value: "scores" }
      }
    ]
  }
)cfg";

const char kUserFeatures[] = R"cfg(
  name: "user_features"
  backend: "feature_lookup"
  parameters {
    key: "features"
    value { string_value: "user_stats:clicks_1h, user_stats:spend_7d,user_stats:sessions_1d" }
  }
)cfg";

const char kItemFeatures[] = R"cfg(
  name: "item_features"
  backend: "feature_lookup"
  input [ { name: "item_id" data_type: TYPE_STRING dims: [ -1 ] } ]
  output [ { name: "item_values" data_type: TYPE_FP32 dims: [ -1, 3 ] } ]
  parameters {
    key: "features"
    value { string_value: "item_stats:views_1h,item_stats:clicks_1h,item_stats:price" }
  }
  parameters { key: "missing_value" value { string_value: "-1" } }
  instance_group [ { count: 2 } ]
)cfg";

class EnsembleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    features_.Set("u1", "user_stats:clicks_1h", 3);
    features_.Set("u1", "user_stats:spend_7d", 120.5f);
    features_.Set("u1", "user_stats:sessions_1d", 2);
    features_.Set("i1", "item_stats:views_1h", 40);
    features_.Set("i1", "item_stats:clicks_1h", 4);
    features_.Set("i1", "item_stats:price", 9.99f);
    features_.Set("i2", "item_stats:views_1h", 1000);
    features_.Set("i2", "item_stats:price", 150);
    features_.Set("i3", "item_stats:clicks_1h", 1);
  }

  std::unique_ptr<Server> Start(ModelControlMode mode = ModelControlMode::kNone,
                                std::vector<std::string> load = {}) {
    ServerOptions options;
    options.model_repositories = {repo_.path().string()};
    options.control_mode = mode;
    options.startup_models = std::move(load);
    options.feature_source = &features_;
    auto server = Server::Create(options, &registry_);
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? std::move(*server) : nullptr;
  }

  void AddFeatureModels() {
    repo_.AddConfig("user_features", kUserFeatures, {1});
    repo_.AddConfig("item_features", kItemFeatures, {1});
    repo_.AddRanker("ranker");
    repo_.AddConfig("rank_with_features", kRankWithFeatures, {1});
  }

  static std::string StateOf(const Server& server, const std::string& name, std::string* reason) {
    for (const ModelIndexEntry& e : server.RepositoryIndex(false)) {
      if (e.name != name) continue;
      if (reason != nullptr) *reason = e.reason;
      return e.state;
    }
    return "";
  }

  ModelRepo repo_;
  FakeFeatureSource features_;
  monitor::Registry registry_;
};

TEST_F(EnsembleTest, TwoStepsInSequenceThroughTheSameModel) {
  repo_.AddSimple("simple", {1});
  repo_.AddConfig("add_twice", kAddTwice, {1});
  // "add_twice" sorts before "simple": the ensemble still loads after its step model.
  auto server = Start();
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(server->ModelReady("add_twice", "").value_or(false));

  auto req = testing_util::Request("add_twice", {{"a", Ints({2, 16}, 5)}, {"b", Ints({2, 16}, 1)}});
  req->id = "r7";
  auto r = testing_util::InferSync(*server, std::move(req));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model_name, "add_twice");
  EXPECT_EQ(r->model_version, "1");
  EXPECT_EQ(r->id, "r7");
  ASSERT_EQ(r->outputs.size(), 2u);
  EXPECT_EQ(r->outputs[0].name, "twice_a");
  EXPECT_EQ(r->outputs[0].data.shape(), (Shape{2, 16}));
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(r->outputs[0].data.data<int32_t>()[i], 2 * (5 + i));
    EXPECT_EQ(r->outputs[1].data.data<int32_t>()[i], 2 * (1 + i));
  }

  // The ensemble's own statistics, and its step model's: two executions of one request.
  auto stats = server->Statistics("add_twice", "");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ((*stats)[0].success.count, 1u);
  EXPECT_EQ((*stats)[0].inference_count, 2u);
  auto step_stats = server->Statistics("simple", "1");
  ASSERT_TRUE(step_stats.ok());
  EXPECT_EQ((*step_stats)[0].success.count, 2u);
  EXPECT_EQ((*step_stats)[0].execution_count, 2u);

  // Metadata and configuration show the ensemble's own inputs and outputs.
  auto meta = server->GetModelMetadata("add_twice", "");
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->platform, "ensemble");
  ASSERT_EQ(meta->inputs.size(), 2u);
  EXPECT_EQ(meta->inputs[0].name, "a");
  EXPECT_EQ(meta->inputs[0].datatype, "INT32");
  EXPECT_THAT(meta->inputs[0].shape, ElementsAre(-1, 16));
  EXPECT_EQ(meta->outputs[1].name, "twice_b");
  inference::ModelConfig config;
  ASSERT_TRUE(server->GetModelConfig("add_twice", "", &config).ok());
  EXPECT_EQ(config.ensemble_scheduling().step_size(), 2);
}

TEST_F(EnsembleTest, ParallelBranchesThroughDifferentModels) {
  repo_.AddSimple("simple", {1});
  repo_.AddSimple("other", {1, 2}, "version_policy { all {} }");
  repo_.AddConfig("diamond", kDiamond, {1});
  auto server = Start();
  ASSERT_NE(server, nullptr);
  auto r = testing_util::InferSync(
      *server,
      testing_util::Request("diamond", {{"a", Ints({1, 16}, 100)}, {"b", Ints({1, 16}, 1)}}));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->outputs.size(), 1u);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(r->outputs[0].data.data<int32_t>()[i], 99);
  // model_version 1 of `other` ran, not its latest.
  EXPECT_EQ((*server->Statistics("other", "1"))[0].execution_count, 1u);
  EXPECT_EQ((*server->Statistics("other", "2"))[0].execution_count, 0u);
}

TEST_F(EnsembleTest, RequestedOutputsRunOnlyTheStepsTheyNeed) {
  repo_.AddSimple("simple", {1});
  repo_.AddSimple("other", {1});
  repo_.AddConfig("diamond",
                  absl::StrReplaceAll(kDiamond, {{"model_version: 1", "model_version: -1"}}), {1});
  auto server = Start();
  ASSERT_NE(server, nullptr);
  auto req = testing_util::Request("diamond", {{"a", Ints({1, 16}, 3)}, {"b", Ints({1, 16}, 1)}});
  req->outputs.push_back({"a_minus_b", true, {}});
  auto r = testing_util::InferSync(*server, std::move(req));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->outputs[0].binary_data);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(r->outputs[0].data.data<int32_t>()[i], 2);
}

TEST_F(EnsembleTest, FeatureLookupsFeedTheRankerInOneCall) {
  AddFeatureModels();
  auto server = Start();
  ASSERT_NE(server, nullptr);
  for (const ModelIndexEntry& e : server->RepositoryIndex(false)) {
    EXPECT_EQ(e.state, "READY") << e.name << ": " << e.reason;
  }
  auto r = testing_util::InferSync(
      *server, testing_util::Request("rank_with_features",
                                     {{"user_id", Bytes({1}, {"u1"})},
                                      {"item_ids", Bytes({4}, {"i1", "i2", "i3", "nobody"})}}));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->outputs.size(), 1u);
  const Tensor& scores = r->outputs[0].data;
  ASSERT_EQ(scores.shape(), (Shape{4}));

  // The same ranker called directly with the features the store holds gives the same scores.
  Tensor user = Tensor::Allocate(DataType::kFp32, Shape{1, 3});
  const float user_values[] = {3, 120.5f, 2};
  std::copy(user_values, user_values + 3, user.data<float>());
  Tensor items = Tensor::Allocate(DataType::kFp32, Shape{4, 3});
  const float item_values[] = {40, 4, 9.99f, 1000, -1, 150, -1, 1, -1, -1, -1, -1};
  std::copy(item_values, item_values + 12, items.data<float>());
  auto direct = testing_util::InferSync(
      *server, testing_util::Request("ranker", {{"user", user}, {"items", items}}));
  ASSERT_TRUE(direct.ok()) << direct.status();
  for (int i = 0; i < 4; ++i) {
    EXPECT_FLOAT_EQ(scores.data<float>()[i], direct->outputs[0].data.data<float>()[i]) << i;
  }
  EXPECT_GT(scores.data<float>()[0], 0.f);
  EXPECT_LT(scores.data<float>()[0], 1.f);
  // One lookup per feature_lookup step.
  EXPECT_EQ(features_.lookups(), 2);

  // The lookup model answers on its own too, with the presence of each value.
  auto looked = testing_util::InferSync(
      *server, testing_util::Request("user_features", {{"key", Bytes({2}, {"u1", "u2"})}}));
  ASSERT_TRUE(looked.ok()) << looked.status();
  ASSERT_EQ(looked->outputs.size(), 2u);
  EXPECT_EQ(looked->outputs[0].name, "values");
  EXPECT_EQ(looked->outputs[0].data.shape(), (Shape{2, 3}));
  EXPECT_FLOAT_EQ(looked->outputs[0].data.data<float>()[1], 120.5f);
  EXPECT_FLOAT_EQ(looked->outputs[0].data.data<float>()[3], 0.f);
  EXPECT_EQ(looked->outputs[1].name, "present");
  EXPECT_EQ(looked->outputs[1].data.dtype(), DataType::kBool);
  EXPECT_EQ(looked->outputs[1].data.data<uint8_t>()[0], 1);
  EXPECT_EQ(looked->outputs[1].data.data<uint8_t>()[3], 0);
}

TEST_F(EnsembleTest, TheExampleRepositoryLoadsAndRanks) {
  // examples/feature_models reads the views of examples/features.
  for (const char* f : {"user_clicks:clicks_10m", "user_clicks:dwell_1h", "item_clicks:users_1h",
                        "item_clicks:mean_dwell_1h", "item_clicks:clicks_1h"}) {
    features_.Declare(f);
  }
  features_.Set("u1", "user_clicks:clicks_1h", 4);
  features_.Set("i7", "item_clicks:clicks_1h", 2);
  ServerOptions options;
  options.model_repositories = {(testing_util::SourceDir() / "examples/feature_models").string()};
  options.feature_source = &features_;
  auto server = Server::Create(options, nullptr);
  ASSERT_TRUE(server.ok()) << server.status();
  for (const ModelIndexEntry& e : (*server)->RepositoryIndex(false)) {
    EXPECT_EQ(e.state, "READY") << e.name << ": " << e.reason;
  }
  auto r = testing_util::InferSync(
      **server,
      testing_util::Request("rank_with_features", {{"user_id", Bytes({1}, {"u1"})},
                                                   {"item_ids", Bytes({3}, {"i1", "i7", "i9"})}}));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->outputs.size(), 3u);
  EXPECT_EQ(r->outputs[0].name, "scores");
  EXPECT_EQ(r->outputs[0].data.shape(), (Shape{3}));
  EXPECT_EQ(r->outputs[1].name, "user_features");
  EXPECT_FLOAT_EQ(r->outputs[1].data.data<float>()[0], 4.f);
  EXPECT_EQ(r->outputs[2].name, "item_features");
  EXPECT_EQ(r->outputs[2].data.shape(), (Shape{3, 3}));
  EXPECT_FLOAT_EQ(r->outputs[2].data.data<float>()[3], 2.f);
}

TEST_F(EnsembleTest, DynamicBatchingAppliesToSteps) {
  repo_.AddSimple("simple", {1},
                  "dynamic_batching { preferred_batch_size: [ 4 ] "
                  "max_queue_delay_microseconds: 5000000 }");
  repo_.AddConfig("add_twice", kAddTwice, {1});
  auto server = Start();
  ASSERT_NE(server, nullptr);
  std::vector<std::future<absl::StatusOr<InferResponse>>> results;
  for (int k = 0; k < 4; ++k) {
    results.push_back(std::async(std::launch::async, [&, k] {
      return testing_util::InferSync(
          *server,
          testing_util::Request("add_twice", {{"a", Ints({1, 16}, k)}, {"b", Ints({1, 16}, 0)}}));
    }));
  }
  for (int k = 0; k < 4; ++k) {
    auto r = results[k].get();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->outputs[0].data.data<int32_t>()[0], 2 * k);
  }
  const ModelStatistics step = (*server->Statistics("simple", "1"))[0];
  EXPECT_EQ(step.inference_count, 8u);
  // Each stage's four requests were batched by the step model's scheduler.
  EXPECT_LT(step.execution_count, 8u);
}

TEST_F(EnsembleTest, BatchedFeatureLookupMergesRequestsIntoOneLookup) {
  // max_batch_size > 0: one key per batch row ([-1,1]), values [-1,F]; dynamic batching puts the
  // keys of concurrent requests into one lookup.
  repo_.AddConfig("users", R"cfg(
    backend: "feature_lookup"
    max_batch_size: 8
    dynamic_batching { preferred_batch_size: [ 4 ] max_queue_delay_microseconds: 5000000 }
    parameters {
      key: "features"
      value { string_value: "user_stats:spend_7d,user_stats:clicks_1h" }
    }
  )cfg",
                  {1});
  auto server = Start();
  ASSERT_NE(server, nullptr);
  inference::ModelConfig config;
  ASSERT_TRUE(server->GetModelConfig("users", "", &config).ok());
  EXPECT_EQ(config.input(0).name(), "key");
  EXPECT_THAT(config.input(0).dims(), ElementsAre(1));
  EXPECT_THAT(config.output(0).dims(), ElementsAre(2));

  const std::vector<std::string> keys = {"u1", "u2", "u1", "nobody"};
  std::vector<std::future<absl::StatusOr<InferResponse>>> results;
  for (const std::string& key : keys) {
    results.push_back(std::async(std::launch::async, [&, key] {
      return testing_util::InferSync(
          *server, testing_util::Request("users", {{"key", Bytes({1, 1}, {key})}}));
    }));
  }
  for (size_t k = 0; k < keys.size(); ++k) {
    auto r = results[k].get();
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->outputs[0].data.shape(), (Shape{1, 2}));
    const float* values = r->outputs[0].data.data<float>();
    EXPECT_FLOAT_EQ(values[0], keys[k] == "u1" ? 120.5f : 0.f) << keys[k];
    EXPECT_FLOAT_EQ(values[1], keys[k] == "u1" ? 3.f : 0.f) << keys[k];
  }
  EXPECT_LT(features_.lookups(), 4);
  EXPECT_EQ((*server->Statistics("users", ""))[0].inference_count, 4u);
}

TEST_F(EnsembleTest, PollLoadsAnEnsembleOnceItsStepModelArrives) {
  repo_.AddConfig("add_twice", kAddTwice, {1});
  ServerOptions options;
  options.model_repositories = {repo_.path().string()};
  options.control_mode = ModelControlMode::kPoll;
  options.repository_poll_secs = 1;
  options.strict_readiness = false;
  auto server = Server::Create(options, nullptr);
  ASSERT_TRUE(server.ok()) << server.status();
  std::string reason;
  EXPECT_EQ(StateOf(**server, "add_twice", &reason), "UNAVAILABLE");
  EXPECT_THAT(reason, HasSubstr("unknown model 'simple'"));

  repo_.AddSimple("simple", {1});
  for (int i = 0; i < 200 && StateOf(**server, "add_twice", nullptr) != "READY"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(StateOf(**server, "add_twice", &reason), "READY") << reason;
  EXPECT_TRUE(testing_util::InferSync(
                  **server, testing_util::Request(
                                "add_twice", {{"a", Ints({1, 16}, 1)}, {"b", Ints({1, 16}, 1)}}))
                  .ok());
}

TEST_F(EnsembleTest, FailingStepFailsTheRequestNamingStepAndModel) {
  AddFeatureModels();
  repo_.AddSimple("simple", {1});
  // max_batch_size 0: 9 rows reach `simple`, whose max_batch_size is 8.
  repo_.AddConfig("add_twice",
                  absl::StrReplaceAll(kAddTwice, {{"max_batch_size: 8", "max_batch_size: 0"},
                                                  {"dims: [ 16 ]", "dims: [ -1, 16 ]"}}),
                  {1});
  auto server = Start();
  ASSERT_NE(server, nullptr);
  auto r = testing_util::InferSync(
      *server,
      testing_util::Request("add_twice", {{"a", Ints({9, 16}, 0)}, {"b", Ints({9, 16}, 0)}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(),
              AllOf(HasSubstr("ensemble 'add_twice' step[0] (model 'simple')"),
                    HasSubstr("batch size 9"), HasSubstr("max_batch_size")));
  const ModelStatistics stats = (*server->Statistics("add_twice", ""))[0];
  EXPECT_EQ(stats.fail.count, 1u);
  EXPECT_EQ(stats.success.count, 0u);

  // A feature store that fails fails the lookup step, and with it the request.
  auto failed = testing_util::InferSync(
      *server, testing_util::Request("rank_with_features", {{"user_id", Bytes({1}, {"u1"})},
                                                            {"item_ids", Bytes({1}, {"boom"})}}));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(failed.status().message(),
              AllOf(HasSubstr("ensemble 'rank_with_features' step[1] (model 'item_features')"),
                    HasSubstr("the fake store is down")));
  // The server goes on serving.
  auto ok = testing_util::InferSync(
      *server, testing_util::Request("rank_with_features", {{"user_id", Bytes({1}, {"u1"})},
                                                            {"item_ids", Bytes({1}, {"i1"})}}));
  EXPECT_TRUE(ok.ok()) << ok.status();
}

TEST_F(EnsembleTest, UnloadedStepModelMakesTheEnsembleUnavailableUntilItIsBack) {
  repo_.AddSimple("simple", {1});
  repo_.AddConfig("add_twice", kAddTwice, {1});
  // Explicit mode: loading the ensemble loads its step model first.
  auto server = Start(ModelControlMode::kExplicit, {"add_twice"});
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(StateOf(*server, "simple", nullptr), "READY");
  auto request = [] {
    return testing_util::Request("add_twice", {{"a", Ints({1, 16}, 1)}, {"b", Ints({1, 16}, 1)}});
  };
  ASSERT_TRUE(testing_util::InferSync(*server, request()).ok());

  ASSERT_TRUE(server->UnloadModel("simple").ok());
  std::string reason;
  EXPECT_EQ(StateOf(*server, "add_twice", &reason), "UNAVAILABLE");
  EXPECT_THAT(reason, AllOf(HasSubstr("step[0] (model 'simple')"), HasSubstr("not ready")));
  EXPECT_FALSE(server->ModelReady("add_twice", "").value_or(true));
  auto r = testing_util::InferSync(*server, request());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(),
              AllOf(HasSubstr("ensemble 'add_twice' step[0] (model 'simple')"),
                    HasSubstr("unloaded by request")));

  // The step model back: the ensemble serves again without being reloaded.
  ASSERT_TRUE(server->LoadModel("simple", std::nullopt).ok());
  EXPECT_EQ(StateOf(*server, "add_twice", nullptr), "READY");
  EXPECT_TRUE(server->ModelReady("add_twice", "").value_or(false));
  EXPECT_TRUE(testing_util::InferSync(*server, request()).ok());
}

TEST_F(EnsembleTest, LoadingAnEnsembleLoadsItsStepModels) {
  AddFeatureModels();
  auto server = Start(ModelControlMode::kExplicit);
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(StateOf(*server, "ranker", nullptr), "");
  ASSERT_TRUE(server->LoadModel("rank_with_features", std::nullopt).ok());
  for (const char* name : {"user_features", "item_features", "ranker", "rank_with_features"}) {
    EXPECT_EQ(StateOf(*server, name, nullptr), "READY") << name;
  }
}

TEST_F(EnsembleTest, NestedEnsemblesAndCyclesMadeByReloads) {
  repo_.AddSimple("simple", {1});
  repo_.AddConfig("add_twice", kAddTwice, {1});
  repo_.AddConfig("outer",
                  absl::StrReplaceAll(kAddTwice, {{"\"add_twice\"", "\"outer\""},
                                                  {"\"simple\"", "\"add_twice\""},
                                                  {"INPUT0", "a"},
                                                  {"INPUT1", "b"},
                                                  {"OUTPUT0", "twice_a"},
                                                  {"OUTPUT1", "twice_b"}}),
                  {1});
  auto server = Start(ModelControlMode::kExplicit, {"outer"});
  ASSERT_NE(server, nullptr);
  // outer = add_twice(add_twice(a, b)) = (4a, 4b).
  auto r = testing_util::InferSync(
      *server, testing_util::Request("outer", {{"a", Ints({1, 16}, 1)}, {"b", Ints({1, 16}, 2)}}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outputs[0].data.data<int32_t>()[0], 4);
  EXPECT_EQ(r->outputs[1].data.data<int32_t>()[0], 8);

  // `simple` replaced by an ensemble running `outer` would never end: the reload is refused.
  auto st = server->LoadModel(
      "simple", std::string(R"({"name":"simple","platform":"ensemble","max_batch_size":8,)") +
                    R"("input":[{"name":"a","data_type":"TYPE_INT32","dims":[16]},)" +
                    R"({"name":"b","data_type":"TYPE_INT32","dims":[16]}],)" +
                    R"("output":[{"name":"twice_a","data_type":"TYPE_INT32","dims":[16]}],)" +
                    R"("ensemble_scheduling":{"step":[{"model_name":"outer","model_version":-1,)" +
                    R"("input_map":{"a":"a","b":"b"},"output_map":{"twice_a":"twice_a"}}]}})");
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), AllOf(HasSubstr("step[0].model_name"), HasSubstr("a cycle")));
  // The previous `simple` keeps serving.
  EXPECT_TRUE(testing_util::InferSync(
                  *server, testing_util::Request(
                               "outer", {{"a", Ints({1, 16}, 1)}, {"b", Ints({1, 16}, 2)}}))
                  .ok());
}

}  // namespace
}  // namespace flywheel::serving
