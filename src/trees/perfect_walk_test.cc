#include "trees/perfect_walk.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "hwy/targets.h"
#include "trees/forest.h"
#include "trees/test_models.h"

namespace flywheel::trees {
namespace {

// A complete tree of `depth` with random splits over `features` features.
testing::TestTree RandomFullTree(int depth, int features, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  testing::TestTree t;
  const int internal = (1 << depth) - 1, total = (2 << depth) - 1;
  for (int i = 0; i < total; ++i) {
    const bool leaf = i >= internal;
    t.left.push_back(leaf ? -1 : 2 * i + 1);
    t.right.push_back(leaf ? -1 : 2 * i + 2);
    t.feature.push_back(leaf ? 0 : static_cast<int>(rng() % features));
    t.value.push_back(u(rng));
    t.default_left.push_back(leaf ? 0 : static_cast<int>(rng() % 2));
  }
  return t;
}

// Batches walk perfect trees with the SIMD top levels; single rows walk the breadth-first layout
// in plain C++. Every SIMD target compiled in and supported here must agree with the latter
// exactly, with and without missing values, for trees shallower and deeper than the SIMD levels.
TEST(PerfectWalkTest, EveryCompiledTargetMatchesTheScalarWalk) {
  std::mt19937 rng(7);
  testing::TestModel m;
  m.num_feature = 9;
  for (int t = 0; t < 45; ++t) m.trees.push_back(RandomFullTree(1 + t % 9, m.num_feature, rng));
  auto forest = Forest::LoadFromMemory(testing::ToJson(m));
  ASSERT_TRUE(forest.ok()) << forest.status();
  const Forest& f = **forest;
  const int n = 150;
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (bool with_nan : {false, true}) {
    std::vector<float> x(n * m.num_feature);
    for (float& v : x)
      v = with_nan && rng() % 7 == 0 ? std::numeric_limits<float>::quiet_NaN() : u(rng);
    std::vector<float> want(n);
    PredictOptions o;
    o.output_margin = true;
    for (int r = 0; r < n; ++r) {
      ASSERT_TRUE(f.Predict(x.data() + r * m.num_feature, 1, m.num_feature, o, &want[r]).ok());
    }
    const int64_t all = hwy::SupportedTargets();
    int tested = 0;
    for (int64_t target :
         {int64_t{HWY_AVX3}, int64_t{HWY_AVX2}, int64_t{HWY_EMU128}, int64_t{HWY_SCALAR}}) {
      if ((all & target) == 0) continue;
      hwy::SetSupportedTargetsForTest(target);
      SCOPED_TRACE(hwy::TargetName(target));
      std::vector<float> got(n);
      ASSERT_TRUE(f.Predict(x.data(), n, m.num_feature, o, got.data()).ok());
      for (int r = 0; r < n; ++r) ASSERT_EQ(got[r], want[r]) << "row " << r << " nan " << with_nan;
      ++tested;
      RecordProperty(hwy::TargetName(target), "ok");
    }
    hwy::SetSupportedTargetsForTest(0);
    EXPECT_GE(tested, 1);
  }
}

}  // namespace
}  // namespace flywheel::trees
