#include <cmath>
#include <functional>
#include <limits>

#include "engine/testing/op_test_util.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

using testing::ExpectTensorNear;
using testing::FloatAttr;
using testing::MakeTensor;
using testing::OpSpec;
using testing::RunOp;

// Values spanning negative, small, large and odd lengths (SIMD tails).
std::vector<float> Inputs(int n, float lo, float hi) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = n == 1 ? lo : lo + (hi - lo) * static_cast<float>(i) / (n - 1);
  return v;
}

Tensor Apply(const std::vector<float>& x, const std::function<double(double)>& f) {
  std::vector<float> y;
  for (float v : x) y.push_back(static_cast<float>(f(v)));
  return MakeTensor<float>({static_cast<int64_t>(x.size())}, y);
}

void CheckUnary(OpSpec spec, float lo, float hi, const std::function<double(double)>& f) {
  SCOPED_TRACE(spec.op_type);
  for (int n : {1, 7, 37, 1001, 70001}) {
    std::vector<float> x = Inputs(n, lo, hi);
    spec.threads = n > 50000 ? 4 : 1;
    auto out = RunOp(spec, {MakeTensor<float>({n}, x)});
    ASSERT_TRUE(out.ok()) << out.status();
    ExpectTensorNear((*out)[0], Apply(x, f));
    // float64 goes through the scalar path.
    std::vector<double> xd(x.begin(), x.end());
    auto outd = RunOp(spec, {MakeTensor<double>({n}, xd)});
    ASSERT_TRUE(outd.ok()) << outd.status();
    std::vector<double> yd;
    for (double v : xd) yd.push_back(f(v));
    ExpectTensorNear((*outd)[0], MakeTensor<double>({n}, yd));
  }
}

TEST(ElementwiseUnaryTest, Math) {
  CheckUnary({.op_type = "Sqrt"}, 0, 100, [](double x) { return std::sqrt(x); });
  CheckUnary({.op_type = "Exp"}, -80, 80, [](double x) { return std::exp(x); });
  CheckUnary({.op_type = "Exp"}, -3, 3, [](double x) { return std::exp(x); });
  CheckUnary({.op_type = "Log"}, 1e-3f, 1e4f, [](double x) { return std::log(x); });
  CheckUnary({.op_type = "Neg"}, -5, 5, [](double x) { return -x; });
  CheckUnary({.op_type = "Abs"}, -5, 5, [](double x) { return std::abs(x); });
  CheckUnary({.op_type = "Erf"}, -5, 5, [](double x) { return std::erf(x); });
  CheckUnary({.op_type = "Tanh"}, -12, 12, [](double x) { return std::tanh(x); });
  CheckUnary({.op_type = "Reciprocal"}, 0.1f, 10, [](double x) { return 1 / x; });
  CheckUnary({.op_type = "Floor"}, -5, 5, [](double x) { return std::floor(x); });
  CheckUnary({.op_type = "Ceil"}, -5, 5, [](double x) { return std::ceil(x); });
  CheckUnary({.op_type = "Round"}, -5, 5, [](double x) { return std::nearbyint(x); });
  CheckUnary({.op_type = "Sin"}, -10, 10, [](double x) { return std::sin(x); });
  CheckUnary({.op_type = "Cos"}, -10, 10, [](double x) { return std::cos(x); });
  CheckUnary({.op_type = "Softplus"}, -30, 30,
             [](double x) { return std::log1p(std::exp(-std::abs(x))) + std::max(x, 0.0); });
}

TEST(ElementwiseUnaryTest, Activations) {
  CheckUnary({.op_type = "Sigmoid"}, -30, 30, [](double x) { return 1 / (1 + std::exp(-x)); });
  CheckUnary({.op_type = "Relu"}, -5, 5, [](double x) { return std::max(x, 0.0); });
  CheckUnary({.op_type = "LeakyRelu"}, -5, 5, [](double x) { return x < 0 ? 0.01 * x : x; });
  CheckUnary({.op_type = "LeakyRelu", .attributes = {{"alpha", FloatAttr(0.2f)}}}, -5, 5,
             [](double x) { return x < 0 ? 0.2 * x : x; });
  CheckUnary({.op_type = "Elu", .attributes = {{"alpha", FloatAttr(0.5f)}}}, -8, 5,
             [](double x) { return x < 0 ? 0.5 * std::expm1(x) : x; });
  CheckUnary({.op_type = "HardSigmoid"}, -6, 6,
             [](double x) { return std::min(1.0, std::max(0.0, 0.2 * x + 0.5)); });
  CheckUnary({.op_type = "HardSigmoid",
              .attributes = {{"alpha", FloatAttr(0.1f)}, {"beta", FloatAttr(0.6f)}}},
             -6, 6, [](double x) { return std::min(1.0, std::max(0.0, 0.1 * x + 0.6)); });
  auto gelu = [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); };
  CheckUnary({.op_type = "Gelu", .domain = "com.flywheel"}, -10, 10, gelu);
  CheckUnary({.op_type = "Gelu",
              .domain = "com.flywheel",
              .attributes = {{"approximate", testing::StringAttr("tanh")}}},
             -10, 10, [](double x) {
               return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
             });
}

TEST(ElementwiseUnaryTest, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity(), nan = NAN;
  Tensor x = MakeTensor<float>({7}, {-inf, -200, -0.0f, 0, 100, inf, nan});
  auto exp = RunOp({.op_type = "Exp"}, {x});
  ASSERT_TRUE(exp.ok());
  ExpectTensorNear((*exp)[0], MakeTensor<float>({7}, {0, 0, 1, 1, inf, inf, nan}));
  auto sig = RunOp({.op_type = "Sigmoid"}, {x});
  ASSERT_TRUE(sig.ok());
  ExpectTensorNear((*sig)[0], MakeTensor<float>({7}, {0, 0, 0.5f, 0.5f, 1, 1, nan}));
  auto tanh = RunOp({.op_type = "Tanh"}, {x});
  ASSERT_TRUE(tanh.ok());
  ExpectTensorNear((*tanh)[0], MakeTensor<float>({7}, {-1, -1, 0, 0, 1, 1, nan}));
  auto log = RunOp({.op_type = "Log"}, {MakeTensor<float>({4}, {0, -1, inf, 1})});
  ASSERT_TRUE(log.ok());
  ExpectTensorNear((*log)[0], MakeTensor<float>({4}, {-inf, nan, inf, 0}));
}

TEST(ElementwiseUnaryTest, IntegerTypes) {
  Tensor x = MakeTensor<int64_t>({4}, {-3, 0, 5, std::numeric_limits<int64_t>::min()});
  auto neg = RunOp({.op_type = "Neg"}, {x});
  auto abs = RunOp({.op_type = "Abs"}, {x});
  auto relu = RunOp({.op_type = "Relu"}, {x});
  ASSERT_TRUE(neg.ok() && abs.ok() && relu.ok());
  ExpectTensorNear((*neg)[0],
                   MakeTensor<int64_t>({4}, {3, 0, -5, std::numeric_limits<int64_t>::min()}));
  ExpectTensorNear((*abs)[0],
                   MakeTensor<int64_t>({4}, {3, 0, 5, std::numeric_limits<int64_t>::min()}));
  ExpectTensorNear((*relu)[0], MakeTensor<int64_t>({4}, {0, 0, 5, 0}));
  auto bad = RunOp({.op_type = "Exp"}, {x});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("INT64"), std::string::npos);
  auto sign = RunOp({.op_type = "Sign"}, {MakeTensor<int32_t>({3}, {-4, 0, 9})});
  ASSERT_TRUE(sign.ok());
  ExpectTensorNear((*sign)[0], MakeTensor<int32_t>({3}, {-1, 0, 1}));
}

TEST(ElementwiseUnaryTest, EmptyAndScalar) {
  auto empty = RunOp({.op_type = "Exp"}, {MakeTensor<float>({0, 3}, {})});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ((*empty)[0].shape(), Shape({0, 3}));
  auto scalar = RunOp({.op_type = "Relu"}, {MakeTensor<float>({}, {-2})});
  ASSERT_TRUE(scalar.ok());
  ExpectTensorNear((*scalar)[0], MakeTensor<float>({}, {0}));
}

TEST(ElementwiseUnaryTest, ClipAttributeForm) {
  Tensor x = MakeTensor<float>({5}, {-3, -1, 0, 1, 3});
  auto out = RunOp({.op_type = "Clip",
                    .attributes = {{"min", FloatAttr(-1.5f)}, {"max", FloatAttr(2)}},
                    .opset = 6},
                   {x});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<float>({5}, {-1.5f, -1, 0, 1, 2}));
  auto only_min =
      RunOp({.op_type = "Clip", .attributes = {{"min", FloatAttr(0)}}, .opset = 6}, {x});
  ASSERT_TRUE(only_min.ok());
  ExpectTensorNear((*only_min)[0], MakeTensor<float>({5}, {0, 0, 0, 1, 3}));
}

TEST(ElementwiseUnaryTest, ClipInputForm) {
  Tensor x = MakeTensor<float>({5}, {-3, -1, 0, 1, 3});
  auto both = RunOp({.op_type = "Clip", .constant_inputs = {1, 2}},
                    {x, MakeTensor<float>({}, {-1}), MakeTensor<float>({}, {1})});
  ASSERT_TRUE(both.ok()) << both.status();
  ExpectTensorNear((*both)[0], MakeTensor<float>({5}, {-1, -1, 0, 1, 1}));
  auto max_only = RunOp({.op_type = "Clip"}, {x, Tensor(), MakeTensor<float>({}, {0.5f})});
  ASSERT_TRUE(max_only.ok()) << max_only.status();
  ExpectTensorNear((*max_only)[0], MakeTensor<float>({5}, {-3, -1, 0, 0.5f, 0.5f}));
  auto none = RunOp({.op_type = "Clip"}, {x});
  ASSERT_TRUE(none.ok());
  ExpectTensorNear((*none)[0], x);
  auto ints = RunOp({.op_type = "Clip"}, {MakeTensor<int64_t>({4}, {-100, 3, 50, 7}),
                                          MakeTensor<int64_t>({}, {0}), Tensor()});
  ASSERT_TRUE(ints.ok()) << ints.status();
  ExpectTensorNear((*ints)[0], MakeTensor<int64_t>({4}, {0, 3, 50, 7}));
  auto u8 =
      RunOp({.op_type = "Clip"}, {MakeTensor<uint8_t>({3}, {1, 100, 255}),
                                  MakeTensor<uint8_t>({}, {10}), MakeTensor<uint8_t>({}, {200})});
  ASSERT_TRUE(u8.ok());
  ExpectTensorNear((*u8)[0], MakeTensor<uint8_t>({3}, {10, 100, 200}));
  auto bad = RunOp({.op_type = "Clip"}, {x, MakeTensor<double>({}, {0})});
  EXPECT_FALSE(bad.ok());
}

TEST(ElementwiseUnaryTest, Not) {
  auto out = RunOp({.op_type = "Not"}, {MakeTensor<bool>({3}, {true, false, true})});
  ASSERT_TRUE(out.ok());
  ExpectTensorNear((*out)[0], MakeTensor<bool>({3}, {false, true, false}));
  EXPECT_FALSE(RunOp({.op_type = "Not"}, {MakeTensor<float>({1}, {1})}).ok());
}

TEST(ElementwiseUnaryTest, GeluRejectsBadApproximate) {
  auto out = RunOp({.op_type = "Gelu",
                    .domain = "com.flywheel",
                    .attributes = {{"approximate", testing::StringAttr("fast")}}},
                   {MakeTensor<float>({1}, {1})});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("test_node"), std::string::npos);
}

}  // namespace
}  // namespace flywheel::engine
