// Numpy-style broadcasting for elementwise kernels without heap allocation: a plan that collapses
// the output into as few dimensions as possible, with per-input strides (0 where an input is
// broadcast), and a walker that visits the output in contiguous runs.
#pragma once

#include <algorithm>
#include <cstdint>

#include "absl/status/status.h"
#include "core/shape.h"
#include "core/thread_pool.h"
#include "engine/kernel.h"

namespace flywheel::engine {

// Highest rank an elementwise kernel accepts (Shape::Checked allows no more).
inline constexpr int kMaxBroadcastRank = 16;
inline constexpr int kMaxBroadcastInputs = 3;
// Elements per parallel chunk: below this, thread wake-ups cost more than they save.
inline constexpr int64_t kElementwiseGrain = 16384;

struct BroadcastPlan {
  int rank = 1;  // collapsed rank, >= 1
  int num_inputs = 0;
  int64_t dims[kMaxBroadcastRank] = {1};
  // strides[k][i]: elements to step in input k per step along collapsed dim i; 0 when broadcast.
  int64_t strides[kMaxBroadcastInputs][kMaxBroadcastRank] = {};
  int64_t total = 1;

  int64_t inner() const { return dims[rank - 1]; }
  // Stride of input k along the innermost dimension: 1 (contiguous) or 0 (broadcast scalar).
  int64_t inner_stride(int k) const { return strides[k][rank - 1]; }
};

// Output shape of broadcasting `n` input shapes (n <= 3); error prefixed with the node's
// description, naming the shapes.
absl::StatusOr<Shape> BroadcastOutputShape(const Node& node, const Shape* const* shapes, int n);

// Builds the plan for inputs `shapes` broadcast to `out` (which must be their broadcast shape).
void MakeBroadcastPlan(const Shape* const* shapes, int n, const Shape& out, BroadcastPlan* plan);

// Calls fn(out_offset, in_offsets, len) for the contiguous runs covering output elements
// [begin, end). Along a run, input k advances by plan.inner_stride(k) per element.
template <typename F>
void ForEachRun(const BroadcastPlan& p, int64_t begin, int64_t end, F&& fn) {
  if (begin >= end) return;
  const int64_t inner = p.inner();
  int64_t row = begin / inner, col = begin % inner;
  // Counters over the outer dims [0, rank - 1), and the input offsets of the row start.
  int64_t idx[kMaxBroadcastRank];
  int64_t off[kMaxBroadcastInputs] = {0, 0, 0};
  int64_t rem = row;
  for (int i = p.rank - 2; i >= 0; --i) {
    idx[i] = rem % p.dims[i];
    rem /= p.dims[i];
    for (int k = 0; k < p.num_inputs; ++k) off[k] += idx[i] * p.strides[k][i];
  }
  int64_t pos = begin;
  while (pos < end) {
    const int64_t len = std::min(inner - col, end - pos);
    int64_t run_off[kMaxBroadcastInputs];
    for (int k = 0; k < p.num_inputs; ++k) run_off[k] = off[k] + col * p.inner_stride(k);
    fn(pos, static_cast<const int64_t*>(run_off), len);
    pos += len;
    col = 0;
    if (pos >= end) break;
    // Next row: odometer increment over the outer dims.
    for (int i = p.rank - 2; i >= 0; --i) {
      for (int k = 0; k < p.num_inputs; ++k) off[k] += p.strides[k][i];
      if (++idx[i] < p.dims[i]) break;
      for (int k = 0; k < p.num_inputs; ++k) off[k] -= idx[i] * p.strides[k][i];
      idx[i] = 0;
    }
  }
}

// Runs fn(begin, end) over [0, total) elements, in parallel chunks of >= kElementwiseGrain.
template <typename F>
void ParallelElements(const KernelContext& ctx, int64_t total, F&& fn) {
  if (total <= 0) return;
  if (total < 2 * kElementwiseGrain || ctx.num_threads() == 1) {
    fn(int64_t{0}, total);
    return;
  }
  const int64_t chunks = std::min<int64_t>(total / kElementwiseGrain, ctx.num_threads() * 4);
  const int64_t grain = (total + chunks - 1) / chunks;
  ctx.pool().ParallelFor(total, grain, fn);
}

}  // namespace flywheel::engine
