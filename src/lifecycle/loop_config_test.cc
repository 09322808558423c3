#include "lifecycle/loop_config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flywheel::lifecycle {
namespace {

using ::testing::HasSubstr;

// The example of loop_config.h's comment, every field set.
constexpr char kFull[] = R"(name: fraud-retrain
model: fraud_trees
trigger:
  new_labels: 500
  every: 24h
  drift_psi: 0.2
  min_interval: 10m
data:
  window: 7d
  holdout: 0.2
  min_rows: 200
train:
  command: ["/usr/bin/python3", "train.py", "--train", "{train}", "--out", "{output}"]
  timeout: 10m
  model_file: xgboost.json
  env: {OMP_NUM_THREADS: "1"}
evaluate:
  metric: auc
  margin: 0.01
rollout:
  policy: canary
  weight: 0.1
  sticky_parameter: user_id
  shadow_fraction: 0.2
  healthy_for: 5m
  min_requests: 200
  max_error_rate: 0.01
  max_p99_ms: 50
  max_disagreement: 0.05
  max_quality_drop: 0.05
  alias: production
)";

constexpr char kMinimal[] = R"(name: m
model: rank
trigger:
  every: 1h
train:
  command: [train.sh]
  model_file: model.onnx
)";

TEST(LoopConfig, ParsesEveryFieldOfTheExample) {
  absl::StatusOr<LoopDefinition> def = ParseLoopDefinition(kFull, "loops/fraud.yaml");
  ASSERT_TRUE(def.ok()) << def.status();
  EXPECT_EQ(def->name, "fraud-retrain");
  EXPECT_EQ(def->model, "fraud_trees");
  EXPECT_EQ(def->source_file, "loops/fraud.yaml");
  EXPECT_EQ(def->trigger.new_labels, 500);
  EXPECT_EQ(def->trigger.every, absl::Hours(24));
  EXPECT_EQ(def->trigger.drift_psi, 0.2);
  EXPECT_EQ(def->trigger.min_interval, absl::Minutes(10));
  EXPECT_EQ(def->data.window, absl::Hours(24 * 7));
  EXPECT_EQ(def->data.holdout, 0.2);
  EXPECT_EQ(def->data.min_rows, 200);
  EXPECT_EQ(def->train.command, (std::vector<std::string>{"/usr/bin/python3", "train.py", "--train",
                                                          "{train}", "--out", "{output}"}));
  EXPECT_EQ(def->train.timeout, absl::Minutes(10));
  EXPECT_EQ(def->train.model_file, "xgboost.json");
  EXPECT_EQ(def->train.env, (std::map<std::string, std::string>{{"OMP_NUM_THREADS", "1"}}));
  EXPECT_EQ(def->evaluate.metric, GateMetric::kAuc);
  EXPECT_EQ(def->evaluate.margin, 0.01);
  EXPECT_EQ(def->rollout.policy, LoopRolloutPolicy::kCanary);
  EXPECT_EQ(def->rollout.weight, 0.1);
  EXPECT_EQ(def->rollout.sticky_parameter, "user_id");
  EXPECT_EQ(def->rollout.shadow_fraction, 0.2);
  EXPECT_EQ(def->rollout.healthy_for, absl::Minutes(5));
  EXPECT_EQ(def->rollout.min_requests, 200);
  EXPECT_EQ(def->rollout.max_error_rate, 0.01);
  EXPECT_EQ(def->rollout.max_p99_ms, 50);
  EXPECT_EQ(def->rollout.max_disagreement, 0.05);
  EXPECT_EQ(def->rollout.max_quality_drop, 0.05);
  EXPECT_EQ(def->rollout.alias, "production");
}

TEST(LoopConfig, DefaultsForOmittedFields) {
  absl::StatusOr<LoopDefinition> def = ParseLoopDefinition(kMinimal, "m.yaml");
  ASSERT_TRUE(def.ok()) << def.status();
  const LoopDefinition defaults;
  EXPECT_FALSE(def->trigger.new_labels.has_value());
  EXPECT_FALSE(def->trigger.drift_psi.has_value());
  EXPECT_EQ(def->trigger.min_interval, absl::Minutes(1));
  EXPECT_EQ(def->data.window, absl::Hours(24 * 7));
  EXPECT_EQ(def->data.holdout, 0.2);
  EXPECT_EQ(def->data.min_rows, 100);
  EXPECT_EQ(def->train.timeout, absl::Minutes(30));
  EXPECT_TRUE(def->train.env.empty());
  EXPECT_EQ(def->evaluate.metric, GateMetric::kAuc);
  EXPECT_EQ(def->evaluate.margin, 0);
  EXPECT_EQ(def->rollout.policy, LoopRolloutPolicy::kCanary);
  EXPECT_EQ(def->rollout.weight, 0.1);
  EXPECT_EQ(def->rollout.min_requests, 100);
  EXPECT_EQ(def->rollout.healthy_for, absl::Minutes(5));
  EXPECT_FALSE(def->rollout.max_p99_ms.has_value());
  EXPECT_EQ(def->rollout.alias, "production");
}

TEST(LoopConfig, DurationsAndPolicies) {
  const std::string yaml = absl::StrCat(kMinimal, R"(rollout:
  policy: shadow
  shadow_fraction: 1
  healthy_for: 1h30m
data:
  window: 90s
evaluate:
  metric: log_loss
)");
  absl::StatusOr<LoopDefinition> def = ParseLoopDefinition(yaml, "m.yaml");
  ASSERT_TRUE(def.ok()) << def.status();
  EXPECT_EQ(def->rollout.policy, LoopRolloutPolicy::kShadow);
  EXPECT_EQ(def->rollout.shadow_fraction, 1.0);
  EXPECT_EQ(def->rollout.healthy_for, absl::Minutes(90));
  EXPECT_EQ(def->data.window, absl::Seconds(90));
  EXPECT_EQ(def->evaluate.metric, GateMetric::kLogLoss);

  def = ParseLoopDefinition(absl::StrCat(kMinimal, "rollout: {policy: ab, sticky_parameter: u}\n"),
                            "m.yaml");
  ASSERT_TRUE(def.ok()) << def.status();
  EXPECT_EQ(def->rollout.policy, LoopRolloutPolicy::kAbTest);
  EXPECT_EQ(def->rollout.sticky_parameter, "u");
}

TEST(LoopConfig, MetricNamesAndDirections) {
  EXPECT_STREQ(GateMetricName(GateMetric::kAuc), "auc");
  EXPECT_STREQ(GateMetricName(GateMetric::kAccuracy), "accuracy");
  EXPECT_STREQ(GateMetricName(GateMetric::kLogLoss), "log_loss");
  EXPECT_STREQ(GateMetricName(GateMetric::kMae), "mae");
  EXPECT_STREQ(GateMetricName(GateMetric::kRmse), "rmse");
  EXPECT_TRUE(HigherIsBetter(GateMetric::kAuc));
  EXPECT_TRUE(HigherIsBetter(GateMetric::kAccuracy));
  EXPECT_FALSE(HigherIsBetter(GateMetric::kLogLoss));
  EXPECT_FALSE(HigherIsBetter(GateMetric::kMae));
  EXPECT_FALSE(HigherIsBetter(GateMetric::kRmse));
  EXPECT_STREQ(LoopRolloutPolicyName(LoopRolloutPolicy::kCanary), "canary");
  EXPECT_STREQ(LoopRolloutPolicyName(LoopRolloutPolicy::kAbTest), "ab");
  EXPECT_STREQ(LoopRolloutPolicyName(LoopRolloutPolicy::kShadow), "shadow");
}

struct Broken {
  const char* what;
  std::string yaml;
  std::string prefix;  // "f.yaml:<line>: <field>: "
  std::string detail;  // more of the message
};

// kFull with `from` replaced by `to` (which must occur).
std::string FullWith(const std::string& from, const std::string& to) {
  std::string text = kFull;
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST(LoopConfig, BrokenDefinitionsNameFileLineAndField) {
  const std::vector<Broken> cases = {
      {"missing name", FullWith("name: fraud-retrain\n", ""), "f.yaml:1: name: ", "missing"},
      {"bad name", FullWith("fraud-retrain", "Fraud Retrain"),
       "f.yaml:1: name: ", "'Fraud Retrain' is not a valid loop name"},
      {"missing model", FullWith("model: fraud_trees\n", ""), "f.yaml:1: model: ", "missing"},
      {"bad model", FullWith("model: fraud_trees", "model: ../x"), "f.yaml:2: model: ", ""},
      {"missing command",
       FullWith("  command: [\"/usr/bin/python3\", \"train.py\", \"--train\", "
                "\"{train}\", \"--out\", \"{output}\"]\n",
                ""),
       "f.yaml:12: train.command: ", "missing"},
      {"missing model_file", FullWith("  model_file: xgboost.json\n", ""),
       "f.yaml:12: train.model_file: ", "missing"},
      {"missing train", std::string(kFull).substr(0, std::string(kFull).find("train:\n")),
       "f.yaml:1: train.command: ", "missing"},
      {"model_file with slash", FullWith("model_file: xgboost.json", "model_file: out/x.json"),
       "f.yaml:15: train.model_file: ", "no '/'"},
      {"unknown top-level field",
       FullWith("model: fraud_trees\n", "model: fraud_trees\nowner: x\n"),
       "f.yaml:3: owner: ", "unknown field"},
      {"unknown nested field", FullWith("  holdout: 0.2\n", "  holdout: 0.2\n  hold_out: 0.3\n"),
       "f.yaml:11: data.hold_out: ", "unknown field"},
      {"unknown rollout field", FullWith("  alias: production\n", "  alias: production\n  x: 1\n"),
       "f.yaml:32: rollout.x: ", "unknown field"},
      {"duplicate field", FullWith("  holdout: 0.2\n", "  holdout: 0.2\n  holdout: 0.3\n"),
       "f.yaml:11: data.holdout: ", "given twice (first at line 10)"},
      {"no trigger at all", FullWith("  new_labels: 500\n  every: 24h\n  drift_psi: 0.2\n", ""),
       "f.yaml:3: trigger: ", "no trigger"},
      {"trigger section missing",
       FullWith(
           "trigger:\n  new_labels: 500\n  every: 24h\n  drift_psi: 0.2\n  min_interval: 10m\n",
           ""),
       "f.yaml:1: trigger: ", "no trigger"},
      {"bad duration", FullWith("timeout: 10m", "timeout: 10x"),
       "f.yaml:14: train.timeout: ", "'10x' is not a duration (use 30s, 10m, 2h, 7d)"},
      {"number as duration", FullWith("every: 24h", "every: 24"),
       "f.yaml:5: trigger.every: ", "'24' is not a duration"},
      {"zero timeout", FullWith("timeout: 10m", "timeout: 0s"),
       "f.yaml:14: train.timeout: ", "longer than 0"},
      {"new_labels not an integer", FullWith("new_labels: 500", "new_labels: lots"),
       "f.yaml:4: trigger.new_labels: ", "'lots' is not an integer"},
      {"new_labels zero", FullWith("new_labels: 500", "new_labels: 0"),
       "f.yaml:4: trigger.new_labels: ", "> 0"},
      {"holdout 1", FullWith("holdout: 0.2", "holdout: 1"),
       "f.yaml:10: data.holdout: ", "between 0 and 1"},
      {"holdout 0", FullWith("holdout: 0.2", "holdout: 0"),
       "f.yaml:10: data.holdout: ", "between 0 and 1"},
      {"min_rows 0", FullWith("min_rows: 200", "min_rows: 0"), "f.yaml:11: data.min_rows: ", "> 0"},
      {"weight 1.5", FullWith("weight: 0.1", "weight: 1.5"),
       "f.yaml:22: rollout.weight: ", "between 0 and 1"},
      {"error rate above 1", FullWith("max_error_rate: 0.01", "max_error_rate: 2"),
       "f.yaml:27: rollout.max_error_rate: ", "between 0 and 1"},
      {"negative margin", FullWith("margin: 0.01", "margin: -0.01"),
       "f.yaml:19: evaluate.margin: ", ">= 0"},
      {"negative quality drop", FullWith("max_quality_drop: 0.05", "max_quality_drop: -1"),
       "f.yaml:30: rollout.max_quality_drop: ", ">= 0"},
      {"unknown metric", FullWith("metric: auc", "metric: f1"), "f.yaml:18: evaluate.metric: ",
       "unknown metric 'f1' (use auc, accuracy, log_loss, mae, rmse)"},
      {"unknown policy", FullWith("policy: canary", "policy: blue_green"),
       "f.yaml:21: rollout.policy: ", "unknown policy 'blue_green'"},
      {"ab without sticky_parameter",
       FullWith("  policy: canary\n  weight: 0.1\n  sticky_parameter: user_id\n",
                "  policy: ab\n  weight: 0.1\n"),
       "f.yaml:20: rollout.sticky_parameter: ", "policy ab"},
      {"shadow without shadow_fraction",
       FullWith("  policy: canary\n", "  policy: shadow\n")
           .replace(std::string(kFull).find("  shadow_fraction: 0.2\n"), 23, ""),
       "f.yaml:20: rollout.shadow_fraction: ", "policy shadow"},
      {"shadow_fraction above 1", FullWith("shadow_fraction: 0.2", "shadow_fraction: 1.5"),
       "f.yaml:24: rollout.shadow_fraction: ", "(0, 1]"},
      {"command a string",
       absl::StrReplaceAll(kMinimal, {{"command: [train.sh]", "command: train.sh --fast"}}),
       "f.yaml:6: train.command: ", "list of strings"},
      {"command empty list",
       FullWith("[\"/usr/bin/python3\", \"train.py\", \"--train\", \"{train}\", \"--out\", "
                "\"{output}\"]",
                "[]"),
       "f.yaml:13: train.command: ", "non-empty list"},
      {"command element a map",
       FullWith("\"train.py\", \"--train\"", "{script: train.py}, \"--train\""),
       "f.yaml:13: train.command[1]: ", "expected a string"},
      {"unknown placeholder", FullWith("{output}\"]", "{outptu}\"]"),
       "f.yaml:13: train.command[5]: ", "unknown placeholder {outptu}"},
      {"env not a map", FullWith("env: {OMP_NUM_THREADS: \"1\"}", "env: [OMP_NUM_THREADS]"),
       "f.yaml:16: train.env: ", "map"},
      {"env bad name", FullWith("OMP_NUM_THREADS", "1BAD"),
       "f.yaml:16: train.env.1BAD: ", "environment variable name"},
      {"env unknown placeholder", FullWith("\"1\"}", "\"{threads}\"}"),
       "f.yaml:16: train.env.OMP_NUM_THREADS: ", "unknown placeholder {threads}"},
      {"section not a map",
       FullWith("data:\n  window: 7d\n  holdout: 0.2\n  min_rows: 200\n", "data: 7d\n"),
       "f.yaml:8: data: ", "expected a map"},
      {"quoted number", FullWith("drift_psi: 0.2", "drift_psi: \"0.2\""),
       "f.yaml:6: trigger.drift_psi: ", "quoted string '0.2'"},
      {"number is a list", FullWith("max_p99_ms: 50", "max_p99_ms: [50]"),
       "f.yaml:28: rollout.max_p99_ms: ", "expected a number"},
      {"bad alias", FullWith("alias: production", "alias: \"no way\""),
       "f.yaml:31: rollout.alias: ", ""},
      {"empty value", FullWith("model: fraud_trees", "model:"), "f.yaml:2: model: ", "is empty"},
      {"invalid YAML", FullWith("  holdout: 0.2\n", "  holdout: [0.2\n"),
       "f.yaml:", "invalid YAML"},
      {"not a map", "- a\n- b\n", "f.yaml:1: (top level): ", "expected a map"},
  };
  ASSERT_GE(cases.size(), 20u);
  for (const Broken& c : cases) {
    absl::StatusOr<LoopDefinition> def = ParseLoopDefinition(c.yaml, "f.yaml");
    ASSERT_FALSE(def.ok()) << c.what;
    EXPECT_EQ(def.status().code(), absl::StatusCode::kInvalidArgument) << c.what;
    const std::string message(def.status().message());
    EXPECT_EQ(message.rfind(c.prefix, 0), 0u) << c.what << ": " << message;
    EXPECT_THAT(message, HasSubstr(c.detail)) << c.what;
  }
}

TEST(LoopConfig, EmptyFile) {
  absl::StatusOr<LoopDefinition> def = ParseLoopDefinition("", "e.yaml");
  ASSERT_FALSE(def.ok());
  EXPECT_THAT(def.status().message(), HasSubstr("e.yaml:1: the file is empty"));
}

class LoopConfigFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat("loop_config_test_", ::getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }
  std::filesystem::path dir_;
};

TEST_F(LoopConfigFiles, ReadsAFolderSortedByFileName) {
  Write("b.yml", absl::StrReplaceAll(kMinimal, {{"name: m", "name: second"}}));
  Write("a.yaml", kFull);
  Write("notes.txt", "not a definition");
  Write(".a.yaml.swp", "junk");
  absl::StatusOr<std::vector<LoopDefinition>> defs = ReadLoopDefinitions(dir_.string());
  ASSERT_TRUE(defs.ok()) << defs.status();
  ASSERT_EQ(defs->size(), 2u);
  EXPECT_EQ((*defs)[0].name, "fraud-retrain");
  EXPECT_EQ((*defs)[0].source_file, (dir_ / "a.yaml").string());
  EXPECT_EQ((*defs)[1].name, "second");

  absl::StatusOr<LoopDefinition> one = ReadLoopDefinition((dir_ / "a.yaml").string());
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->model, "fraud_trees");
}

TEST_F(LoopConfigFiles, DuplicateNamesAcrossFiles) {
  Write("a.yaml", kMinimal);
  Write("b.yaml", absl::StrCat("# the same loop again\n", kMinimal));
  absl::StatusOr<std::vector<LoopDefinition>> defs = ReadLoopDefinitions(dir_.string());
  ASSERT_FALSE(defs.ok());
  EXPECT_THAT(defs.status().message(), HasSubstr(absl::StrCat((dir_ / "b.yaml").string(),
                                                              ":2: name: loop 'm' is defined in ",
                                                              (dir_ / "a.yaml").string())));
}

TEST_F(LoopConfigFiles, ErrorsInAFolderNameTheFile) {
  Write("a.yaml", kMinimal);
  Write("z.yaml", "name: z\nmodel: rank\n");
  absl::StatusOr<std::vector<LoopDefinition>> defs = ReadLoopDefinitions(dir_.string());
  ASSERT_FALSE(defs.ok());
  EXPECT_THAT(defs.status().message(), HasSubstr((dir_ / "z.yaml").string() + ":1: trigger:"));
}

TEST_F(LoopConfigFiles, MissingFileAndFolder) {
  absl::StatusOr<LoopDefinition> def = ReadLoopDefinition((dir_ / "nope.yaml").string());
  ASSERT_FALSE(def.ok());
  EXPECT_THAT(def.status().message(), HasSubstr("nope.yaml"));
  absl::StatusOr<std::vector<LoopDefinition>> defs =
      ReadLoopDefinitions((dir_ / "nothing").string());
  ASSERT_FALSE(defs.ok());
  EXPECT_THAT(defs.status().message(), HasSubstr("nothing"));
  defs = ReadLoopDefinitions(dir_.string());  // an empty folder: no loops
  ASSERT_TRUE(defs.ok()) << defs.status();
  EXPECT_TRUE(defs->empty());
}

}  // namespace
}  // namespace flywheel::lifecycle
