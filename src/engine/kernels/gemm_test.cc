// Sgemm / SgemmPacked against a naive double-precision reference: odd sizes around the tile
// sizes, transposes, alpha/beta, fused bias and activations, one and several threads.
#include "engine/kernels/gemm.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "hwy/targets.h"

namespace flywheel::engine {
namespace {

std::vector<float> RandomVec(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// C = alpha * op(A) op(B) + beta * C (+ bias), in double.
std::vector<double> Reference(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                              const std::vector<float>& a, const std::vector<float>& b, float beta,
                              const std::vector<float>& c, const float* bias) {
  std::vector<double> out(m * n);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p) {
        const double av = ta ? a[p * m + i] : a[i * k + p];
        const double bv = tb ? b[j * k + p] : b[p * n + j];
        acc += av * bv;
      }
      double v = alpha * acc + (beta != 0 ? beta * c[i * n + j] : 0.0);
      if (bias != nullptr) v += bias[j];
      out[i * n + j] = v;
    }
  }
  return out;
}

void ExpectNear(const std::vector<float>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], 1e-5 + 1e-4 * std::abs(want[i])) << "at " << i;
  }
}

struct Dims {
  int64_t m, n, k;
};

const Dims kShapes[] = {{1, 1, 1},     {1, 17, 3},     {3, 33, 17},     {8, 64, 64},
                        {13, 129, 65}, {64, 128, 256}, {5, 512, 257},   {129, 65, 300},
                        {1, 1000, 7},  {37, 3, 520},   {256, 512, 128}, {4, 200, 0}};

TEST(GemmTest, SgemmMatchesReference) {
  ThreadPool pool(2);
  uint32_t seed = 1;
  for (const Dims& s : kShapes) {
    for (int ta = 0; ta < 2; ++ta) {
      for (int tb = 0; tb < 2; ++tb) {
        for (float beta : {0.0f, 0.5f}) {
          for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
            auto a = RandomVec(s.m * s.k, seed++);
            auto b = RandomVec(s.k * s.n, seed++);
            auto c = RandomVec(s.m * s.n, seed++);
            auto want = Reference(ta, tb, s.m, s.n, s.k, 1.5f, a, b, beta, c, nullptr);
            Sgemm(ta, tb, s.m, s.n, s.k, 1.5f, a.data(), ta ? s.m : s.k, b.data(), tb ? s.k : s.n,
                  beta, c.data(), s.n, p);
            SCOPED_TRACE(testing::Message() << s.m << "x" << s.n << "x" << s.k << " ta=" << ta
                                            << " tb=" << tb << " beta=" << beta);
            ExpectNear(c, want);
          }
        }
      }
    }
  }
}

TEST(GemmTest, PackedWithBiasAndRelu) {
  ThreadPool pool(2);
  uint32_t seed = 100;
  for (const Dims& s : kShapes) {
    for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
      auto a = RandomVec(s.m * s.k, seed++);
      auto b = RandomVec(s.k * s.n, seed++);
      auto bias = RandomVec(s.n, seed++);
      std::vector<float> c(s.m * s.n, std::nanf(""));  // beta = 0 must not read C
      auto want = Reference(false, false, s.m, s.n, s.k, 1.0f, a, b, 0.0f, c, bias.data());
      for (double& w : want) w = std::max(w, 0.0);
      PackedB packed = PackB(false, s.k, s.n, b.data(), s.n);
      GemmEpilogue epi;
      epi.bias = bias.data();
      epi.act.kind = ActivationKind::kRelu;
      SgemmPacked(false, s.m, 1.0f, a.data(), s.k, packed, 0.0f, c.data(), s.n, epi, p);
      SCOPED_TRACE(testing::Message() << s.m << "x" << s.n << "x" << s.k);
      ExpectNear(c, want);
    }
  }
}

// Every SIMD target the engine is compiled for (AVX-512, AVX2, portable) that this CPU runs, so
// that a machine without AVX-512 gets tested code too.
TEST(GemmTest, EveryCompiledTarget) {
  const int64_t all = hwy::SupportedTargets();
  for (int64_t target : {int64_t{HWY_AVX3}, int64_t{HWY_AVX2}, int64_t{HWY_EMU128}}) {
    if ((all & target) == 0) continue;
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    uint32_t seed = 900;
    for (const Dims& s : kShapes) {
      for (int tb = 0; tb < 2; ++tb) {
        auto a = RandomVec(s.m * s.k, seed++);
        auto b = RandomVec(s.k * s.n, seed++);
        auto bias = RandomVec(s.n, seed++);
        std::vector<float> c(s.m * s.n, 0.0f);
        auto want = Reference(false, tb, s.m, s.n, s.k, 1.0f, a, b, 0.0f, c, bias.data());
        PackedB packed = PackB(tb, s.k, s.n, b.data(), tb ? s.k : s.n);
        GemmEpilogue epi;
        epi.bias = bias.data();
        SgemmPacked(false, s.m, 1.0f, a.data(), s.k, packed, 0.0f, c.data(), s.n, epi, nullptr);
        SCOPED_TRACE(testing::Message() << s.m << "x" << s.n << "x" << s.k << " tb=" << tb);
        ExpectNear(c, want);
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(GemmTest, LeadingDimensionsLargerThanRows) {
  const int64_t m = 7, n = 19, k = 11, lda = 15, ldb = 23, ldc = 31;
  auto a = RandomVec(m * lda, 5);
  auto b = RandomVec(k * ldb, 6);
  std::vector<float> c(m * ldc, 7.0f);
  Sgemm(false, false, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), ldc, nullptr);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      if (j >= n) {
        EXPECT_EQ(c[i * ldc + j], 7.0f);  // untouched
        continue;
      }
      double acc = 0;
      for (int64_t p = 0; p < k; ++p) acc += double(a[i * lda + p]) * b[p * ldb + j];
      EXPECT_NEAR(c[i * ldc + j], acc, 1e-5 + 1e-4 * std::abs(acc));
    }
  }
}

}  // namespace
}  // namespace flywheel::engine
