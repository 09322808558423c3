// Tests of Concat and Split.
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

TEST(ConcatTest, Axis1AndNegativeAxis) {
  Tensor a = MakeTensor<float>({2, 1}, {1, 2});
  Tensor b = MakeTensor<float>({2, 2}, {3, 4, 5, 6});
  for (int64_t axis : {1, -1}) {
    OpSpec spec{.op_type = "Concat", .attributes = {{"axis", IntAttr(axis)}}};
    auto out = RunOp(spec, {a, b});
    ASSERT_TRUE(out.ok()) << out.status();
    ExpectTensorNear((*out)[0], MakeTensor<float>({2, 3}, {1, 3, 4, 2, 5, 6}));
  }
}

TEST(ConcatTest, Axis0Int64WithEmptyInput) {
  OpSpec spec{.op_type = "Concat", .attributes = {{"axis", IntAttr(0)}}};
  auto out = RunOp(spec, {MakeTensor<int64_t>({2}, {1, 2}), MakeTensor<int64_t>({0}, {}),
                          MakeTensor<int64_t>({1}, {-1})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<int64_t>({3}, {1, 2, -1}));
}

TEST(ConcatTest, MismatchedShapesAreAnError) {
  OpSpec spec{.op_type = "Concat", .attributes = {{"axis", IntAttr(0)}}};
  auto out = RunOp(spec, {MakeTensor<float>({1, 2}, {1, 2}), MakeTensor<float>({1, 3}, {1, 2, 3})});
  EXPECT_FALSE(out.ok());
  OpSpec no_axis{.op_type = "Concat"};
  EXPECT_FALSE(RunOp(no_axis, {MakeTensor<float>({1}, {1})}).ok());
}

TEST(SplitTest, EqualSplitOpset11) {
  OpSpec spec{
      .op_type = "Split", .attributes = {{"axis", IntAttr(1)}}, .num_outputs = 2, .opset = 11};
  auto out = RunOp(spec, {MakeTensor<int32_t>({2, 4}, {0, 1, 2, 3, 4, 5, 6, 7})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<int32_t>({2, 2}, {0, 1, 4, 5}));
  ExpectTensorNear((*out)[1], MakeTensor<int32_t>({2, 2}, {2, 3, 6, 7}));
}

TEST(SplitTest, SizesAsAttributeAndAsInput) {
  Tensor x = MakeTensor<float>({5}, {0, 1, 2, 3, 4});
  OpSpec attr{.op_type = "Split",
              .attributes = {{"split", IntsAttr({2, 3})}},
              .num_outputs = 2,
              .opset = 11};
  OpSpec input{.op_type = "Split", .num_outputs = 2, .opset = 13};
  for (int i = 0; i < 2; ++i) {
    auto out = i == 0 ? RunOp(attr, {x}) : RunOp(input, {x, MakeTensor<int64_t>({2}, {2, 3})});
    ASSERT_TRUE(out.ok()) << out.status();
    ExpectTensorNear((*out)[0], MakeTensor<float>({2}, {0, 1}));
    ExpectTensorNear((*out)[1], MakeTensor<float>({3}, {2, 3, 4}));
  }
}

TEST(SplitTest, Opset18NumOutputsUnevenAndNegativeAxis) {
  OpSpec spec{.op_type = "Split",
              .attributes = {{"num_outputs", IntAttr(3)}, {"axis", IntAttr(-1)}},
              .num_outputs = 3,
              .opset = 18};
  auto out = RunOp(spec, {MakeTensor<float>({1, 5}, {0, 1, 2, 3, 4})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<float>({1, 2}, {0, 1}));
  ExpectTensorNear((*out)[1], MakeTensor<float>({1, 2}, {2, 3}));
  ExpectTensorNear((*out)[2], MakeTensor<float>({1, 1}, {4}));
}

TEST(SplitTest, BadSizesAreAnError) {
  OpSpec spec{.op_type = "Split", .num_outputs = 2, .opset = 13};
  Tensor x = MakeTensor<float>({5}, {0, 1, 2, 3, 4});
  EXPECT_FALSE(RunOp(spec, {x, MakeTensor<int64_t>({2}, {2, 2})}).ok());
  EXPECT_FALSE(RunOp(spec, {x}).ok());  // 5 is not divisible by 2
}

}  // namespace
}  // namespace flywheel::engine
