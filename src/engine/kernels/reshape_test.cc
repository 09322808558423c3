// Tests of the view operators: Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout.
#include <cstring>

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

Tensor Six() { return MakeTensor<float>({2, 3}, {0, 1, 2, 3, 4, 5}); }

absl::StatusOr<Shape> ReshapeTo(Tensor x, std::vector<int64_t> shape, int64_t allowzero = 0) {
  OpSpec spec{.op_type = "Reshape", .attributes = {{"allowzero", IntAttr(allowzero)}}, .opset = 14};
  const int64_t n = static_cast<int64_t>(shape.size());
  auto out = RunOp(spec, {x, MakeTensor<int64_t>({n}, shape)});
  if (!out.ok()) return out.status();
  EXPECT_EQ(std::memcmp((*out)[0].raw_data(), x.raw_data(), x.ByteSize()), 0);
  return (*out)[0].shape();
}

TEST(ReshapeTest, InferAndCopyDims) {
  EXPECT_EQ(*ReshapeTo(Six(), {3, -1}), (Shape{3, 2}));
  EXPECT_EQ(*ReshapeTo(Six(), {0, -1}), (Shape{2, 3}));
  EXPECT_EQ(*ReshapeTo(Six(), {-1}), (Shape{6}));
  EXPECT_EQ(*ReshapeTo(Six(), {1, 0, 2}), (Shape{1, 3, 2}));
  EXPECT_EQ(*ReshapeTo(MakeTensor<float>({0, 3}, {}), {-1, 0}), (Shape{0, 3}));
  // As in numpy and ONNX Runtime, -1 next to a 0 dim cannot be inferred.
  EXPECT_FALSE(ReshapeTo(MakeTensor<float>({0, 3}, {}), {0, -1, 3}).ok());
}

TEST(ReshapeTest, AllowZeroKeepsZero) {
  EXPECT_EQ(*ReshapeTo(MakeTensor<float>({0, 3}, {}), {3, 0}, 1), (Shape{3, 0}));
  EXPECT_FALSE(ReshapeTo(Six(), {0, -1}, 1).ok());
}

TEST(ReshapeTest, MismatchIsAnError) {
  auto s = ReshapeTo(Six(), {4, 2});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("test_node"), std::string::npos);
  EXPECT_FALSE(ReshapeTo(Six(), {-1, -1}).ok());
  EXPECT_FALSE(ReshapeTo(Six(), {4, -1}).ok());
  EXPECT_FALSE(ReshapeTo(Six(), {2, 3, 0, 1}).ok());  // 0 past the input rank
  EXPECT_FALSE(ReshapeTo(Six(), {-2, -3}).ok());
}

TEST(ReshapeTest, ConstantShapeInput) {
  OpSpec spec{.op_type = "Reshape", .constant_inputs = {1}};
  auto out = RunOp(spec, {Six(), MakeTensor<int64_t>({2}, {3, 2})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<float>({3, 2}, {0, 1, 2, 3, 4, 5}));
}

TEST(FlattenTest, Axes) {
  Tensor x = MakeTensor<int64_t>({2, 3, 4}, std::vector<int64_t>(24, 7));
  struct Case {
    int64_t axis;
    Shape want;
  };
  for (const Case& c : {Case{0, {1, 24}}, Case{1, {2, 12}}, Case{-1, {6, 4}}, Case{3, {24, 1}}}) {
    OpSpec spec{.op_type = "Flatten", .attributes = {{"axis", IntAttr(c.axis)}}};
    auto out = RunOp(spec, {x});
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ((*out)[0].shape(), c.want) << c.axis;
  }
  OpSpec bad{.op_type = "Flatten", .attributes = {{"axis", IntAttr(4)}}};
  EXPECT_FALSE(RunOp(bad, {x}).ok());
}

TEST(SqueezeTest, AttributeFormOpset11AndInputFormOpset13) {
  Tensor x = MakeTensor<float>({1, 3, 1}, {1, 2, 3});
  OpSpec attr{.op_type = "Squeeze", .attributes = {{"axes", IntsAttr({-1})}}, .opset = 11};
  auto out = RunOp(attr, {x});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].shape(), (Shape{1, 3}));
  OpSpec input{.op_type = "Squeeze", .opset = 13};
  out = RunOp(input, {x, MakeTensor<int64_t>({2}, {0, 2})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<float>({3}, {1, 2, 3}));
  out = RunOp(input, {x});  // no axes: every 1 goes
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].shape(), (Shape{3}));
}

TEST(SqueezeTest, NonUnitOrBadAxisIsAnError) {
  Tensor x = MakeTensor<float>({1, 3}, {1, 2, 3});
  OpSpec input{.op_type = "Squeeze", .opset = 13};
  EXPECT_FALSE(RunOp(input, {x, MakeTensor<int64_t>({1}, {1})}).ok());
  EXPECT_FALSE(RunOp(input, {x, MakeTensor<int64_t>({1}, {2})}).ok());
}

TEST(UnsqueezeTest, BothForms) {
  Tensor x = MakeTensor<float>({3}, {1, 2, 3});
  OpSpec attr{.op_type = "Unsqueeze", .attributes = {{"axes", IntsAttr({0, -1})}}, .opset = 11};
  auto out = RunOp(attr, {x});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].shape(), (Shape{1, 3, 1}));
  OpSpec input{.op_type = "Unsqueeze", .opset = 13};
  out = RunOp(input, {x, MakeTensor<int64_t>({1}, {1})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<float>({3, 1}, {1, 2, 3}));
  out = RunOp(input, {MakeTensor<int64_t>({}, {5}), MakeTensor<int64_t>({1}, {0})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].shape(), (Shape{1}));
  EXPECT_FALSE(RunOp(input, {x, MakeTensor<int64_t>({1}, {3})}).ok());
  EXPECT_FALSE(RunOp(input, {x, MakeTensor<int64_t>({2}, {0, 0})}).ok());
  EXPECT_FALSE(RunOp(input, {x}).ok());
}

TEST(IdentityTest, CopiesAnyType) {
  OpSpec spec{.op_type = "Identity"};
  Tensor s = Tensor::Allocate(DataType::kBytes, Shape{2});
  s.strings() = {"a", "bc"};
  auto out = RunOp(spec, {s});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], s);
}

TEST(DropoutTest, InferencePassThroughWithMask) {
  OpSpec spec{.op_type = "Dropout", .num_outputs = 2, .opset = 13};
  auto out = RunOp(spec, {Six(), MakeTensor<float>({}, {0.5f})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], Six());
  ExpectTensorNear((*out)[1], MakeTensor<bool>({2, 3}, std::vector<bool>(6, true)));
  EXPECT_FALSE(
      RunOp(spec, {Six(), MakeTensor<float>({}, {0.5f}), MakeTensor<bool>({}, {true})}).ok());
}

}  // namespace
}  // namespace flywheel::engine
