// MaxPool, AveragePool and the global pools against a naive double-precision reference.
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/testing/op_test_util.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

using testing::IntAttr;
using testing::IntsAttr;
using testing::OpSpec;
using testing::RunOp;
using testing::StringAttr;

struct PoolCase {
  std::string op = "MaxPool";
  int64_t n = 2, c = 3;
  std::vector<int64_t> in = {7, 8}, k = {3, 3};
  std::vector<int64_t> strides, dilations, pads;
  std::string auto_pad;
  bool ceil = false, count_include_pad = false, indices = false, column_major = false;
};

// Reference for 1-D and 2-D pools (1-D treated as H = 1). Returns output and indices.
std::pair<Tensor, Tensor> RefPool(const PoolCase& pc, const Tensor& x) {
  const size_t sp = pc.in.size();
  std::vector<int64_t> pb(2, 0), pe(2, 0), out(2, 1), in(2, 1), k(2, 1), s(2, 1), d(2, 1);
  for (size_t i = 0; i < sp; ++i) {
    const size_t a = i + 2 - sp;
    in[a] = pc.in[i];
    k[a] = pc.k[i];
    s[a] = pc.strides.empty() ? 1 : pc.strides[i];
    d[a] = pc.dilations.empty() ? 1 : pc.dilations[i];
    const int64_t keff = (k[a] - 1) * d[a] + 1;
    if (pc.auto_pad == "SAME_UPPER" || pc.auto_pad == "SAME_LOWER") {
      out[a] = (in[a] + s[a] - 1) / s[a];
      int64_t total = std::max<int64_t>(0, (out[a] - 1) * s[a] + keff - in[a]);
      pb[a] = pc.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      pe[a] = total - pb[a];
    } else {
      if (!pc.pads.empty() && pc.auto_pad != "VALID") {
        pb[a] = pc.pads[i];
        pe[a] = pc.pads[i + sp];
      }
      double span = static_cast<double>(in[a] + pb[a] + pe[a] - keff) / s[a];
      out[a] = static_cast<int64_t>(pc.ceil ? std::ceil(span) : std::floor(span)) + 1;
      if (pc.ceil && (out[a] - 1) * s[a] >= in[a] + pb[a]) --out[a];
    }
  }
  Shape ys{pc.n, pc.c};
  for (size_t i = 0; i < sp; ++i) ys.push_back(out[i + 2 - sp]);
  Tensor y = Tensor::Allocate(DataType::kFp32, ys);
  Tensor idx = Tensor::Allocate(DataType::kInt64, ys);
  const float* xd = x.data<float>();
  int64_t o = 0;
  for (int64_t p = 0; p < pc.n * pc.c; ++p)
    for (int64_t oy = 0; oy < out[0]; ++oy)
      for (int64_t ox = 0; ox < out[1]; ++ox, ++o) {
        double best = -std::numeric_limits<double>::infinity(), sum = 0;
        int64_t best_at = 0, valid = 0, padded = 0;
        for (int64_t ky = 0; ky < k[0]; ++ky)
          for (int64_t kx = 0; kx < k[1]; ++kx) {
            int64_t yy = oy * s[0] - pb[0] + ky * d[0], xx = ox * s[1] - pb[1] + kx * d[1];
            if (yy < in[0] + pe[0] && xx < in[1] + pe[1]) ++padded;
            if (yy < 0 || yy >= in[0] || xx < 0 || xx >= in[1]) continue;
            double v = xd[(p * in[0] + yy) * in[1] + xx];
            ++valid;
            sum += v;
            if (v > best) {
              best = v;
              best_at = pc.column_major ? p * in[0] * in[1] + xx * in[0] + yy
                                        : (p * in[0] + yy) * in[1] + xx;
            }
          }
        if (pc.op == "MaxPool") {
          y.data<float>()[o] = static_cast<float>(best);
        } else {
          y.data<float>()[o] = static_cast<float>(sum / (pc.count_include_pad ? padded : valid));
        }
        idx.data<int64_t>()[o] = best_at;
      }
  return {y, idx};
}

void CheckPool(const PoolCase& pc) {
  Shape xs{pc.n, pc.c};
  for (int64_t d : pc.in) xs.push_back(d);
  Tensor x = testing::RandomTensor(xs, 11);
  auto [want, want_idx] = RefPool(pc, x);
  for (int threads : {1, 2}) {
    OpSpec spec{.op_type = pc.op};
    spec.threads = threads;
    spec.attributes["kernel_shape"] = IntsAttr(pc.k);
    if (!pc.strides.empty()) spec.attributes["strides"] = IntsAttr(pc.strides);
    if (!pc.dilations.empty()) spec.attributes["dilations"] = IntsAttr(pc.dilations);
    if (!pc.pads.empty()) spec.attributes["pads"] = IntsAttr(pc.pads);
    if (!pc.auto_pad.empty()) spec.attributes["auto_pad"] = StringAttr(pc.auto_pad);
    if (pc.ceil) spec.attributes["ceil_mode"] = IntAttr(1);
    if (pc.count_include_pad) spec.attributes["count_include_pad"] = IntAttr(1);
    if (pc.column_major) spec.attributes["storage_order"] = IntAttr(1);
    if (pc.indices) spec.num_outputs = 2;
    auto got = RunOp(spec, {x});
    ASSERT_TRUE(got.ok()) << got.status();
    testing::ExpectTensorNear((*got)[0], want);
    if (pc.indices) testing::ExpectTensorNear((*got)[1], want_idx);
  }
}

TEST(MaxPoolTest, Basic) { CheckPool({}); }
TEST(MaxPoolTest, Stride2) { CheckPool({.in = {32, 32}, .k = {2, 2}, .strides = {2, 2}}); }
TEST(MaxPoolTest, Pads) { CheckPool({.strides = {2, 2}, .pads = {1, 1, 1, 1}}); }
TEST(MaxPoolTest, AsymmetricPads) { CheckPool({.pads = {0, 2, 1, 0}}); }
TEST(MaxPoolTest, Dilation) { CheckPool({.in = {9, 9}, .dilations = {2, 2}}); }
TEST(MaxPoolTest, CeilMode) { CheckPool({.in = {8, 7}, .strides = {2, 2}, .ceil = true}); }
TEST(MaxPoolTest, CeilModePads) {
  CheckPool({.in = {6, 6}, .k = {3, 3}, .strides = {2, 2}, .pads = {1, 1, 1, 1}, .ceil = true});
}
TEST(MaxPoolTest, SameUpper) { CheckPool({.strides = {2, 2}, .auto_pad = "SAME_UPPER"}); }
TEST(MaxPoolTest, SameLower) { CheckPool({.k = {2, 2}, .auto_pad = "SAME_LOWER"}); }
TEST(MaxPoolTest, Valid) { CheckPool({.pads = {1, 1, 1, 1}, .auto_pad = "VALID"}); }
TEST(MaxPoolTest, OneD) { CheckPool({.in = {11}, .k = {3}, .strides = {2}, .pads = {1, 1}}); }
TEST(MaxPoolTest, Indices) {
  CheckPool({.strides = {2, 2}, .pads = {1, 1, 1, 1}, .indices = true});
}
TEST(MaxPoolTest, IndicesColumnMajor) {
  CheckPool({.strides = {2, 2}, .indices = true, .column_major = true});
}

TEST(AveragePoolTest, ExcludePad) {
  CheckPool({.op = "AveragePool", .strides = {2, 2}, .pads = {1, 1, 1, 1}});
}
TEST(AveragePoolTest, IncludePad) {
  CheckPool({.op = "AveragePool", .pads = {1, 2, 0, 1}, .count_include_pad = true});
}
TEST(AveragePoolTest, CeilModeBothWays) {
  for (bool cip : {false, true}) {
    CheckPool({.op = "AveragePool",
               .in = {7, 8},
               .strides = {2, 2},
               .pads = {1, 1, 1, 1},
               .ceil = true,
               .count_include_pad = cip});
  }
}
TEST(AveragePoolTest, SameUpperAndDilation) {
  CheckPool({.op = "AveragePool", .strides = {2, 2}, .auto_pad = "SAME_UPPER"});
  CheckPool({.op = "AveragePool",
             .in = {9, 9},
             .dilations = {2, 2},
             .pads = {2, 2, 2, 2},
             .count_include_pad = true});
}
TEST(AveragePoolTest, OneD) {
  CheckPool({.op = "AveragePool", .in = {10}, .k = {4}, .strides = {3}});
}

TEST(PoolTest, Errors) {
  Tensor x = testing::RandomTensor(Shape{1, 2, 4, 4}, 1);
  OpSpec spec{.op_type = "MaxPool"};
  EXPECT_FALSE(RunOp(spec, {x}).ok());  // no kernel_shape
  spec.attributes["kernel_shape"] = IntsAttr({5, 5});
  auto r = RunOp(spec, {x});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("larger"), std::string::npos) << r.status();
  spec.attributes["kernel_shape"] = IntsAttr({2, 2, 2});
  EXPECT_FALSE(RunOp(spec, {x}).ok());  // rank mismatch
  spec.attributes["kernel_shape"] = IntsAttr({2, 2});
  spec.attributes["strides"] = IntsAttr({0, 1});
  EXPECT_FALSE(RunOp(spec, {x}).ok());
  spec.attributes.erase("strides");
  spec.attributes["auto_pad"] = StringAttr("BOGUS");
  EXPECT_FALSE(RunOp(spec, {x}).ok());
}

TEST(GlobalPoolTest, AverageAndMax) {
  for (Shape s : {Shape{2, 3, 5, 7}, Shape{1, 4, 1, 1}, Shape{3, 2, 9}, Shape{64, 64, 4, 4}}) {
    Tensor x = testing::RandomTensor(s, 5);
    const int64_t planes = s[0] * s[1], inner = x.NumElements() / planes;
    Shape ys{s[0], s[1]};
    for (int i = 2; i < s.rank(); ++i) ys.push_back(1);
    Tensor avg = Tensor::Allocate(DataType::kFp32, ys), mx = Tensor::Allocate(DataType::kFp32, ys);
    for (int64_t p = 0; p < planes; ++p) {
      double sum = 0, best = -1e30;
      for (int64_t i = 0; i < inner; ++i) {
        sum += x.data<float>()[p * inner + i];
        best = std::max<double>(best, x.data<float>()[p * inner + i]);
      }
      avg.data<float>()[p] = static_cast<float>(sum / inner);
      mx.data<float>()[p] = static_cast<float>(best);
    }
    for (int threads : {1, 2}) {
      auto got = RunOp({.op_type = "GlobalAveragePool", .threads = threads}, {x});
      ASSERT_TRUE(got.ok()) << got.status();
      testing::ExpectTensorNear((*got)[0], avg);
      got = RunOp({.op_type = "GlobalMaxPool", .threads = threads}, {x});
      ASSERT_TRUE(got.ok()) << got.status();
      testing::ExpectTensorNear((*got)[0], mx);
    }
  }
  EXPECT_FALSE(RunOp({.op_type = "GlobalAveragePool"}, {testing::RandomTensor(Shape{3}, 1)}).ok());
}

}  // namespace
}  // namespace flywheel::engine
