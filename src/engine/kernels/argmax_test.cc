#include "engine/testing/op_test_util.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

using testing::ExpectTensorNear;
using testing::IntAttr;
using testing::MakeTensor;
using testing::OpSpec;
using testing::RunOp;

Tensor X() { return MakeTensor<float>({2, 3}, {1, 5, 5, 7, 2, 7}); }

TEST(ArgMaxTest, AxesKeepdimsAndTies) {
  OpSpec last{.op_type = "ArgMax", .attributes = {{"axis", IntAttr(-1)}}};
  auto out = RunOp(last, {X()});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<int64_t>({2, 1}, {1, 0}));
  OpSpec select_last{
      .op_type = "ArgMax",
      .attributes = {
          {"axis", IntAttr(1)}, {"keepdims", IntAttr(0)}, {"select_last_index", IntAttr(1)}}};
  out = RunOp(select_last, {X()});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<int64_t>({2}, {2, 2}));
  OpSpec axis0{.op_type = "ArgMax", .attributes = {{"keepdims", IntAttr(0)}}};
  out = RunOp(axis0, {MakeTensor<int32_t>({2, 3}, {1, 5, 5, 7, 2, 5})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<int64_t>({3}, {1, 0, 0}));
}

TEST(ArgMaxTest, ArgMinAndErrors) {
  OpSpec spec{.op_type = "ArgMin", .attributes = {{"axis", IntAttr(1)}}};
  auto out = RunOp(spec, {X()});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<int64_t>({2, 1}, {0, 1}));
  OpSpec bad{.op_type = "ArgMax", .attributes = {{"axis", IntAttr(2)}}};
  EXPECT_FALSE(RunOp(bad, {X()}).ok());
  OpSpec empty{.op_type = "ArgMax", .attributes = {{"axis", IntAttr(1)}}};
  EXPECT_FALSE(RunOp(empty, {MakeTensor<float>({2, 0}, {})}).ok());
}

}  // namespace
}  // namespace flywheel::engine
