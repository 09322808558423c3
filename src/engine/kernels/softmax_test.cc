#include <cmath>
#include <vector>

#include "engine/testing/op_test_util.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

using testing::ExpectTensorNear;
using testing::IntAttr;
using testing::MakeTensor;
using testing::RunOp;

// Reference softmax over [outer, len, inner] in double.
template <typename T>
Tensor Reference(const Tensor& x, int64_t outer, int64_t len, int64_t inner, bool log) {
  Tensor y = Tensor::Allocate(x.dtype(), x.shape());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < inner; ++j) {
      auto at = [&](int64_t k) { return o * len * inner + k * inner + j; };
      double m = -INFINITY, s = 0;
      for (int64_t k = 0; k < len; ++k) m = std::max(m, double(x.data<T>()[at(k)]));
      for (int64_t k = 0; k < len; ++k) s += std::exp(double(x.data<T>()[at(k)]) - m);
      for (int64_t k = 0; k < len; ++k) {
        const double v = double(x.data<T>()[at(k)]) - m;
        y.data<T>()[at(k)] = static_cast<T>(log ? v - std::log(s) : std::exp(v) / s);
      }
    }
  }
  return y;
}

template <typename T>
Tensor Input(const Shape& shape) {
  std::vector<T> v(shape.NumElements());
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<T>(std::sin(i * 0.7) * 20.0);
  return MakeTensor<T>(shape, v);
}

TEST(ElementwiseSoftmaxTest, AlongEveryAxis) {
  const Shape shape{3, 5, 37};
  for (bool log : {false, true}) {
    const char* op = log ? "LogSoftmax" : "Softmax";
    for (int64_t axis : {-1, 0, 1, 2, -2}) {
      SCOPED_TRACE(absl::StrCat(op, " axis ", axis));
      const int a = axis < 0 ? axis + 3 : axis;
      const int64_t outer = shape.Product(0, a), len = shape[a], inner = shape.Product(a + 1, 3);
      Tensor x = Input<float>(shape);
      auto out = RunOp({.op_type = op, .attributes = {{"axis", IntAttr(axis)}}}, {x});
      ASSERT_TRUE(out.ok()) << out.status();
      ExpectTensorNear((*out)[0], Reference<float>(x, outer, len, inner, log));
      Tensor xd = Input<double>(shape);
      auto outd = RunOp({.op_type = op, .attributes = {{"axis", IntAttr(axis)}}}, {xd});
      ASSERT_TRUE(outd.ok()) << outd.status();
      ExpectTensorNear((*outd)[0], Reference<double>(xd, outer, len, inner, log));
    }
  }
}

TEST(ElementwiseSoftmaxTest, DefaultAxisIsLast) {
  Tensor x = MakeTensor<float>({2, 3}, {1, 2, 3, 1000, 1000, 1000});
  auto out = RunOp({.op_type = "Softmax"}, {x});
  ASSERT_TRUE(out.ok());
  ExpectTensorNear((*out)[0], Reference<float>(x, 2, 3, 1, false));
  const float third = 1.0f / 3;
  EXPECT_NEAR((*out)[0].data<float>()[4], third, 1e-6);  // stable for large inputs
}

TEST(ElementwiseSoftmaxTest, Opset11CoercesTo2D) {
  const Shape shape{2, 3, 4};
  Tensor x = Input<float>(shape);
  for (bool log : {false, true}) {
    // Default axis 1: each of the 2 rows of 12 elements sums to 1.
    auto out = RunOp({.op_type = log ? "LogSoftmax" : "Softmax", .opset = 11}, {x});
    ASSERT_TRUE(out.ok()) << out.status();
    ExpectTensorNear((*out)[0], Reference<float>(x, 2, 12, 1, log));
    auto ax2 = RunOp({.op_type = log ? "LogSoftmax" : "Softmax",
                      .attributes = {{"axis", IntAttr(2)}},
                      .opset = 12},
                     {x});
    ASSERT_TRUE(ax2.ok()) << ax2.status();
    ExpectTensorNear((*ax2)[0], Reference<float>(x, 6, 4, 1, log));
  }
}

TEST(ElementwiseSoftmaxTest, LargeParallel) {
  const Shape shape{64, 12, 129};
  Tensor x = Input<float>(shape);
  auto rows = RunOp({.op_type = "Softmax", .threads = 4}, {x});
  ASSERT_TRUE(rows.ok());
  ExpectTensorNear((*rows)[0], Reference<float>(x, 64 * 12, 129, 1, false));
  auto mid = RunOp({.op_type = "Softmax", .attributes = {{"axis", IntAttr(1)}}, .threads = 4}, {x});
  ASSERT_TRUE(mid.ok());
  ExpectTensorNear((*mid)[0], Reference<float>(x, 64, 12, 129, false));
  const Shape wide{2, 8, 1000};
  Tensor w = Input<float>(wide);
  auto wmid =
      RunOp({.op_type = "LogSoftmax", .attributes = {{"axis", IntAttr(1)}}, .threads = 4}, {w});
  ASSERT_TRUE(wmid.ok());
  ExpectTensorNear((*wmid)[0], Reference<float>(w, 2, 8, 1000, true));
}

TEST(ElementwiseSoftmaxTest, ErrorsAndEmpty) {
  auto bad_axis =
      RunOp({.op_type = "Softmax", .attributes = {{"axis", IntAttr(3)}}}, {Input<float>({2, 3})});
  ASSERT_FALSE(bad_axis.ok());
  EXPECT_NE(bad_axis.status().message().find("test_node"), std::string::npos);
  auto bad_type = RunOp({.op_type = "Softmax"}, {MakeTensor<int64_t>({2}, {1, 2})});
  EXPECT_FALSE(bad_type.ok());
  auto empty = RunOp({.op_type = "Softmax"}, {MakeTensor<float>({0, 4}, {})});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ((*empty)[0].shape(), Shape({0, 4}));
}

}  // namespace
}  // namespace flywheel::engine
