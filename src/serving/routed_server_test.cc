// Traffic splits through serving::Server: routed requests reach the chosen versions, versioned
// ones bypass the split, outcomes count per arm (failures and client errors apart), shadow copies
// are compared and never answered, and the figures reach the metrics.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include "monitor/metrics.h"
#include "serving/ensemble_test_util.h"
#include "serving/server.h"

namespace flywheel::serving {
namespace {

using ::testing::HasSubstr;
using testing_util::ModelRepo;

// FP32 [2,3,4] A, B -> C: versions 1 and 3 add, version 2 subtracts.
constexpr char kAbConfig[] = R"pb(
  name: "ab"
  platform: "onnxruntime_onnx"
  max_batch_size: 0
  version_policy { all {} } input
  [ {
    name: "A"
    data_type: TYPE_FP32
    dims: [ 2, 3, 4 ]
  }
    , {
      name: "B"
      data_type: TYPE_FP32
      dims: [ 2, 3, 4 ]
    }] output
  [ {
    name: "C"
    data_type: TYPE_FP32
    dims: [ 2, 3, 4 ]
  }]
)pb";

class RoutedServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_.AddConfig("ab", kAbConfig, {});
    const std::filesystem::path ops = testing_util::SourceDir() / "tests/fixtures/ops";
    for (const auto& [version, op] : std::map<int, std::string>{
             {1, "add_same_shape"}, {2, "sub_same_shape"}, {3, "add_same_shape"}}) {
      const std::filesystem::path dir = repo_.path() / "ab" / std::to_string(version);
      std::filesystem::create_directories(dir);
      std::filesystem::copy_file(ops / op / "model.onnx", dir / "model.onnx");
    }
    ServerOptions options;
    options.model_repositories = {repo_.path().string()};
    auto server = Server::Create(options, &registry_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_TRUE(server_->ModelReady("ab", "3").value_or(false));
  }

  // A = 1..24, B = 2 everywhere: add gives A + 2, subtract A - 2.
  static std::unique_ptr<InferRequest> Request(const std::string& id = "") {
    auto req = std::make_unique<InferRequest>();
    req->model_name = "ab";
    req->id = id;
    Tensor a = Tensor::Allocate(DataType::kFp32, Shape{2, 3, 4});
    Tensor b = Tensor::Allocate(DataType::kFp32, Shape{2, 3, 4});
    for (int i = 0; i < 24; ++i) {
      a.data<float>()[i] = static_cast<float>(i + 1);
      b.data<float>()[i] = 2.0f;
    }
    req->inputs.push_back({"A", a, {}});
    req->inputs.push_back({"B", b, {}});
    return req;
  }

  absl::StatusOr<InferResponse> Infer(std::unique_ptr<InferRequest> request) {
    return testing_util::InferSync(*server_, std::move(request));
  }

  TrafficSplit Split(std::vector<TrafficArm> arms) {
    TrafficSplit split;
    split.model = "ab";
    split.arms = std::move(arms);
    return split;
  }

  RouteFigures Figures() {
    std::vector<RouteFigures> all = server_->RouteStatistics("ab");
    EXPECT_EQ(all.size(), 1u);
    return all.empty() ? RouteFigures{} : all[0];
  }

  // Waits until every shadow copy sent has been settled (their answers arrive after the served
  // ones); the deadline only keeps a broken build from hanging.
  RouteFigures SettledFigures() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    RouteFigures f = Figures();
    while (f.shadow.compared + f.shadow.failed + f.shadow.skipped < f.shadow.sent &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      f = Figures();
    }
    return f;
  }

  ModelRepo repo_;
  monitor::Registry registry_;
  std::unique_ptr<Server> server_;
};

TEST_F(RoutedServerTest, CanarySendsUnversionedRequestsToTheArms) {
  ASSERT_TRUE(server_->SetTrafficSplit(Split({{1, 0.5}, {2, 0.5}})).ok());
  std::map<std::string, int> versions;
  for (int i = 0; i < 40; ++i) {
    auto r = Infer(Request());
    ASSERT_TRUE(r.ok()) << r.status();
    ++versions[r->model_version];
    // Each answer is its version's: add for 1, subtract for 2.
    const float expected = r->model_version == "1" ? 3.0f : -1.0f;
    EXPECT_EQ(r->outputs[0].data.data<float>()[0], expected);
  }
  EXPECT_NEAR(versions["1"], 20, 2);
  EXPECT_EQ(versions["1"] + versions["2"], 40);
  RouteFigures f = Figures();
  ASSERT_EQ(f.arms.size(), 2u);
  EXPECT_EQ(f.arms[0].routed, static_cast<uint64_t>(versions["1"]));
  EXPECT_EQ(f.arms[0].succeeded, static_cast<uint64_t>(versions["1"]));
  EXPECT_EQ(f.arms[0].latency.count, static_cast<uint64_t>(versions["1"]));
  EXPECT_EQ(f.arms[1].routed, static_cast<uint64_t>(versions["2"]));
  EXPECT_EQ(f.arms[1].succeeded, static_cast<uint64_t>(versions["2"]));
  EXPECT_EQ(f.arms[1].failed, 0u);
}

TEST_F(RoutedServerTest, VersionedRequestsBypassTheSplit) {
  ASSERT_TRUE(server_->SetTrafficSplit(Split({{2, 1}})).ok());
  auto path = Request();
  path->model_version = "1";
  auto r = Infer(std::move(path));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model_version, "1");
  auto param = Request();
  param->parameters["model_version"] = std::string("3");
  r = Infer(std::move(param));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model_version, "3");
  EXPECT_EQ(Figures().arms[0].routed, 0u);
  r = Infer(Request());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model_version, "2");
  EXPECT_EQ(Figures().arms[0].routed, 1u);
}

TEST_F(RoutedServerTest, UnloadedVersionFailsAndCountsAgainstItsArm) {
  ASSERT_TRUE(server_->SetTrafficSplit(Split({{9, 1}})).ok());
  auto r = Infer(Request());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("version 9"));
  RouteFigures f = Figures();
  EXPECT_EQ(f.arms[0].routed, 1u);
  EXPECT_EQ(f.arms[0].failed, 1u);
  EXPECT_EQ(f.arms[0].succeeded, 0u);
  EXPECT_EQ(f.arms[0].latency.count, 1u);
}

TEST_F(RoutedServerTest, ClientErrorsAreCountedApart) {
  ASSERT_TRUE(server_->SetTrafficSplit(Split({{1, 1}})).ok());
  auto bad = Request();
  bad->inputs.pop_back();  // B missing
  auto r = Infer(std::move(bad));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  RouteFigures f = Figures();
  EXPECT_EQ(f.arms[0].client_errors, 1u);
  EXPECT_EQ(f.arms[0].failed, 0u);
  EXPECT_EQ(f.arms[0].latency.count, 0u);
}

TEST_F(RoutedServerTest, ShadowOfIdenticalVersionAgreesAndIsNeverAnswered) {
  TrafficSplit split = Split({{1, 1}});
  split.shadow_version = 3;
  split.shadow_fraction = 1;
  ASSERT_TRUE(server_->SetTrafficSplit(split).ok());
  for (int i = 0; i < 10; ++i) {
    auto r = Infer(Request("req-" + std::to_string(i)));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->model_version, "1");
    EXPECT_EQ(r->id, "req-" + std::to_string(i));
  }
  RouteFigures f = SettledFigures();
  EXPECT_EQ(f.shadow.version, 3);
  EXPECT_EQ(f.shadow.sent, 10u);
  EXPECT_EQ(f.shadow.compared, 10u);
  EXPECT_EQ(f.shadow.disagreed, 0u);
  EXPECT_EQ(f.shadow.latency.count, 10u);
  EXPECT_EQ(f.arms[0].succeeded, 10u);
  // The shadow's own version ran them (its statistics), under ids of their own.
  auto stats = server_->Statistics("ab", "3");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ((*stats)[0].success.count, 10u);
}

TEST_F(RoutedServerTest, ShadowOfDifferentVersionDisagrees) {
  TrafficSplit split = Split({{1, 1}});
  split.shadow_version = 2;
  split.shadow_fraction = 1;
  ASSERT_TRUE(server_->SetTrafficSplit(split).ok());
  for (int i = 0; i < 6; ++i) {
    auto r = Infer(Request());
    ASSERT_TRUE(r.ok()) << r.status();
    // Always the served version's answer (add), never the shadow's (subtract).
    EXPECT_EQ(r->model_version, "1");
    EXPECT_EQ(r->outputs[0].data.data<float>()[5], 8.0f);
  }
  RouteFigures f = SettledFigures();
  EXPECT_EQ(f.shadow.compared, 6u);
  EXPECT_EQ(f.shadow.disagreed, 6u);
  // With a tolerance wide enough for the difference (4), they agree.
  split.shadow_atol = 4.5;
  ASSERT_TRUE(server_->SetTrafficSplit(split).ok());
  ASSERT_TRUE(Infer(Request()).ok());
  f = SettledFigures();
  EXPECT_EQ(f.shadow.compared, 7u);  // the counters carry on: same shadow version
  EXPECT_EQ(f.shadow.disagreed, 6u);
}

TEST_F(RoutedServerTest, ShadowFailuresAndSkipsAreCounted) {
  TrafficSplit split = Split({{1, 1}});
  split.shadow_version = 7;  // not in the repository
  split.shadow_fraction = 1;
  ASSERT_TRUE(server_->SetTrafficSplit(split).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Infer(Request()).ok());
  RouteFigures f = SettledFigures();
  EXPECT_EQ(f.shadow.sent, 3u);
  EXPECT_EQ(f.shadow.failed, 3u);
  EXPECT_EQ(f.shadow.compared, 0u);
  // The served answer failed: nothing to compare with.
  split.shadow_version = 3;
  ASSERT_TRUE(server_->SetTrafficSplit(split).ok());
  auto bad = Request();
  bad->inputs.pop_back();
  EXPECT_FALSE(Infer(std::move(bad)).ok());
  f = SettledFigures();
  EXPECT_EQ(f.shadow.version, 3);
  EXPECT_EQ(f.shadow.sent, 1u);
  EXPECT_EQ(f.shadow.skipped, 1u);
  EXPECT_EQ(f.shadow.failed, 0u);
}

TEST_F(RoutedServerTest, NoShadowToTheVersionThatServes) {
  TrafficSplit split = Split({{1, 1}, {3, 1}});
  split.shadow_version = 3;
  split.shadow_fraction = 1;
  ASSERT_TRUE(server_->SetTrafficSplit(split).ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(Infer(Request()).ok());
  RouteFigures f = SettledFigures();
  EXPECT_GT(f.arms[0].routed, 0u);
  EXPECT_GT(f.arms[1].routed, 0u);
  EXPECT_EQ(f.shadow.sent, f.arms[0].routed);  // only the requests version 1 served
}

TEST_F(RoutedServerTest, ClearRestoresTheHighestVersion) {
  EXPECT_TRUE(absl::IsNotFound(server_->ClearTrafficSplit("ab")));
  EXPECT_TRUE(absl::IsInvalidArgument(server_->SetTrafficSplit(Split({{1, 0}}))));
  ASSERT_TRUE(server_->SetTrafficSplit(Split({{1, 1}})).ok());
  ASSERT_TRUE(server_->GetTrafficSplit("ab").has_value());
  EXPECT_EQ(server_->GetTrafficSplit("ab")->arms[0].version, 1);
  EXPECT_EQ(Infer(Request())->model_version, "1");
  ASSERT_TRUE(server_->ClearTrafficSplit("ab").ok());
  EXPECT_FALSE(server_->GetTrafficSplit("ab").has_value());
  EXPECT_TRUE(server_->RouteStatistics("").empty());
  EXPECT_EQ(Infer(Request())->model_version, "3");
}

TEST_F(RoutedServerTest, MetricsCarryTheRouteSeries) {
  TrafficSplit split = Split({{1, 3}, {2, 1}});
  split.sticky_parameter = "user_id";
  split.shadow_version = 3;
  split.shadow_fraction = 1;
  ASSERT_TRUE(server_->SetTrafficSplit(split).ok());
  ASSERT_TRUE(Infer(Request()).ok());  // unkeyed: the first arm
  SettledFigures();
  const std::string text = registry_.Render();
  EXPECT_THAT(text, HasSubstr("# TYPE flywheel_route_requests_total counter"));
  EXPECT_THAT(text, HasSubstr("flywheel_route_requests_total{model=\"ab\",outcome=\"success\","
                              "version=\"1\"} 1"));
  EXPECT_THAT(text, HasSubstr("outcome=\"client_error\""));
  EXPECT_THAT(text, HasSubstr("flywheel_route_weight{model=\"ab\",version=\"1\"} 0.75"));
  EXPECT_THAT(text, HasSubstr("flywheel_route_weight{model=\"ab\",version=\"2\"} 0.25"));
  EXPECT_THAT(text, HasSubstr("# TYPE flywheel_route_latency_seconds histogram"));
  EXPECT_THAT(text,
              HasSubstr("flywheel_route_latency_seconds_count{model=\"ab\",version=\"1\"} 1"));
  EXPECT_THAT(text, HasSubstr("flywheel_route_unkeyed_total{model=\"ab\"} 1"));
  EXPECT_THAT(text, HasSubstr("flywheel_shadow_requests_total{model=\"ab\",outcome=\"agreed\","
                              "version=\"3\"} 1"));
  EXPECT_THAT(text, HasSubstr("outcome=\"skipped\""));
  EXPECT_THAT(text, HasSubstr("flywheel_shadow_latency_seconds_bucket{"));
}

TEST_F(RoutedServerTest, DrainWaitsForShadows) {
  TrafficSplit split = Split({{1, 1}});
  split.shadow_version = 2;
  split.shadow_fraction = 1;
  ASSERT_TRUE(server_->SetTrafficSplit(split).ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Infer(Request()).ok());
  EXPECT_TRUE(server_->Drain(60000));
  RouteFigures f = Figures();
  EXPECT_EQ(f.shadow.compared + f.shadow.failed + f.shadow.skipped, f.shadow.sent);
}

}  // namespace
}  // namespace flywheel::serving
