// Every way an ensemble or feature_lookup configuration can be wrong is refused at load with an
// error naming the file, the step and the field: checked through Server::LoadModel, on a
// repository holding the example `simple` model (INT32 [16] add/sub, max_batch_size 8).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "serving/ensemble_test_util.h"
#include "serving/feature_lookup_backend.h"
#include "serving/model_config.h"

namespace flywheel::serving {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing_util::FakeFeatureSource;
using testing_util::ModelRepo;

// A correct two-step ensemble over `simple`; the cases below each break one thing in it.
const char kGood[] = R"cfg(
  name: "e"
  platform: "ensemble"
  max_batch_size: 8
  input [
    { name: "a" data_type: TYPE_INT32 dims: [ 16 ] },
    { name: "b" data_type: TYPE_INT32 dims: [ 16 ] }
  ]
  output [ { name: "out" data_type: TYPE_INT32 dims: [ 16 ] } ]
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
        model_name: "simple"
        model_version: -1
        input_map { key: "INPUT0" value: "sum" }
        input_map { key: "INPUT1" value: "b" }
        output_map { key: "OUTPUT0" value: "out" }
      }
    ]
  }
)cfg";

struct Case {
  const char* what;
  std::vector<std::pair<std::string, std::string>> edits;  // applied to kGood
  const char* expected;
};

std::string Edited(const Case& c) {
  std::string text = kGood;
  for (const auto& [from, to] : c.edits) {
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << c.what << ": '" << from << "' not in the config";
    if (at != std::string::npos) text.replace(at, from.size(), to);
  }
  return text;
}

class EnsembleConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_.AddSimple("simple", {1});
    // A copy of simple that does not batch.
    repo_.AddSimple("unbatched", {1});
    repo_.AddConfig("unbatched",
                    absl::StrReplaceAll(testing_util::kSimpleConfig,
                                        {{"\"simple\"", "\"unbatched\""},
                                         {"max_batch_size: 8", "max_batch_size: 0"},
                                         {"dims: [ 16 ]", "dims: [ -1, 16 ]"}}),
                    {});
    features_.Declare("user_clicks:clicks_1h");
    features_.Declare("user_clicks:dwell_1h");
    ServerOptions options;
    options.model_repositories = {repo_.path().string()};
    options.control_mode = ModelControlMode::kExplicit;
    options.startup_models = {"simple", "unbatched"};
    options.feature_source = &features_;
    auto server = Server::Create(options, nullptr);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  // Writes `config` as model `name` (with an empty version folder) and loads it.
  absl::Status Load(const std::string& name, const std::string& config) {
    repo_.AddConfig(name, config, {1});
    return server_->LoadModel(name, std::nullopt);
  }

  std::string ConfigPath(const std::string& name) const {
    return (repo_.path() / name / "config.pbtxt").string();
  }

  ModelRepo repo_;
  FakeFeatureSource features_;
  std::unique_ptr<Server> server_;
};

TEST_F(EnsembleConfigTest, TheGoodOneLoads) {
  ASSERT_TRUE(Load("e", kGood).ok()) << Load("e", kGood);
}

TEST_F(EnsembleConfigTest, EachMistakeIsRefusedNamingFileStepAndField) {
  const std::vector<Case> cases = {
      // Found in the file alone.
      {"step without a model",
       {{"model_name: \"simple\"", "model_name: \"\""}},
       "ensemble_scheduling.step[0].model_name: not set"},
      {"version 0",
       {{"model_version: -1", "model_version: 0"}},
       "ensemble_scheduling.step[0].model_version: 0 is not a version"},
      {"the ensemble as its own step",
       {{"model_name: \"simple\"", "model_name: \"e\""}},
       "ensemble_scheduling.step[0].model_name: names the ensemble itself"},
      {"empty input_map",
       {{"input_map { key: \"INPUT0\" value: \"a\" }\n        input_map { key: \"INPUT1\" value: "
         "\"b\" }",
         ""}},
       "ensemble_scheduling.step[0].input_map: empty"},
      {"a tensor nothing produces",
       {{"value: \"sum\" }\n        input_map", "value: \"summ\" }\n        input_map"}},
       "ensemble_scheduling.step[1].input_map['INPUT0']: tensor 'summ' is neither an ensemble "
       "input nor mapped from any step's output"},
      {"a tensor produced twice",
       {{"output_map { key: \"OUTPUT0\" value: \"out\" }",
         "output_map { key: \"OUTPUT0\" value: \"out\" }\n        output_map { key: \"OUTPUT1\" "
         "value: \"sum\" }"}},
       "ensemble_scheduling.step[1].output_map['OUTPUT1']: tensor 'sum' is also produced by "
       "step[0]"},
      {"a step producing an ensemble input",
       {{"output_map { key: \"OUTPUT0\" value: \"sum\" }",
         "output_map { key: \"OUTPUT0\" value: \"sum\" }\n output_map { key: \"OUTPUT1\" value: "
         "\"a\" }"}},
       "ensemble_scheduling.step[0].output_map['OUTPUT1']: 'a' is an ensemble input; a step "
       "cannot produce it"},
      {"an output no step produces",
       {{"output [ { name: \"out\"", "output [ { name: \"result\""}},
       "output 'result': not produced by any step"},
      {"a cycle",
       {{"input_map { key: \"INPUT0\" value: \"a\" }",
         "input_map { key: \"INPUT0\" value: \"out\" }"}},
       "ensemble_scheduling.step: step[0], step[1] wait on each other's outputs (a cycle through "
       "tensors 'out', 'sum')"},
      {"an input without data_type",
       {{"{ name: \"a\" data_type: TYPE_INT32 dims: [ 16 ] }", "{ name: \"a\" dims: [ 16 ] }"}},
       "input 'a'.data_type: not set"},
      {"an output without dims",
       {{"{ name: \"out\" data_type: TYPE_INT32 dims: [ 16 ] }",
         "{ name: \"out\" data_type: TYPE_INT32 }"}},
       "output 'out'.dims: not set"},
      {"an optional input",
       {{"{ name: \"b\" data_type: TYPE_INT32 dims: [ 16 ] }",
         "{ name: \"b\" data_type: TYPE_INT32 dims: [ 16 ] optional: true }"}},
       "input 'b'.optional: not supported by flywheel (every ensemble input is required)"},
      {"a backend on an ensemble",
       {{"platform: \"ensemble\"", "platform: \"ensemble\" backend: \"onnxruntime\""}},
       "name different runtimes"},
      {"warm-up on an ensemble",
       {{"ensemble_scheduling {",
         "model_warmup [ { name: \"w\" batch_size: 1 inputs { key: \"a\" value: { data_type: "
         "TYPE_INT32 dims: [ 16 ] zero_data: true } } inputs { key: \"b\" value: { data_type: "
         "TYPE_INT32 dims: [ 16 ] zero_data: true } } } ]\n  ensemble_scheduling {"}},
       "model_warmup: not supported by flywheel (ensembles are not warmed up"},
      // Found against the step models at load.
      {"an unknown step model",
       {{"model_name: \"simple\"", "model_name: \"nope\""}},
       "ensemble_scheduling.step[0].model_name: unknown model 'nope' (step models must be loaded "
       "before the ensemble)"},
      {"a version the step model does not have",
       {{"model_version: -1", "model_version: 3"}},
       "ensemble_scheduling.step[0].model_name: model 'simple' has no version 3"},
      {"an input_map key that is not a step input",
       {{"key: \"INPUT1\" value: \"b\" }", "key: \"INPUT9\" value: \"b\" }"}},
       "ensemble_scheduling.step[0].input_map['INPUT9']: not an input of model 'simple' version "
       "1 (its inputs: 'INPUT0' TYPE_INT32 [-1,16], 'INPUT1' TYPE_INT32 [-1,16])"},
      {"a required step input not mapped",
       {{"key: \"INPUT1\" value: \"b\" }", "key: \"INPUT9\" value: \"b\" }"}},
       "ensemble_scheduling.step[0].input_map: model 'simple' version 1 input 'INPUT1' is "
       "required but not mapped"},
      {"an output_map key that is not a step output",
       {{"output_map { key: \"OUTPUT0\" value: \"sum\" }",
         "output_map { key: \"OUTPUT7\" value: \"sum\" }"}},
       "ensemble_scheduling.step[0].output_map['OUTPUT7']: not an output of model 'simple'"},
      {"a data type that does not match the step input",
       {{"{ name: \"a\" data_type: TYPE_INT32", "{ name: \"a\" data_type: TYPE_FP32"}},
       "ensemble_scheduling.step[0].input_map['INPUT0']: tensor 'a' (ensemble input 'a') is "
       "TYPE_FP32 [-1,16], but model 'simple' version 1 input 'INPUT0' takes TYPE_INT32 [-1,16]"},
      {"a shape that does not match the step input",
       {{"{ name: \"b\" data_type: TYPE_INT32 dims: [ 16 ] }",
         "{ name: \"b\" data_type: TYPE_INT32 dims: [ 8 ] }"}},
       "ensemble_scheduling.step[0].input_map['INPUT1']: tensor 'b' (ensemble input 'b') is "
       "TYPE_INT32 [-1,8], but model 'simple' version 1 input 'INPUT1' takes TYPE_INT32 [-1,16]"},
      {"an output declared unlike its producer",
       {{"{ name: \"out\" data_type: TYPE_INT32", "{ name: \"out\" data_type: TYPE_INT64"}},
       "output 'out': declared TYPE_INT64 [-1,16], but output 'OUTPUT0' of "
       "ensemble_scheduling.step[1] model 'simple' version 1 is TYPE_INT32 [-1,16]"},
      {"a max_batch_size larger than a step model's",
       {{"max_batch_size: 8", "max_batch_size: 16"}},
       "max_batch_size: 16 is larger than model 'simple' version 1's max_batch_size 8 in "
       "ensemble_scheduling.step[0]"},
      {"a batching ensemble over a step model that does not batch",
       {{"model_name: \"simple\"", "model_name: \"unbatched\""}},
       "ensemble_scheduling.step[0]: model 'unbatched' version 1 does not batch "
       "(max_batch_size 0) but the ensemble does"},
  };
  for (const Case& c : cases) {
    absl::Status st = Load("e", Edited(c));
    EXPECT_FALSE(st.ok()) << c.what;
    EXPECT_THAT(st.message(), AllOf(HasSubstr(ConfigPath("e")), HasSubstr(c.expected))) << c.what;
  }
}

TEST_F(EnsembleConfigTest, StepsSectionMissingOrEmpty) {
  std::string no_section = kGood;
  no_section.erase(no_section.find("ensemble_scheduling"));
  absl::Status st = Load("e", no_section);
  EXPECT_THAT(st.message(),
              AllOf(HasSubstr(ConfigPath("e")), HasSubstr("ensemble_scheduling: not set")));
  st = Load("e", no_section + "ensemble_scheduling {}");
  EXPECT_THAT(st.message(), HasSubstr("ensemble_scheduling.step: no step is listed"));
  // The section on a model that is not an ensemble.
  st = Load("e", absl::StrReplaceAll(
                     kGood, {{"platform: \"ensemble\"", "platform: \"onnxruntime_onnx\""}}));
  EXPECT_THAT(st.message(),
              HasSubstr("ensemble_scheduling: set, but the model is not an ensemble"));
}

TEST_F(EnsembleConfigTest, AnEnsembleNeedsAVersionFolder) {
  repo_.AddConfig("e", kGood, {});
  absl::Status st = server_->LoadModel("e", std::nullopt);
  EXPECT_THAT(st.message(), HasSubstr("no version folder"));
}

TEST_F(EnsembleConfigTest, FeatureLookupMistakes) {
  const std::string good = R"cfg(
    name: "f"
    backend: "feature_lookup"
    input [ { name: "user_id" data_type: TYPE_STRING dims: [ -1 ] } ]
    output [ { name: "values" data_type: TYPE_FP32 dims: [ -1, 2 ] } ]
    parameters {
      key: "features"
      value { string_value: "user_clicks:clicks_1h,user_clicks:dwell_1h" }
    }
  )cfg";
  ASSERT_TRUE(Load("f", good).ok()) << Load("f", good);
  const std::vector<std::pair<std::vector<std::pair<std::string, std::string>>, std::string>>
      cases = {
          {{{"key: \"features\"", "key: \"feature\""}}, "parameters.features: not set"},
          {{{"user_clicks:dwell_1h", "dwell_1h"}},
           "parameters.features: 'dwell_1h' is not view:feature"},
          {{{"user_clicks:dwell_1h", "user_clicks:clicks_1h"}},
           "parameters.features: 'user_clicks:clicks_1h' is listed twice"},
          {{{"user_clicks:dwell_1h\" }",
             "user_clicks:dwell_1h\" }\n  }\n  parameters { key: "
             "\"missing_value\" value { string_value: \"abc\" }"}},
           "parameters.missing_value: 'abc' is not a number"},
          {{{"data_type: TYPE_STRING", "data_type: TYPE_INT64"}},
           "input 'user_id'.data_type: TYPE_INT64, but entity keys are TYPE_STRING"},
          {{{"data_type: TYPE_FP32", "data_type: TYPE_INT32"}},
           "output 'values'.data_type: TYPE_INT32, but a feature_lookup output is TYPE_FP32"},
          {{{"data_type: TYPE_FP32 ", ""}}, "output 'values'.data_type: not set"},
          {{{"dims: [ -1, 2 ]", "dims: [ -1, 3 ]"}},
           "output 'values': config shape [-1,3] does not fit the model's [-1,2]"},
          {{{"user_clicks:dwell_1h", "user_clicks:nope"}},
           "model 'f': parameters.features: unknown features 'user_clicks:nope'"},
          {{{"backend: \"feature_lookup\"", "backend: \"feature_lookup\" max_batch_size: 4"}},
           "input 'user_id': config shape [-1,-1] (with the batch dimension) does not fit the "
           "model's [-1,1]"},
      };
  for (const auto& [edits, expected] : cases) {
    std::string text = good;
    for (const auto& [from, to] : edits) {
      ASSERT_NE(text.find(from), std::string::npos) << from;
      text.replace(text.find(from), from.size(), to);
    }
    absl::Status st = Load("f", text);
    EXPECT_FALSE(st.ok()) << expected;
    EXPECT_THAT(st.message(), HasSubstr(expected));
  }
}

TEST_F(EnsembleConfigTest, FeatureLookupWithoutAFeatureStoreSaysHowToGetOne) {
  ServerOptions options;
  options.model_repositories = {repo_.path().string()};
  repo_.AddConfig("f",
                  "backend: \"feature_lookup\"\nparameters { key: \"features\" value { "
                  "string_value: \"user_clicks:clicks_1h\" } }\n",
                  {1});
  auto server = Server::Create(options, nullptr);
  ASSERT_TRUE(server.ok());
  for (const ModelIndexEntry& e : (*server)->RepositoryIndex(false)) {
    if (e.name != "f") continue;
    EXPECT_EQ(e.state, "UNAVAILABLE");
    EXPECT_THAT(e.reason, HasSubstr("start flywheel serve with --features DIR"));
  }
}

TEST(ParseFeatureList, SplitsTrimsAndRefuses) {
  auto list = ParseFeatureList(" a:x, b:y ,c:z");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list, (std::vector<std::string>{"a:x", "b:y", "c:z"}));
  EXPECT_FALSE(ParseFeatureList("").ok());
  EXPECT_FALSE(ParseFeatureList("a:x,,b:y").ok());
  EXPECT_FALSE(ParseFeatureList("a:x:y").ok());
  EXPECT_FALSE(ParseFeatureList(":x").ok());
}

}  // namespace
}  // namespace flywheel::serving
