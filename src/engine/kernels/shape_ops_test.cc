// Tests of Shape, ConstantOfShape and Range.
#include <cmath>

#include "engine/testing/op_test_util.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

using testing::ExpectTensorNear;
using testing::IntAttr;
using testing::MakeTensor;
using testing::OpSpec;
using testing::RunOp;
using testing::TensorAttr;

TEST(ShapeTest, FullAndOpset15StartEnd) {
  Tensor x = Tensor::Allocate(DataType::kFp32, Shape{2, 3, 4, 5});
  OpSpec spec{.op_type = "Shape"};
  auto out = RunOp(spec, {x});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<int64_t>({4}, {2, 3, 4, 5}));
  OpSpec sliced{
      .op_type = "Shape", .attributes = {{"start", IntAttr(1)}, {"end", IntAttr(-1)}}, .opset = 15};
  out = RunOp(sliced, {x});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<int64_t>({2}, {3, 4}));
  OpSpec clamped{.op_type = "Shape",
                 .attributes = {{"start", IntAttr(-10)}, {"end", IntAttr(10)}},
                 .opset = 15};
  out = RunOp(clamped, {x});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].NumElements(), 4);
  OpSpec empty{
      .op_type = "Shape", .attributes = {{"start", IntAttr(3)}, {"end", IntAttr(1)}}, .opset = 15};
  out = RunOp(empty, {x});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].shape(), (Shape{0}));
}

TEST(ConstantOfShapeTest, DefaultAndTypedValue) {
  OpSpec spec{.op_type = "ConstantOfShape"};
  auto out = RunOp(spec, {MakeTensor<int64_t>({2}, {2, 2})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<float>({2, 2}, {0, 0, 0, 0}));
  OpSpec typed{.op_type = "ConstantOfShape",
               .attributes = {{"value", TensorAttr(MakeTensor<int64_t>({1}, {7}))}}};
  out = RunOp(typed, {MakeTensor<int64_t>({1}, {3})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<int64_t>({3}, {7, 7, 7}));
  out = RunOp(typed, {MakeTensor<int64_t>({0}, {})});  // scalar
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<int64_t>({}, {7}));
  OpSpec boolean{.op_type = "ConstantOfShape",
                 .attributes = {{"value", TensorAttr(MakeTensor<bool>({1}, {true}))}}};
  out = RunOp(boolean, {MakeTensor<int64_t>({2}, {1, 0})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].shape(), (Shape{1, 0}));
  EXPECT_FALSE(RunOp(spec, {MakeTensor<int64_t>({1}, {-1})}).ok());
}

TEST(RangeTest, Types) {
  OpSpec spec{.op_type = "Range"};
  auto out = RunOp(spec, {MakeTensor<float>({}, {1}), MakeTensor<float>({}, {2}),
                          MakeTensor<float>({}, {0.25f})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<float>({4}, {1, 1.25f, 1.5f, 1.75f}));
  out = RunOp(spec, {MakeTensor<int64_t>({}, {10}), MakeTensor<int64_t>({}, {4}),
                     MakeTensor<int64_t>({}, {-3})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<int64_t>({2}, {10, 7}));
  out = RunOp(spec, {MakeTensor<int32_t>({}, {0}), MakeTensor<int32_t>({}, {5}),
                     MakeTensor<int32_t>({}, {2})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<int32_t>({3}, {0, 2, 4}));
  out = RunOp(spec, {MakeTensor<int32_t>({}, {5}), MakeTensor<int32_t>({}, {0}),
                     MakeTensor<int32_t>({}, {1})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].shape(), (Shape{0}));
  EXPECT_FALSE(RunOp(spec, {MakeTensor<int32_t>({}, {0}), MakeTensor<int32_t>({}, {5}),
                            MakeTensor<int32_t>({}, {0})})
                   .ok());
  EXPECT_FALSE(RunOp(spec, {MakeTensor<int32_t>({}, {0}), MakeTensor<int64_t>({}, {5}),
                            MakeTensor<int32_t>({}, {1})})
                   .ok());
}

}  // namespace
}  // namespace flywheel::engine
