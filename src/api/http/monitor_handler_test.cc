// The /v1/monitor/ endpoints against a real monitor::Monitoring: drift reports (with and without
// a profile, drift off), labels (outcome counts, all-or-nothing refusal of malformed items with
// their positions, bad bodies, methods and paths) and quality figures against a brute force.
#include "api/http/monitor_handler.h"

#include <cmath>
#include <filesystem>
#include <future>
#include <random>
#include <string>
#include <vector>

#include "api/http/http_message.h"
#include "api/http/testing/handler_call.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "monitor/monitoring.h"
#include "monitor/profile.h"
#include "rapidjson/document.h"

namespace flywheel::api {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using Response = http::testing_util::HandlerResult;

class MonitorHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("flywheel-monitor-handler-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "rank/1");
    fs::create_directories(root_ / "bare/1");
    monitor::MonitoringOptions options;
    options.drift_options.max_rows_per_second = 0;
    auto monitoring = monitor::Monitoring::Create(options);
    ASSERT_TRUE(monitoring.ok()) << monitoring.status();
    monitoring_ = std::move(*monitoring);
    handler_ = MakeMonitorHandler(monitoring_.get());
  }

  void TearDown() override {
    handler_.reset();
    versions_.clear();
    monitoring_.reset();
    fs::remove_all(root_);
  }

  // Model "rank": input x FP32 [batch, 2] profiled as N(0, 1), output "score" in (0, 1).
  void LoadRank() {
    std::mt19937 rng(11);
    std::normal_distribution<float> normal;
    Tensor x = Tensor::Allocate(DataType::kFp32, Shape{3000, 2});
    for (int i = 0; i < 6000; ++i) x.data<float>()[i] = normal(rng);
    auto features = monitor::ProfileTensor(x, "x", monitor::FeatureRole::kInput, {"a", "b"}, {},
                                           monitor::ProfileOptions{});
    ASSERT_TRUE(features.ok());
    monitor::ReferenceProfile profile;
    profile.model = "rank";
    profile.version = 1;
    profile.rows = 3000;
    profile.features = *features;
    ASSERT_TRUE(
        monitor::SaveProfile(profile, monitor::ProfilePath((root_ / "rank/1").string())).ok());
    Load({"rank", "1", (root_ / "rank/1").string(), {{"label_task", "binary"}}, {"score"}});
  }

  void Load(const monitor::VersionInfo& info) {
    auto vm = monitoring_->OnVersionLoaded(info);
    ASSERT_TRUE(vm.ok()) << vm.status();
    versions_.push_back(*vm);
  }

  // One request of `rows` rows with x ~ N(shift, 1) and the given scores.
  void Observe(monitor::VersionMonitor& vm, const std::string& id, std::vector<float> scores,
               float shift, std::mt19937& rng) {
    const int64_t rows = static_cast<int64_t>(scores.size());
    std::normal_distribution<float> normal;
    Tensor x = Tensor::Allocate(DataType::kFp32, Shape{rows, 2});
    for (int64_t i = 0; i < 2 * rows; ++i) x.data<float>()[i] = normal(rng) + shift;
    Tensor score = Tensor::Allocate(DataType::kFp32, Shape{rows, 1});
    for (int64_t i = 0; i < rows; ++i) score.data<float>()[i] = scores[i];
    const monitor::TensorRef in[] = {{"x", &x}};
    const monitor::TensorRef out[] = {{"score", &score}};
    vm.Observe(id, in, out, nullptr);
  }

  Response Call(http::bhttp::verb method, const std::string& target, const std::string& body = "") {
    Response r = http::testing_util::CallHandler(*handler_, method, target, body);
    EXPECT_FALSE(r.json.HasParseError()) << r.body;
    return r;
  }
  Response Get(const std::string& target) { return Call(http::bhttp::verb::get, target); }
  Response Post(const std::string& target, const std::string& body) {
    return Call(http::bhttp::verb::post, target, body);
  }

  fs::path root_;
  std::unique_ptr<monitor::Monitoring> monitoring_;
  std::vector<std::shared_ptr<monitor::VersionMonitor>> versions_;
  std::shared_ptr<http::Handler> handler_;
};

TEST_F(MonitorHandlerTest, DriftReportsPerVersionWithSettings) {
  LoadRank();
  std::mt19937 rng(1);
  for (int i = 0; i < 700; ++i) Observe(*versions_[0], "", {0.5f}, 0, rng);
  Response r = Get("/v1/monitor/models/rank/drift");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(std::string(r.json["model"].GetString()), "rank");
  ASSERT_EQ(r.json["versions"].Size(), 1u);
  const auto& v = r.json["versions"][0];
  EXPECT_EQ(std::string(v["version"].GetString()), "1");
  EXPECT_TRUE(v["has_profile"].GetBool());
  EXPECT_TRUE(v["settings"]["drift"].GetBool());
  EXPECT_EQ(std::string(v["settings"]["label_output"].GetString()), "score");
  EXPECT_EQ(std::string(v["settings"]["label_task"].GetString()), "binary");
  ASSERT_EQ(v["features"].Size(), 2u);
  for (const auto& f : v["features"].GetArray()) {
    ASSERT_TRUE(f["psi"].IsNumber()) << r.body;
    EXPECT_LT(f["psi"].GetDouble(), 0.2);
  }
  EXPECT_EQ(v["drifted_features"].GetInt(), 0);

  for (int i = 0; i < 3000; ++i) Observe(*versions_[0], "", {0.5f}, 3, rng);
  r = Get("/v1/monitor/models/rank/drift");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json["versions"][0]["drifted_features"].GetInt(), 2) << r.body;
}

TEST_F(MonitorHandlerTest, DriftSaysWhyThereAreNoFigures) {
  Load({"bare", "1", (root_ / "bare/1").string(), {}, {"y"}});
  Load({"bare", "2", (root_ / "bare/1").string(), {{"drift", "off"}}, {"y"}});
  Response r = Get("/v1/monitor/models/bare/drift");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(r.json["versions"].Size(), 2u);
  EXPECT_FALSE(r.json["versions"][0]["has_profile"].GetBool());
  EXPECT_THAT(r.json["versions"][0]["reason"].GetString(), HasSubstr("profile"));
  EXPECT_THAT(r.json["versions"][1]["reason"].GetString(), HasSubstr("drift monitoring is off"));
  EXPECT_FALSE(r.json["versions"][1]["settings"]["drift"].GetBool());

  r = Get("/v1/monitor/models/nope/drift");
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.json["error"].GetString(), HasSubstr("'nope'"));
  EXPECT_EQ(Get("/v1/monitor/models/nope/quality").status, 404);
}

TEST_F(MonitorHandlerTest, LabelsAreCountedByOutcomeAndQualityMatchesBruteForce) {
  LoadRank();
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> uniform(0.01f, 0.99f);
  std::vector<float> scores;
  for (int i = 0; i < 40; ++i) {
    std::vector<float> s = {uniform(rng), uniform(rng)};
    Observe(*versions_[0], "r" + std::to_string(i), s, 0, rng);
    scores.insert(scores.end(), s.begin(), s.end());
  }
  // Labels for every row of r0..r29 (label 1 when id % 3 != 0), one unknown id, one duplicate,
  // one invalid (not 0/1 for a binary model), and one row the request did not have.
  std::string body = "{\"labels\": [";
  std::vector<std::pair<float, double>> pairs;
  for (int i = 0; i < 30; ++i) {
    for (int row = 0; row < 2; ++row) {
      const double label = i % 3 != 0 ? 1 : 0;
      const bool as_bool = i % 2 == 0;
      body +=
          "{\"id\": \"r" + std::to_string(i) + "\", \"row\": " + std::to_string(row) +
          ", \"label\": " + (as_bool ? (label == 1 ? "true" : "false") : std::to_string(label)) +
          "},";
      pairs.emplace_back(scores[2 * i + row], label);
    }
  }
  body +=
      "{\"id\": \"nobody\", \"label\": 1}, {\"id\": \"r0\", \"label\": 0}, "
      "{\"id\": \"r31\", \"label\": 2}, {\"id\": \"r32\", \"label\": 1, \"row\": 5}]}";
  Response r = Post("/v1/monitor/labels", body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["received"].GetInt(), 64);
  EXPECT_EQ(r.json["joined"].GetInt(), 60);
  EXPECT_EQ(r.json["unknown"].GetInt(), 2);  // "nobody" and r32's row 5
  EXPECT_EQ(r.json["duplicate"].GetInt(), 1);
  EXPECT_EQ(r.json["invalid"].GetInt(), 1);
  EXPECT_EQ(r.json["expired"].GetInt(), 0);

  r = Get("/v1/monitor/labels");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json["predictions"].GetInt(), 80);
  EXPECT_EQ(r.json["labels"]["joined"].GetInt(), 60);

  // Brute force: accuracy at 0.5, mean log-loss, AUC as the share of (positive, negative) pairs
  // ranked right (ties half).
  double correct = 0, loss = 0, ranked = 0, positives = 0, negatives = 0;
  for (const auto& [p, y] : pairs) {
    correct += ((p >= 0.5) == (y == 1)) ? 1 : 0;
    loss -= y == 1 ? std::log(p) : std::log(1 - p);
  }
  for (const auto& [p1, y1] : pairs) {
    if (y1 != 1) continue;
    positives += 1;
    for (const auto& [p0, y0] : pairs) {
      if (y0 != 0) continue;
      ranked += p1 > p0 ? 1 : p1 == p0 ? 0.5 : 0;
    }
  }
  for (const auto& [p, y] : pairs) negatives += y == 0 ? 1 : 0;
  r = Get("/v1/monitor/models/rank/quality");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto& q = r.json["versions"][0];
  EXPECT_EQ(q["pairs"].GetInt(), 60);
  EXPECT_EQ(std::string(q["resolved_task"].GetString()), "binary");
  EXPECT_NEAR(q["accuracy"].GetDouble(), correct / pairs.size(), 1e-9);
  EXPECT_NEAR(q["log_loss"].GetDouble(), loss / pairs.size(), 1e-6);
  EXPECT_NEAR(q["auc"].GetDouble(), ranked / (positives * negatives), 1e-9);
  EXPECT_TRUE(q["mae"].IsNull());
  EXPECT_EQ(std::string(q["settings"]["label_output"].GetString()), "score");
}

TEST_F(MonitorHandlerTest, MalformedLabelsAreRefusedWithTheirPositionsAndNothingIsApplied) {
  LoadRank();
  std::mt19937 rng(3);
  Observe(*versions_[0], "a", {0.7f}, 0, rng);
  Response r = Post("/v1/monitor/labels",
                    R"({"labels": [{"id": "a", "label": 1}, {"label": 1}, {"id": "a"},
                                   {"id": 7, "label": 1}, {"id": "a", "label": "yes"},
                                   {"id": "a", "label": 1, "row": -1}, 5,
                                   {"id": "a", "label": 1, "extra": 0}]})");
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(r.json["error"].GetString(), HasSubstr("7 of 8 labels are malformed"));
  EXPECT_THAT(r.json["error"].GetString(), HasSubstr("labels[1]: 'id' is missing"));
  EXPECT_EQ(r.json["malformed"].GetInt(), 7);
  std::vector<int> indexes;
  for (const auto& e : r.json["errors"].GetArray()) indexes.push_back(e["index"].GetInt());
  EXPECT_THAT(indexes, ::testing::ElementsAre(1, 2, 3, 4, 5, 6, 7));
  EXPECT_THAT(r.json["errors"][1]["message"].GetString(), HasSubstr("'label' is missing"));
  EXPECT_THAT(r.json["errors"][2]["message"].GetString(), HasSubstr("'id' must be"));
  EXPECT_THAT(r.json["errors"][3]["message"].GetString(), HasSubstr("'label' must be a number"));
  EXPECT_THAT(r.json["errors"][4]["message"].GetString(), HasSubstr("'row' must be"));
  EXPECT_THAT(r.json["errors"][5]["message"].GetString(), HasSubstr("expected an object"));
  EXPECT_THAT(r.json["errors"][6]["message"].GetString(), HasSubstr("unknown member 'extra'"));
  EXPECT_EQ(monitoring_->labels().Counts().joined, 0);  // the valid first item was not applied

  for (const char* bad : {"not json", "[1, 2]", R"({"labels": 3})", R"({"label": []})"}) {
    r = Post("/v1/monitor/labels", bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_TRUE(r.json.HasMember("error")) << bad;
  }
  r = Post("/v1/monitor/labels", R"({"labels": []})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.json["received"].GetInt(), 0);
}

TEST_F(MonitorHandlerTest, UnknownPathsAndMethods) {
  LoadRank();
  Response r = Get("/v1/monitor/models/rank/speed");
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.json["error"].GetString(), HasSubstr("/v1/monitor/models/{model}/drift"));
  EXPECT_EQ(Get("/v1/monitor").status, 404);
  r = Post("/v1/monitor/models/rank/drift", "{}");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.allow, "GET");
  r = Call(http::bhttp::verb::delete_, "/v1/monitor/labels");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.allow, "GET, POST");
  // Percent-encoded model names are decoded.
  EXPECT_EQ(Get("/v1/monitor/models/ran%6B/drift").status, 200);
}

}  // namespace
}  // namespace flywheel::api
