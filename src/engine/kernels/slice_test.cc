#include <cstdint>
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

Tensor Grid() {  // 3x4: 0..11
  std::vector<float> v(12);
  std::iota(v.begin(), v.end(), 0.0f);
  return MakeTensor<float>({3, 4}, v);
}

Tensor I64(std::vector<int64_t> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return MakeTensor<int64_t>({n}, std::move(v));
}

absl::StatusOr<Tensor> Slice(Tensor x, std::vector<int64_t> starts, std::vector<int64_t> ends,
                             std::vector<int64_t> axes = {}, std::vector<int64_t> steps = {}) {
  OpSpec spec{.op_type = "Slice", .opset = 13};
  std::vector<Tensor> inputs = {x, I64(starts), I64(ends)};
  if (!axes.empty() || !steps.empty()) inputs.push_back(axes.empty() ? Tensor() : I64(axes));
  if (!steps.empty()) inputs.push_back(I64(steps));
  auto out = RunOp(spec, inputs);
  if (!out.ok()) return out.status();
  return (*out)[0];
}

TEST(SliceTest, BasicAndNegative) {
  auto out = Slice(Grid(), {1, 1}, {3, 3});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear(*out, MakeTensor<float>({2, 2}, {5, 6, 9, 10}));
  out = Slice(Grid(), {-2}, {-1}, {-1});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear(*out, MakeTensor<float>({3, 1}, {2, 6, 10}));
}

TEST(SliceTest, TorchStyleInt64MaxEndAndClamping) {
  auto out = Slice(Grid(), {1}, {INT64_MAX}, {0});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear(*out, MakeTensor<float>({2, 4}, {4, 5, 6, 7, 8, 9, 10, 11}));
  out = Slice(Grid(), {-100}, {100}, {1}, {3});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear(*out, MakeTensor<float>({3, 2}, {0, 3, 4, 7, 8, 11}));
  out = Slice(Grid(), {5}, {10}, {0});  // start past the end: empty
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->shape(), (Shape{0, 4}));
}

TEST(SliceTest, NegativeSteps) {
  auto out = Slice(Grid(), {-1}, {INT64_MIN}, {1}, {-1});  // reverse columns
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear(*out, MakeTensor<float>({3, 4}, {3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8}));
  out = Slice(Grid(), {2, 3}, {0, -100}, {0, 1}, {-2, -2});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear(*out, MakeTensor<float>({1, 2}, {11, 9}));
}

TEST(SliceTest, Opset9Attributes) {
  OpSpec spec{.op_type = "Slice",
              .attributes = {{"starts", IntsAttr({0, 1})}, {"ends", IntsAttr({1, 1000})}},
              .opset = 9};
  auto out = RunOp(spec, {Grid()});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<float>({1, 3}, {1, 2, 3}));
}

TEST(SliceTest, Errors) {
  EXPECT_FALSE(Slice(Grid(), {0}, {1}, {2}).ok());           // bad axis
  EXPECT_FALSE(Slice(Grid(), {0}, {1}, {0}, {0}).ok());      // zero step
  EXPECT_FALSE(Slice(Grid(), {0, 0}, {1}).ok());             // length mismatch
  EXPECT_FALSE(Slice(Grid(), {0, 0}, {1, 1}, {0, 0}).ok());  // repeated axis
}

TEST(SliceTest, Int32IndicesAndBool) {
  OpSpec spec{.op_type = "Slice"};
  Tensor x = MakeTensor<bool>({4}, {true, false, false, true});
  auto out = RunOp(spec, {x, MakeTensor<int32_t>({1}, {1}), MakeTensor<int32_t>({1}, {4})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<bool>({3}, {false, false, true}));
}

}  // namespace
}  // namespace flywheel::engine
