#include <numeric>

#include "absl/strings/str_cat.h"

#include "engine/testing/op_test_util.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

using testing::ExpectTensorNear;
using testing::IntAttr;
using testing::MakeTensor;
using testing::OpSpec;
using testing::RunOp;

std::vector<float> Iota(int n) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), 0.0f);
  return v;
}

TEST(GatherTest, Axis0EmbeddingLookup) {
  OpSpec spec{.op_type = "Gather"};
  Tensor table = MakeTensor<float>({4, 3}, Iota(12));
  Tensor idx = MakeTensor<int64_t>({2, 2}, {3, 0, -1, 1});
  auto out = RunOp(spec, {table, idx});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0],
                   MakeTensor<float>({2, 2, 3}, {9, 10, 11, 0, 1, 2, 9, 10, 11, 3, 4, 5}));
}

TEST(GatherTest, Axis1Int32IndicesAndNegativeAxis) {
  Tensor data = MakeTensor<int32_t>({2, 3, 2}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  Tensor idx = MakeTensor<int32_t>({2}, {2, -3});
  for (int64_t axis : {1, -2}) {
    OpSpec spec{.op_type = "Gather", .attributes = {{"axis", IntAttr(axis)}}};
    auto out = RunOp(spec, {data, idx});
    ASSERT_TRUE(out.ok()) << out.status();
    ExpectTensorNear((*out)[0], MakeTensor<int32_t>({2, 2, 2}, {4, 5, 0, 1, 10, 11, 6, 7}));
  }
}

TEST(GatherTest, LastAxisScalarIndexAndBool) {
  OpSpec spec{.op_type = "Gather", .attributes = {{"axis", IntAttr(-1)}}};
  Tensor data = MakeTensor<bool>({2, 3}, {true, false, true, false, true, false});
  Tensor idx = MakeTensor<int64_t>({}, {1});
  auto out = RunOp(spec, {data, idx});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<bool>({2}, {false, true}));
}

TEST(GatherTest, ZeroSizeIndices) {
  OpSpec spec{.op_type = "Gather"};
  auto out = RunOp(spec, {MakeTensor<float>({3, 2}, Iota(6)), MakeTensor<int64_t>({0}, {})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].shape(), (Shape{0, 2}));
}

TEST(GatherTest, OutOfRangeIndexIsAnError) {
  OpSpec spec{.op_type = "Gather"};
  for (int64_t bad : {int64_t{4}, int64_t{-5}, int64_t{1} << 40}) {
    auto out =
        RunOp(spec, {MakeTensor<float>({4, 2}, Iota(8)), MakeTensor<int64_t>({2}, {0, bad})});
    ASSERT_FALSE(out.ok());
    EXPECT_NE(out.status().message().find("test_node"), std::string::npos) << out.status();
    EXPECT_NE(out.status().message().find(absl::StrCat("index ", bad)), std::string::npos)
        << out.status();
    EXPECT_NE(out.status().message().find("size 4"), std::string::npos) << out.status();
  }
}

TEST(GatherTest, BadAxisIsAnError) {
  OpSpec spec{.op_type = "Gather", .attributes = {{"axis", IntAttr(2)}}};
  auto out = RunOp(spec, {MakeTensor<float>({4, 2}, Iota(8)), MakeTensor<int64_t>({1}, {0})});
  EXPECT_FALSE(out.ok());
}

TEST(GatherTest, LargeParallelMatchesReference) {
  const int rows = 1000, cols = 64;
  OpSpec spec{.op_type = "Gather", .threads = 4};
  Tensor table = MakeTensor<float>({rows, cols}, Iota(rows * cols));
  std::vector<int64_t> idx(3000);
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = (i * 7919) % rows;
  std::vector<float> want;
  for (int64_t r : idx) {
    for (int c = 0; c < cols; ++c) want.push_back(static_cast<float>(r * cols + c));
  }
  auto out = RunOp(spec, {table, MakeTensor<int64_t>({3000}, idx)});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<float>({3000, cols}, want));
}

}  // namespace
}  // namespace flywheel::engine
