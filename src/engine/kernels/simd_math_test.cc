#include "engine/kernels/simd_math.h"

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "engine/kernels/activation.h"
#include "gtest/gtest.h"
#include "hwy/targets.h"

namespace flywheel::engine {
namespace {

// Runs `body` once per SIMD target this machine supports (AVX-512, AVX2, portable fallback), so
// that every compiled variant is checked, then restores normal dispatch.
void ForEachTarget(const std::function<void()>& body) {
  const int64_t targets[] = {HWY_AVX3, HWY_AVX2, HWY_EMU128 | HWY_SCALAR};
  const int64_t supported = hwy::SupportedTargets();
  for (int64_t t : targets) {
    if ((supported & t) == 0 && t != (HWY_EMU128 | HWY_SCALAR)) continue;
    SCOPED_TRACE(hwy::TargetName(t & -t));
    hwy::SetSupportedTargetsForTest(t);
    body();
  }
  hwy::SetSupportedTargetsForTest(0);
}

void ExpectNear(float got, double want, int64_t i) {
  if (std::isnan(want)) {
    EXPECT_TRUE(std::isnan(got)) << "element " << i;
    return;
  }
  if (std::isinf(want)) {
    EXPECT_EQ(got, want) << "element " << i;
    return;
  }
  EXPECT_LE(std::abs(got - want), 1e-6 + 2e-6 * std::abs(want))
      << "element " << i << ": got " << got << ", want " << want;
}

std::vector<float> Range(int n, float lo, float hi) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = n == 1 ? lo : lo + (hi - lo) * i / (n - 1);
  return v;
}

struct Case {
  ActivationKind kind;
  float alpha, beta;
  std::function<double(double)> ref;
};

TEST(SimdMathTest, ApplyActivationMatchesReference) {
  const std::vector<Case> cases = {
      {ActivationKind::kRelu, 0, 0, [](double x) { return std::max(x, 0.0); }},
      {ActivationKind::kLeakyRelu, 0.1f, 0, [](double x) { return x < 0 ? 0.1 * x : x; }},
      {ActivationKind::kSigmoid, 0, 0, [](double x) { return 1 / (1 + std::exp(-x)); }},
      {ActivationKind::kTanh, 0, 0, [](double x) { return std::tanh(x); }},
      {ActivationKind::kGelu, 0, 0,
       [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }},
      {ActivationKind::kClip, -1, 6, [](double x) { return std::min(std::max(x, -1.0), 6.0); }},
      {ActivationKind::kHardSigmoid, 0.2f, 0.5f,
       [](double x) { return std::min(1.0, std::max(0.0, 0.2 * x + 0.5)); }},
      {ActivationKind::kElu, 1.0f, 0, [](double x) { return x < 0 ? std::expm1(x) : x; }},
  };
  ForEachTarget([&] {
    for (const Case& c : cases) {
      SCOPED_TRACE(static_cast<int>(c.kind));
      for (int n : {1, 3, 16, 17, 33, 1000}) {
        std::vector<float> x = Range(n, -9, 9);
        std::vector<float> y = x;
        ApplyActivation({c.kind, c.alpha, c.beta}, y.data(), n);
        for (int i = 0; i < n; ++i) ExpectNear(y[i], c.ref(x[i]), i);
      }
    }
    std::vector<float> x = {1, -2};
    ApplyActivation({ActivationKind::kNone, 0, 0}, x.data(), 2);
    EXPECT_EQ(x[1], -2);
  });
}

TEST(SimdMathTest, ExpAccuracyAndEdges) {
  ForEachTarget([&] {
    std::vector<float> x = Range(20001, -104, 89);
    const float inf = std::numeric_limits<float>::infinity();
    x.insert(x.end(), {-inf, inf, NAN, 0.0f, -0.0f, 88.7f, -87.5f, 1e-8f});
    std::vector<float> y(x.size());
    simd::Unary(simd::UnaryOp::kExp, x.data(), y.data(), static_cast<int64_t>(x.size()));
    for (size_t i = 0; i < x.size(); ++i) {
      const double want = std::exp(static_cast<double>(x[i]));
      if (want > std::numeric_limits<float>::max()) {
        EXPECT_EQ(y[i], inf) << x[i];
      } else if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(y[i]));
      } else {
        // ~2 ulp for normal results; subnormal results within an absolute 1e-44.
        EXPECT_LE(std::abs(y[i] - want), 2.5e-7 * want + 1e-44) << "exp(" << x[i] << ")";
      }
    }
  });
}

// Erf and exact GELU far into the tails, where their exp argument is clamped: finite, accurate
// results, and NaN stays NaN.
TEST(SimdMathTest, ErfAndGeluTails) {
  ForEachTarget([&] {
    std::vector<float> x = Range(4001, -40, 40);
    x.insert(x.end(), {-1e30f, 1e30f, 0.0f, -0.0f, 1e-20f, -3e-5f, NAN});
    std::vector<float> erf(x.size()), gelu(x.size());
    const int64_t n = static_cast<int64_t>(x.size());
    simd::Unary(simd::UnaryOp::kErf, x.data(), erf.data(), n);
    simd::Unary(simd::UnaryOp::kGelu, x.data(), gelu.data(), n);
    const float inf = std::numeric_limits<float>::infinity();
    float gelu_inf[3] = {inf, -inf, NAN};
    simd::Unary(simd::UnaryOp::kGelu, gelu_inf, gelu_inf, 3);
    EXPECT_EQ(gelu_inf[0], inf);
    EXPECT_NEAR(gelu_inf[1], 0.0f, 1e-30f);
    EXPECT_TRUE(std::isnan(gelu_inf[2]));
    for (int64_t i = 0; i < n; ++i) {
      const double v = x[i];
      ExpectNear(erf[i], std::erf(v), i);
      ExpectNear(gelu[i], 0.5 * v * std::erfc(-v / std::sqrt(2.0)), i);
    }
  });
}

TEST(SimdMathTest, BinaryAndSoftmax) {
  ForEachTarget([&] {
    for (int n : {1, 5, 16, 31, 100}) {
      std::vector<float> a = Range(n, -3, 5), b = Range(n, 1, 2), out(n);
      simd::Binary(simd::BinaryOp::kDiv, a.data(), b.data(), out.data(), n);
      for (int i = 0; i < n; ++i) EXPECT_EQ(out[i], a[i] / b[i]);
      simd::BinaryVS(simd::BinaryOp::kSub, a.data(), 2.0f, out.data(), n);
      for (int i = 0; i < n; ++i) EXPECT_EQ(out[i], a[i] - 2.0f);
      simd::BinarySV(simd::BinaryOp::kMax, 0.5f, a.data(), out.data(), n);
      for (int i = 0; i < n; ++i) EXPECT_EQ(out[i], std::max(0.5f, a[i]));
      simd::SoftmaxRow(a.data(), out.data(), n, false);
      double s = 0;
      for (float v : out) s += v;
      EXPECT_NEAR(s, 1.0, 1e-5);
    }
  });
}

// SoftmaxRows gives each row what SoftmaxRow gives it alone.
TEST(SimdMathTest, SoftmaxRowsMatchesRowByRow) {
  ForEachTarget([&] {
    for (int n : {1, 7, 16, 32, 45}) {
      const int rows = 5;
      std::vector<float> x = Range(rows * n, -6, 4), all(rows * n), one(n);
      simd::SoftmaxRows(x.data(), all.data(), rows, n, false);
      for (int r = 0; r < rows; ++r) {
        simd::SoftmaxRow(x.data() + r * n, one.data(), n, false);
        for (int i = 0; i < n; ++i) EXPECT_EQ(all[r * n + i], one[i]) << "row " << r << " i " << i;
      }
    }
  });
}

}  // namespace
}  // namespace flywheel::engine
