// com.flywheel Attention and LayerNormalization against naive double-precision references.
#include <cmath>
#include <random>
#include <vector>

#include "engine/testing/op_test_util.h"
#include "gtest/gtest.h"
#include "hwy/targets.h"

namespace flywheel::engine {
namespace {

using testing::ExpectTensorNear;
using testing::FloatAttr;
using testing::IntAttr;
using testing::OpSpec;
using testing::RunOp;

Tensor Random(Shape shape, uint32_t seed, float lo = -1, float hi = 1) {
  Tensor t = Tensor::Allocate(DataType::kFp32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (int64_t i = 0; i < t.NumElements(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

// softmax(scale * Q K^T + mask) V; K is [B,H,Sk,D] (or [B,H,D,Sk] when kt).
Tensor RefAttention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* mask,
                    float scale, bool kt) {
  const int64_t nb = q.dim(0), nh = q.dim(1), s = q.dim(2), d = q.dim(3);
  const int64_t sk = v.dim(2), dv = v.dim(3);
  Tensor out = Tensor::Allocate(DataType::kFp32, Shape{nb, nh, s, dv});
  std::vector<double> row(sk);
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t h = 0; h < nh; ++h)
      for (int64_t i = 0; i < s; ++i) {
        const int64_t bh = b * nh + h;
        double mx = -1e300;
        for (int64_t j = 0; j < sk; ++j) {
          double acc = 0;
          for (int64_t p = 0; p < d; ++p) {
            const float kv = kt ? k.data<float>()[bh * d * sk + p * sk + j]
                                : k.data<float>()[bh * sk * d + j * d + p];
            acc += double(q.data<float>()[(bh * s + i) * d + p]) * kv;
          }
          acc *= scale;
          if (mask != nullptr) {
            // Broadcast the mask (rank <= 4) to [B,H,S,Sk].
            const int64_t full[4] = {b, h, i, j};
            const int r = mask->rank();
            int64_t idx = 0;
            for (int a = 0; a < r; ++a) {
              const int64_t dim = mask->dim(a);
              idx = idx * dim + (dim == 1 ? 0 : full[4 - r + a]);
            }
            acc += mask->data<float>()[idx];
          }
          row[j] = acc;
          mx = std::max(mx, acc);
        }
        double sum = 0;
        for (int64_t j = 0; j < sk; ++j) sum += row[j] = std::exp(row[j] - mx);
        for (int64_t e = 0; e < dv; ++e) {
          double acc = 0;
          for (int64_t j = 0; j < sk; ++j)
            acc += row[j] / sum * v.data<float>()[(bh * sk + j) * dv + e];
          out.data<float>()[((bh * s) + i) * dv + e] = static_cast<float>(acc);
        }
      }
  return out;
}

Tensor Transpose23(const Tensor& k) {
  const int64_t nb = k.dim(0), nh = k.dim(1), a = k.dim(2), b = k.dim(3);
  Tensor t = Tensor::Allocate(DataType::kFp32, Shape{nb, nh, b, a});
  for (int64_t x = 0; x < nb * nh; ++x)
    for (int64_t i = 0; i < a; ++i)
      for (int64_t j = 0; j < b; ++j)
        t.data<float>()[x * a * b + j * a + i] = k.data<float>()[x * a * b + i * b + j];
  return t;
}

struct AttnCase {
  int64_t b, h, s, sk, d, dv;
};

TEST(AttentionOpTest, MaskTransposedKAndThreads) {
  const AttnCase cases[] = {{1, 1, 1, 1, 1, 1},   {1, 4, 8, 8, 32, 32},     {2, 4, 17, 17, 32, 32},
                            {3, 2, 5, 33, 16, 7}, {2, 4, 128, 128, 32, 32}, {1, 2, 3, 129, 65, 17}};
  uint32_t seed = 1;
  for (const AttnCase& c : cases) {
    Tensor q = Random({c.b, c.h, c.s, c.d}, seed++);
    Tensor k = Random({c.b, c.h, c.sk, c.d}, seed++);
    Tensor v = Random({c.b, c.h, c.sk, c.dv}, seed++);
    // No mask, a key-padding mask [B,1,1,Sk], a full mask, a 2-D [S,Sk] mask.
    std::vector<Tensor> masks = {Tensor(), Random({c.b, 1, 1, c.sk}, seed++, -5, 0),
                                 Random({c.b, c.h, c.s, c.sk}, seed++, -3, 3),
                                 Random({c.s, c.sk}, seed++, -3, 3)};
    for (size_t mi = 0; mi < masks.size(); ++mi) {
      for (int kt = 0; kt < 2; ++kt) {
        for (int with_scale = 0; with_scale < 2; ++with_scale) {
          const float scale = with_scale ? 0.3f : 1.0f / std::sqrt(float(c.d));
          Tensor want =
              RefAttention(q, k, v, masks[mi].empty() ? nullptr : &masks[mi], scale, false);
          for (int threads : {1, 2}) {
            OpSpec spec{.op_type = "Attention", .domain = "com.flywheel"};
            if (with_scale) spec.attributes["scale"] = FloatAttr(scale);
            if (kt) spec.attributes["k_transposed"] = IntAttr(1);
            spec.threads = threads;
            SCOPED_TRACE(::testing::Message()
                         << c.b << "," << c.h << "," << c.s << "," << c.sk << "," << c.d << ","
                         << c.dv << " mask=" << mi << " kt=" << kt << " t=" << threads);
            auto out = RunOp(spec, {q, kt ? Transpose23(k) : k, v, masks[mi]});
            ASSERT_TRUE(out.ok()) << out.status();
            ExpectTensorNear((*out)[0], want);
          }
        }
      }
    }
  }
}

TEST(AttentionOpTest, BadShapesAreErrors) {
  OpSpec spec{.op_type = "Attention", .domain = "com.flywheel"};
  Tensor q = Random({1, 2, 4, 8}, 1), k = Random({1, 2, 5, 8}, 2), v = Random({1, 2, 5, 3}, 3);
  EXPECT_TRUE(RunOp(spec, {q, k, v}).ok());
  EXPECT_FALSE(RunOp(spec, {q, Random({1, 2, 5, 7}, 2), v}).ok());
  EXPECT_FALSE(RunOp(spec, {q, k, Random({1, 2, 4, 3}, 3)}).ok());
  EXPECT_FALSE(RunOp(spec, {q, k, v, Random({3, 5}, 4)}).ok());
  EXPECT_FALSE(RunOp(spec, {Random({2, 4, 8}, 1), k, v}).ok());
}

// LayerNormalization reference over axis (normalised shape = dims[axis:]).
std::vector<Tensor> RefLayerNorm(const Tensor& x, const Tensor& scale, const Tensor* bias, int axis,
                                 float eps) {
  const Shape& s = x.shape();
  const int64_t rows = s.Product(0, axis), cols = s.Product(axis, s.rank());
  Shape stat;
  for (int i = 0; i < s.rank(); ++i) stat.push_back(i < axis ? s[i] : 1);
  Tensor y = Tensor::Allocate(DataType::kFp32, s);
  Tensor mean = Tensor::Allocate(DataType::kFp32, stat),
         inv = Tensor::Allocate(DataType::kFp32, stat);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x.data<float>() + r * cols;
    double m = 0, var = 0;
    for (int64_t j = 0; j < cols; ++j) m += xr[j];
    m /= cols;
    for (int64_t j = 0; j < cols; ++j) var += (xr[j] - m) * (xr[j] - m);
    var /= cols;
    const double is = 1 / std::sqrt(var + eps);
    for (int64_t j = 0; j < cols; ++j) {
      y.data<float>()[r * cols + j] = static_cast<float>((xr[j] - m) * is * scale.data<float>()[j] +
                                                         (bias ? bias->data<float>()[j] : 0.0));
    }
    mean.data<float>()[r] = static_cast<float>(m);
    inv.data<float>()[r] = static_cast<float>(is);
  }
  return {y, mean, inv};
}

TEST(LayerNormOpTest, AxesBiasStatsAndThreads) {
  struct Case {
    Shape x;
    int axis;
  };
  const Case cases[] = {{{2, 8, 128}, -1}, {{3, 17}, 1},       {{4, 5, 6}, 1}, {{1, 1}, -1},
                        {{300, 33}, -1},   {{2, 3, 4, 5}, -2}, {{7, 129}, 0},  {{64, 8, 512}, 2}};
  uint32_t seed = 7;
  for (const Case& c : cases) {
    const int axis = c.axis < 0 ? c.axis + c.x.rank() : c.axis;
    Shape norm;
    for (int i = axis; i < c.x.rank(); ++i) norm.push_back(c.x[i]);
    Tensor x = Random(c.x, seed++, -3, 5);
    Tensor scale = Random(norm, seed++), bias = Random(norm, seed++);
    for (int with_bias = 0; with_bias < 2; ++with_bias) {
      auto want = RefLayerNorm(x, scale, with_bias ? &bias : nullptr, axis, 1e-3f);
      for (int threads : {1, 2}) {
        OpSpec spec{.op_type = "LayerNormalization"};
        spec.attributes["axis"] = IntAttr(c.axis);
        spec.attributes["epsilon"] = FloatAttr(1e-3f);
        spec.num_outputs = 3;
        spec.threads = threads;
        SCOPED_TRACE(::testing::Message() << c.x.ToString() << " axis=" << c.axis
                                          << " bias=" << with_bias << " t=" << threads);
        auto out = RunOp(spec, {x, scale, with_bias ? bias : Tensor()});
        ASSERT_TRUE(out.ok()) << out.status();
        for (int i = 0; i < 3; ++i) ExpectTensorNear((*out)[i], want[i]);
      }
    }
  }
}

TEST(LayerNormOpTest, DefaultsAndErrors) {
  Tensor x = Random({4, 16}, 1), scale = Random({16}, 2);
  OpSpec spec{.op_type = "LayerNormalization"};
  auto out = RunOp(spec, {x, scale});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], RefLayerNorm(x, scale, nullptr, 1, 1e-5f)[0]);
  EXPECT_FALSE(RunOp(spec, {x, Random({15}, 3)}).ok());
  spec.attributes["axis"] = IntAttr(2);
  EXPECT_FALSE(RunOp(spec, {x, scale}).ok());
}

// LayerNorm and Attention on every SIMD target compiled in and supported by this CPU.
TEST(LayerNormOpTest, EveryCompiledTarget) {
  const int64_t all = hwy::SupportedTargets();
  for (int64_t target : {int64_t{HWY_AVX3}, int64_t{HWY_AVX2}, int64_t{HWY_EMU128}}) {
    if ((all & target) == 0) continue;
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    Tensor x = Random({5, 37}, 1, -2, 3), scale = Random({37}, 2), bias = Random({37}, 3);
    OpSpec spec{.op_type = "LayerNormalization"};
    auto out = RunOp(spec, {x, scale, bias});
    ASSERT_TRUE(out.ok()) << out.status();
    ExpectTensorNear((*out)[0], RefLayerNorm(x, scale, &bias, 1, 1e-5f)[0]);
    Tensor q = Random({1, 2, 9, 17}, 4), k = Random({1, 2, 11, 17}, 5),
           v = Random({1, 2, 11, 6}, 6);
    OpSpec att{.op_type = "Attention", .domain = "com.flywheel"};
    att.attributes["scale"] = FloatAttr(0.25f);
    auto o2 = RunOp(att, {q, k, v});
    ASSERT_TRUE(o2.ok()) << o2.status();
    ExpectTensorNear((*o2)[0], RefAttention(q, k, v, nullptr, 0.25f, false));
  }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace
}  // namespace flywheel::engine
