// The tree engine against XGBoost itself: every fixture of tests/fixtures/trees/ (made by
// tools/gen_tree_fixtures.py with python3-xgboost) is loaded from JSON and from UBJSON and must
// reproduce XGBoost's predict() and predict(output_margin=True); every broken model must fail to
// load with the error its manifest names.
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/npy.h"
#include "core/thread_pool.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "trees/forest.h"
#include "trees/json_reader.h"

namespace flywheel::trees {
namespace {

std::string FixtureDir() {
  const char* root = std::getenv("FLYWHEEL_SOURCE_DIR");
  return std::string(root != nullptr ? root : ".") + "/tests/fixtures/trees";
}

// The manifests are read with the trees module's own JSON reader (RapidJSON 1.1 trips UBSan).
ModelDoc ReadJson(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto doc = ParseJsonDoc(ss.str());
  EXPECT_TRUE(doc.ok()) << path << ": " << doc.status();
  return doc.ok() ? std::move(*doc) : ModelDoc(nullptr, Value());
}

std::string Str(const Value* v) { return v ? std::string(v->string_value()) : ""; }
int64_t Int(const Value* v) { return v ? v->number().ToInt64().value_or(-1) : -1; }

std::vector<std::string> FixtureNames() {
  ModelDoc m = ReadJson(FixtureDir() + "/manifest.json");
  std::vector<std::string> names;
  for (const auto& [name, info] : m.root().members()) names.emplace_back(name);
  return names;
}

// XGBoost adds leaves in float in the same order as the engine, so outputs normally agree to
// the bit; the issue allows 1e-6 relative (plus a hair of absolute slack near zero).
void ExpectClose(const Tensor& want, const std::vector<float>& got, const std::string& what) {
  ASSERT_EQ(static_cast<size_t>(want.NumElements()), got.size()) << what;
  const float* w = want.data<float>();
  int exact = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = 1e-6 * std::abs(w[i]) + 1e-7;
    ASSERT_LE(std::abs(static_cast<double>(got[i]) - w[i]), tol)
        << what << " element " << i << ": got " << got[i] << ", XGBoost " << w[i];
    exact += got[i] == w[i];
  }
  ::testing::Test::RecordProperty(what + " exact", exact);
}

class FixtureTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureTest, MatchesXgboost) {
  const std::string dir = FixtureDir() + "/" + GetParam();
  ModelDoc manifest = ReadJson(FixtureDir() + "/manifest.json");
  const Value* info = manifest.root().Find(GetParam());
  ASSERT_NE(info, nullptr);
  auto x = ReadNpy(dir + "/x.npy");
  auto margin = ReadNpy(dir + "/margin.npy");
  auto pred = ReadNpy(dir + "/pred.npy");
  ASSERT_TRUE(x.ok() && margin.ok() && pred.ok());
  const int64_t n = x->dim(0);
  ThreadPool pool(2);
  for (const char* file : {"model.json", "model.ubj"}) {
    SCOPED_TRACE(file);
    auto forest = Forest::LoadFile(dir + "/" + file);
    ASSERT_TRUE(forest.ok()) << forest.status();
    const Forest& f = **forest;
    EXPECT_EQ(f.info().objective, Str(info->Find("objective")));
    EXPECT_EQ(f.info().booster, Str(info->Find("booster")));
    EXPECT_EQ(f.num_features(), Int(info->Find("num_features")));
    EXPECT_EQ(f.info().num_class, Int(info->Find("num_class")));
    EXPECT_EQ(f.info().num_trees, Int(info->Find("num_trees")));
    EXPECT_EQ(f.info().max_depth, Int(info->Find("max_depth")));
    EXPECT_EQ(f.info().version, "1.7.4");
    ASSERT_EQ(x->dim(1), f.num_features());
    for (bool output_margin : {true, false}) {
      const Tensor& want = output_margin ? *margin : *pred;
      const int cols = f.num_outputs(output_margin);
      ASSERT_EQ(want.NumElements(), n * cols);
      for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
        std::vector<float> got(n * cols);
        PredictOptions o;
        o.output_margin = output_margin;
        o.pool = p;
        ASSERT_TRUE(f.Predict(x->data<float>(), n, f.num_features(), o, got.data()).ok());
        ExpectClose(want, got, output_margin ? "margin" : "pred");
      }
      // One row at a time takes the trees-in-flight path.
      std::vector<float> got(n * cols);
      PredictOptions o;
      o.output_margin = output_margin;
      for (int64_t r = 0; r < n; ++r) {
        ASSERT_TRUE(f.Predict(x->data<float>() + r * f.num_features(), 1, f.num_features(), o,
                              got.data() + r * cols)
                        .ok());
      }
      ExpectClose(want, got, output_margin ? "margin, row by row" : "pred, row by row");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Trees, FixtureTest, ::testing::ValuesIn(FixtureNames()),
                         [](const auto& info) { return info.param; });

TEST(TreeFixturesTest, CoverTheIssueCases) {
  const auto names = FixtureNames();
  for (const char* want : {"binary", "regression", "multiclass_softprob", "multiclass_softmax",
                           "ranking", "poisson", "missing", "categorical", "deep", "wide"}) {
    EXPECT_THAT(names, ::testing::Contains(want));
  }
}

TEST(BrokenTreeModelsTest, FailWithClearErrors) {
  const std::string dir = FixtureDir() + "/broken";
  ModelDoc expected = ReadJson(dir + "/expected.json");
  ASSERT_TRUE(expected.root().is_object());
  int checked = 0;
  for (const auto& [file, want] : expected.root().members()) {
    const std::string path = dir + "/" + std::string(file);
    auto forest = Forest::LoadFile(path);
    ASSERT_FALSE(forest.ok()) << path << " loaded";
    const std::string message(forest.status().message());
    EXPECT_THAT(message, ::testing::HasSubstr(std::string(want.string_value()))) << path;
    EXPECT_THAT(message, ::testing::HasSubstr(path));
    ++checked;
  }
  EXPECT_GE(checked, 25);
}

}  // namespace
}  // namespace flywheel::trees
