// Tests of Transpose and of the strided copies behind it, Expand and Tile.
#include <numeric>

#include "engine/testing/op_test_util.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

using testing::ExpectTensorNear;
using testing::IntsAttr;
using testing::MakeTensor;
using testing::OpSpec;
using testing::RunOp;

template <typename T>
Tensor IotaTensor(Shape shape) {
  Tensor t = Tensor::Allocate(DataTypeOf<T>(), shape);
  for (int64_t i = 0; i < t.NumElements(); ++i) t.data<T>()[i] = static_cast<T>(i);
  return t;
}

// Reference transpose by index arithmetic.
template <typename T>
Tensor RefTranspose(const Tensor& in, const std::vector<int64_t>& perm) {
  const int rank = in.rank();
  Shape out_shape = in.shape();
  for (int k = 0; k < rank; ++k) out_shape.set_dim(k, in.dim(perm[k]));
  Tensor out = Tensor::Allocate(in.dtype(), out_shape);
  std::vector<int64_t> idx(rank, 0), in_strides(rank, 1);
  for (int k = rank - 2; k >= 0; --k) in_strides[k] = in_strides[k + 1] * in.dim(k + 1);
  for (int64_t o = 0; o < out.NumElements(); ++o) {
    int64_t rem = o, src = 0;
    for (int k = rank - 1; k >= 0; --k) {
      src += (rem % out_shape[k]) * in_strides[perm[k]];
      rem /= out_shape[k];
    }
    out.data<T>()[o] = in.data<T>()[src];
  }
  return out;
}

TEST(TransposeTest, DefaultReversesAxes) {
  OpSpec spec{.op_type = "Transpose"};
  auto out = RunOp(spec, {IotaTensor<float>({2, 3})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<float>({3, 2}, {0, 3, 1, 4, 2, 5}));
}

TEST(TransposeTest, PatternsMatchReference) {
  struct Case {
    Shape shape;
    std::vector<int64_t> perm;
  };
  const std::vector<Case> cases = {
      {{37, 53}, {1, 0}},                  // 2-D, tiled with ragged edges
      {{2, 5, 4, 8}, {0, 2, 1, 3}},        // [b,s,h,d] -> [b,h,s,d]
      {{3, 17, 33}, {0, 2, 1}},            // swap the last two
      {{2, 3, 4, 5}, {0, 1, 3, 2}},        // attention K^T
      {{2, 3, 4, 5}, {3, 1, 0, 2}},        // general
      {{1, 6, 1, 7}, {3, 2, 1, 0}},        // unit dims
      {{2, 3, 4, 5, 6}, {4, 0, 3, 1, 2}},  // rank 5
      {{4, 0, 3}, {2, 0, 1}},              // zero-size
  };
  for (int threads : {1, 3}) {
    for (const Case& c : cases) {
      OpSpec spec{
          .op_type = "Transpose", .attributes = {{"perm", IntsAttr(c.perm)}}, .threads = threads};
      Tensor in = IotaTensor<float>(c.shape);
      auto out = RunOp(spec, {in});
      ASSERT_TRUE(out.ok()) << out.status();
      ExpectTensorNear((*out)[0], RefTranspose<float>(in, c.perm));
      Tensor in8 = IotaTensor<int8_t>(c.shape);
      out = RunOp(spec, {in8});
      ASSERT_TRUE(out.ok()) << out.status();
      ExpectTensorNear((*out)[0], RefTranspose<int8_t>(in8, c.perm));
      Tensor in64 = IotaTensor<int64_t>(c.shape);
      out = RunOp(spec, {in64});
      ASSERT_TRUE(out.ok()) << out.status();
      ExpectTensorNear((*out)[0], RefTranspose<int64_t>(in64, c.perm));
    }
  }
}

TEST(TransposeTest, LargeParallel) {
  OpSpec spec{
      .op_type = "Transpose", .attributes = {{"perm", IntsAttr({0, 2, 1, 3})}}, .threads = 4};
  Tensor in = IotaTensor<float>({4, 128, 12, 64});
  auto out = RunOp(spec, {in});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], RefTranspose<float>(in, {0, 2, 1, 3}));
  OpSpec swap{.op_type = "Transpose", .attributes = {{"perm", IntsAttr({0, 2, 1})}}, .threads = 4};
  Tensor in2 = IotaTensor<float>({3, 300, 200});
  out = RunOp(swap, {in2});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], RefTranspose<float>(in2, {0, 2, 1}));
}

TEST(TransposeTest, BadPermIsAnError) {
  for (std::vector<int64_t> perm : std::vector<std::vector<int64_t>>{{0, 0}, {0, 2}, {-1, 0}}) {
    OpSpec spec{.op_type = "Transpose", .attributes = {{"perm", IntsAttr(perm)}}};
    auto out = RunOp(spec, {IotaTensor<float>({2, 3})});
    ASSERT_FALSE(out.ok());
    EXPECT_NE(out.status().message().find("perm"), std::string::npos) << out.status();
  }
  OpSpec wrong_rank{.op_type = "Transpose", .attributes = {{"perm", IntsAttr({1, 0})}}};
  EXPECT_FALSE(RunOp(wrong_rank, {IotaTensor<float>({2, 3, 4})}).ok());
}

TEST(ExpandTest, BroadcastsBothWays) {
  OpSpec spec{.op_type = "Expand"};
  auto out =
      RunOp(spec, {MakeTensor<float>({3, 1}, {1, 2, 3}), MakeTensor<int64_t>({3}, {2, 1, 2})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<float>({2, 3, 2}, {1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3}));
  out = RunOp(spec, {MakeTensor<int32_t>({3}, {1, 2, 3}), MakeTensor<int64_t>({2}, {2, 1})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<int32_t>({2, 3}, {1, 2, 3, 1, 2, 3}));
  out = RunOp(spec, {MakeTensor<bool>({}, {true}), MakeTensor<int64_t>({1}, {0})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].shape(), (Shape{0}));
  EXPECT_FALSE(
      RunOp(spec, {MakeTensor<float>({3}, {1, 2, 3}), MakeTensor<int64_t>({1}, {2})}).ok());
}

TEST(TileTest, Repeats) {
  OpSpec spec{.op_type = "Tile"};
  auto out =
      RunOp(spec, {MakeTensor<float>({2, 2}, {1, 2, 3, 4}), MakeTensor<int64_t>({2}, {2, 3})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<float>({4, 6}, {1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4,
                                                         1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4}));
  out = RunOp(spec, {MakeTensor<int64_t>({2}, {5, 6}), MakeTensor<int64_t>({1}, {0})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].shape(), (Shape{0}));
  EXPECT_FALSE(
      RunOp(spec, {MakeTensor<float>({2}, {1, 2}), MakeTensor<int64_t>({2}, {1, 1})}).ok());
  EXPECT_FALSE(RunOp(spec, {MakeTensor<float>({2}, {1, 2}), MakeTensor<int64_t>({1}, {-1})}).ok());
}

}  // namespace
}  // namespace flywheel::engine
