// Batch prediction over a CompiledForest: rows are copied in blocks into a per-thread buffer
// (with the NaN padding column that leaves read), then every tree is walked for several rows at
// once (or, for a single row, several trees at once) so that independent node loads overlap.
// Each output adds its trees' leaves in model order, in float, as XGBoost does.
#pragma once

#include <cstdint>

#include "core/thread_pool.h"
#include "trees/compiled_forest.h"
#include "trees/objective.h"

namespace flywheel::trees {

// Predicts `n_rows` rows of `forest.num_features()` floats (row-major) into `out`, which has
// n_rows x TransformedColumns(transform, num_groups) floats. `transform` kIdentity gives margins.
// Rows are split across `pool` when it is given and there are enough of them.
void PredictRows(const CompiledForest& forest, OutputTransform transform, const float* rows,
                 int64_t n_rows, float* out, ThreadPool* pool);

}  // namespace flywheel::trees
