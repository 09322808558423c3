// The top levels of a perfect tree (compiled_forest.h) walked in SIMD over feature-major groups
// of kGroupRows rows (Highway: AVX-512, AVX2, a 128-bit fallback, NEON; chosen at run time).
// Near the root a level has few nodes, so each node is compared against the whole feature
// column of the group (contiguous loads, no gathers), and each row's direction at a level is
// picked from its level's outcomes by blends on the directions it took above. Deeper, where rows
// spread over many nodes, the predictor continues with scalar walks.
#pragma once

#include <cstdint>

#include "trees/compiled_forest.h"

namespace flywheel::trees {

// Walks the first `levels` levels (at most the tree's depth, and at most 5) of the perfect tree at
// `nodes`
// (`default_left` beside it) for the `n_groups` groups at xt, xt + group_stride, ...;
// pos[g * kGroupRows + r] receives the node row r of group g reached, counted within level
// `levels` (its perfect index is 2^levels - 1 + pos). `with_nan`: the rows may hold NaN.
void WalkTopLevels(const PerfectNode* nodes, const uint8_t* default_left, int levels,
                   const float* xt, int64_t group_stride, int64_t n_groups, bool with_nan,
                   int32_t* pos);

}  // namespace flywheel::trees
