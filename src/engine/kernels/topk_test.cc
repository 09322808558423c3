#include "engine/testing/op_test_util.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

using testing::ExpectTensorNear;
using testing::IntAttr;
using testing::MakeTensor;
using testing::OpSpec;
using testing::RunOp;

TEST(TopKTest, LargestWithTiesLowerIndexFirst) {
  OpSpec spec{.op_type = "TopK", .num_outputs = 2};
  auto out = RunOp(spec, {MakeTensor<float>({2, 5}, {1, 3, 3, 0, 3, 5, 4, 5, 1, 2}),
                          MakeTensor<int64_t>({1}, {3})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<float>({2, 3}, {3, 3, 3, 5, 5, 4}));
  ExpectTensorNear((*out)[1], MakeTensor<int64_t>({2, 3}, {1, 2, 4, 0, 2, 1}));
}

TEST(TopKTest, SmallestAlongAxis0) {
  OpSpec spec{.op_type = "TopK",
              .attributes = {{"largest", IntAttr(0)}, {"axis", IntAttr(0)}},
              .num_outputs = 2};
  auto out =
      RunOp(spec, {MakeTensor<int32_t>({3, 2}, {5, 1, 2, 1, 9, 0}), MakeTensor<int64_t>({1}, {2})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<int32_t>({2, 2}, {2, 0, 5, 1}));
  ExpectTensorNear((*out)[1], MakeTensor<int64_t>({2, 2}, {1, 2, 0, 0}));
}

TEST(TopKTest, KZeroAndFullAndErrors) {
  OpSpec spec{.op_type = "TopK", .num_outputs = 2};
  Tensor x = MakeTensor<float>({4}, {1, 4, 2, 3});
  auto out = RunOp(spec, {x, MakeTensor<int64_t>({1}, {0})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].shape(), (Shape{0}));
  out = RunOp(spec, {x, MakeTensor<int64_t>({1}, {4})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<float>({4}, {4, 3, 2, 1}));
  ExpectTensorNear((*out)[1], MakeTensor<int64_t>({4}, {1, 3, 2, 0}));
  EXPECT_FALSE(RunOp(spec, {x, MakeTensor<int64_t>({1}, {5})}).ok());
  OpSpec bad_axis{.op_type = "TopK", .attributes = {{"axis", IntAttr(1)}}, .num_outputs = 2};
  EXPECT_FALSE(RunOp(bad_axis, {x, MakeTensor<int64_t>({1}, {1})}).ok());
}

TEST(TopKTest, LargeParallelMatchesSort) {
  const int rows = 64, n = 1000, k = 10;
  std::vector<float> v(rows * n);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((i * 2654435761u) % 997);
  std::vector<float> want_v;
  std::vector<int64_t> want_i;
  for (int r = 0; r < rows; ++r) {
    std::vector<int64_t> idx(n);
    for (int j = 0; j < n; ++j) idx[j] = j;
    std::stable_sort(idx.begin(), idx.end(),
                     [&](int64_t a, int64_t b) { return v[r * n + a] > v[r * n + b]; });
    for (int j = 0; j < k; ++j) {
      want_v.push_back(v[r * n + idx[j]]);
      want_i.push_back(idx[j]);
    }
  }
  OpSpec spec{.op_type = "TopK", .num_outputs = 2, .threads = 4};
  auto out = RunOp(spec, {MakeTensor<float>({rows, n}, v), MakeTensor<int64_t>({1}, {k})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<float>({rows, k}, want_v));
  ExpectTensorNear((*out)[1], MakeTensor<int64_t>({rows, k}, want_i));
}

}  // namespace
}  // namespace flywheel::engine
