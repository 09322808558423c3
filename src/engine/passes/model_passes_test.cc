// The passes on the fixture models (tests/fixtures/models/): the fusions that must happen, a
// valid sorted graph afterwards, and, once every fused kernel exists, the same outputs with and
// without optimisation.
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/npy.h"
#include "engine/kernels/registry.h"
#include "engine/onnx_loader.h"
#include "engine/passes/optimizer.h"
#include "engine/passes/test_graph_builder.h"
#include "engine/session.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

namespace fs = std::filesystem;

fs::path ModelDir(const std::string& name) {
  const char* dir = std::getenv("FLYWHEEL_SOURCE_DIR");
  return (dir != nullptr ? fs::path(dir) : fs::current_path()) / "tests" / "fixtures" / "models" /
         name;
}

std::string Describe(const std::map<std::string, int>& counts) {
  std::vector<std::string> parts;
  for (const auto& [op, n] : counts) parts.push_back(absl::StrCat(op, ":", n));
  return absl::StrJoin(parts, " ");
}

struct Expectation {
  std::string model;
  std::map<std::string, int> counts;  // exact counts of these ops after optimisation
};

class PassesModelTest : public ::testing::TestWithParam<Expectation> {};

TEST_P(PassesModelTest, FusesAndMatchesUnoptimised) {
  const Expectation& e = GetParam();
  fs::path path = ModelDir(e.model) / "model.onnx";
  if (!fs::exists(path)) GTEST_SKIP() << path << " not generated yet";
  auto loaded = LoadOnnxFile(path.string());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  Graph g = std::move(*loaded);
  ASSERT_TRUE(OptimizeGraph(g).ok());
  auto counts = testing::CountOps(g);
  for (const auto& [op, n] : e.counts) {
    EXPECT_EQ(counts[op], n) << op << " in " << e.model << ": " << Describe(counts);
  }
  // Optimising again changes nothing: the pipeline reached its fixed point.
  Graph again = g;
  ASSERT_TRUE(OptimizeGraph(again).ok());
  EXPECT_EQ(testing::CountOps(again), testing::CountOps(g));

  for (const Node& n : g.nodes) {
    if (KernelRegistry::Global().Find(n.domain, n.op_type) == nullptr) {
      GTEST_SKIP() << "no kernel yet for " << n.domain << ":" << n.op_type
                   << "; numerical comparison skipped";
    }
  }
  SessionOptions plain_options;
  plain_options.optimize = false;
  auto plain = Session::Load(path.string(), plain_options);
  auto fast = Session::Load(path.string(), {});
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_TRUE(fast.ok()) << fast.status();
  for (const auto& [op, n] : e.counts) EXPECT_EQ((*fast)->OpCounts()[op], n) << op;
  int cases = 0;
  for (const auto& entry : fs::directory_iterator(ModelDir(e.model))) {
    if (!entry.is_directory()) continue;
    std::vector<Tensor> inputs;
    for (int k = 0;; ++k) {
      fs::path file = entry.path() / absl::StrCat("input_", k, ".npy");
      if (!fs::exists(file)) break;
      auto t = ReadNpy(file.string());
      ASSERT_TRUE(t.ok()) << t.status();
      inputs.push_back(*t);
    }
    auto want = (*plain)->Run(inputs);
    auto got = (*fast)->Run(inputs);
    ASSERT_TRUE(want.ok()) << want.status();
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), want->size());
    for (size_t i = 0; i < got->size(); ++i) {
      SCOPED_TRACE(entry.path().string());
      testing::ExpectTensorNear((*got)[i], (*want)[i]);
    }
    ++cases;
  }
  EXPECT_GT(cases, 0);
}

const std::map<std::string, int> kTransformer = {
    {"Erf", 0},         {"Attention", 4},  {"LayerNormalization", 9},
    {"Softmax", 0},     {"ReduceMean", 0}, {"Pow", 0},
    {"Sqrt", 0},        {"Gelu", 0},       {"MatMul", 0},
    {"FusedMatMul", 24}};

INSTANTIATE_TEST_SUITE_P(
    Fixtures, PassesModelTest,
    ::testing::Values(
        Expectation{"mlp_ranker", {{"FusedGemm", 4}, {"Gemm", 0}, {"Relu", 0}, {"Sigmoid", 0}}},
        Expectation{"mlp_ranker_opset13", {{"FusedGemm", 4}, {"Relu", 0}, {"Sigmoid", 0}}},
        Expectation{"recommender", {{"FusedGemm", 4}, {"Gemm", 0}, {"Relu", 0}, {"Gather", 2}}},
        Expectation{"cnn",
                    {{"BatchNormalization", 0},
                     // The two 1x1 skip convolutions feed the residual Add of their block's
                     // second convolution (their FusedConv takes them as Z); the channels-last
                     // pass then makes every convolution a FusedConv, and the whole network
                     // runs NHWC from the stem's output on, with no Transpose anywhere.
                     {"Conv", 0},
                     {"FusedConv", 7},
                     {"NhwcMaxPool", 1},
                     {"NhwcGlobalAveragePool", 1},
                     {"MaxPool", 0},
                     {"Transpose", 0},
                     {"Relu", 0},
                     {"Add", 0}}},
        Expectation{"transformer", kTransformer}, Expectation{"transformer_opset13", kTransformer}),
    [](const ::testing::TestParamInfo<Expectation>& info) { return info.param.model; });

}  // namespace
}  // namespace flywheel::engine
