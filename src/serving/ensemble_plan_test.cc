// The Ensemble runtime against step models the test answers by hand: independent steps are
// dispatched together before either finishes, a step starts as soon as its last input exists,
// tensors reach the next step and the response without a copy, a failure answers at once and
// later branches are ignored, and requested outputs prune the steps that do not feed them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "serving/ensemble.h"
#include "serving/model_config.h"

namespace flywheel::serving {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Step models whose configurations the test gives and whose requests it answers itself.
class ManualSteps : public StepModels {
 public:
  struct Routed {
    std::unique_ptr<InferRequest> request;
    InferCallback done;
  };

  void Add(const std::string& text) {
    inference::ModelConfig config = *ParseModelConfigText(text, "test");
    configs_[config.name()] = config;
  }

  absl::StatusOr<StepModelInfo> DescribeStep(const std::string& model,
                                             int64_t version) const override {
    auto it = configs_.find(model);
    if (it == configs_.end()) return absl::NotFoundError("unknown model '" + model + "'");
    return StepModelInfo{"1", it->second};
  }

  void RouteStep(std::unique_ptr<InferRequest> request, InferCallback done) override {
    std::lock_guard<std::mutex> lock(mu_);
    routed_.push_back({std::move(request), std::move(done)});
  }

  std::vector<std::string> RoutedModels() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const Routed& r : routed_) out.push_back(r.request->model_name);
    return out;
  }

  // Takes the routed request for `model` (the first not answered yet).
  Routed Take(const std::string& model) {
    std::lock_guard<std::mutex> lock(mu_);
    for (Routed& r : routed_) {
      if (r.done && r.request->model_name == model) {
        Routed out{std::make_unique<InferRequest>(*r.request), std::move(r.done)};
        r.done = nullptr;
        return out;
      }
    }
    ADD_FAILURE() << "no request routed to " << model;
    return {};
  }

 private:
  std::map<std::string, inference::ModelConfig> configs_;
  std::mutex mu_;
  std::vector<Routed> routed_;
};

// A model of FP32 [4] -> FP32 [4].
std::string Unary(const std::string& name) {
  return "name: \"" + name +
         "\" platform: \"onnxruntime_onnx\" input [ { name: \"x\" data_type: TYPE_FP32 dims: "
         "[ 4 ] } ] output [ { name: \"y\" data_type: TYPE_FP32 dims: [ 4 ] } ]";
}

// FP32 [4], [4] -> FP32 [4].
std::string Binary(const std::string& name) {
  return "name: \"" + name +
         "\" platform: \"onnxruntime_onnx\" input [ { name: \"x\" data_type: TYPE_FP32 dims: "
         "[ 4 ] }, { name: \"z\" data_type: TYPE_FP32 dims: [ 4 ] } ] output [ { name: \"y\" "
         "data_type: TYPE_FP32 dims: [ 4 ] } ]";
}

// in -> left (m_left) and right (m_right) in parallel -> out = join(left, right); `right` is
// also an output of its own.
const char kDiamond[] = R"cfg(
  name: "diamond"
  platform: "ensemble"
  input [ { name: "in" data_type: TYPE_FP32 dims: [ 4 ] } ]
  output [
    { name: "out" data_type: TYPE_FP32 dims: [ 4 ] },
    { name: "right" data_type: TYPE_FP32 dims: [ 4 ] }
  ]
  ensemble_scheduling {
    step [
      {
        model_name: "join"
        model_version: -1
        input_map { key: "x" value: "left" }
        input_map { key: "z" value: "right" }
        output_map { key: "y" value: "out" }
      },
      {
        model_name: "m_left"
        model_version: -1
        input_map { key: "x" value: "in" }
        output_map { key: "y" value: "left" }
      },
      {
        model_name: "m_right"
        model_version: 2
        input_map { key: "x" value: "in" }
        output_map { key: "y" value: "right" }
      }
    ]
  }
)cfg";

Tensor Floats(float base) {
  Tensor t = Tensor::Allocate(DataType::kFp32, Shape{4});
  for (int i = 0; i < 4; ++i) t.data<float>()[i] = base + static_cast<float>(i);
  return t;
}

InferResponse Answer(const std::string& output, const Tensor& t) {
  InferResponse r;
  r.outputs.push_back({output, t, false});
  return r;
}

class EnsemblePlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    steps_.Add(Unary("m_left"));
    steps_.Add(Unary("m_right"));
    steps_.Add(Binary("join"));
    config_ = *ParseModelConfigText(kDiamond, "diamond/config.pbtxt");
    ASSERT_TRUE(ValidateModelConfig(config_, "diamond/config.pbtxt").ok());
    auto plan = BuildEnsemblePlan(config_, "1", "diamond/config.pbtxt", steps_);
    ASSERT_TRUE(plan.ok()) << plan.status();
    ensemble_ = std::make_unique<Ensemble>(*plan, &steps_, stats_);
  }

  // Enqueues a request; the result lands in result_.
  void Send(std::vector<RequestedOutput> outputs = {}) {
    auto request = std::make_unique<InferRequest>();
    request->model_name = "diamond";
    request->id = "req-1";
    request->priority = 2;
    request->inputs.push_back({"in", input_, {}});
    request->outputs = std::move(outputs);
    ensemble_->Enqueue(std::move(request), [this](absl::StatusOr<InferResponse> r) {
      ++answers_;
      result_ = std::move(r);
    });
  }

  ManualSteps steps_;
  inference::ModelConfig config_;
  std::shared_ptr<ModelStats> stats_ = std::make_shared<ModelStats>();
  std::unique_ptr<Ensemble> ensemble_;
  Tensor input_ = Floats(1);
  int answers_ = 0;
  std::optional<absl::StatusOr<InferResponse>> result_;
};

TEST_F(EnsemblePlanTest, IndependentStepsRunTogetherAndTensorsAreNeverCopied) {
  Send();
  // Both branches are in flight before either finished; the join waits for both.
  EXPECT_THAT(steps_.RoutedModels(), ElementsAre("m_left", "m_right"));
  ManualSteps::Routed left = steps_.Take("m_left");
  EXPECT_EQ(left.request->model_version, "");
  EXPECT_EQ(left.request->id, "req-1");
  EXPECT_EQ(left.request->priority, 2u);
  ASSERT_EQ(left.request->inputs.size(), 1u);
  EXPECT_EQ(left.request->inputs[0].name, "x");
  EXPECT_EQ(left.request->inputs[0].data.raw_data(), input_.raw_data());
  ManualSteps::Routed right = steps_.Take("m_right");
  EXPECT_EQ(right.request->model_version, "2");

  const Tensor right_out = Floats(100);
  right.done(Answer("y", right_out));
  EXPECT_THAT(steps_.RoutedModels(), ElementsAre("m_left", "m_right"));
  const Tensor left_out = Floats(10);
  left.done(Answer("y", left_out));
  EXPECT_THAT(steps_.RoutedModels(), ElementsAre("m_left", "m_right", "join"));

  ManualSteps::Routed join = steps_.Take("join");
  ASSERT_EQ(join.request->inputs.size(), 2u);
  EXPECT_EQ(join.request->inputs[0].name, "x");
  EXPECT_EQ(join.request->inputs[0].data.raw_data(), left_out.raw_data());
  EXPECT_EQ(join.request->inputs[1].name, "z");
  EXPECT_EQ(join.request->inputs[1].data.raw_data(), right_out.raw_data());
  ASSERT_EQ(join.request->outputs.size(), 1u);
  EXPECT_EQ(join.request->outputs[0].name, "y");
  EXPECT_FALSE(result_.has_value());

  const Tensor out = Floats(7);
  join.done(Answer("y", out));
  ASSERT_EQ(answers_, 1);
  ASSERT_TRUE(result_->ok()) << result_->status();
  const InferResponse& r = **result_;
  EXPECT_EQ(r.model_name, "diamond");
  EXPECT_EQ(r.model_version, "1");
  EXPECT_EQ(r.id, "req-1");
  ASSERT_EQ(r.outputs.size(), 2u);
  EXPECT_EQ(r.outputs[0].name, "out");
  EXPECT_EQ(r.outputs[0].data.raw_data(), out.raw_data());
  EXPECT_EQ(r.outputs[1].name, "right");
  EXPECT_EQ(r.outputs[1].data.raw_data(), right_out.raw_data());
  EXPECT_EQ(stats_->success.count.load(), 1u);
  EXPECT_EQ(stats_->pending.load(), 0);
}

TEST_F(EnsemblePlanTest, AFailedStepAnswersAtOnceAndLaterBranchesAreIgnored) {
  Send();
  ManualSteps::Routed left = steps_.Take("m_left");
  ManualSteps::Routed right = steps_.Take("m_right");
  left.done(absl::UnavailableError("model 'm_left' is not ready"));
  ASSERT_EQ(answers_, 1);
  ASSERT_FALSE(result_->ok());
  EXPECT_EQ(result_->status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(result_->status().message(),
            "ensemble 'diamond' step[1] (model 'm_left'): model 'm_left' is not ready");
  right.done(Answer("y", Floats(0)));
  EXPECT_EQ(answers_, 1);
  EXPECT_THAT(steps_.RoutedModels(), ElementsAre("m_left", "m_right"));
  EXPECT_EQ(stats_->fail.count.load(), 1u);
  EXPECT_EQ(stats_->pending.load(), 0);
}

TEST_F(EnsemblePlanTest, RequestedOutputsPruneTheStepsTheyDoNotNeed) {
  Send({{"right", true, {}}});
  EXPECT_THAT(steps_.RoutedModels(), ElementsAre("m_right"));
  ManualSteps::Routed right = steps_.Take("m_right");
  right.done(Answer("y", Floats(3)));
  ASSERT_EQ(answers_, 1);
  ASSERT_TRUE(result_->ok()) << result_->status();
  ASSERT_EQ((*result_)->outputs.size(), 1u);
  EXPECT_EQ((*result_)->outputs[0].name, "right");
  EXPECT_TRUE((*result_)->outputs[0].binary_data);
}

TEST_F(EnsemblePlanTest, AStepOutputOfAnotherShapeThanDeclaredIsAnError) {
  Send({{"right", false, {}}});
  steps_.Take("m_right").done(Answer("y", Tensor::Allocate(DataType::kFp32, Shape{5})));
  ASSERT_EQ(answers_, 1);
  ASSERT_FALSE(result_->ok());
  EXPECT_EQ(result_->status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(result_->status().message(),
              HasSubstr("ensemble 'diamond' output 'right': step[2] (model 'm_right') produced "
                        "FP32 [5], the ensemble declares FP32 [4]"));
}

TEST_F(EnsemblePlanTest, StepModelsListsEachNameOnce) {
  EXPECT_THAT(EnsembleStepModels(config_), ElementsAre("join", "m_left", "m_right"));
}

}  // namespace
}  // namespace flywheel::serving
