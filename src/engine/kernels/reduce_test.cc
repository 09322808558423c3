#include <cmath>
#include <limits>

#include "engine/testing/op_test_util.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

using testing::ExpectTensorNear;
using testing::IntAttr;
using testing::IntsAttr;
using testing::MakeTensor;
using testing::OpSpec;
using testing::RunOp;

Tensor Data(Shape shape) {
  Tensor t = Tensor::Allocate(DataType::kFp32, shape);
  for (int64_t i = 0; i < t.NumElements(); ++i) {
    t.data<float>()[i] = static_cast<float>((i * 37) % 101) / 10.0f - 5.0f;
  }
  return t;
}

// Reference reduction in double over a bit mask of axes.
Tensor Ref(const std::string& op, const Tensor& x, uint32_t mask, bool keepdims) {
  const int rank = x.rank();
  Shape out_shape, full;
  for (int k = 0; k < rank; ++k) {
    bool r = (mask >> k) & 1;
    if (!r) out_shape.push_back(x.dim(k));
    if (r && keepdims) out_shape.push_back(1);
    full.push_back(r ? 1 : x.dim(k));
  }
  const int64_t n_out = full.NumElements();
  std::vector<double> acc(n_out, op == "ReduceMax" ? -INFINITY : 0.0);
  std::vector<int64_t> cnt(n_out, 0);
  for (int64_t i = 0; i < x.NumElements(); ++i) {
    int64_t rem = i, o = 0, stride = 1;
    for (int k = rank - 1; k >= 0; --k) {
      int64_t idx = rem % x.dim(k);
      rem /= x.dim(k);
      if (!((mask >> k) & 1)) o += idx * stride;
      stride *= full[k];
    }
    double v = x.data<float>()[i];
    acc[o] = op == "ReduceMax" ? std::max(acc[o], v) : acc[o] + v;
    cnt[o]++;
  }
  Tensor out = Tensor::Allocate(DataType::kFp32, out_shape);
  for (int64_t o = 0; o < n_out; ++o) {
    out.data<float>()[o] = static_cast<float>(op == "ReduceMean" ? acc[o] / cnt[o] : acc[o]);
  }
  return out;
}

TEST(ReduceTest, AllAxisCombinationsMatchReference) {
  const Shape shape{3, 4, 5, 6};
  Tensor x = Data(shape);
  for (std::string op : {"ReduceSum", "ReduceMean", "ReduceMax"}) {
    for (uint32_t mask = 1; mask < 16; ++mask) {
      for (bool keepdims : {true, false}) {
        std::vector<int64_t> axes;
        for (int k = 0; k < 4; ++k) {
          if ((mask >> k) & 1) axes.push_back(k % 2 ? k - 4 : k);  // mix negative axes in
        }
        OpSpec spec{.op_type = op,
                    .attributes = {{"keepdims", IntAttr(keepdims)}},
                    .opset = 18,
                    .threads = 2};
        auto out = RunOp(spec, {x, MakeTensor<int64_t>({static_cast<int64_t>(axes.size())}, axes)});
        ASSERT_TRUE(out.ok()) << out.status();
        SCOPED_TRACE(::testing::Message() << op << " mask " << mask << " keepdims " << keepdims);
        ExpectTensorNear((*out)[0], Ref(op, x, mask, keepdims));
      }
    }
  }
}

TEST(ReduceTest, Opset13Forms) {
  Tensor x = Data({2, 3, 4});
  // ReduceSum takes axes as an input from 13; Mean/Max as an attribute until 18.
  OpSpec sum{.op_type = "ReduceSum", .opset = 13};
  auto out = RunOp(sum, {x, MakeTensor<int64_t>({1}, {1})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], Ref("ReduceSum", x, 2, true));
  OpSpec sum11{.op_type = "ReduceSum", .attributes = {{"axes", IntsAttr({-1})}}, .opset = 11};
  out = RunOp(sum11, {x});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], Ref("ReduceSum", x, 4, true));
  OpSpec mean{.op_type = "ReduceMean",
              .attributes = {{"axes", IntsAttr({0, 2})}, {"keepdims", IntAttr(0)}},
              .opset = 13};
  out = RunOp(mean, {x});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], Ref("ReduceMean", x, 5, false));
  OpSpec max{.op_type = "ReduceMax", .opset = 13};  // no axes: everything
  out = RunOp(max, {x});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], Ref("ReduceMax", x, 7, true));
}

TEST(ReduceTest, NoopWithEmptyAxes) {
  Tensor x = Data({2, 3});
  OpSpec spec{
      .op_type = "ReduceSum", .attributes = {{"noop_with_empty_axes", IntAttr(1)}}, .opset = 13};
  auto out = RunOp(spec, {x});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], x);
  out = RunOp(spec, {x, MakeTensor<int64_t>({0}, {})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], x);
}

TEST(ReduceTest, IntegerTypes) {
  OpSpec sum{.op_type = "ReduceSum", .attributes = {{"keepdims", IntAttr(0)}}, .opset = 13};
  auto out =
      RunOp(sum, {MakeTensor<int64_t>({2, 3}, {1, 2, 3, 4, 5, 6}), MakeTensor<int64_t>({1}, {0})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<int64_t>({3}, {5, 7, 9}));
  OpSpec max{.op_type = "ReduceMax", .attributes = {{"axes", IntsAttr({1})}}, .opset = 13};
  out = RunOp(max, {MakeTensor<int32_t>({2, 3}, {-1, -7, -3, 4, 9, 6})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<int32_t>({2, 1}, {-1, 9}));
  OpSpec mean{.op_type = "ReduceMean", .attributes = {{"axes", IntsAttr({1})}}, .opset = 13};
  out = RunOp(mean, {MakeTensor<int32_t>({1, 4}, {1, 2, 3, 5})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<int32_t>({1, 1}, {2}));
}

TEST(ReduceTest, ZeroSizeAndErrors) {
  OpSpec sum{.op_type = "ReduceSum", .opset = 13};
  auto out = RunOp(sum, {MakeTensor<float>({2, 0}, {}), MakeTensor<int64_t>({1}, {1})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<float>({2, 1}, {0, 0}));
  OpSpec max{.op_type = "ReduceMax", .opset = 18};
  out = RunOp(max, {MakeTensor<float>({2, 0}, {}), MakeTensor<int64_t>({1}, {1})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].data<float>()[0], -std::numeric_limits<float>::infinity());
  out = RunOp(sum, {MakeTensor<float>({0, 3}, {}), MakeTensor<int64_t>({1}, {1})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].shape(), (Shape{0, 1}));
  EXPECT_FALSE(RunOp(sum, {Data({2, 3}), MakeTensor<int64_t>({1}, {2})}).ok());
  EXPECT_FALSE(RunOp(sum, {Data({2, 3}), MakeTensor<int64_t>({1}, {-3})}).ok());
}

TEST(ReduceTest, LongSumsStayAccurate) {
  // 1.5M elements: one long row (parallel partials), rows, and columns.
  const int64_t n = 1500000;
  Tensor x = Tensor::Allocate(DataType::kFp32, Shape{n});
  for (int64_t i = 0; i < n; ++i) x.data<float>()[i] = 0.1f + static_cast<float>(i % 7) * 1e-3f;
  double want = 0;
  for (int64_t i = 0; i < n; ++i) want += x.data<float>()[i];
  OpSpec sum{
      .op_type = "ReduceSum", .attributes = {{"keepdims", IntAttr(0)}}, .opset = 13, .threads = 4};
  auto out = RunOp(sum, {x});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_NEAR((*out)[0].data<float>()[0], want, 1e-5 * want);
  Tensor cols = x.Reshaped(Shape{n / 3, 3});
  out = RunOp(sum, {cols, MakeTensor<int64_t>({1}, {0})});
  ASSERT_TRUE(out.ok()) << out.status();
  double col0 = 0;
  for (int64_t i = 0; i < n; i += 3) col0 += x.data<float>()[i];
  EXPECT_NEAR((*out)[0].data<float>()[0], col0, 1e-5 * col0);
}

}  // namespace
}  // namespace flywheel::engine
