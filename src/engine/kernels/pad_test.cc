#include "engine/testing/op_test_util.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

using testing::ExpectTensorNear;
using testing::FloatAttr;
using testing::IntsAttr;
using testing::MakeTensor;
using testing::OpSpec;
using testing::RunOp;
using testing::StringAttr;

Tensor X() { return MakeTensor<float>({2, 3}, {1, 2, 3, 4, 5, 6}); }

TEST(PadTest, ConstantOpset11WithValueInput) {
  OpSpec spec{.op_type = "Pad", .opset = 11};
  auto out = RunOp(spec, {X(), MakeTensor<int64_t>({4}, {1, 0, 0, 2}), MakeTensor<float>({}, {9})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0],
                   MakeTensor<float>({3, 5}, {9, 9, 9, 9, 9, 1, 2, 3, 9, 9, 4, 5, 6, 9, 9}));
}

TEST(PadTest, ConstantOpset2Attributes) {
  OpSpec spec{.op_type = "Pad",
              .attributes = {{"pads", IntsAttr({0, 1, 0, 1})}, {"value", FloatAttr(-1)}},
              .opset = 2};
  auto out = RunOp(spec, {X()});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<float>({2, 5}, {-1, 1, 2, 3, -1, -1, 4, 5, 6, -1}));
}

TEST(PadTest, NegativePadsCrop) {
  OpSpec spec{.op_type = "Pad"};
  auto out = RunOp(spec, {X(), MakeTensor<int64_t>({4}, {0, -1, 1, 0})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<float>({3, 2}, {2, 3, 5, 6, 0, 0}));
}

TEST(PadTest, ReflectAndEdge) {
  OpSpec reflect{.op_type = "Pad", .attributes = {{"mode", StringAttr("reflect")}}};
  auto out = RunOp(reflect, {X(), MakeTensor<int64_t>({4}, {1, 2, 0, 1})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<float>({3, 6}, {6, 5, 4, 5, 6, 5,  //
                                                         3, 2, 1, 2, 3, 2,  //
                                                         6, 5, 4, 5, 6, 5}));
  OpSpec edge{.op_type = "Pad", .attributes = {{"mode", StringAttr("edge")}}};
  out = RunOp(edge, {MakeTensor<int32_t>({2, 3}, {1, 2, 3, 4, 5, 6}),
                     MakeTensor<int64_t>({4}, {0, 2, 1, 1})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<int32_t>({3, 6}, {1, 1, 1, 2, 3, 3,  //
                                                           4, 4, 4, 5, 6, 6,  //
                                                           4, 4, 4, 5, 6, 6}));
}

TEST(PadTest, Opset18Axes) {
  OpSpec spec{.op_type = "Pad", .opset = 18};
  auto out = RunOp(
      spec, {X(), MakeTensor<int64_t>({2}, {1, 1}), Tensor(), MakeTensor<int64_t>({1}, {-1})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<float>({2, 5}, {0, 1, 2, 3, 0, 0, 4, 5, 6, 0}));
}

TEST(PadTest, Errors) {
  OpSpec spec{.op_type = "Pad"};
  EXPECT_FALSE(RunOp(spec, {X(), MakeTensor<int64_t>({2}, {1, 1})}).ok());
  EXPECT_FALSE(RunOp(spec, {X(), MakeTensor<int64_t>({4}, {0, -4, 0, 0})}).ok());
  OpSpec wrap{.op_type = "Pad", .attributes = {{"mode", StringAttr("mirror")}}};
  EXPECT_FALSE(RunOp(wrap, {X(), MakeTensor<int64_t>({4}, {0, 0, 0, 0})}).ok());
}

}  // namespace
}  // namespace flywheel::engine
