// Single-precision matrix multiply shared by MatMul, Gemm, the fused GEMMs and attention: a
// register-blocked Highway micro-kernel (AVX-512 / AVX2 / portable) over B packed in column
// panels, with an optional fused epilogue (bias per column, then an activation) per output tile.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "engine/kernels/activation.h"

namespace flywheel::engine {

// Columns per packed panel of B, and the granularity the packed width is padded to.
inline constexpr int64_t kGemmPanelWidth = 16;
inline constexpr int64_t kGemmPackedColumnAlign = 64;

// B (K x N) packed once, e.g. constant weights at load: panels of kGemmPanelWidth columns, each
// panel K rows of kGemmPanelWidth floats, zero-padded to a multiple of kGemmPackedColumnAlign
// columns. Immutable after packing, so it may be shared by threads.
struct PackedB {
  int64_t k = 0;
  int64_t n = 0;
  int64_t n_padded = 0;
  Tensor data;  // FP32 [n_padded / kGemmPanelWidth, k, kGemmPanelWidth]

  bool empty() const { return data.empty(); }
  const float* panels() const { return data.data<float>(); }
};

// What to do with each output tile once its sum is complete:
// c = act(alpha * sum + beta * c + bias[col]).
struct GemmEpilogue {
  const float* bias = nullptr;  // [N] or nullptr
  Activation act;
};

// Packs op(B) (K x N; op transposes when trans_b) for SgemmPacked.
PackedB PackB(bool trans_b, int64_t k, int64_t n, const float* b, int64_t ldb);

// Row-major C[M,N] = alpha * op(A) @ op(B) + beta * C; op(A) is M x K, op(B) is K x N. When beta
// is 0, C is not read (it may hold garbage). `pool` may be nullptr (single-threaded); the work is
// split over the pool only when it is big enough to pay for waking threads. B is packed into a
// per-thread buffer that grows once and is then reused: no allocation in steady state.
void Sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
           ThreadPool* pool);

// Like Sgemm with B pre-packed, plus the fused epilogue.
void SgemmPacked(bool trans_a, int64_t m, float alpha, const float* a, int64_t lda,
                 const PackedB& b, float beta, float* c, int64_t ldc, const GemmEpilogue& epilogue,
                 ThreadPool* pool);

// Lower-level pieces for kernels that pack a non-constant B into their own scratch memory:
// floats needed to pack a K x N matrix, packing into `dst` (64-byte aligned), and the GEMM over
// such raw panels.
int64_t PackedBSize(int64_t k, int64_t n);
void PackBInto(bool trans_b, int64_t k, int64_t n, const float* b, int64_t ldb, float* dst);
void SgemmPanels(bool trans_a, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                 int64_t lda, const float* b_panels, float beta, float* c, int64_t ldc,
                 const GemmEpilogue& epilogue, ThreadPool* pool);

}  // namespace flywheel::engine
