#include "monitor/monitoring.h"

#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "monitor/log_test_util.h"

namespace flywheel::monitor {
namespace {

using ::testing::HasSubstr;
using testing_util::ReadAll;
using testing_util::TempDir;

// A model version folder with a profile of input "x" (FP32 [batch, 2], N(0, 1) columns) and
// output "score" (FP32 [batch, 1], uniform).
std::string WriteVersionWithProfile(const std::string& root) {
  const std::string dir = root + "/rank/1";
  std::filesystem::create_directories(dir);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> uniform;
  const int64_t n = 4000;
  Tensor x = Tensor::Allocate(DataType::kFp32, Shape{n, 2});
  Tensor score = Tensor::Allocate(DataType::kFp32, Shape{n, 1});
  for (int64_t i = 0; i < 2 * n; ++i) x.data<float>()[i] = normal(rng);
  for (int64_t i = 0; i < n; ++i) score.data<float>()[i] = uniform(rng);
  ReferenceProfile profile;
  profile.model = "rank";
  profile.version = 1;
  profile.rows = n;
  auto in = ProfileTensor(x, "x", FeatureRole::kInput, {}, {}, ProfileOptions{});
  auto out = ProfileTensor(score, "score", FeatureRole::kOutput, {}, {}, ProfileOptions{});
  EXPECT_TRUE(in.ok() && out.ok());
  profile.features = *in;
  profile.features.insert(profile.features.end(), out->begin(), out->end());
  EXPECT_TRUE(SaveProfile(profile, ProfilePath(dir)).ok());
  return dir;
}

struct Request {
  Tensor x = Tensor::Allocate(DataType::kFp32, Shape{1, 2});
  Tensor score = Tensor::Allocate(DataType::kFp32, Shape{1, 1});
  void Fill(std::mt19937& rng, float shift) {
    std::normal_distribution<float> normal;
    std::uniform_real_distribution<float> uniform;
    x.data<float>()[0] = normal(rng) + shift;
    x.data<float>()[1] = normal(rng);
    score.data<float>()[0] = uniform(rng);
  }
  void ObserveInto(VersionMonitor& vm, const std::string& id) {
    const TensorRef in[] = {{"x", &x}};
    const TensorRef out[] = {{"score", &score}};
    vm.Observe(id, in, out, nullptr);
  }
};

MonitoringOptions Unlimited() {
  MonitoringOptions options;
  options.drift_options.max_rows_per_second = 0;  // every row, whatever the test's speed
  return options;
}

TEST(MonitoringTest, DriftFollowsTheStreamAndStopsWithTheVersion) {
  TempDir root;
  const std::string dir = WriteVersionWithProfile(root.path());
  auto monitoring = Monitoring::Create(Unlimited());
  ASSERT_TRUE(monitoring.ok()) << monitoring.status();
  auto vm = (*monitoring)->OnVersionLoaded({"rank", "1", dir, {}, {"score"}});
  ASSERT_TRUE(vm.ok()) << vm.status();
  ASSERT_NE((*vm)->drift(), nullptr);
  EXPECT_TRUE((*vm)->drift()->has_profile());

  std::mt19937 rng(1);
  Request r;
  for (int i = 0; i < 2000; ++i) {
    r.Fill(rng, 0);
    r.ObserveInto(**vm, "");
  }
  auto drift = (*monitoring)->Drift("rank");
  ASSERT_TRUE(drift.ok()) << drift.status();
  ASSERT_EQ(drift->size(), 1u);
  for (const FeatureDrift& f : (*drift)[0].report.features) {
    ASSERT_TRUE(f.psi.has_value()) << f.name;
    EXPECT_LT(*f.psi, 0.2) << f.name;
  }
  for (int i = 0; i < 6000; ++i) {
    r.Fill(rng, 2);
    r.ObserveInto(**vm, "");
  }
  drift = (*monitoring)->Drift("rank");
  ASSERT_TRUE(drift.ok());
  EXPECT_GE((*drift)[0].report.drifted_features, 1);

  EXPECT_TRUE(absl::IsNotFound((*monitoring)->Drift("other").status()));
  vm->reset();
  EXPECT_TRUE(absl::IsNotFound((*monitoring)->Drift("rank").status()));
  EXPECT_TRUE((*monitoring)->drift_registry().All().empty());
}

TEST(MonitoringTest, AReloadKeepsTheNewMonitorWhenTheOldOneGoes) {
  TempDir root;
  const std::string dir = WriteVersionWithProfile(root.path());
  auto monitoring = Monitoring::Create(Unlimited());
  ASSERT_TRUE(monitoring.ok());
  auto first = (*monitoring)->OnVersionLoaded({"rank", "1", dir, {}, {"score"}});
  auto second = (*monitoring)->OnVersionLoaded({"rank", "1", dir, {}, {"score"}});
  ASSERT_TRUE(first.ok() && second.ok());
  first->reset();
  EXPECT_EQ((*monitoring)->drift_registry().Get("rank", "1"), (*second)->drift());
  ASSERT_TRUE((*monitoring)->Drift("rank").ok());
}

TEST(MonitoringTest, AVersionWithoutProfileSaysWhy) {
  TempDir root;
  std::filesystem::create_directories(root.path() + "/m/2");
  auto monitoring = Monitoring::Create(Unlimited());
  ASSERT_TRUE(monitoring.ok());
  auto vm = (*monitoring)->OnVersionLoaded({"m", "2", root.path() + "/m/2", {}, {"y"}});
  ASSERT_TRUE(vm.ok());
  auto drift = (*monitoring)->Drift("m");
  ASSERT_TRUE(drift.ok());
  EXPECT_FALSE((*drift)[0].report.has_profile);
  EXPECT_THAT((*drift)[0].report.reason, HasSubstr("profile"));

  auto off =
      (*monitoring)->OnVersionLoaded({"m", "3", root.path() + "/m/2", {{"drift", "off"}}, {}});
  ASSERT_TRUE(off.ok());
  EXPECT_EQ((*off)->drift(), nullptr);
  drift = (*monitoring)->Drift("m");
  ASSERT_TRUE(drift.ok());
  ASSERT_EQ(drift->size(), 2u);
  EXPECT_EQ((*drift)[1].version, "3");
  EXPECT_THAT((*drift)[1].report.reason, HasSubstr("drift monitoring is off"));
}

TEST(MonitoringTest, ParametersOverrideTheFlagsAndBadValuesNameTheParameter) {
  TempDir root;
  MonitoringOptions options = Unlimited();
  options.log_dir = root.path() + "/log";
  options.log_sample_rate = 0.5;
  auto monitoring = Monitoring::Create(options);
  ASSERT_TRUE(monitoring.ok()) << monitoring.status();
  const std::vector<std::string> outputs = {"a", "b"};

  auto plain = (*monitoring)->OnVersionLoaded({"m", "1", root.path(), {}, outputs});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ((*plain)->settings().log_sample_rate, 0.5);
  EXPECT_TRUE((*plain)->settings().drift);
  EXPECT_EQ((*plain)->settings().label_output, "a");
  EXPECT_EQ((*plain)->settings().label_task, TaskKind::kAuto);

  std::map<std::string, std::string> params = {{"log_sample_rate", "0.1"},
                                               {"drift", "OFF"},
                                               {"label_output", "b"},
                                               {"label_task", "regression"},
                                               {"other_backend_key", "x"}};
  auto custom = (*monitoring)->OnVersionLoaded({"n", "1", root.path(), params, outputs});
  ASSERT_TRUE(custom.ok()) << custom.status();
  EXPECT_EQ((*custom)->settings().log_sample_rate, 0.1);
  EXPECT_FALSE((*custom)->settings().drift);
  EXPECT_EQ((*custom)->settings().label_output, "b");
  EXPECT_EQ((*custom)->settings().label_task, TaskKind::kRegression);

  auto no_labels =
      (*monitoring)->OnVersionLoaded({"o", "1", root.path(), {{"labels", "off"}}, outputs});
  ASSERT_TRUE(no_labels.ok());
  EXPECT_FALSE((*no_labels)->settings().labels);
  EXPECT_EQ((*no_labels)->settings().label_output, "");

  for (const auto& [key, value, expected] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"log_sample_rate", "1.5", "a number in [0, 1]"},
           {"log_sample_rate", "lots", "a number in [0, 1]"},
           {"drift", "maybe", "on or off"},
           {"labels", "2", "on or off"},
           {"label_output", "c", "one of its outputs (a, b)"},
           {"label_task", "ranking", "auto, binary, multiclass or regression"}}) {
    auto bad = (*monitoring)->OnVersionLoaded({"bad", "1", root.path(), {{key, value}}, outputs});
    ASSERT_FALSE(bad.ok()) << key;
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(bad.status().message(), HasSubstr("model 'bad' config parameter '" + key + "'"));
    EXPECT_THAT(bad.status().message(), HasSubstr(expected));
    EXPECT_THAT(bad.status().message(), HasSubstr("'" + value + "'"));
  }
  EXPECT_TRUE(absl::IsNotFound((*monitoring)->Drift("bad").status()));

  // Without a log folder, no model logs whatever it asks.
  auto no_log = Monitoring::Create(Unlimited());
  ASSERT_TRUE(no_log.ok());
  auto vm = (*no_log)->OnVersionLoaded({"n", "1", root.path(), params, outputs});
  ASSERT_TRUE(vm.ok());
  EXPECT_EQ((*vm)->settings().log_sample_rate, 0);
  EXPECT_EQ((*no_log)->prediction_log(), nullptr);
}

TEST(MonitoringTest, CreateRefusesBadOptions) {
  MonitoringOptions options;
  options.log_sample_rate = -0.1;
  EXPECT_FALSE(Monitoring::Create(options).ok());
  options = {};
  options.quality.horizon = absl::ZeroDuration();
  EXPECT_FALSE(Monitoring::Create(options).ok());
}

TEST(MonitoringTest, SampledRequestsAreLoggedWithTheirParameters) {
  TempDir root;
  MonitoringOptions options = Unlimited();
  options.log_dir = root.path() + "/log";
  auto monitoring = Monitoring::Create(options);
  ASSERT_TRUE(monitoring.ok());
  auto vm = (*monitoring)->OnVersionLoaded({"rank", "4", root.path(), {}, {"score"}});
  ASSERT_TRUE(vm.ok());

  // The input is a view on memory the keep-alive owns, as a request body would.
  auto body = std::make_shared<std::vector<float>>(std::vector<float>{1.5f, -2.f});
  Tensor x = Tensor::View(DataType::kFp32, Shape{1, 2}, body->data());
  Tensor score = testing_util::Fp32({0.25f});
  const TensorRef in[] = {{"x", &x}};
  const TensorRef out[] = {{"score", &score}};
  std::map<std::string, LogParameterValue> params = {{"user", std::string("u1")}};
  (*vm)->Observe("req-1", in, out, body, &params);
  (*vm)->Observe("req-2", in, out, body);
  body.reset();
  (*monitoring)->prediction_log()->Flush();

  auto read = ReadAll(options.log_dir);
  ASSERT_EQ(read.entries.size(), 2u);
  auto record = ParseRecordJson(read.entries[0].line);
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->model, "rank");
  EXPECT_EQ(record->version, 4);
  ASSERT_EQ(record->inputs.size(), 1u);
  EXPECT_EQ(record->inputs[0].first, "x");
  EXPECT_EQ(record->inputs[0].second.data<float>()[0], 1.5f);
  EXPECT_EQ(record->inputs[0].second.data<float>()[1], -2.f);
  EXPECT_EQ(record->outputs[0].second.data<float>()[0], 0.25f);
  std::vector<std::string> ids;
  bool has_param = false;
  for (const auto& e : read.entries) {
    auto r = ParseRecordJson(e.line);
    ASSERT_TRUE(r.ok());
    ids.push_back(r->request_id);
    if (r->request_id == "req-1") {
      has_param = r->parameters.count("user") == 1 &&
                  std::get<std::string>(r->parameters.at("user")) == "u1";
    }
  }
  EXPECT_THAT(ids, ::testing::UnorderedElementsAre("req-1", "req-2"));
  EXPECT_TRUE(has_param);
  EXPECT_EQ((*monitoring)->prediction_log()->Stats().written, 2);
}

TEST(MonitoringTest, LabelsJoinTheConfiguredOutput) {
  TempDir root;
  auto monitoring = Monitoring::Create(Unlimited());
  ASSERT_TRUE(monitoring.ok());
  auto vm = (*monitoring)
                ->OnVersionLoaded({"clf",
                                   "1",
                                   root.path(),
                                   {{"label_output", "prob"}, {"label_task", "binary"}},
                                   {"logit", "prob"}});
  ASSERT_TRUE(vm.ok());
  Tensor x = testing_util::Fp32({0.f});
  Tensor logit = Tensor::Allocate(DataType::kFp32, Shape{2, 1});
  Tensor prob = Tensor::Allocate(DataType::kFp32, Shape{2, 1});
  logit.data<float>()[0] = 5;
  logit.data<float>()[1] = -5;
  prob.data<float>()[0] = 0.9f;
  prob.data<float>()[1] = 0.2f;
  const TensorRef in[] = {{"x", &x}};
  const TensorRef out[] = {{"logit", &logit}, {"prob", &prob}};
  (*vm)->Observe("a", in, out, nullptr);
  (*vm)->Observe("", in, out, nullptr);  // no id: nothing to join later

  LabelJoiner& labels = (*monitoring)->labels();
  EXPECT_EQ(labels.AddLabel("a", 0, 1), LabelOutcome::kJoined);
  EXPECT_EQ(labels.AddLabel("a", 1, 1), LabelOutcome::kJoined);
  EXPECT_EQ(labels.AddLabel("a", 1, 1), LabelOutcome::kDuplicate);
  EXPECT_EQ(labels.AddLabel("b", 0, 1), LabelOutcome::kUnknown);
  auto quality = (*monitoring)->Quality("clf");
  ASSERT_TRUE(quality.ok());
  ASSERT_EQ(quality->size(), 1u);
  const QualityReport& r = (*quality)[0].report;
  EXPECT_EQ(r.pairs, 2);
  ASSERT_TRUE(r.accuracy.has_value());
  EXPECT_DOUBLE_EQ(*r.accuracy, 0.5);  // 0.9 -> 1 right, 0.2 -> 0 wrong
  ASSERT_TRUE(r.mae.has_value() == false);
  EXPECT_TRUE(absl::IsNotFound((*monitoring)->Quality("nope").status()));
}

// Gathers what a collector writes.
class Samples : public SampleWriter {
 public:
  void Add(const std::string& name, const std::string&, const std::string&, const Labels& labels,
           double value) override {
    std::string key = name;
    for (const auto& [k, v] : labels) key += "," + k + "=" + v;
    values[key] = value;
  }
  void AddHistogram(const std::string&, const std::string&, const Labels&,
                    const Histogram::Snapshot&) override {}
  std::map<std::string, double> values;
};

TEST(MonitoringTest, CollectsDriftQualityLabelAndLogMetrics) {
  Registry registry;  // outlives the monitoring, which removes its collector
  TempDir root;
  const std::string dir = WriteVersionWithProfile(root.path());
  MonitoringOptions options = Unlimited();
  options.log_dir = root.path() + "/log";
  auto monitoring = Monitoring::Create(options);
  ASSERT_TRUE(monitoring.ok());
  auto vm = (*monitoring)->OnVersionLoaded({"rank", "1", dir, {}, {"score"}});
  ASSERT_TRUE(vm.ok());
  std::mt19937 rng(3);
  Request r;
  for (int i = 0; i < 600; ++i) {
    r.Fill(rng, 0);
    r.ObserveInto(**vm, "id" + std::to_string(i));
  }
  (*monitoring)->labels().AddLabel("id1", 0, 0.5);
  (*monitoring)->prediction_log()->Flush();

  (*monitoring)->RegisterMetrics(&registry);
  const std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("flywheel_prediction_log_written_total 600"));
  EXPECT_THAT(text, HasSubstr("flywheel_prediction_log_dropped_total 0"));
  EXPECT_THAT(text, HasSubstr("flywheel_prediction_log_bytes_total"));
  EXPECT_THAT(text, HasSubstr("flywheel_feature_drift_psi{feature=\"x[0]\",model=\"rank\""));
  EXPECT_THAT(text, HasSubstr("flywheel_labels_total{outcome=\"joined\"} 1"));
  EXPECT_THAT(text, HasSubstr("flywheel_model_quality_pairs{model=\"rank\",version=\"1\"} 1"));

  Samples samples;
  (*monitoring)->Collect(samples);
  EXPECT_EQ(samples.values["flywheel_predictions_recorded_total"], 600);
  EXPECT_EQ(samples.values["flywheel_drift_profile_present,model=rank,version=1"], 1);
}

TEST(MonitoringTest, AVersionMonitorMayOutliveTheMonitoring) {
  TempDir root;
  const std::string dir = WriteVersionWithProfile(root.path());
  MonitoringOptions options = Unlimited();
  options.log_dir = root.path() + "/log";
  auto monitoring = Monitoring::Create(options);
  ASSERT_TRUE(monitoring.ok());
  auto vm = (*monitoring)->OnVersionLoaded({"rank", "1", dir, {}, {"score"}});
  ASSERT_TRUE(vm.ok());
  monitoring->reset();  // closes the log
  std::mt19937 rng(5);
  Request r;
  r.Fill(rng, 0);
  r.ObserveInto(**vm, "late");  // dropped by the closed log, nothing else happens
  vm->reset();
}

}  // namespace
}  // namespace flywheel::monitor
