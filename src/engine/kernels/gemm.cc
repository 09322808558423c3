// Highway implementation of gemm.h. This file is compiled once per SIMD target through
// hwy/foreach_target.h. Each target computes C tile by tile: MR rows x NV vectors of columns held
// in registers, one broadcast of A and NV loads of packed B per k, K blocked by kKc so a B block
// stays in L1 while the rows of A stream past it. The driver (HWY_ONCE part) splits the tiles
// over the thread pool only when each thread gets enough work.
#include "engine/kernels/gemm.h"

#include <algorithm>
#include <cstring>
#include <new>

#ifndef FLYWHEEL_GEMM_ARGS_DEFINED_
#define FLYWHEEL_GEMM_ARGS_DEFINED_
namespace flywheel::engine::gemm_internal {

// One GEMM as the per-target code sees it. A element (i, p) is a[i * a_rs + p * a_cs].
struct TileArgs {
  int64_t m, n, k;
  const float* a;
  int64_t a_rs, a_cs;
  const float* b;  // packed panels, see PackedB
  float alpha, beta;
  float* c;
  int64_t ldc;
  const float* bias;
  Activation act;
};

}  // namespace flywheel::engine::gemm_internal
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "engine/kernels/gemm.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace flywheel::engine::gemm_internal {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// K block: a 256 x 32 block of B is 32 KiB, within L1 of current x86 cores.
constexpr int64_t kKc = 256;
constexpr int64_t kPw = kGemmPanelWidth;

// acc(MR x NV vectors) = A[MR, kc] @ Bpanels[kc, NV * lanes]; c = alpha * acc + beta * c.
template <int MR, int NV>
HWY_NOINLINE void Micro(const float* HWY_RESTRICT a, int64_t a_rs, int64_t a_cs,
                        const float* HWY_RESTRICT b, int64_t pstride, int64_t kc,
                        float* HWY_RESTRICT c, int64_t ldc, float alpha, float beta) {
  const DF d;
  constexpr int64_t L = static_cast<int64_t>(hn::MaxLanes(DF()));
  VF acc[MR][NV];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 16
    for (int j = 0; j < NV; ++j) acc[r][j] = hn::Zero(d);
  }
  // With K = 0 the operands may be null (empty tensors): form no pointers from them.
  const float* bj[NV] = {};
  const float* ar[MR] = {};
  if (kc > 0) {
#pragma GCC unroll 16
    for (int j = 0; j < NV; ++j) bj[j] = b + ((j * L) / kPw) * pstride + (j * L) % kPw;
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) ar[r] = a + r * a_rs;
  }
  for (int64_t p = 0; p < kc; ++p) {
    VF bv[NV];
#pragma GCC unroll 16
    for (int j = 0; j < NV; ++j) bv[j] = hn::Load(d, bj[j] + p * kPw);
    const int64_t ao = p * a_cs;
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const VF av = hn::Set(d, ar[r][ao]);
#pragma GCC unroll 16
      for (int j = 0; j < NV; ++j) acc[r][j] = hn::MulAdd(av, bv[j], acc[r][j]);
    }
  }
  const VF va = hn::Set(d, alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 16
      for (int j = 0; j < NV; ++j) hn::StoreU(hn::Mul(acc[r][j], va), d, c + r * ldc + j * L);
    }
  } else {
    const VF vb = hn::Set(d, beta);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 16
      for (int j = 0; j < NV; ++j) {
        float* cp = c + r * ldc + j * L;
        hn::StoreU(hn::MulAdd(hn::LoadU(d, cp), vb, hn::Mul(acc[r][j], va)), d, cp);
      }
    }
  }
}

// Micro<mr, NV> for a runtime mr in [1, MR].
template <int MR, int NV>
HWY_INLINE void MicroRows(int64_t mr, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
                          int64_t pstride, int64_t kc, float* c, int64_t ldc, float alpha,
                          float beta) {
  if constexpr (MR > 1) {
    if (mr < MR) {
      MicroRows<MR - 1, NV>(mr, a, a_rs, a_cs, b, pstride, kc, c, ldc, alpha, beta);
      return;
    }
  }
  Micro<MR, NV>(a, a_rs, a_cs, b, pstride, kc, c, ldc, alpha, beta);
}

// Bias and activation on rows [0, mr) x columns [0, nw) of a finished tile at c.
HWY_INLINE void Epilogue(const TileArgs& g, float* c, int64_t mr, int64_t nw, int64_t col0) {
  const DF d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  for (int64_t r = 0; r < mr; ++r) {
    float* row = c + r * g.ldc;
    if (g.bias != nullptr) {
      const float* bias = g.bias + col0;
      int64_t j = 0;
      for (; j + L <= nw; j += L) {
        hn::StoreU(hn::Add(hn::LoadU(d, row + j), hn::LoadU(d, bias + j)), d, row + j);
      }
      for (; j < nw; ++j) row[j] += bias[j];
    }
  }
  if (g.act.kind != ActivationKind::kNone) ApplyActivationRows(g.act, c, mr, nw, g.ldc);
}

template <int MR, int NV>
void TilesImpl(const TileArgs& g, int64_t row0, int64_t row1, int64_t col0, int64_t col1) {
  constexpr int64_t L = static_cast<int64_t>(hn::MaxLanes(DF()));
  constexpr int64_t TW = NV * L;
  const int64_t pstride = g.k * kPw;
  col1 = std::min(col1, g.n);
  int64_t k0 = 0;
  do {
    const int64_t kc = std::min(kKc, g.k - k0);
    const bool last = k0 + kc >= g.k;
    const float beta = k0 == 0 ? g.beta : 1.0f;
    for (int64_t j0 = col0; j0 < col1; j0 += TW) {
      const float* bp = g.b + (j0 / kPw) * pstride + k0 * kPw;
      const int64_t nw = std::min(TW, g.n - j0);
      for (int64_t i0 = row0; i0 < row1; i0 += MR) {
        const int64_t mr = std::min<int64_t>(MR, row1 - i0);
        const float* ap = g.a + i0 * g.a_rs + k0 * g.a_cs;
        float* cp = g.c + i0 * g.ldc + j0;
        if (nw == TW) {
          MicroRows<MR, NV>(mr, ap, g.a_rs, g.a_cs, bp, pstride, kc, cp, g.ldc, g.alpha, beta);
        } else {
          // Partial tile at the right edge: compute a full tile on the stack, copy the valid part.
          HWY_ALIGN float tmp[MR * TW];
          if (beta != 0.0f) {
            for (int64_t r = 0; r < mr; ++r) std::memcpy(tmp + r * TW, cp + r * g.ldc, nw * 4);
          }
          MicroRows<MR, NV>(mr, ap, g.a_rs, g.a_cs, bp, pstride, kc, tmp, TW, g.alpha, beta);
          for (int64_t r = 0; r < mr; ++r) std::memcpy(cp + r * g.ldc, tmp + r * TW, nw * 4);
        }
        if (last) Epilogue(g, cp, mr, nw, j0);
      }
    }
    k0 += kc;
  } while (k0 < g.k);
}

// Computes rows [row0, row1) x columns [col0, col1) of C; col0 is a multiple of
// kGemmPackedColumnAlign.
#if HWY_TARGET == HWY_EMU128 || HWY_TARGET == HWY_SCALAR
// The portable fallback (x86 without AVX2 only) is plain scalar code: the register-blocked
// kernel gave wrong results on Highway 1.0.3's EMU128 target and is of no use without SIMD.
void GemmTiles(const TileArgs& g, int64_t row0, int64_t row1, int64_t col0, int64_t col1) {
  col1 = std::min(col1, g.n);
  for (int64_t i = row0; i < row1; ++i) {
    float* crow = g.c + i * g.ldc;
    for (int64_t j = col0; j < col1; ++j) {
      const float* bcol = g.b + (j / kPw) * g.k * kPw + j % kPw;
      float acc = 0.0f;
      for (int64_t p = 0; p < g.k; ++p) acc += g.a[i * g.a_rs + p * g.a_cs] * bcol[p * kPw];
      crow[j] = g.alpha * acc + (g.beta != 0.0f ? g.beta * crow[j] : 0.0f);
      if (g.bias != nullptr) crow[j] += g.bias[j];
    }
    if (g.act.kind != ActivationKind::kNone && col1 > col0) {
      ApplyActivation(g.act, crow + col0, col1 - col0);
    }
  }
}
#else
void GemmTiles(const TileArgs& g, int64_t row0, int64_t row1, int64_t col0, int64_t col1) {
  constexpr int64_t L = static_cast<int64_t>(hn::MaxLanes(DF()));
  if (row1 - row0 <= 4) {
    // Few rows (batch-1 inference): a GEMV over the packed weights; more vectors per row keep
    // enough independent FMA chains in flight.
    constexpr int kNv = L >= 16 ? 4 : (L >= 8 ? 4 : 8);
    TilesImpl<4, kNv>(g, row0, row1, col0, col1);
  } else if constexpr (L >= 16) {
    TilesImpl<12, 2>(g, row0, row1, col0, col1);
  } else if constexpr (L >= 8) {
    TilesImpl<6, 2>(g, row0, row1, col0, col1);
  } else {
    TilesImpl<4, 4>(g, row0, row1, col0, col1);
  }
}
#endif

}  // namespace HWY_NAMESPACE
}  // namespace flywheel::engine::gemm_internal
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace flywheel::engine {
namespace gemm_internal {
HWY_EXPORT(GemmTiles);

// Below this many multiply-adds per thread, waking another thread costs more than it saves.
constexpr int64_t kMinFmasPerThread = 96 * 1024;
// Rows per parallel task when M is split.
constexpr int64_t kRowBlock = 48;

void RunTiles(const TileArgs& g, ThreadPool* pool) {
  if (g.m <= 0 || g.n <= 0) return;
  const int64_t fmas = g.m * g.n * std::max<int64_t>(g.k, 1);
  const int threads = pool == nullptr ? 1 : pool->num_threads();
  const int64_t useful = std::min<int64_t>(threads, fmas / kMinFmasPerThread);
  if (useful <= 1) {
    HWY_DYNAMIC_DISPATCH(GemmTiles)(g, 0, g.m, 0, g.n);
    return;
  }
  const int64_t col_blocks = (g.n + kGemmPackedColumnAlign - 1) / kGemmPackedColumnAlign;
  // Split M only when the columns alone do not give every thread a few blocks.
  int64_t row_block = g.m;
  if (col_blocks < 2 * useful && g.m > kRowBlock) row_block = kRowBlock;
  const int64_t row_blocks = (g.m + row_block - 1) / row_block;
  const int64_t tasks = row_blocks * col_blocks;
  const int64_t grain = std::max<int64_t>(1, tasks / useful);
  pool->ParallelFor(tasks, grain, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t rb = t / col_blocks, cb = t % col_blocks;
      const int64_t r0 = rb * row_block, r1 = std::min(g.m, r0 + row_block);
      const int64_t c0 = cb * kGemmPackedColumnAlign;
      HWY_DYNAMIC_DISPATCH(GemmTiles)(g, r0, r1, c0, c0 + kGemmPackedColumnAlign);
    }
  });
}

// A per-thread buffer for packing a non-constant B; grows, never shrinks.
struct PackBuffer {
  float* data = nullptr;
  size_t capacity = 0;
  ~PackBuffer() { ::operator delete(data, std::align_val_t(kTensorAlignment)); }
  float* Get(size_t floats) {
    if (floats > capacity) {
      ::operator delete(data, std::align_val_t(kTensorAlignment));
      data = static_cast<float*>(
          ::operator new(floats * sizeof(float), std::align_val_t(kTensorAlignment)));
      capacity = floats;
    }
    return data;
  }
};

}  // namespace gemm_internal

int64_t PackedBSize(int64_t k, int64_t n) {
  const int64_t np =
      (n + kGemmPackedColumnAlign - 1) / kGemmPackedColumnAlign * kGemmPackedColumnAlign;
  return np * k;
}

void PackBInto(bool trans_b, int64_t k, int64_t n, const float* b, int64_t ldb, float* dst) {
  const int64_t pw = kGemmPanelWidth;
  const int64_t panels = PackedBSize(k, n) / std::max<int64_t>(k, 1) / pw;
  if (k == 0) return;
  for (int64_t p = 0; p < panels; ++p) {
    float* out = dst + p * k * pw;
    const int64_t j0 = p * pw;
    const int64_t w = std::clamp<int64_t>(n - j0, 0, pw);
    if (w < pw) std::memset(out, 0, k * pw * sizeof(float));
    if (w == 0) continue;
    if (!trans_b) {
      if (w == pw) {
        // Constant size: inlined as a few vector moves rather than a call per row.
        for (int64_t kk = 0; kk < k; ++kk) {
          std::memcpy(out + kk * pw, b + kk * ldb + j0, kGemmPanelWidth * sizeof(float));
        }
      } else {
        for (int64_t kk = 0; kk < k; ++kk) {
          for (int64_t j = 0; j < w; ++j) out[kk * pw + j] = b[kk * ldb + j0 + j];
        }
      }
    } else {
      for (int64_t j = 0; j < w; ++j) {
        const float* src = b + (j0 + j) * ldb;
        for (int64_t kk = 0; kk < k; ++kk) out[kk * pw + j] = src[kk];
      }
    }
  }
}

PackedB PackB(bool trans_b, int64_t k, int64_t n, const float* b, int64_t ldb) {
  PackedB p;
  p.k = k;
  p.n = n;
  p.n_padded = (n + kGemmPackedColumnAlign - 1) / kGemmPackedColumnAlign * kGemmPackedColumnAlign;
  p.data =
      Tensor::Allocate(DataType::kFp32, Shape{p.n_padded / kGemmPanelWidth, k, kGemmPanelWidth});
  PackBInto(trans_b, k, n, b, ldb, p.data.data<float>());
  return p;
}

void SgemmPanels(bool trans_a, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                 int64_t lda, const float* b_panels, float beta, float* c, int64_t ldc,
                 const GemmEpilogue& epilogue, ThreadPool* pool) {
  gemm_internal::TileArgs g;
  g.m = m;
  g.n = n;
  g.k = k;
  g.a = a;
  g.a_rs = trans_a ? 1 : lda;
  g.a_cs = trans_a ? lda : 1;
  g.b = b_panels;
  g.alpha = alpha;
  g.beta = beta;
  g.c = c;
  g.ldc = ldc;
  g.bias = epilogue.bias;
  g.act = epilogue.act;
  gemm_internal::RunTiles(g, pool);
}

void SgemmPacked(bool trans_a, int64_t m, float alpha, const float* a, int64_t lda,
                 const PackedB& b, float beta, float* c, int64_t ldc, const GemmEpilogue& epilogue,
                 ThreadPool* pool) {
  SgemmPanels(trans_a, m, b.n, b.k, alpha, a, lda, b.empty() ? nullptr : b.panels(), beta, c, ldc,
              epilogue, pool);
}

void Sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
           ThreadPool* pool) {
  if (m <= 0 || n <= 0) return;
  thread_local gemm_internal::PackBuffer buffer;
  float* packed = buffer.Get(static_cast<size_t>(std::max<int64_t>(PackedBSize(k, n), 1)));
  PackBInto(trans_b, k, n, b, ldb, packed);
  SgemmPanels(trans_a, m, n, k, alpha, a, lda, packed, beta, c, ldc, GemmEpilogue{}, pool);
}

}  // namespace flywheel::engine
#endif  // HWY_ONCE
