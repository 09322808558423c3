#include "trees/forest.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "trees/test_models.h"

namespace flywheel::trees {
namespace {

using ::testing::HasSubstr;
using testing::Stump;
using testing::TestModel;
using testing::TestTree;

constexpr float kNan = std::numeric_limits<float>::quiet_NaN();

// Every model is loaded from JSON and from UBJSON; both must behave the same.
class ForestTest : public ::testing::TestWithParam<ModelFormat> {
 protected:
  std::unique_ptr<Forest> Load(const TestModel& m) {
    const bool json = GetParam() == ModelFormat::kXgboostJson;
    auto f = Forest::LoadFromMemory(json ? testing::ToJson(m) : testing::ToUbjson(m), {});
    EXPECT_TRUE(f.ok()) << f.status();
    return f.ok() ? std::move(*f) : nullptr;
  }

  std::vector<float> Run(const Forest& f, const std::vector<float>& x, bool margin = true,
                         ThreadPool* pool = nullptr) {
    const int64_t n = static_cast<int64_t>(x.size()) / f.num_features();
    std::vector<float> out(n * f.num_outputs(margin), -123.0f);
    PredictOptions o;
    o.output_margin = margin;
    o.pool = pool;
    EXPECT_TRUE(f.Predict(x.data(), n, f.num_features(), o, out.data()).ok());
    return out;
  }
};

TEST_P(ForestTest, ThresholdIsStrictlyLessThanForLeft) {
  TestModel m;
  m.base_score = "0E0";
  m.trees = {Stump(0, 1.5f, -1.0f, 2.0f)};
  auto f = Load(m);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->info().num_trees, 1);
  EXPECT_EQ(f->info().max_depth, 1);
  EXPECT_THAT(Run(*f, {1.0f, 0, 1.5f, 0, 2.0f, 0, -INFINITY, 0, INFINITY, 0}),
              ::testing::ElementsAre(-1.0f, 2.0f, 2.0f, -1.0f, 2.0f));
}

TEST_P(ForestTest, MissingValuesFollowTheDefaultDirection) {
  TestModel m;
  m.base_score = "0E0";
  m.trees = {Stump(0, 0.0f, 1.0f, 2.0f, /*default_left=*/true),
             Stump(1, 0.0f, 10.0f, 20.0f, /*default_left=*/false)};
  auto f = Load(m);
  ASSERT_NE(f, nullptr);
  // Rows: both missing; x0 missing; x1 missing; none missing.
  EXPECT_THAT(Run(*f, {kNan, kNan, kNan, -1.0f, 1.0f, kNan, 1.0f, 1.0f}),
              ::testing::ElementsAre(21.0f, 11.0f, 22.0f, 22.0f));
}

TEST_P(ForestTest, BaseScoreIsMappedToMarginPerObjective) {
  TestModel m;
  m.objective = "binary:logistic";
  m.base_score = "2.5E-1";
  m.trees = {Stump(0, 0.0f, -0.5f, 0.5f)};
  auto f = Load(m);
  ASSERT_NE(f, nullptr);
  const float base = -std::log(1.0f / 0.25f - 1.0f);
  EXPECT_FLOAT_EQ(f->info().base_margin, base);
  auto margin = Run(*f, {-1.0f, 0, 1.0f, 0});
  EXPECT_EQ(margin[0], base + -0.5f);
  EXPECT_EQ(margin[1], base + 0.5f);
  auto prob = Run(*f, {-1.0f, 0, 1.0f, 0}, /*margin=*/false);
  EXPECT_FLOAT_EQ(prob[0], 1.0f / (1.0f + std::exp(-(base - 0.5f))));
  EXPECT_FLOAT_EQ(prob[1], 1.0f / (1.0f + std::exp(-(base + 0.5f))));

  m.objective = "count:poisson";
  m.base_score = "2E0";
  f = Load(m);
  ASSERT_NE(f, nullptr);
  EXPECT_FLOAT_EQ(Run(*f, {1.0f, 0})[0], std::log(2.0f) + 0.5f);
  EXPECT_FLOAT_EQ(Run(*f, {1.0f, 0}, false)[0], std::exp(std::log(2.0f) + 0.5f));
}

TEST_P(ForestTest, CategoriesInTheSetGoRight) {
  TestModel m;
  m.base_score = "0E0";
  TestTree t = Stump(0, 0.0f, 1.0f, 2.0f, /*default_left=*/true);
  t.split_type = {1, 0, 0};
  t.categories = {{0, {1, 3, 40}}};
  m.trees = {t};
  auto f = Load(m);
  ASSERT_NE(f, nullptr);
  // In set: 1, 3, 3.7 (truncated to 3), 40. Out: 0, 2, 41, 1000, negative, >= 2^24. Missing:
  // default (left).
  std::vector<float> x = {1, 3, 3.7f, 40, 0, 2, 41, 1000, -1, -0.5f, 16777216.0f, kNan};
  std::vector<float> rows;
  for (float v : x) rows.insert(rows.end(), {v, 0.0f});
  EXPECT_THAT(Run(*f, rows), ::testing::ElementsAre(2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1));
}

TEST_P(ForestTest, MultiClassTreesAddToTheirGroup) {
  TestModel m;
  m.objective = "multi:softprob";
  m.num_class = 3;
  m.base_score = "5E-1";
  m.trees = {Stump(0, 0.0f, 1.0f, -1.0f, false, 0), Stump(0, 0.0f, 2.0f, 0.0f, false, 1),
             Stump(1, 0.0f, 0.0f, 3.0f, false, 2), Stump(1, 0.0f, 0.25f, 0.5f, false, 0)};
  auto f = Load(m);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->num_outputs(true), 3);
  EXPECT_EQ(f->num_outputs(false), 3);
  auto margin = Run(*f, {-1.0f, -1.0f, 1.0f, 1.0f});
  EXPECT_THAT(margin, ::testing::ElementsAre(1.75f, 2.5f, 0.5f, 0.0f, 0.5f, 3.5f));
  auto prob = Run(*f, {-1.0f, -1.0f, 1.0f, 1.0f}, false);
  EXPECT_NEAR(prob[0] + prob[1] + prob[2], 1.0f, 1e-6f);
  EXPECT_GT(prob[1], prob[0]);
  EXPECT_GT(prob[5], prob[4]);

  m.objective = "multi:softmax";
  f = Load(m);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->num_outputs(false), 1);
  EXPECT_THAT(Run(*f, {-1.0f, -1.0f, 1.0f, 1.0f}, false), ::testing::ElementsAre(1.0f, 2.0f));
}

TEST_P(ForestTest, DartScalesEachTree) {
  TestModel m;
  m.booster = "dart";
  m.base_score = "0E0";
  m.trees = {Stump(0, 0.0f, 1.0f, 2.0f), Stump(0, 0.0f, 4.0f, 8.0f)};
  m.weight_drop = {0.5f, 0.25f};
  auto f = Load(m);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->info().booster, "dart");
  EXPECT_THAT(Run(*f, {-1.0f, 0, 1.0f, 0}), ::testing::ElementsAre(1.5f, 3.0f));
}

TEST_P(ForestTest, SingleLeafTreesAndUnevenDepths) {
  TestModel m;
  m.base_score = "0E0";
  TestTree leaf;
  leaf.left = {-1};
  leaf.right = {-1};
  leaf.feature = {0};
  leaf.value = {0.125f};
  // A chain: x0 < 0 -> leaf 1.0; else x1 < 0 -> leaf 2.0; else x0 < 5 -> 3.0 else 4.0.
  TestTree chain;
  chain.left = {1, -1, 3, -1, 5, -1, -1};
  chain.right = {2, -1, 4, -1, 6, -1, -1};
  chain.feature = {0, 0, 1, 0, 0, 0, 0};
  chain.value = {0.0f, 1.0f, 0.0f, 2.0f, 5.0f, 3.0f, 4.0f};
  m.trees = {leaf, chain, leaf};
  auto f = Load(m);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->info().max_depth, 3);
  EXPECT_THAT(Run(*f, {-1, 0, 1, -1, 1, 1, 6, 1}),
              ::testing::ElementsAre(1.25f, 2.25f, 3.25f, 4.25f));
}

// Batches of every size take the rows-in-flight and trees-in-flight paths, perfect and
// breadth-first layouts (a deep chain and a categorical tree are not padded) and the thread
// pool; each row's output must be the same as predicting it alone.
TEST_P(ForestTest, BatchSizesAndThreadsGiveTheSameOutputs) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  TestModel m;
  m.objective = "binary:logistic";
  m.num_feature = 5;
  for (int t = 0; t < 70; ++t) {
    TestTree tree;
    tree.left = {1, 3, 5, -1, -1, -1, -1};
    tree.right = {2, 4, 6, -1, -1, -1, -1};
    tree.feature = {t % 5, (t + 1) % 5, (t + 2) % 5, 0, 0, 0, 0};
    tree.value = {u(rng), u(rng), u(rng), u(rng), u(rng), u(rng), u(rng)};
    tree.default_left = {t % 2, 1 - t % 2, 1, 0, 0, 0, 0};
    if (t == 20) {
      tree.split_type = {0, 1, 0, 0, 0, 0, 0};
      tree.categories = {{1, {0, 2}}};
    }
    m.trees.push_back(tree);
    if (t == 30) {
      // A chain of depth 12: node 2k splits, its left child 2k+1 is a leaf.
      TestTree chain;
      for (int k = 0; k < 12; ++k) {
        chain.left.insert(chain.left.end(), {2 * k + 1, -1});
        chain.right.insert(chain.right.end(), {2 * k + 2, -1});
        chain.feature.insert(chain.feature.end(), {k % 5, 0});
        chain.value.insert(chain.value.end(), {u(rng) * 0.5f, u(rng)});
        chain.default_left.insert(chain.default_left.end(), {k % 2, 0});
      }
      chain.left.push_back(-1);
      chain.right.push_back(-1);
      chain.feature.push_back(0);
      chain.value.push_back(u(rng));
      chain.default_left.push_back(0);
      m.trees.push_back(chain);
    }
  }
  auto f = Load(m);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->info().max_depth, 12);
  const int n = 1000;
  std::vector<float> x(n * 5);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = (rng() % 10 == 0) ? kNan : u(rng);
    if (i % 5 == (20 + 1) % 5) x[i] = static_cast<float>(rng() % 4);  // categories 0-3
  }
  std::vector<float> single(n);
  for (int r = 0; r < n; ++r) {
    std::vector<float> row(x.begin() + r * 5, x.begin() + r * 5 + 5);
    single[r] = Run(*f, row, false)[0];
  }
  ThreadPool pool(3);
  for (int batch : {2, 7, 8, 9, 15, 16, 17, 63, 100, 128, 129, 200, 1000}) {
    for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
      std::vector<float> part(x.begin(), x.begin() + batch * 5);
      auto out = Run(*f, part, false, p);
      for (int r = 0; r < batch; ++r) {
        ASSERT_EQ(out[r], single[r]) << "batch " << batch << " row " << r;
      }
    }
  }
}

// Past ~16k features the predictor no longer copies rows feature-major; results are the same.
TEST_P(ForestTest, VeryWideModels) {
  TestModel m;
  m.base_score = "0E0";
  m.num_feature = 20000;
  m.trees = {Stump(19999, 0.5f, 1.0f, 2.0f), Stump(7, 0.0f, 10.0f, 20.0f, true)};
  auto f = Load(m);
  ASSERT_NE(f, nullptr);
  const int n = 40;
  std::vector<float> x(static_cast<size_t>(n) * m.num_feature, 0.0f);
  for (int r = 0; r < n; ++r) {
    x[static_cast<size_t>(r) * m.num_feature + 19999] = r % 2 ? 1.0f : 0.0f;
    x[static_cast<size_t>(r) * m.num_feature + 7] = r % 3 == 0 ? kNan : 1.0f;
  }
  auto out = Run(*f, x);
  for (int r = 0; r < n; ++r) {
    EXPECT_EQ(out[r], (r % 2 ? 2.0f : 1.0f) + (r % 3 == 0 ? 10.0f : 20.0f)) << r;
  }
}

TEST_P(ForestTest, PredictRejectsWrongShapes) {
  TestModel m;
  m.trees = {Stump(1, 0.0f, 1.0f, 2.0f)};
  auto f = Load(m);
  ASSERT_NE(f, nullptr);
  float x[4] = {0, 0, 0, 0};
  float out[4];
  auto s = f->Predict(x, 1, 3, {}, out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("input has 3 columns but the model has 2 features"));
  EXPECT_TRUE(f->Predict(nullptr, 0, 2, {}, nullptr).ok());

  Tensor bad = Tensor::Allocate(DataType::kInt64, Shape({2, 2}));
  EXPECT_THAT(f->Predict(bad).status().message(),
              HasSubstr("input: expected FP32 [-1,2], got INT64 [2,2]"));
  Tensor good = Tensor::Allocate(DataType::kFp32, Shape({2, 2}), /*zero=*/true);
  good.data<float>()[2] = kNan;
  good.data<float>()[3] = 1.0f;
  auto out_t = f->Predict(good);
  ASSERT_TRUE(out_t.ok()) << out_t.status();
  EXPECT_EQ(out_t->shape(), Shape({2, 1}));
  EXPECT_EQ(out_t->data<float>()[0], 2.5f);
  EXPECT_EQ(out_t->data<float>()[1], 2.5f);
}

INSTANTIATE_TEST_SUITE_P(Formats, ForestTest,
                         ::testing::Values(ModelFormat::kXgboostJson, ModelFormat::kXgboostUbjson),
                         [](const auto& info) {
                           return info.param == ModelFormat::kXgboostJson ? "Json" : "Ubjson";
                         });

TEST(ForestLoadTest, ReportsFileErrors) {
  auto f = Forest::LoadFile("/nonexistent/model.json");
  EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(f.status().message(), HasSubstr("/nonexistent/model.json"));
  auto g = Forest::LoadFromMemory("", {}, "model 'x'");
  EXPECT_THAT(g.status().message(), HasSubstr("model 'x': the file is empty"));
}

TEST(ForestLoadTest, FormatNamesFollowTritonFil) {
  EXPECT_EQ(*ParseModelFormat("xgboost_json"), ModelFormat::kXgboostJson);
  EXPECT_EQ(*ParseModelFormat("xgboost_ubj"), ModelFormat::kXgboostUbjson);
  EXPECT_EQ(*ParseModelFormat("auto"), ModelFormat::kAuto);
  EXPECT_THAT(ParseModelFormat("lightgbm").status().message(), HasSubstr("'lightgbm'"));
}

TEST(ForestLoadTest, ForcedFormatMismatchFailsClearly) {
  TestModel m;
  m.trees = {Stump(0, 0.0f, 1.0f, 2.0f)};
  LoadOptions o;
  o.format = ModelFormat::kXgboostJson;
  auto f = Forest::LoadFromMemory(testing::ToUbjson(m), o);
  EXPECT_THAT(f.status().message(), HasSubstr("invalid JSON at byte"));
}

}  // namespace
}  // namespace flywheel::trees
