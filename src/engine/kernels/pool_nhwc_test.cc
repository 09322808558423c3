// NhwcMaxPool and NhwcGlobalAveragePool against the NCHW MaxPool / GlobalAveragePool kernels on
// the same data, including an input large enough to be split over the thread pool.
#include <vector>

#include "engine/testing/op_test_util.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

using testing::IntAttr;
using testing::IntsAttr;
using testing::OpSpec;
using testing::RunOp;

// [N, C, H, W] -> [N, H, W, C].
Tensor ToNhwc(const Tensor& t) {
  const int64_t n = t.dim(0), c = t.dim(1), h = t.dim(2), w = t.dim(3);
  Tensor out = Tensor::Allocate(DataType::kFp32, Shape{n, h, w, c});
  for (int64_t i = 0; i < n * c * h * w; ++i) {
    const int64_t b = i / (c * h * w), ch = i / (h * w) % c, p = i % (h * w);
    out.data<float>()[(b * h * w + p) * c + ch] = t.data<float>()[i];
  }
  return out;
}

void ExpectMaxPoolMatches(const Shape& nchw, absl::flat_hash_map<std::string, Attribute> attrs,
                          int threads) {
  Tensor x = testing::RandomTensor(nchw, 11);
  OpSpec ref{.op_type = "MaxPool", .attributes = attrs};
  auto want = RunOp(ref, {x});
  ASSERT_TRUE(want.ok()) << want.status();
  OpSpec spec{.op_type = "NhwcMaxPool", .domain = "com.flywheel", .attributes = attrs};
  spec.threads = threads;
  auto got = RunOp(spec, {ToNhwc(x)});
  ASSERT_TRUE(got.ok()) << got.status();
  testing::ExpectTensorNear((*got)[0], ToNhwc((*want)[0]), 0, 0);
}

TEST(NhwcMaxPoolTest, MatchesNchwKernel) {
  ExpectMaxPoolMatches(Shape{2, 16, 32, 32},
                       {{"kernel_shape", IntsAttr({2, 2})}, {"strides", IntsAttr({2, 2})}}, 1);
  ExpectMaxPoolMatches(Shape{3, 21, 9, 10},
                       {{"kernel_shape", IntsAttr({3, 2})},
                        {"strides", IntsAttr({2, 1})},
                        {"pads", IntsAttr({1, 0, 1, 1})}},
                       1);
  ExpectMaxPoolMatches(Shape{1, 35, 8, 8},
                       {{"kernel_shape", IntsAttr({3, 3})},
                        {"strides", IntsAttr({2, 2})},
                        {"dilations", IntsAttr({2, 2})},
                        {"ceil_mode", IntAttr(1)}},
                       1);
  ExpectMaxPoolMatches(
      Shape{1, 4, 5, 5},
      {{"kernel_shape", IntsAttr({2, 2})}, {"auto_pad", testing::StringAttr("SAME_UPPER")}}, 1);
}

// 4M elements on 2 threads: by oneDNN, and (dilated ceil mode, which oneDNN's pooling does not
// take) by the Highway loop split over the thread pool.
TEST(NhwcMaxPoolTest, LargeInputOnTwoThreads) {
  ExpectMaxPoolMatches(Shape{2, 128, 128, 128},
                       {{"kernel_shape", IntsAttr({3, 3})},
                        {"strides", IntsAttr({2, 2})},
                        {"pads", IntsAttr({1, 1, 1, 1})}},
                       2);
  ExpectMaxPoolMatches(Shape{2, 128, 128, 128},
                       {{"kernel_shape", IntsAttr({3, 3})},
                        {"strides", IntsAttr({2, 2})},
                        {"dilations", IntsAttr({2, 2})},
                        {"ceil_mode", IntAttr(1)}},
                       2);
}

TEST(NhwcMaxPoolTest, Errors) {
  OpSpec spec{.op_type = "NhwcMaxPool",
              .domain = "com.flywheel",
              .attributes = {{"kernel_shape", IntsAttr({2, 2})}}};
  EXPECT_FALSE(RunOp(spec, {testing::RandomTensor(Shape{2, 3, 4}, 1)}).ok());  // not 4-D
  spec.attributes["kernel_shape"] = IntsAttr({2});
  EXPECT_FALSE(RunOp(spec, {testing::RandomTensor(Shape{1, 4, 4, 2}, 1)}).ok());
}

TEST(NhwcGlobalAveragePoolTest, MatchesNchwKernel) {
  for (const Shape& s : {Shape{2, 16, 4, 4}, Shape{3, 37, 7, 5}, Shape{1, 1, 1, 1}}) {
    Tensor x = testing::RandomTensor(s, 12);
    auto want = RunOp(OpSpec{.op_type = "GlobalAveragePool"}, {x});
    ASSERT_TRUE(want.ok()) << want.status();
    auto got =
        RunOp(OpSpec{.op_type = "NhwcGlobalAveragePool", .domain = "com.flywheel"}, {ToNhwc(x)});
    ASSERT_TRUE(got.ok()) << got.status();
    testing::ExpectTensorNear((*got)[0], (*want)[0]);  // both [N, C, 1, 1]
  }
}

}  // namespace
}  // namespace flywheel::engine
