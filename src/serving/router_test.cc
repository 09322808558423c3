// The traffic router on its own: split validation, the canary and A-B choices, the sticky bucket
// hash, the figures a new split keeps, and the shadow answer comparison.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "serving/router_impl.h"

namespace flywheel::serving {
namespace {

using ::testing::HasSubstr;

TrafficSplit Canary(const std::string& model, std::vector<TrafficArm> arms) {
  TrafficSplit split;
  split.model = model;
  split.arms = std::move(arms);
  return split;
}

InferRequest Unversioned(const std::string& model) {
  InferRequest r;
  r.model_name = model;
  return r;
}

// How many of `n` requests each version gets.
std::map<int64_t, int> Spread(const Router& router, const std::string& model, int n) {
  std::map<int64_t, int> out;
  const InferRequest request = Unversioned(model);
  for (int i = 0; i < n; ++i) {
    std::optional<RouteDecision> d = router.Choose(request);
    EXPECT_TRUE(d.has_value());
    if (!d) break;
    ++out[d->snapshot->arms[d->arm].version];
  }
  return out;
}

TEST(RouterTest, CanaryNinetyTenWithinTwoPoints) {
  Router router;
  ASSERT_TRUE(router.Set(Canary("rank", {{1, 9}, {2, 1}})).ok());
  std::map<int64_t, int> spread = Spread(router, "rank", 10000);
  EXPECT_NEAR(spread[1] / 10000.0, 0.9, 0.02);
  EXPECT_NEAR(spread[2] / 10000.0, 0.1, 0.02);
  std::vector<RouteFigures> figures = router.Figures("rank");
  ASSERT_EQ(figures.size(), 1u);
  ASSERT_EQ(figures[0].arms.size(), 2u);
  EXPECT_EQ(figures[0].arms[0].routed, static_cast<uint64_t>(spread[1]));
  EXPECT_EQ(figures[0].arms[1].routed, static_cast<uint64_t>(spread[2]));
}

TEST(RouterTest, CanaryHalfAndHalfWithinTwoPoints) {
  Router router;
  ASSERT_TRUE(router.Set(Canary("rank", {{3, 0.5}, {4, 0.5}})).ok());
  std::map<int64_t, int> spread = Spread(router, "rank", 10000);
  EXPECT_NEAR(spread[3] / 10000.0, 0.5, 0.02);
  EXPECT_NEAR(spread[4] / 10000.0, 0.5, 0.02);
  // Every prefix is balanced too: a low-discrepancy sequence, not coin flips.
  Router again;
  ASSERT_TRUE(again.Set(Canary("rank", {{3, 0.5}, {4, 0.5}})).ok());
  std::map<int64_t, int> first = Spread(again, "rank", 100);
  EXPECT_NEAR(first[3], 50, 2);
}

TEST(RouterTest, WeightZeroArmGetsNothing) {
  Router router;
  ASSERT_TRUE(router.Set(Canary("rank", {{1, 0}, {2, 1}, {3, 0}})).ok());
  std::map<int64_t, int> spread = Spread(router, "rank", 1000);
  EXPECT_EQ(spread[2], 1000);
  EXPECT_EQ(spread.count(1) + spread.count(3), 0u);
}

TEST(RouterTest, NoSplitMeansNoDecision) {
  Router router;
  EXPECT_FALSE(router.active());
  EXPECT_FALSE(router.Choose(Unversioned("rank")).has_value());
  ASSERT_TRUE(router.Set(Canary("rank", {{1, 1}})).ok());
  EXPECT_TRUE(router.active());
  EXPECT_FALSE(router.Choose(Unversioned("other")).has_value());
  ASSERT_TRUE(router.Clear("rank").ok());
  EXPECT_FALSE(router.active());
  EXPECT_TRUE(absl::IsNotFound(router.Clear("rank")));
  EXPECT_FALSE(router.Get("rank").has_value());
}

TEST(RouterTest, StickyBucketIsFixed) {
  // Pinned: assignments must survive restarts and releases (FNV-1a 64 + MurmurHash3 finaliser).
  EXPECT_EQ(StickyBucket("rank", "user-42"), 212);
  EXPECT_EQ(StickyBucket("rank", "42"), 7706);
  EXPECT_EQ(StickyBucket("", ""), 2267);
  EXPECT_EQ(StickyBucket("rank", ""), 636);
  // The model is part of the key: the same user lands independently in different models.
  int same = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::string user = absl::StrCat("u", i);
    same += StickyBucket("a", user) == StickyBucket("b", user);
  }
  EXPECT_LT(same, 10);
}

TEST(RouterTest, StickyKeyTextOfEveryParameterType) {
  EXPECT_EQ(StickyKeyText(std::string("u-1")), "u-1");
  EXPECT_EQ(StickyKeyText(int64_t{-42}), "-42");
  EXPECT_EQ(StickyKeyText(42.0), "42");
  EXPECT_EQ(StickyKeyText(0.5), "0.5");
  EXPECT_EQ(StickyKeyText(true), "true");
}

TEST(RouterTest, AbIsStickyPerKeyAndNearTheWeights) {
  Router router;
  TrafficSplit split = Canary("rank", {{1, 0.7}, {2, 0.3}});
  split.sticky_parameter = "user_id";
  ASSERT_TRUE(router.Set(split).ok());
  std::map<int64_t, int> keys_per_arm;
  for (int key = 0; key < 2000; ++key) {
    int64_t first_arm = -1;
    for (int rep = 0; rep < 5; ++rep) {
      InferRequest request = Unversioned("rank");
      // Alternate the parameter's type: an integer and its decimal text are the same key.
      if (rep % 2 == 0) {
        request.parameters["user_id"] = absl::StrCat(key);
      } else {
        request.parameters["user_id"] = int64_t{key};
      }
      std::optional<RouteDecision> d = router.Choose(request);
      ASSERT_TRUE(d.has_value());
      const int64_t version = d->snapshot->arms[d->arm].version;
      if (first_arm < 0) first_arm = version;
      ASSERT_EQ(version, first_arm) << "key " << key << " request " << rep;
    }
    ++keys_per_arm[first_arm];
  }
  EXPECT_NEAR(keys_per_arm[1] / 2000.0, 0.7, 0.04);
  EXPECT_NEAR(keys_per_arm[2] / 2000.0, 0.3, 0.04);
  EXPECT_EQ(router.Figures("rank")[0].unkeyed, 0u);

  // The assignment is the bucket's: the first arm holds buckets [0, 7000).
  for (int key = 0; key < 200; ++key) {
    InferRequest request = Unversioned("rank");
    request.parameters["user_id"] = absl::StrCat("k", key);
    std::optional<RouteDecision> d = router.Choose(request);
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->arm, StickyBucket("rank", absl::StrCat("k", key)) < 7000 ? 0u : 1u);
  }
}

TEST(RouterTest, UnkeyedGoesToTheFirstArmAndIsCounted) {
  Router router;
  TrafficSplit split = Canary("rank", {{5, 0.1}, {6, 0.9}});
  split.sticky_parameter = "user_id";
  ASSERT_TRUE(router.Set(split).ok());
  for (int i = 0; i < 30; ++i) {
    InferRequest request = Unversioned("rank");
    request.parameters["other"] = std::string("x");
    std::optional<RouteDecision> d = router.Choose(request);
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->arm, 0u);
  }
  std::vector<RouteFigures> figures = router.Figures("");
  ASSERT_EQ(figures.size(), 1u);
  EXPECT_EQ(figures[0].unkeyed, 30u);
  EXPECT_EQ(figures[0].arms[0].routed, 30u);
}

TEST(RouterTest, NewSplitKeepsCountersOfVersionsThatStay) {
  Router router;
  ASSERT_TRUE(router.Set(Canary("rank", {{1, 1}, {2, 1}})).ok());
  const std::map<int64_t, int> spread = Spread(router, "rank", 100);
  ASSERT_TRUE(router.Set(Canary("rank", {{2, 1}, {3, 1}})).ok());
  std::vector<RouteFigures> figures = router.Figures("rank");
  ASSERT_EQ(figures[0].arms.size(), 2u);
  EXPECT_EQ(figures[0].arms[0].version, 2);
  EXPECT_EQ(figures[0].arms[0].routed, static_cast<uint64_t>(spread.at(2)));
  EXPECT_EQ(figures[0].arms[1].version, 3);
  EXPECT_EQ(figures[0].arms[1].routed, 0u);
  EXPECT_EQ(router.Get("rank")->arms[1].version, 3);
  // Cleared and set again: counting starts over.
  ASSERT_TRUE(router.Clear("rank").ok());
  ASSERT_TRUE(router.Set(Canary("rank", {{2, 1}})).ok());
  EXPECT_EQ(router.Figures("rank")[0].arms[0].routed, 0u);
}

TEST(RouterTest, ShadowShareFollowsTheFraction) {
  Router router;
  TrafficSplit split = Canary("rank", {{1, 1}});
  split.shadow_version = 2;
  split.shadow_fraction = 0.25;
  ASSERT_TRUE(router.Set(split).ok());
  int shadowed = 0;
  for (int i = 0; i < 400; ++i) {
    std::optional<RouteDecision> d = router.Choose(Unversioned("rank"));
    ASSERT_TRUE(d.has_value());
    if (d->shadow) {
      ++shadowed;
      d->snapshot->state->shadows_in_flight.fetch_sub(1);  // as the shadow's answer would
    }
  }
  EXPECT_NEAR(shadowed, 100, 3);
}

TEST(RouterTest, ValidationNamesTheField) {
  auto error = [](const TrafficSplit& split) {
    absl::Status s = ValidateTrafficSplit(split);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
    return std::string(s.message());
  };
  EXPECT_THAT(error(Canary("", {{1, 1}})), HasSubstr("model"));
  EXPECT_THAT(error(Canary("m", {})), HasSubstr("arms"));
  EXPECT_THAT(error(Canary("m", {{0, 1}})), HasSubstr("arms[0].version must be > 0"));
  EXPECT_THAT(error(Canary("m", {{1, 1}, {1, 2}})), HasSubstr("arms[1].version 1 appears twice"));
  EXPECT_THAT(error(Canary("m", {{1, -1}})), HasSubstr("arms[0].weight"));
  EXPECT_THAT(error(Canary("m", {{1, std::nan("")}})), HasSubstr("arms[0].weight"));
  EXPECT_THAT(error(Canary("m", {{1, std::numeric_limits<double>::infinity()}})),
              HasSubstr("arms[0].weight"));
  EXPECT_THAT(error(Canary("m", {{1, 0}, {2, 0}})), HasSubstr("sum"));
  TrafficSplit split = Canary("m", {{1, 1}});
  split.shadow_fraction = 1.5;
  split.shadow_version = 2;
  EXPECT_THAT(error(split), HasSubstr("shadow_fraction must be in [0, 1], got 1.5"));
  split.shadow_fraction = 0.5;
  split.shadow_version = 0;
  EXPECT_THAT(error(split), HasSubstr("shadow_version is not set"));
  split.shadow_version = -2;
  EXPECT_THAT(error(split), HasSubstr("shadow_version must be > 0"));
  split.shadow_version = 2;
  split.shadow_atol = -1;
  EXPECT_THAT(error(split), HasSubstr("shadow_atol"));
  split.shadow_atol = 0;
  split.shadow_rtol = std::nan("");
  EXPECT_THAT(error(split), HasSubstr("shadow_rtol"));
  split.shadow_rtol = 0;
  EXPECT_TRUE(ValidateTrafficSplit(split).ok());
  Router router;
  split.arms.clear();
  EXPECT_TRUE(absl::IsInvalidArgument(router.Set(split)));
  EXPECT_FALSE(router.active());
}

TEST(RouterTest, OutcomeClasses) {
  EXPECT_EQ(ClassifyOutcome(absl::OkStatus()), RouteOutcome::kSuccess);
  EXPECT_EQ(ClassifyOutcome(absl::InvalidArgumentError("x")), RouteOutcome::kClientError);
  for (const absl::Status& s :
       {absl::UnavailableError("x"), absl::InternalError("x"), absl::DeadlineExceededError("x"),
        absl::UnknownError("x"), absl::ResourceExhaustedError("x"), absl::NotFoundError("x")}) {
    EXPECT_EQ(ClassifyOutcome(s), RouteOutcome::kFailure) << s;
  }
  ArmCounters arm;
  RecordArmOutcome(arm, absl::OkStatus(), 2'000'000);       // 2 ms
  RecordArmOutcome(arm, absl::InternalError("x"), 30'000);  // 30 us
  RecordArmOutcome(arm, absl::InvalidArgumentError("x"), 1'000'000);
  EXPECT_EQ(arm.succeeded.load(), 1u);
  EXPECT_EQ(arm.failed.load(), 1u);
  EXPECT_EQ(arm.client_errors.load(), 1u);
  LatencyHistogram h = arm.latency.Snap();
  EXPECT_EQ(h.count, 2u);
  EXPECT_EQ(h.buckets[0], 1u);  // <= 100 us
  EXPECT_EQ(h.buckets[4], 1u);  // (1 ms, 2.5 ms]
  EXPECT_NEAR(h.sum_seconds, 0.00203, 1e-9);
}

InferOutput Floats(const std::string& name, std::vector<float> values) {
  Tensor t = Tensor::Allocate(DataType::kFp32, Shape{static_cast<int64_t>(values.size())});
  for (size_t i = 0; i < values.size(); ++i) t.data<float>()[i] = values[i];
  return {name, t, false};
}

TEST(ShadowCompareTest, NumbersWithinTolerance) {
  const std::vector<InferOutput> served = {Floats("y", {1.0f, 100.0f, 0.0f})};
  EXPECT_TRUE(AnswersAgree(served, {Floats("y", {1.0f, 100.0f, 0.0f})}, 0, 0));
  EXPECT_TRUE(AnswersAgree(served, {Floats("y", {1.0f, 100.05f, 1e-6f})}, 1e-5, 1e-3));
  EXPECT_FALSE(AnswersAgree(served, {Floats("y", {1.0f, 100.2f, 0.0f})}, 1e-5, 1e-3));
  EXPECT_FALSE(AnswersAgree(served, {Floats("y", {1.0f, 100.0f, 1e-4f})}, 1e-5, 1e-3));
  const float nan = std::nanf("");
  EXPECT_TRUE(AnswersAgree({Floats("y", {nan})}, {Floats("y", {nan})}, 0, 0));
  EXPECT_FALSE(AnswersAgree({Floats("y", {nan})}, {Floats("y", {1})}, 1, 1));
}

TEST(ShadowCompareTest, NamesShapesTypesAndBytes) {
  const std::vector<InferOutput> served = {Floats("y", {1, 2})};
  EXPECT_FALSE(AnswersAgree(served, {Floats("z", {1, 2})}, 1, 1));
  EXPECT_FALSE(AnswersAgree(served, {Floats("y", {1, 2, 3})}, 1, 1));
  // Extra shadow outputs do not matter; the order of outputs does not either.
  EXPECT_TRUE(AnswersAgree(served, {Floats("x", {5}), Floats("y", {1, 2})}, 0, 0));
  // Numbers of another type compare by value.
  Tensor d = Tensor::Allocate(DataType::kFp64, Shape{2});
  d.data<double>()[0] = 1;
  d.data<double>()[1] = 2;
  EXPECT_TRUE(AnswersAgree(served, {{"y", d, false}}, 0, 0));
  Tensor big = Tensor::Allocate(DataType::kInt64, Shape{1});
  big.data<int64_t>()[0] = (int64_t{1} << 60) + 1;
  Tensor big2 = big.Clone();
  EXPECT_TRUE(AnswersAgree({{"i", big, false}}, {{"i", big2, false}}, 0, 0));
  big2.data<int64_t>()[0] += 1000;
  EXPECT_FALSE(AnswersAgree({{"i", big, false}}, {{"i", big2, false}}, 0, 0));

  Tensor s = Tensor::Allocate(DataType::kBytes, Shape{2});
  s.strings() = {"a", "b"};
  Tensor s2 = Tensor::Allocate(DataType::kBytes, Shape{2});
  s2.strings() = {"a", "b"};
  EXPECT_TRUE(AnswersAgree({{"s", s, false}}, {{"s", s2, false}}, 1, 1));
  s2.strings()[1] = "c";
  EXPECT_FALSE(AnswersAgree({{"s", s, false}}, {{"s", s2, false}}, 1, 1));
  EXPECT_FALSE(AnswersAgree({{"s", s, false}}, {Floats("s", {1, 2})}, 1, 1));
}

}  // namespace
}  // namespace flywheel::serving
