// Small helpers shared by kernels: axis normalisation and reading small integer inputs (shapes,
// axes, pads) without heap allocation.
#pragma once

#include <cstdint>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "engine/graph.h"

namespace flywheel::engine {

// A short list of integers (axes, shape values) kept inline: no heap allocation for up to 8.
using IntList = absl::InlinedVector<int64_t, 8>;

// Maps an axis in [-rank, rank) to [0, rank), or fails naming the node.
absl::StatusOr<int> NormalizeAxis(int64_t axis, int rank, const Node& node);

// Reads an INT64 or INT32 tensor (of any shape) as a list of integers.
absl::StatusOr<IntList> ReadInts(const Tensor& t, const Node& node, absl::string_view what);

// Row-major strides of a shape, in elements.
IntList Strides(const Shape& shape);

}  // namespace flywheel::engine
