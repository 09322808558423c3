// RolloutController against a real serving::Server over a temporary repository holding the
// example `simple` model (INT32 add/sub) as versions 1 and 2: the splits each policy and state
// set, rollback on a breach, promotion after a healthy stretch, restore from rollout.json, and the
// checks Start makes. Ticks are driven by hand with their own `now`.
#include "lifecycle/rollout.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>

#include "absl/time/clock.h"
#include "lifecycle/registry.h"
#include "lifecycle/rollout_format.h"
#include "lifecycle/rollout_json.h"
#include "lifecycle/rollout_window.h"
#include "monitor/metrics.h"
#include "monitor/monitoring.h"
#include "serving/router.h"
#include "serving/server.h"
#include "serving/testing/server_fixture.h"

namespace flywheel::lifecycle {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class RolloutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AddModel("simple", {1, 2});
    StartServer({"simple"});
    auto registry = Registry::Open(repo_.string());
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = *std::move(registry);
    controller_ = MakeController();
  }
  void TearDown() override {
    controller_.reset();
    server_.reset();
  }

  void AddModel(const std::string& name, std::vector<int> versions) {
    repo_.AddSimple(name, versions, "version_policy { all {} }\n");
  }

  void StartServer(std::vector<std::string> models) {
    controller_.reset();
    server_.reset();
    serving::ServerOptions options;
    options.model_repositories = {repo_.string()};
    options.control_mode = serving::ModelControlMode::kExplicit;
    options.startup_models = std::move(models);
    auto server = serving::Server::Create(options, &metrics_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  std::unique_ptr<RolloutController> MakeController() {
    RolloutOptions options;
    options.start_thread = false;
    auto controller =
        RolloutController::Create(server_.get(), {registry_.get()}, nullptr, &metrics_, options);
    EXPECT_TRUE(controller.ok()) << controller.status();
    return controller.ok() ? *std::move(controller) : nullptr;
  }

  // `n` unversioned requests; returns how many failed.
  int Send(int n, const std::string& model = "simple") {
    int failed = 0;
    for (int i = 0; i < n; ++i) {
      if (!serving::testing_util::InferSync(*server_,
                                            serving::testing_util::AddSubRequest(model, 1, i))
               .ok()) {
        ++failed;
      }
    }
    return failed;
  }

  static RolloutSpec Canary(double weight = 0.5) {
    RolloutSpec spec;
    spec.model = "simple";
    spec.policy = RolloutPolicy::kCanary;
    spec.stable = 1;
    spec.candidate = 2;
    spec.weight = weight;
    spec.thresholds.min_requests = 10;
    spec.thresholds.max_error_rate = 0.01;
    return spec;
  }

  // The server splits "simple" between version 1 and version 2 (`candidate_weight`), with no
  // stickiness and no shadow.
  void ExpectCanarySplit(double candidate_weight) {
    auto split = server_->GetTrafficSplit("simple");
    ASSERT_TRUE(split.has_value());
    ASSERT_EQ(split->arms.size(), 2u);
    EXPECT_EQ(split->arms[0].version, 1);
    EXPECT_DOUBLE_EQ(split->arms[0].weight, 1 - candidate_weight);
    EXPECT_EQ(split->arms[1].version, 2);
    EXPECT_DOUBLE_EQ(split->arms[1].weight, candidate_weight);
    EXPECT_TRUE(split->sticky_parameter.empty());
    EXPECT_EQ(split->shadow_version, 0);
  }

  static bool HasEvent(const RolloutStatus& s, const std::string& kind, const std::string& text) {
    for (const RolloutEvent& e : s.events) {
      if (e.kind == kind && e.detail.find(text) != std::string::npos) return true;
    }
    return false;
  }

  serving::testing_util::ModelRepo repo_;
  monitor::Registry metrics_;
  std::unique_ptr<serving::Server> server_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<RolloutController> controller_;
  const ChangeAuthor author_{"alice", "test"};
};

TEST_F(RolloutTest, CanarySetsSplitAndWritesFile) {
  auto started = controller_->Start(Canary(0.25), author_);
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->state, RolloutState::kActive);
  ExpectCanarySplit(0.25);

  const std::string file = ReadFile(repo_.path() / "simple" / ".flywheel" / "rollout.json");
  EXPECT_THAT(file, HasSubstr("\"format\": \"flywheel.rollout/1\""));
  EXPECT_THAT(file, HasSubstr("\"state\": \"active\""));
  EXPECT_TRUE(HasEvent(*started, "start", "25% of unversioned traffic"));
  EXPECT_EQ(started->events.back().by, "alice");

  // A second rollout while this one is active is refused.
  auto again = controller_->Start(Canary(), author_);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(again.status().message(), HasSubstr("already has an active canary"));

  const std::string metrics = metrics_.Render();
  EXPECT_THAT(metrics, HasSubstr("flywheel_rollout_state{model=\"simple\",state=\"active\"} 1"));
  EXPECT_THAT(metrics,
              HasSubstr("flywheel_rollout_candidate_weight{model=\"simple\",version=\"2\"} 0.25"));
}

TEST_F(RolloutTest, ErrorRateBreachRollsBack) {
  ASSERT_TRUE(controller_->Start(Canary(0.5), author_).ok());
  const absl::Time t0 = absl::Now();
  EXPECT_EQ(Send(50), 0);
  controller_->Tick(t0 + absl::Seconds(1));
  ASSERT_EQ(controller_->Get("simple")->state, RolloutState::kActive);

  // Version 2 goes away: requests routed to it fail as the version's doing.
  fs::remove_all(repo_.path() / "simple" / "2");
  ASSERT_TRUE(server_->LoadModel("simple", std::nullopt).ok());
  const int failed = Send(200);
  ASSERT_GT(failed, 10);
  controller_->Tick(t0 + absl::Seconds(2));

  auto status = controller_->Get("simple");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->state, RolloutState::kRolledBack);
  EXPECT_THAT(status->reason, HasSubstr("error rate"));
  EXPECT_THAT(status->reason, HasSubstr("> 0.01 over"));
  EXPECT_TRUE(HasEvent(*status, "breach", "error rate"));
  EXPECT_TRUE(HasEvent(*status, "rollback", "weight 0"));
  EXPECT_GE(status->figures.candidate_failed, failed);
  EXPECT_NE(status->ended, absl::InfinitePast());

  ExpectCanarySplit(0);
  EXPECT_EQ(Send(20), 0);  // everything goes to version 1 now

  const std::string metrics = metrics_.Render();
  EXPECT_THAT(metrics, HasSubstr("flywheel_rollout_rollbacks_total{model=\"simple\",reason=\""
                                 "error_rate\",version=\"2\"} 1"));
  EXPECT_THAT(metrics,
              HasSubstr("flywheel_rollout_state{model=\"simple\",state=\"rolled_back\"} 1"));
  EXPECT_THAT(ReadFile(repo_.path() / "simple" / ".flywheel" / "rollout.json"),
              HasSubstr("\"state\": \"rolled_back\""));

  // Promoting a rolled-back rollout is refused.
  EXPECT_EQ(controller_->Promote("simple", author_).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(RolloutTest, HealthyRolloutPromotesAfterItsTime) {
  RolloutSpec spec = Canary(0.5);
  spec.thresholds.min_requests = 20;
  spec.thresholds.window = absl::Minutes(5);
  spec.promote_after = absl::Minutes(10);
  ASSERT_TRUE(controller_->Start(spec, author_).ok());
  const absl::Time t0 = absl::Now();
  // Too few requests: not judged healthy yet.
  controller_->Tick(t0 + absl::Seconds(1));
  EXPECT_EQ(controller_->Get("simple")->healthy_since, absl::InfinitePast());

  EXPECT_EQ(Send(120), 0);
  controller_->Tick(t0 + absl::Seconds(2));
  auto status = controller_->Get("simple");
  EXPECT_EQ(status->state, RolloutState::kActive);
  EXPECT_EQ(status->healthy_since, t0 + absl::Seconds(2));
  EXPECT_GE(status->figures.candidate_requests, 20);
  EXPECT_EQ(status->figures.candidate_failed, 0);
  ASSERT_TRUE(status->figures.candidate_error_rate.has_value());
  EXPECT_EQ(*status->figures.candidate_error_rate, 0);
  EXPECT_TRUE(status->figures.candidate_p99_ms.has_value());

  EXPECT_EQ(Send(120), 0);
  controller_->Tick(t0 + absl::Minutes(6));
  EXPECT_EQ(controller_->Get("simple")->state, RolloutState::kActive);

  EXPECT_EQ(Send(120), 0);
  controller_->Tick(t0 + absl::Minutes(10) + absl::Seconds(2));
  status = controller_->Get("simple");
  EXPECT_EQ(status->state, RolloutState::kPromoted);
  EXPECT_TRUE(HasEvent(*status, "promote", "'production' -> version 2"));
  EXPECT_EQ(*registry_->Resolve("simple", "production"), 2);
  auto split = server_->GetTrafficSplit("simple");
  ASSERT_TRUE(split.has_value());
  ASSERT_EQ(split->arms.size(), 1u);
  EXPECT_EQ(split->arms[0].version, 2);
}

TEST_F(RolloutTest, RestoresFromFile) {
  AddModel("broken", {1});
  fs::create_directories(repo_.path() / "broken" / ".flywheel");
  std::ofstream(repo_.path() / "broken" / ".flywheel" / "rollout.json") << "{\"format\": 7}";
  RolloutSpec spec = Canary(0.3);
  spec.policy = RolloutPolicy::kAbTest;
  spec.sticky_parameter = "user_id";
  ASSERT_TRUE(controller_->Start(spec, author_).ok());

  // A restarted server: no split until the controller restores it.
  StartServer({"simple"});
  EXPECT_FALSE(server_->GetTrafficSplit("simple").has_value());
  controller_ = MakeController();
  absl::Status restored = controller_->Restore();
  EXPECT_FALSE(restored.ok());
  EXPECT_THAT(restored.message(), HasSubstr("broken/.flywheel/rollout.json"));

  auto status = controller_->Get("simple");
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->state, RolloutState::kActive);
  EXPECT_EQ(status->spec.policy, RolloutPolicy::kAbTest);
  EXPECT_TRUE(HasEvent(*status, "start", "sticky by 'user_id'"));
  auto split = server_->GetTrafficSplit("simple");
  ASSERT_TRUE(split.has_value());
  ASSERT_EQ(split->arms.size(), 2u);
  EXPECT_DOUBLE_EQ(split->arms[1].weight, 0.3);
  EXPECT_EQ(split->sticky_parameter, "user_id");
}

TEST_F(RolloutTest, StartChecksItsSpec) {
  auto error = [&](RolloutSpec spec) { return controller_->Start(spec, author_).status(); };
  RolloutSpec spec = Canary();
  spec.candidate = 1;
  EXPECT_THAT(error(spec).message(), HasSubstr("'candidate'"));
  spec = Canary();
  spec.candidate = 3;
  EXPECT_EQ(error(spec).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(error(spec).message(), HasSubstr("candidate version 3 is not ready"));
  spec = Canary();
  spec.weight = 0;
  EXPECT_THAT(error(spec).message(), HasSubstr("'weight'"));
  spec = Canary();
  spec.policy = RolloutPolicy::kAbTest;
  EXPECT_THAT(error(spec).message(), HasSubstr("'sticky_parameter'"));
  spec = Canary();
  spec.policy = RolloutPolicy::kShadow;
  EXPECT_THAT(error(spec).message(), HasSubstr("'shadow_fraction'"));
  spec = Canary();
  spec.thresholds.max_error_rate = 2;
  EXPECT_THAT(error(spec).message(), HasSubstr("'thresholds.max_error_rate'"));
  spec = Canary();
  spec.thresholds.min_requests = 0;
  EXPECT_THAT(error(spec).message(), HasSubstr("'thresholds.min_requests'"));
  spec = Canary();
  spec.thresholds.window = absl::ZeroDuration();
  EXPECT_THAT(error(spec).message(), HasSubstr("'thresholds.window_secs'"));
  spec = Canary();
  spec.thresholds.quality_metric = "f1";
  EXPECT_THAT(error(spec).message(), HasSubstr("'thresholds.quality_metric'"));
  spec = Canary();
  spec.model = "nope";
  EXPECT_EQ(error(spec).code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(server_->GetTrafficSplit("simple").has_value());
  EXPECT_FALSE(fs::exists(repo_.path() / "simple" / ".flywheel" / "rollout.json"));
}

TEST_F(RolloutTest, StableZeroIsTheProductionAlias) {
  ASSERT_TRUE(registry_->SetAlias("simple", "production", 1, author_).ok());
  RolloutSpec spec = Canary();
  spec.stable = 0;
  auto started = controller_->Start(spec, author_);
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->spec.stable, 1);
}

TEST_F(RolloutTest, StableZeroWithoutAliasIsTheHighestReadyVersion) {
  RolloutSpec spec = Canary();
  spec.stable = 0;
  // Version 2 is the highest ready one, so it cannot also be the candidate.
  EXPECT_THAT(controller_->Start(spec, author_).status().message(),
              HasSubstr("already the stable version"));
  spec.candidate = 1;
  auto started = controller_->Start(spec, author_);
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->spec.stable, 2);
}

TEST_F(RolloutTest, ManualRollbackOfAbKeepsStickyAndClearRemovesAll) {
  RolloutSpec spec = Canary(0.5);
  spec.policy = RolloutPolicy::kAbTest;
  spec.sticky_parameter = "user_id";
  ASSERT_TRUE(controller_->Start(spec, author_).ok());
  auto rolled = controller_->Rollback("simple", {"bob", "looks off"});
  ASSERT_TRUE(rolled.ok()) << rolled.status();
  EXPECT_EQ(rolled->state, RolloutState::kRolledBack);
  EXPECT_THAT(rolled->reason, HasSubstr("rolled back by bob (looks off)"));
  auto split = server_->GetTrafficSplit("simple");
  ASSERT_TRUE(split.has_value());
  EXPECT_EQ(split->sticky_parameter, "user_id");
  EXPECT_DOUBLE_EQ(split->arms[1].weight, 0);
  EXPECT_THAT(metrics_.Render(), HasSubstr("reason=\"manual\""));

  ASSERT_TRUE(controller_->Clear("simple", author_).ok());
  EXPECT_FALSE(server_->GetTrafficSplit("simple").has_value());
  EXPECT_EQ(controller_->Get("simple").status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(repo_.path() / "simple" / ".flywheel" / "rollout.json"));
  EXPECT_EQ(controller_->Clear("simple", author_).code(), absl::StatusCode::kNotFound);
}

TEST_F(RolloutTest, ShadowCopiesAndComparesWithoutServing) {
  RolloutSpec spec = Canary();
  spec.policy = RolloutPolicy::kShadow;
  spec.shadow_fraction = 1;
  spec.thresholds.max_disagreement = 0.01;
  ASSERT_TRUE(controller_->Start(spec, author_).ok());
  auto split = server_->GetTrafficSplit("simple");
  ASSERT_TRUE(split.has_value());
  ASSERT_EQ(split->arms.size(), 1u);
  EXPECT_EQ(split->arms[0].version, 1);
  EXPECT_EQ(split->shadow_version, 2);
  EXPECT_DOUBLE_EQ(split->shadow_fraction, 1);

  EXPECT_EQ(Send(30), 0);
  // Shadow answers are settled after the served ones; wait until every copy is compared.
  for (int i = 0; i < 1000; ++i) {
    auto figures = server_->RouteStatistics("simple");
    if (!figures.empty() &&
        figures[0].shadow.compared + figures[0].shadow.failed + figures[0].shadow.skipped >= 30) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  controller_->Tick(absl::Now() + absl::Seconds(1));
  auto status = controller_->Get("simple");
  EXPECT_EQ(status->state, RolloutState::kActive);
  EXPECT_EQ(status->figures.shadow_compared, 30);
  ASSERT_TRUE(status->figures.shadow_disagreement.has_value());
  EXPECT_EQ(*status->figures.shadow_disagreement, 0);
  EXPECT_NE(status->healthy_since, absl::InfinitePast());

  auto pinned = controller_->Pin("simple", 1, author_);
  ASSERT_TRUE(pinned.ok()) << pinned.status();
  EXPECT_EQ(pinned->state, RolloutState::kStopped);
  split = server_->GetTrafficSplit("simple");
  ASSERT_TRUE(split.has_value());
  ASSERT_EQ(split->arms.size(), 1u);
  EXPECT_EQ(split->arms[0].version, 1);
  EXPECT_EQ(split->shadow_version, 0);
}

// Live label quality: version 2 of the example tree classifier is labelled wrong on every request
// it serves, version 1 right, so the candidate's accuracy drops by 1 against the stable version.
TEST(RolloutQualityTest, QualityDropRollsBack) {
  const fs::path repo =
      fs::temp_directory_path() / ("flywheel-rollout-quality-" + std::to_string(::getpid()));
  fs::remove_all(repo);
  const fs::path example = serving::testing_util::SourceDir() / "examples/models/fraud_trees";
  fs::create_directories(repo / "fraud_trees");
  // The example's config with both versions loaded, whatever version policy it has.
  std::stringstream config(ReadFile(example / "config.pbtxt"));
  std::ofstream out(repo / "fraud_trees" / "config.pbtxt");
  for (std::string line; std::getline(config, line);) {
    if (line.rfind("version_policy", 0) != 0) out << line << "\n";
  }
  out << "version_policy { all {} }\n";
  out.close();
  for (const char* v : {"1", "2"}) {
    fs::create_directories(repo / "fraud_trees" / v);
    fs::copy_file(example / "1" / "xgboost.json", repo / "fraud_trees" / v / "xgboost.json");
  }
  monitor::Registry metrics;
  auto monitoring = monitor::Monitoring::Create({});
  ASSERT_TRUE(monitoring.ok()) << monitoring.status();
  serving::ServerOptions options;
  options.model_repositories = {repo.string()};
  options.monitoring = monitoring->get();
  auto server = serving::Server::Create(options, &metrics);
  ASSERT_TRUE(server.ok()) << server.status();
  auto registry = Registry::Open(repo.string());
  ASSERT_TRUE(registry.ok());
  RolloutOptions rollout_options;
  rollout_options.start_thread = false;
  auto controller = RolloutController::Create(server->get(), {registry->get()}, monitoring->get(),
                                              &metrics, rollout_options);
  ASSERT_TRUE(controller.ok()) << controller.status();

  RolloutSpec spec;
  spec.model = "fraud_trees";
  spec.stable = 1;
  spec.candidate = 2;
  spec.weight = 0.5;
  spec.thresholds.min_requests = 10;
  spec.thresholds.min_labels = 10;
  spec.thresholds.max_quality_drop = 0.1;
  spec.thresholds.quality_metric = "accuracy";
  auto started = (*controller)->Start(spec, {"alice", ""});
  ASSERT_TRUE(started.ok()) << started.status() << [&] {
    std::string index;
    for (const auto& e : (*server)->RepositoryIndex(false)) {
      index += " " + e.name + "/" + e.version + ":" + e.state + ":" + e.reason;
    }
    return index;
  }();

  int served_by_candidate = 0;
  for (int i = 0; i < 200; ++i) {
    auto req = std::make_unique<serving::InferRequest>();
    req->model_name = "fraud_trees";
    req->id = "q" + std::to_string(i);
    Tensor t = Tensor::Allocate(DataType::kFp32, Shape{1, 16});
    for (int k = 0; k < 16; ++k) t.data<float>()[k] = static_cast<float>((i * 7 + k * 3) % 11);
    req->inputs.push_back({"input__0", t, {}});
    std::promise<absl::StatusOr<serving::InferResponse>> p;
    auto f = p.get_future();
    (*server)->Infer(std::move(req),
                     [&p](absl::StatusOr<serving::InferResponse> r) { p.set_value(std::move(r)); });
    absl::StatusOr<serving::InferResponse> r = f.get();
    ASSERT_TRUE(r.ok()) << r.status();
    const float* probs = r->outputs[0].data.data<float>();
    const int predicted = probs[1] > probs[0] ? 1 : 0;
    const bool candidate = r->model_version == "2";
    served_by_candidate += candidate;
    (*monitoring)
        ->labels()
        .AddLabel("q" + std::to_string(i), 0, candidate ? 1 - predicted : predicted);
  }
  ASSERT_GT(served_by_candidate, 10);
  (*controller)->Tick(absl::Now() + absl::Seconds(1));
  auto status = (*controller)->Get("fraud_trees");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->state, RolloutState::kRolledBack);
  ASSERT_TRUE(status->figures.candidate_quality.has_value());
  ASSERT_TRUE(status->figures.stable_quality.has_value());
  EXPECT_EQ(*status->figures.candidate_quality, 0);
  EXPECT_EQ(*status->figures.stable_quality, 1);
  EXPECT_THAT(status->reason, HasSubstr("accuracy worse by 1 > 0.1"));
  EXPECT_THAT(metrics.Render(), HasSubstr("reason=\"quality\""));
  controller->reset();
  server->reset();
  fs::remove_all(repo);
}

TEST(RolloutFormatTest, SpecJsonRoundTripsAndNamesUnknownMembers) {
  RolloutStatus status;
  status.spec.model = "m";
  status.spec.policy = RolloutPolicy::kShadow;
  status.spec.candidate = 3;
  status.spec.stable = 2;
  status.spec.shadow_fraction = 0.2;
  status.spec.thresholds.max_p99_ms = 25;
  status.spec.thresholds.window = absl::Seconds(90);
  status.spec.promote_after = absl::Minutes(30);
  status.state = RolloutState::kRolledBack;
  status.started = absl::FromUnixSeconds(1700000000);
  status.reason = "p99";
  status.events.push_back({absl::FromUnixSeconds(1700000001), "breach", "p99", "ctl"});
  auto decoded = DecodeRollout(EncodeRollout(status), "f");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->spec.policy, RolloutPolicy::kShadow);
  EXPECT_EQ(decoded->spec.candidate, 3);
  EXPECT_EQ(decoded->spec.thresholds.max_p99_ms, 25);
  EXPECT_EQ(decoded->spec.thresholds.window, absl::Seconds(90));
  EXPECT_EQ(decoded->spec.promote_after, absl::Minutes(30));
  EXPECT_EQ(decoded->state, RolloutState::kRolledBack);
  EXPECT_EQ(decoded->started, status.started);
  ASSERT_EQ(decoded->events.size(), 1u);
  EXPECT_EQ(decoded->events[0].by, "ctl");

  rapidjson::Document doc;
  doc.Parse(R"({"candidate": 2, "thresholds": {"max_eror_rate": 0.1}})");
  EXPECT_THAT(RolloutSpecFromJson(doc).status().message(),
              HasSubstr("'thresholds.max_eror_rate': unknown member"));
  doc.Parse(R"({"candidate": 2, "by": "x", "colour": 1})");
  EXPECT_THAT(RolloutSpecFromJson(doc, {"by"}).status().message(), HasSubstr("'colour'"));
  doc.Parse(R"({"policy": "blue"})");
  EXPECT_THAT(RolloutSpecFromJson(doc).status().message(), HasSubstr("'policy'"));
  EXPECT_THAT(DecodeRollout("{\"format\": \"flywheel.rollout/9\"}", "x.json").status().message(),
              HasSubstr("x.json"));
}

TEST(RolloutWindowTest, QuantileInterpolatesInsideTheBucket) {
  serving::LatencyHistogram older, newer;
  // 100 observations between 1 ms and 2.5 ms (bucket 4), 10 of them before the window.
  older.buckets[4] = 10;
  older.count = 10;
  newer.buckets[4] = 110;
  newer.count = 110;
  auto p99 = WindowQuantileMs(newer, &older, 0.99);
  ASSERT_TRUE(p99.has_value());
  EXPECT_NEAR(*p99, 1 + 1.5 * 0.99, 1e-9);
  EXPECT_FALSE(WindowQuantileMs(older, &older, 0.99).has_value());
  // Beyond the last bound: the largest finite bound.
  serving::LatencyHistogram slow;
  slow.buckets[serving::kRouteLatencyBucketCount - 1] = 5;
  slow.count = 5;
  EXPECT_DOUBLE_EQ(*WindowQuantileMs(slow, nullptr, 0.99), 5000);
}

}  // namespace
}  // namespace flywheel::lifecycle
