// Vectorised float32 loops shared by the elementwise, softmax and fused-epilogue kernels: unary
// math (exp, erf, tanh, activations), binary arithmetic and softmax rows. Each function is
// compiled for AVX-512, AVX2 and a portable fallback (Highway) and picks the best at run time.
#pragma once

#include <cstdint>

namespace flywheel::engine::simd {

enum class UnaryOp : int {
  kIdentity,
  kNeg,
  kAbs,
  kSqrt,
  kExp,
  kLog,
  kErf,
  kTanh,
  kSigmoid,
  kRelu,
  kLeakyRelu,    // alpha
  kElu,          // alpha
  kHardSigmoid,  // alpha, beta
  kClip,         // alpha = min, beta = max
  kGelu,         // exact: 0.5 x (1 + erf(x / sqrt(2)))
  kGeluTanh,     // tanh approximation
  kSquare,
  kReciprocal,
  kFloor,
  kCeil,
  kRound,  // half to even
  kSoftplus,
  kSin,
  kCos,
};

// out[i] = op(in[i]) for i in [0, n); `in` may equal `out`. Single-threaded.
void Unary(UnaryOp op, const float* in, float* out, int64_t n, float alpha = 0, float beta = 0);
// Unary in place on `rows` rows of n floats that start ld floats apart (a tile of a matrix): one
// dispatch for the whole tile.
void UnaryRows(UnaryOp op, float* data, int64_t rows, int64_t n, int64_t ld, float alpha = 0,
               float beta = 0);

enum class BinaryOp : int { kAdd, kSub, kMul, kDiv, kMax, kMin };

// out[i] = a[i] op b[i].
void Binary(BinaryOp op, const float* a, const float* b, float* out, int64_t n);
// out[i] = a[i] op b.
void BinaryVS(BinaryOp op, const float* a, float b, float* out, int64_t n);
// out[i] = a op b[i].
void BinarySV(BinaryOp op, float a, const float* b, float* out, int64_t n);

// Softmax (or log-softmax) of the contiguous row x[0, n) into y; stable (subtracts the max).
void SoftmaxRow(const float* x, float* y, int64_t n, bool log);
// SoftmaxRow on `rows` contiguous rows of n floats, with one dispatch (attention's short rows).
void SoftmaxRows(const float* x, float* y, int64_t rows, int64_t n, bool log);
// Softmax along a strided axis for `width` adjacent columns: element k of column j is at
// x[k * stride + j], k in [0, len).
void SoftmaxColumns(const float* x, float* y, int64_t len, int64_t stride, int64_t width, bool log);

}  // namespace flywheel::engine::simd
