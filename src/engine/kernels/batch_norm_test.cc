// BatchNormalization (inference) against a double-precision reference.
#include <cmath>
#include <random>

#include "engine/testing/op_test_util.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

using testing::FloatAttr;
using testing::IntAttr;
using testing::OpSpec;
using testing::RunOp;

Tensor Random(Shape shape, uint32_t seed, float lo = -1, float hi = 1) {
  Tensor t = Tensor::Allocate(DataType::kFp32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (int64_t i = 0; i < t.NumElements(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

TEST(BatchNormTest, MatchesReference) {
  for (Shape s : {Shape{2, 3, 4, 5}, Shape{3, 4}, Shape{1, 6, 7}, Shape{2, 2, 2, 3, 2}}) {
    const int64_t c = s[1];
    Tensor x = Random(s, 1), scale = Random(Shape{c}, 2), b = Random(Shape{c}, 3),
           mean = Random(Shape{c}, 4), var = Random(Shape{c}, 5, 0.1f, 2.0f);
    const float eps = 1e-3f;
    Tensor want = Tensor::Allocate(DataType::kFp32, s);
    const int64_t inner = x.NumElements() / (s[0] * c);
    for (int64_t i = 0; i < x.NumElements(); ++i) {
      int64_t ch = i / inner % c;
      double v = (x.data<float>()[i] - mean.data<float>()[ch]) /
                     std::sqrt(static_cast<double>(var.data<float>()[ch]) + eps) *
                     scale.data<float>()[ch] +
                 b.data<float>()[ch];
      want.data<float>()[i] = static_cast<float>(v);
    }
    for (bool constant : {true, false}) {
      for (int threads : {1, 2}) {
        OpSpec spec{.op_type = "BatchNormalization", .threads = threads};
        spec.attributes["epsilon"] = FloatAttr(eps);
        if (constant) spec.constant_inputs = {1, 2, 3, 4};
        auto got = RunOp(spec, {x, scale, b, mean, var});
        ASSERT_TRUE(got.ok()) << got.status();
        testing::ExpectTensorNear((*got)[0], want);
      }
    }
  }
}

TEST(BatchNormTest, Errors) {
  Tensor x = Random(Shape{1, 3, 2, 2}, 1), p = Random(Shape{3}, 2), q = Random(Shape{4}, 2);
  OpSpec spec{.op_type = "BatchNormalization"};
  EXPECT_FALSE(RunOp(spec, {x, p, p, p, q}).ok());
  spec.constant_inputs = {1, 2, 3, 4};
  EXPECT_FALSE(RunOp(spec, {x, p, p, p, q}).ok());
  EXPECT_FALSE(RunOp(spec, {x, q, q, q, q}).ok());  // channel mismatch with folded params
  spec.attributes["training_mode"] = IntAttr(1);
  auto r = RunOp(spec, {x, p, p, p, p});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("training_mode"), std::string::npos);
}

}  // namespace
}  // namespace flywheel::engine
