// Highway implementation of simd_math.h. This file is compiled once per SIMD target through
// hwy/foreach_target.h; the exported entry points at the bottom dispatch to the best target.
// exp is a Cephes-style polynomial (about 1 ulp) so that it inlines into softmax and sigmoid;
// erf is Numerical Recipes' erfc Chebyshev fit (relative error ~1e-7) on top of it, with a Taylor
// series near 0; tanh is Highway's (expm1-based). log, log1p, sin and cos come from SLEEF (1 ulp)
// on x86 targets and from libm lane by lane on the portable fallback.
#include "engine/kernels/simd_math.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "engine/kernels/simd_math.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// After highway.h: re-included per target.
#include "hwy/contrib/math/math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace flywheel::engine::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;
// Room for one vector of floats on every target we compile (AVX-512: 16 lanes).
constexpr size_t kMaxLanes = 16;

// Applies a scalar function lane by lane: the fallback where no vector version exists.
template <class D, class V>
HWY_INLINE V PerLane(D d, V v, float (*f)(float)) {
  HWY_ALIGN float buf[kMaxLanes];
  hn::Store(v, d, buf);
  for (size_t i = 0; i < hn::Lanes(d); ++i) buf[i] = f(buf[i]);
  return hn::Load(d, buf);
}

#if HWY_ARCH_X86 && HWY_TARGET == HWY_AVX2
#define FW_SLEEF_FN(name) Sleef_##name##f8_u10avx2
#define FW_SLEEF_VEC __m256
#elif HWY_ARCH_X86 && (HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL)
#define FW_SLEEF_FN(name) Sleef_##name##f16_u10avx512f
#define FW_SLEEF_VEC __m512
#endif

#ifdef FW_SLEEF_FN
// sleef.h declares its AVX functions only when the whole file is compiled for AVX, which we never
// do (runtime dispatch), so declare the few we use here, inside the target's pragma region.
extern "C" {
__attribute__((const)) FW_SLEEF_VEC FW_SLEEF_FN(exp)(FW_SLEEF_VEC);
__attribute__((const)) FW_SLEEF_VEC FW_SLEEF_FN(log)(FW_SLEEF_VEC);
__attribute__((const)) FW_SLEEF_VEC FW_SLEEF_FN(log1p)(FW_SLEEF_VEC);
__attribute__((const)) FW_SLEEF_VEC FW_SLEEF_FN(sin)(FW_SLEEF_VEC);
__attribute__((const)) FW_SLEEF_VEC FW_SLEEF_FN(cos)(FW_SLEEF_VEC);
}
#define FW_VEC_MATH(Name, sleef, libm) \
  HWY_INLINE VF Name(DF, VF x) { return VF{FW_SLEEF_FN(sleef)(x.raw)}; }
#else
#define FW_VEC_MATH(Name, sleef, libm)                     \
  HWY_INLINE VF Name(DF d, VF x) {                         \
    return PerLane(d, x, [](float v) { return libm(v); }); \
  }
#endif

FW_VEC_MATH(LogV, log, std::log)
FW_VEC_MATH(Log1pV, log1p, std::log1p)
FW_VEC_MATH(SinV, sin, std::sin)
FW_VEC_MATH(CosV, cos, std::cos)
#undef FW_VEC_MATH

// The shared core of ExpV and ExpInRangeV: n = round(x log2(e)), kept in the low mantissa bits of
// *kn (1.5 * 2^23 + n), and e^r for the reduced r = x - n ln(2), so that e^x = p * 2^n.
HWY_INLINE VF ExpReduced(DF d, VF x, VF* kn) {
  // Adding 1.5 * 2^23 rounds x log2(e) to an integer n in the low mantissa bits of kn.
  const VF kMagic = hn::Set(d, 12582912.0f);
  *kn = hn::MulAdd(x, hn::Set(d, 1.44269504088896341f), kMagic);
  const VF n = hn::Sub(*kn, kMagic);
  VF r = hn::NegMulAdd(n, hn::Set(d, 0.693359375f), x);
  r = hn::NegMulAdd(n, hn::Set(d, -2.12194440e-4f), r);
  VF p = hn::Set(d, 1.9875691500E-4f);
  p = hn::MulAdd(p, r, hn::Set(d, 1.3981999507E-3f));
  p = hn::MulAdd(p, r, hn::Set(d, 8.3334519073E-3f));
  p = hn::MulAdd(p, r, hn::Set(d, 4.1665795894E-2f));
  p = hn::MulAdd(p, r, hn::Set(d, 1.6666665459E-1f));
  p = hn::MulAdd(p, r, hn::Set(d, 5.0000001201E-1f));
  return hn::MulAdd(p, hn::Mul(r, r), hn::Add(r, hn::Set(d, 1.0f)));
}

// e^x, Cephes polynomial after range reduction by ln 2; overflow gives +inf, underflow 0 (with
// subnormals), NaN stays NaN.
HWY_INLINE VF ExpV(DF d, VF x) {
  const hn::RebindToSigned<DF> di;
  const VF kHi = hn::Set(d, 88.72283935546875f);
  const VF kLo = hn::Set(d, -103.972084045410f);
  const VF xc = hn::Min(hn::Max(x, kLo), kHi);
  VF kn;
  const VF p = ExpReduced(d, xc, &kn);
  // 2^n as two factors so that n in [-150, 128] never leaves the exponent range.
  const auto ni = hn::Sub(hn::BitCast(di, kn), hn::BitCast(di, hn::Set(d, 12582912.0f)));
  const auto n1 = hn::ShiftRight<1>(ni);
  const auto n2 = hn::Sub(ni, n1);
  const auto bias = hn::Set(di, 127);
  const VF s1 = hn::BitCast(d, hn::ShiftLeft<23>(hn::Add(n1, bias)));
  const VF s2 = hn::BitCast(d, hn::ShiftLeft<23>(hn::Add(n2, bias)));
  VF y = hn::Mul(hn::Mul(p, s1), s2);
  y = hn::IfThenElse(hn::Gt(x, kHi), hn::Set(d, std::numeric_limits<float>::infinity()), y);
  return hn::IfThenElse(hn::IsNaN(x), x, y);
}

// e^x for finite x in [-87, 88], where 2^n is one normal float: ExpV without the clamping and the
// special cases, which were a fifth of GELU's instructions.
HWY_INLINE VF ExpInRangeV(DF d, VF x) {
  const hn::RebindToSigned<DF> di;
  VF kn;
  const VF p = ExpReduced(d, x, &kn);
  // kn's bits are those of 1.5 * 2^23 plus n; the shift drops the constant's part.
  const auto biased = hn::Add(hn::BitCast(di, kn), hn::Set(di, 127));
  return hn::Mul(p, hn::BitCast(d, hn::ShiftLeft<23>(biased)));
}

// erfc(|x|) for any x: relative error about 1e-7 (Numerical Recipes' erfcc), no cancellation.
HWY_INLINE VF ErfcAbsV(DF d, VF x) {
  const VF z = hn::Abs(x);
  const VF t = hn::Div(hn::Set(d, 1.0f), hn::MulAdd(hn::Set(d, 0.5f), z, hn::Set(d, 1.0f)));
  VF p = hn::Set(d, 0.17087277f);
  p = hn::MulAdd(p, t, hn::Set(d, -0.82215223f));
  p = hn::MulAdd(p, t, hn::Set(d, 1.48851587f));
  p = hn::MulAdd(p, t, hn::Set(d, -1.13520398f));
  p = hn::MulAdd(p, t, hn::Set(d, 0.27886807f));
  p = hn::MulAdd(p, t, hn::Set(d, -0.18628806f));
  p = hn::MulAdd(p, t, hn::Set(d, 0.09678418f));
  p = hn::MulAdd(p, t, hn::Set(d, 0.37409196f));
  p = hn::MulAdd(p, t, hn::Set(d, 1.00002368f));
  p = hn::MulAdd(p, t, hn::Set(d, -1.26551223f));
  // exp(-z^2 + p), clamped so that huge |x| gives a result below 1e-38 rather than NaN (inf * 0);
  // the argument is never above 1 (p < 1 for z >= 0).
  const VF arg = hn::Max(hn::NegMulAdd(z, z, p), hn::Set(d, -87.0f));
  return hn::Mul(t, ExpInRangeV(d, arg));
}

HWY_INLINE VF ErfV(DF d, VF x) {
  // Taylor series for |x| < 0.5 keeps full relative accuracy near 0, where 1 - erfc cancels.
  const VF x2 = hn::Mul(x, x);
  VF s = hn::Set(d, 1.0f / 9360);
  s = hn::MulAdd(s, x2, hn::Set(d, -1.0f / 1320));
  s = hn::MulAdd(s, x2, hn::Set(d, 1.0f / 216));
  s = hn::MulAdd(s, x2, hn::Set(d, -1.0f / 42));
  s = hn::MulAdd(s, x2, hn::Set(d, 1.0f / 10));
  s = hn::MulAdd(s, x2, hn::Set(d, -1.0f / 3));
  s = hn::MulAdd(s, x2, hn::Set(d, 1.0f));
  const VF taylor = hn::Mul(hn::Mul(s, x), hn::Set(d, 1.1283791670955126f));
  const VF one_minus = hn::Sub(hn::Set(d, 1.0f), ErfcAbsV(d, x));
  const VF far = hn::CopySign(one_minus, x);
  return hn::IfThenElse(hn::Lt(hn::Abs(x), hn::Set(d, 0.5f)), taylor, far);
}

HWY_INLINE VF TanhV(DF d, VF x) { return hn::Tanh(d, x); }

// 0.5 x (1 + erf(x / sqrt 2)) = x Phi(x), with Phi from Abramowitz and Stegun's erfc fit 7.1.26
// (absolute error below 1.5e-7, so |GELU error| < 1e-7 |x|): half the polynomial of ErfcAbsV,
// which GELU does not need, as its result is x - 0.5 x erfc(x / sqrt 2) for x >= 0 and
// 0.5 x erfc(|x| / sqrt 2) below, where an absolute error in erfc scales with x, not the result.
HWY_INLINE VF GeluV(DF d, VF x) {
  // Beyond |x| = 20 the erfc term is below 1e-88: clamping keeps it finite for infinite x (so
  // GELU(inf) = inf), and NaN still gives NaN through x - h.
  const VF xc = hn::Min(hn::Max(x, hn::Set(d, -20.0f)), hn::Set(d, 20.0f));
  const VF hx = hn::Mul(hn::Set(d, 0.5f), xc);
  // t = 1 / (1 + p |x| / sqrt 2)
  const VF t =
      hn::Div(hn::Set(d, 1.0f), hn::MulAdd(hn::Abs(xc), hn::Set(d, 0.2316419f), hn::Set(d, 1.0f)));
  VF p = hn::Set(d, 1.061405429f);
  p = hn::MulAdd(p, t, hn::Set(d, -1.453152027f));
  p = hn::MulAdd(p, t, hn::Set(d, 1.421413741f));
  p = hn::MulAdd(p, t, hn::Set(d, -0.284496736f));
  p = hn::MulAdd(p, t, hn::Set(d, 0.254829592f));
  p = hn::Mul(p, t);
  // erfc(|x| / sqrt 2) = p exp(-x^2 / 2); the clamp keeps huge |x| at 0 rather than NaN.
  const VF arg = hn::Max(hn::Neg(hn::Mul(hx, xc)), hn::Set(d, -87.0f));
  const VF h = hn::Mul(hx, hn::Mul(p, ExpInRangeV(d, arg)));
  return hn::IfThenElse(hn::Lt(x, hn::Zero(d)), h, hn::Sub(x, h));
}

HWY_INLINE VF SigmoidV(DF d, VF x) {
  const VF one = hn::Set(d, 1.0f);
  return hn::Div(one, hn::Add(one, ExpV(d, hn::Neg(x))));
}

// Runs f over `rows` rows of n floats, ld apart, from in into out; each row's tail goes through a
// stack buffer (padded with `pad`).
template <class F>
HWY_INLINE void MapRows(const float* in, float* out, int64_t rows, int64_t n, int64_t ld, F f,
                        float pad = 0.0f) {
  const DF d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  for (int64_t r = 0; r < rows; ++r, in += ld, out += ld) {
    int64_t i = 0;
    for (; i + 2 * lanes <= n; i += 2 * lanes) {
      const VF a = hn::LoadU(d, in + i);
      const VF b = hn::LoadU(d, in + i + lanes);
      hn::StoreU(f(d, a), d, out + i);
      hn::StoreU(f(d, b), d, out + i + lanes);
    }
    for (; i + lanes <= n; i += lanes) hn::StoreU(f(d, hn::LoadU(d, in + i)), d, out + i);
    if (i < n) {
      HWY_ALIGN float buf[kMaxLanes];
      for (int64_t j = 0; j < lanes; ++j) buf[j] = i + j < n ? in[i + j] : pad;
      hn::Store(f(d, hn::Load(d, buf)), d, buf);
      std::memcpy(out + i, buf, static_cast<size_t>(n - i) * sizeof(float));
    }
  }
}

// MapRows on one row.
template <class F>
HWY_INLINE void Map(const float* in, float* out, int64_t n, F f, float pad = 0.0f) {
  MapRows(in, out, 1, n, n, f, pad);
}

void UnaryImpl(int op_int, const float* in, float* out, int64_t rows, int64_t n, int64_t ld,
               float alpha, float beta) {
  const DF d;
  const VF va = hn::Set(d, alpha), vb = hn::Set(d, beta);
  const VF zero = hn::Zero(d), one = hn::Set(d, 1.0f), half = hn::Set(d, 0.5f);
  switch (static_cast<UnaryOp>(op_int)) {
    case UnaryOp::kIdentity:
      for (int64_t r = 0; in != out && r < rows; ++r) {
        std::memmove(out + r * ld, in + r * ld, static_cast<size_t>(n) * sizeof(float));
      }
      return;
    case UnaryOp::kNeg:
      return MapRows(in, out, rows, n, ld, [](DF, VF x) { return hn::Neg(x); });
    case UnaryOp::kAbs:
      return MapRows(in, out, rows, n, ld, [](DF, VF x) { return hn::Abs(x); });
    case UnaryOp::kSqrt:
      return MapRows(in, out, rows, n, ld, [](DF, VF x) { return hn::Sqrt(x); });
    case UnaryOp::kExp:
      return MapRows(in, out, rows, n, ld, [](DF dd, VF x) { return ExpV(dd, x); });
    case UnaryOp::kLog:
      return MapRows(
          in, out, rows, n, ld, [](DF dd, VF x) { return LogV(dd, x); }, 1.0f);
    case UnaryOp::kErf:
      return MapRows(in, out, rows, n, ld, [](DF dd, VF x) { return ErfV(dd, x); });
    case UnaryOp::kTanh:
      return MapRows(in, out, rows, n, ld, [](DF dd, VF x) { return TanhV(dd, x); });
    case UnaryOp::kSigmoid:
      return MapRows(in, out, rows, n, ld, [](DF dd, VF x) { return SigmoidV(dd, x); });
    case UnaryOp::kRelu:
      return MapRows(in, out, rows, n, ld, [&](DF, VF x) { return hn::Max(x, zero); });
    case UnaryOp::kLeakyRelu:
      return MapRows(in, out, rows, n, ld,
                     [&](DF, VF x) { return hn::IfThenElse(hn::Lt(x, zero), hn::Mul(x, va), x); });
    case UnaryOp::kElu:
      return MapRows(in, out, rows, n, ld, [&](DF dd, VF x) {
        return hn::IfThenElse(hn::Lt(x, zero), hn::Mul(va, hn::Sub(ExpV(dd, x), one)), x);
      });
    case UnaryOp::kHardSigmoid:
      return MapRows(in, out, rows, n, ld,
                     [&](DF, VF x) { return hn::Min(hn::Max(hn::MulAdd(va, x, vb), zero), one); });
    case UnaryOp::kClip:
      return MapRows(in, out, rows, n, ld, [&](DF, VF x) { return hn::Min(hn::Max(x, va), vb); });
    case UnaryOp::kGelu:
      return MapRows(in, out, rows, n, ld, [](DF dd, VF x) { return GeluV(dd, x); });
    case UnaryOp::kGeluTanh:
      return MapRows(in, out, rows, n, ld, [&](DF dd, VF x) {
        const VF x3 = hn::Mul(hn::Mul(x, x), x);
        const VF inner =
            hn::Mul(hn::Set(dd, 0.7978845608028654f), hn::MulAdd(hn::Set(dd, 0.044715f), x3, x));
        return hn::Mul(hn::Mul(half, x), hn::Add(one, TanhV(dd, inner)));
      });
    case UnaryOp::kSquare:
      return MapRows(in, out, rows, n, ld, [](DF, VF x) { return hn::Mul(x, x); });
    case UnaryOp::kReciprocal:
      return MapRows(
          in, out, rows, n, ld, [&](DF, VF x) { return hn::Div(one, x); }, 1.0f);
    case UnaryOp::kFloor:
      return MapRows(in, out, rows, n, ld, [](DF, VF x) { return hn::Floor(x); });
    case UnaryOp::kCeil:
      return MapRows(in, out, rows, n, ld, [](DF, VF x) { return hn::Ceil(x); });
    case UnaryOp::kRound:
      return MapRows(in, out, rows, n, ld, [](DF, VF x) { return hn::Round(x); });
    case UnaryOp::kSoftplus:
      // max(x, 0) + log1p(exp(-|x|)): no overflow for large x.
      return MapRows(in, out, rows, n, ld, [&](DF dd, VF x) {
        return hn::Add(hn::Max(x, zero), Log1pV(dd, ExpV(dd, hn::Neg(hn::Abs(x)))));
      });
    case UnaryOp::kSin:
      return MapRows(in, out, rows, n, ld, [](DF dd, VF x) { return SinV(dd, x); });
    case UnaryOp::kCos:
      return MapRows(in, out, rows, n, ld, [](DF dd, VF x) { return CosV(dd, x); });
  }
}

template <class F>
HWY_INLINE void Map2(const float* a, const float* b, float* out, int64_t n, F f) {
  const DF d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::StoreU(f(hn::LoadU(d, a + i), hn::LoadU(d, b + i)), d, out + i);
  }
  if (i < n) {
    HWY_ALIGN float ba[kMaxLanes] = {}, bb[kMaxLanes];
    for (int64_t j = 0; j < lanes; ++j) bb[j] = 1.0f;
    std::memcpy(ba, a + i, static_cast<size_t>(n - i) * sizeof(float));
    std::memcpy(bb, b + i, static_cast<size_t>(n - i) * sizeof(float));
    hn::Store(f(hn::Load(d, ba), hn::Load(d, bb)), d, ba);
    std::memcpy(out + i, ba, static_cast<size_t>(n - i) * sizeof(float));
  }
}

// mode 0: a[i] op b[i]; 1: a[i] op *b; 2: *a op b[i].
template <class F>
HWY_INLINE void Binary3(int mode, const float* a, const float* b, float* out, int64_t n, F f) {
  const DF d;
  if (mode == 0) return Map2(a, b, out, n, f);
  if (mode == 1) {
    const VF vb = hn::Set(d, *b);
    return Map(
        a, out, n, [&](DF, VF x) { return f(x, vb); }, 1.0f);
  }
  const VF va = hn::Set(d, *a);
  Map(
      b, out, n, [&](DF, VF x) { return f(va, x); }, 1.0f);
}

void BinaryImpl(int op, int mode, const float* a, const float* b, float* out, int64_t n) {
  switch (static_cast<BinaryOp>(op)) {
    case BinaryOp::kAdd:
      return Binary3(mode, a, b, out, n, [](VF x, VF y) { return hn::Add(x, y); });
    case BinaryOp::kSub:
      return Binary3(mode, a, b, out, n, [](VF x, VF y) { return hn::Sub(x, y); });
    case BinaryOp::kMul:
      return Binary3(mode, a, b, out, n, [](VF x, VF y) { return hn::Mul(x, y); });
    case BinaryOp::kDiv:
      return Binary3(mode, a, b, out, n, [](VF x, VF y) { return hn::Div(x, y); });
    case BinaryOp::kMax:
      return Binary3(mode, a, b, out, n, [](VF x, VF y) { return hn::Max(x, y); });
    case BinaryOp::kMin:
      return Binary3(mode, a, b, out, n, [](VF x, VF y) { return hn::Min(x, y); });
  }
}

// Softmax of one row; inlined into SoftmaxRowsImpl's loop, whose constants it shares.
HWY_INLINE void SoftmaxRowInline(const float* x, float* y, int64_t n, bool log) {
  const DF d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  const float kNegInf = -std::numeric_limits<float>::infinity();
  VF vmax = hn::Set(d, kNegInf);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) vmax = hn::Max(vmax, hn::LoadU(d, x + i));
  float m = hn::GetLane(hn::MaxOfLanes(d, vmax));
  for (; i < n; ++i) m = std::max(m, x[i]);
  const VF vm = hn::Set(d, m);
  VF vsum = hn::Zero(d);
  // Softmax stores exp(x - m) then scales; log-softmax only needs the sum.
  Map(
      x, y, n,
      [&](DF dd, VF v) {
        const VF e = ExpV(dd, hn::Sub(v, vm));
        vsum = hn::Add(vsum, e);
        return e;
      },
      kNegInf);
  const float sum = hn::GetLane(hn::SumOfLanes(d, vsum));
  if (log) {
    const VF ls = hn::Set(d, std::log(sum));
    Map(x, y, n, [&](DF, VF v) { return hn::Sub(hn::Sub(v, vm), ls); });
  } else {
    const VF inv = hn::Set(d, 1.0f / sum);
    Map(y, y, n, [&](DF, VF v) { return hn::Mul(v, inv); });
  }
}

void SoftmaxRowsImpl(const float* x, float* y, int64_t rows, int64_t n, bool log) {
  if (n <= 0) return;
  for (int64_t r = 0; r < rows; ++r) SoftmaxRowInline(x + r * n, y + r * n, n, log);
}

void SoftmaxColumnsImpl(const float* x, float* y, int64_t len, int64_t stride, int64_t width,
                        bool log) {
  if (len <= 0) return;
  const DF d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  int64_t j = 0;
  for (; j + lanes <= width; j += lanes) {
    VF m = hn::LoadU(d, x + j);
    for (int64_t k = 1; k < len; ++k) m = hn::Max(m, hn::LoadU(d, x + k * stride + j));
    VF s = hn::Zero(d);
    for (int64_t k = 0; k < len; ++k) {
      const VF e = ExpV(d, hn::Sub(hn::LoadU(d, x + k * stride + j), m));
      s = hn::Add(s, e);
      if (!log) hn::StoreU(e, d, y + k * stride + j);
    }
    if (log) {
      const VF ls = LogV(d, s);
      for (int64_t k = 0; k < len; ++k) {
        const VF v = hn::LoadU(d, x + k * stride + j);
        hn::StoreU(hn::Sub(hn::Sub(v, m), ls), d, y + k * stride + j);
      }
    } else {
      const VF inv = hn::Div(hn::Set(d, 1.0f), s);
      for (int64_t k = 0; k < len; ++k) {
        float* p = y + k * stride + j;
        hn::StoreU(hn::Mul(hn::LoadU(d, p), inv), d, p);
      }
    }
  }
  // Remaining columns one at a time.
  for (; j < width; ++j) {
    float m = x[j];
    for (int64_t k = 1; k < len; ++k) m = std::max(m, x[k * stride + j]);
    float s = 0;
    for (int64_t k = 0; k < len; ++k) {
      const float e = std::exp(x[k * stride + j] - m);
      s += e;
      if (!log) y[k * stride + j] = e;
    }
    if (log) {
      const float ls = std::log(s);
      for (int64_t k = 0; k < len; ++k) y[k * stride + j] = x[k * stride + j] - m - ls;
    } else {
      const float inv = 1.0f / s;
      for (int64_t k = 0; k < len; ++k) y[k * stride + j] *= inv;
    }
  }
}

#undef FW_SLEEF_FN
#undef FW_SLEEF_VEC

}  // namespace HWY_NAMESPACE
}  // namespace flywheel::engine::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace flywheel::engine::simd {

HWY_EXPORT(UnaryImpl);
HWY_EXPORT(BinaryImpl);
HWY_EXPORT(SoftmaxRowsImpl);
HWY_EXPORT(SoftmaxColumnsImpl);

void Unary(UnaryOp op, const float* in, float* out, int64_t n, float alpha, float beta) {
  if (n <= 0) return;
  HWY_DYNAMIC_DISPATCH(UnaryImpl)(static_cast<int>(op), in, out, 1, n, n, alpha, beta);
}

void UnaryRows(UnaryOp op, float* data, int64_t rows, int64_t n, int64_t ld, float alpha,
               float beta) {
  if (rows <= 0 || n <= 0) return;
  HWY_DYNAMIC_DISPATCH(UnaryImpl)(static_cast<int>(op), data, data, rows, n, ld, alpha, beta);
}

void Binary(BinaryOp op, const float* a, const float* b, float* out, int64_t n) {
  if (n <= 0) return;
  HWY_DYNAMIC_DISPATCH(BinaryImpl)(static_cast<int>(op), 0, a, b, out, n);
}

void BinaryVS(BinaryOp op, const float* a, float b, float* out, int64_t n) {
  if (n <= 0) return;
  HWY_DYNAMIC_DISPATCH(BinaryImpl)(static_cast<int>(op), 1, a, &b, out, n);
}

void BinarySV(BinaryOp op, float a, const float* b, float* out, int64_t n) {
  if (n <= 0) return;
  HWY_DYNAMIC_DISPATCH(BinaryImpl)(static_cast<int>(op), 2, &a, b, out, n);
}

void SoftmaxRow(const float* x, float* y, int64_t n, bool log) {
  HWY_DYNAMIC_DISPATCH(SoftmaxRowsImpl)(x, y, 1, n, log);
}

void SoftmaxRows(const float* x, float* y, int64_t rows, int64_t n, bool log) {
  if (rows <= 0) return;
  HWY_DYNAMIC_DISPATCH(SoftmaxRowsImpl)(x, y, rows, n, log);
}

void SoftmaxColumns(const float* x, float* y, int64_t len, int64_t stride, int64_t width,
                    bool log) {
  HWY_DYNAMIC_DISPATCH(SoftmaxColumnsImpl)(x, y, len, stride, width, log);
}

}  // namespace flywheel::engine::simd
#endif  // HWY_ONCE
