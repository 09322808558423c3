#include "trees/objective.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flywheel::trees {
namespace {

using ::testing::HasSubstr;

TEST(ObjectiveTest, KnowsTheIssueObjectives) {
  for (const char* name : {"reg:squarederror", "reg:logistic", "binary:logistic", "binary:logitraw",
                           "multi:softprob", "multi:softmax", "count:poisson", "rank:pairwise",
                           "reg:squaredlogerror", "reg:pseudohubererror"}) {
    EXPECT_TRUE(ParseObjective(name).ok()) << name;
  }
  auto bad = ParseObjective("reg:quantileerror");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(bad.status().message(), HasSubstr("binary:logistic"));
}

TEST(ObjectiveTest, BaseScoreLinks) {
  EXPECT_EQ(*BaseScoreToMargin(*ParseObjective("binary:logistic"), 0.5f), 0.0f);
  EXPECT_EQ(*BaseScoreToMargin(*ParseObjective("binary:logitraw"), 0.3f), 0.3f);
  EXPECT_EQ(*BaseScoreToMargin(*ParseObjective("count:poisson"), 1.0f), 0.0f);
  EXPECT_EQ(*BaseScoreToMargin(*ParseObjective("multi:softprob"), 0.5f), 0.5f);
  EXPECT_FALSE(BaseScoreToMargin(*ParseObjective("binary:logistic"), 1.0f).ok());
  EXPECT_FALSE(BaseScoreToMargin(*ParseObjective("reg:gamma"), 0.0f).ok());
  EXPECT_FALSE(BaseScoreToMargin(*ParseObjective("reg:squarederror"), NAN).ok());
}

TEST(ObjectiveTest, SigmoidIsCappedLikeXgboost) {
  std::vector<float> m = {0.0f, -88.0f, -100.0f, 100.0f};
  std::vector<float> out(4);
  ApplyTransform(OutputTransform::kSigmoid, m.data(), 4, 1, out.data());
  EXPECT_EQ(out[0], 0.5f);
  EXPECT_GT(out[1], 0.0f);
  EXPECT_EQ(out[2], 1.0f / (std::exp(88.7f) + 1.0f));  // never 0
  EXPECT_EQ(out[3], 1.0f);
}

TEST(ObjectiveTest, SoftmaxAndArgmax) {
  std::vector<float> m = {1.0f, 2.0f, 3.0f, 5.0f, 5.0f, -1.0f};
  std::vector<float> p(6), c(2);
  ApplyTransform(OutputTransform::kSoftmax, m.data(), 2, 3, p.data());
  EXPECT_NEAR(p[0] + p[1] + p[2], 1.0f, 1e-6f);
  EXPECT_NEAR(p[2], std::exp(3.0) / (std::exp(1.0) + std::exp(2.0) + std::exp(3.0)), 1e-6);
  EXPECT_EQ(p[3], p[4]);
  ApplyTransform(OutputTransform::kArgmax, m.data(), 2, 3, c.data());
  EXPECT_EQ(c[0], 2.0f);
  EXPECT_EQ(c[1], 0.0f);  // ties go to the first maximum
  EXPECT_EQ(TransformedColumns(OutputTransform::kArgmax, 3), 1);
  EXPECT_EQ(TransformedColumns(OutputTransform::kSoftmax, 3), 3);
}

TEST(ObjectiveTest, HingeAndExp) {
  std::vector<float> m = {-0.5f, 0.0f, 0.5f};
  std::vector<float> out(3);
  ApplyTransform(OutputTransform::kHinge, m.data(), 3, 1, out.data());
  EXPECT_THAT(out, ::testing::ElementsAre(0.0f, 0.0f, 1.0f));
  ApplyTransform(OutputTransform::kExp, m.data(), 3, 1, out.data());
  EXPECT_EQ(out[1], 1.0f);
  EXPECT_EQ(out[2], std::exp(0.5f));
}

}  // namespace
}  // namespace flywheel::trees
