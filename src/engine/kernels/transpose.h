// Strided copies between tensors of any element size, and Transpose built on them. Slice, Expand,
// Tile and Pad reduce to the same copy with other strides, so they share this code.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/container/inlined_vector.h"
#include "absl/types/span.h"
#include "core/shape.h"
#include "core/thread_pool.h"

namespace flywheel::engine {

// Highest rank StridedCopy accepts (Tile doubles the rank of its input).
inline constexpr int kMaxStridedRank = 16;
using StrideList = absl::InlinedVector<int64_t, kMaxStridedRank>;

// For every multi-index i of `dims`: dst[sum i_k * dst_strides[k]] = src[sum i_k * src_strides[k]],
// strides in elements. Source strides may be 0 (broadcast) or negative; `src` and `dst` point at
// the element of index 0. Merges contiguous axes, copies contiguous rows with memcpy, tiles 2-D
// transposes, and splits big copies over `pool` (may be null).
// REQUIRES: dims.size() <= kMaxStridedRank, elem_size in {1, 2, 4, 8}, destinations distinct.
void StridedCopy(const void* src, void* dst, size_t elem_size, absl::Span<const int64_t> dims,
                 absl::Span<const int64_t> src_strides, absl::Span<const int64_t> dst_strides,
                 ThreadPool* pool);

// Writes the transpose of a row-major tensor of shape `in_shape`: output axis k is input axis
// perm[k]. REQUIRES: perm is a permutation of [0, rank), rank <= kMaxStridedRank.
void TransposeData(const void* src, void* dst, size_t elem_size, const Shape& in_shape,
                   absl::Span<const int64_t> perm, ThreadPool* pool);

}  // namespace flywheel::engine
