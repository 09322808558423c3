// The server with monitoring attached: every successful request (and no warm-up, no failure)
// reaches the version's drift monitor, label joiner and prediction log; a bad monitoring
// parameter makes the version unavailable with the reason.
#include "serving/monitoring_hook.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "monitor/log_reader.h"
#include "monitor/log_record.h"
#include "monitor/log_test_util.h"
#include "monitor/metrics.h"
#include "monitor/monitoring.h"
#include "monitor/profile.h"
#include "serving/server.h"
#include "serving/testing/server_fixture.h"

namespace flywheel::serving {
namespace {

using ::testing::HasSubstr;

// Appended to the example `simple` model's configuration: requests are batched, and warm-up
// requests run before the version is ready (and must not reach the monitors).
const char kMonitoredConfig[] = R"pb(
  dynamic_batching {} model_warmup
  [ {
    name: "zeros"
    batch_size: 1
    inputs {
      key: "INPUT0"
      value: {
        data_type: TYPE_INT32
        dims: [ 16 ]
        zero_data: true
      }
    }
    inputs {
      key: "INPUT1"
      value: {
        data_type: TYPE_INT32
        dims: [ 16 ]
        zero_data: true
      }
    }
  }]
)pb";

class MonitoringHookTest : public ::testing::Test {
 protected:
  void AddModel(const std::string& name, const std::string& extra_config = "") {
    repo_.AddSimple(name, {1}, kMonitoredConfig + extra_config);
  }

  // A profile of INPUT0's 16 columns with values 0..99 each.
  void AddProfile(const std::string& name) {
    Tensor x = Tensor::Allocate(DataType::kInt32, Shape{1000, 16});
    for (int i = 0; i < 16000; ++i) x.data<int32_t>()[i] = (i / 16) % 100;
    auto features = monitor::ProfileTensor(x, "INPUT0", monitor::FeatureRole::kInput, {}, {},
                                           monitor::ProfileOptions{});
    ASSERT_TRUE(features.ok()) << features.status();
    monitor::ReferenceProfile profile;
    profile.model = name;
    profile.version = 1;
    profile.rows = 1000;
    profile.features = *features;
    ASSERT_TRUE(
        monitor::SaveProfile(profile, monitor::ProfilePath((repo_.path() / name / "1").string()))
            .ok());
  }

  void StartServer() {
    monitor::MonitoringOptions options;
    options.log_dir = log_dir_.path();
    options.drift_options.max_rows_per_second = 0;
    auto monitoring = monitor::Monitoring::Create(options);
    ASSERT_TRUE(monitoring.ok()) << monitoring.status();
    monitoring_ = std::move(*monitoring);
    ServerOptions server_options;
    server_options.model_repositories = {repo_.string()};
    server_options.strict_readiness = false;
    server_options.monitoring = monitoring_.get();
    auto server = Server::Create(server_options, &registry_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  absl::StatusOr<InferResponse> Infer(const std::string& model, const std::string& id, int value,
                                      int rows = 1) {
    auto req = std::make_unique<InferRequest>();
    req->model_name = model;
    req->id = id;
    req->parameters["origin"] = std::string("test");
    for (const char* name : {"INPUT0", "INPUT1"}) {
      Tensor t = Tensor::Allocate(DataType::kInt32, Shape{rows, 16});
      for (int i = 0; i < rows * 16; ++i) t.data<int32_t>()[i] = value;
      req->inputs.push_back({name, t, {}});
    }
    return testing_util::InferSync(*server_, std::move(req));
  }

  std::vector<monitor::PredictionRecord> ReadLog() {
    monitoring_->prediction_log()->Flush();
    std::vector<monitor::PredictionRecord> out;
    monitor::LogReaderOptions options;
    options.dir = log_dir_.path();
    auto reader = monitor::LogReader::Open(options);
    EXPECT_TRUE(reader.ok()) << reader.status();
    if (!reader.ok()) return out;
    monitor::LogEntry entry;
    while (true) {
      auto more = (*reader)->Next(&entry);
      EXPECT_TRUE(more.ok()) << more.status();
      if (!more.ok() || !*more) break;
      auto record = monitor::ParseRecordJson(entry.line);
      EXPECT_TRUE(record.ok()) << record.status();
      if (record.ok()) out.push_back(*std::move(record));
    }
    return out;
  }

  testing_util::ModelRepo repo_;
  monitor::testing_util::TempDir log_dir_;
  monitor::Registry registry_;
  std::unique_ptr<monitor::Monitoring> monitoring_;  // outlives the server
  std::unique_ptr<Server> server_;
};

TEST_F(MonitoringHookTest, SuccessfulRequestsReachDriftLabelsAndTheLog) {
  AddModel("simple");
  AddProfile("simple");
  StartServer();
  for (int i = 0; i < 20; ++i) {
    auto r = Infer("simple", "req-" + std::to_string(i), i, 2);
    ASSERT_TRUE(r.ok()) << r.status();
  }
  // A refused request (unknown input shape) is not observed.
  auto bad = std::make_unique<InferRequest>();
  bad->model_name = "simple";
  bad->id = "bad";
  std::promise<absl::Status> p;
  server_->Infer(std::move(bad),
                 [&p](absl::StatusOr<InferResponse> r) { p.set_value(r.status()); });
  EXPECT_FALSE(p.get_future().get().ok());

  const std::vector<monitor::PredictionRecord> records = ReadLog();
  ASSERT_EQ(records.size(), 20u);  // not the warm-up, not the refused request
  for (const monitor::PredictionRecord& r : records) {
    EXPECT_EQ(r.model, "simple");
    EXPECT_EQ(r.version, 1);
    ASSERT_EQ(r.inputs.size(), 2u);
    ASSERT_EQ(r.outputs.size(), 2u);
    EXPECT_EQ(r.inputs[0].second.shape(), (Shape{2, 16}));
    const int value = std::stoi(r.request_id.substr(4));
    EXPECT_EQ(r.inputs[0].second.data<int32_t>()[31], value);
    EXPECT_EQ(r.outputs[0].second.data<int32_t>()[0], 2 * value);  // OUTPUT0 = INPUT0 + INPUT1
    ASSERT_EQ(r.parameters.count("origin"), 1u);
  }

  auto drift = monitoring_->Drift("simple");
  ASSERT_TRUE(drift.ok()) << drift.status();
  ASSERT_EQ(drift->size(), 1u);
  EXPECT_TRUE((*drift)[0].report.has_profile);
  EXPECT_EQ((*drift)[0].report.rows_seen, 40);

  // Labels join OUTPUT0 (the first output), row by row.
  EXPECT_EQ(monitoring_->labels().AddLabel("req-3", 1, 0), monitor::LabelOutcome::kJoined);
  EXPECT_EQ(monitoring_->labels().AddLabel("warmup:zeros", 0, 0), monitor::LabelOutcome::kUnknown);
  auto quality = monitoring_->Quality("simple");
  ASSERT_TRUE(quality.ok());
  EXPECT_EQ((*quality)[0].report.pairs, 1);
  EXPECT_EQ((*quality)[0].settings.label_output, "OUTPUT0");
}

TEST_F(MonitoringHookTest, ABadMonitoringParameterMakesTheVersionUnavailable) {
  AddModel("good");
  AddModel("bad", R"pb(parameters {
                         key: "log_sample_rate"
                         value { string_value: "2" }
                       })pb");
  StartServer();
  EXPECT_TRUE(Infer("good", "a", 1).ok());
  auto r = Infer("bad", "b", 1);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("log_sample_rate"));
  bool found = false;
  for (const ModelIndexEntry& e : server_->RepositoryIndex(false)) {
    if (e.name != "bad") continue;
    found = true;
    EXPECT_EQ(e.state, "UNAVAILABLE");
    EXPECT_THAT(e.reason, HasSubstr("model 'bad' config parameter 'log_sample_rate'"));
  }
  EXPECT_TRUE(found);
  EXPECT_TRUE(absl::IsNotFound(monitoring_->Drift("bad").status()));
}

TEST_F(MonitoringHookTest, PerModelSamplingAndDriftOff) {
  AddModel("quiet", R"pb(
    parameters {
      key: "log_sample_rate"
      value { string_value: "0" }
    }
    parameters {
      key: "drift"
      value { string_value: "off" }
    }
  )pb");
  StartServer();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Infer("quiet", "q" + std::to_string(i), i).ok());
  EXPECT_TRUE(ReadLog().empty());
  auto drift = monitoring_->Drift("quiet");
  ASSERT_TRUE(drift.ok());
  EXPECT_THAT((*drift)[0].report.reason, HasSubstr("off"));
  server_.reset();
  EXPECT_TRUE(absl::IsNotFound(monitoring_->Drift("quiet").status()));
}

}  // namespace
}  // namespace flywheel::serving
