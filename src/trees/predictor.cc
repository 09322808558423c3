#include "trees/predictor.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace flywheel::trees {
namespace {

// Independent walks in flight per step; enough to cover a node load's latency.
constexpr int kLanes = 8;
// Rows per block: the block's rows stay in L1/L2 while every tree walks over them.
constexpr int64_t kMaxBlockRows = 64;
constexpr int64_t kBlockBytes = 48 * 1024;

struct Scratch {
  std::vector<float> rows;
  std::vector<float> acc;
};

Scratch& ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

// Whether a categorical split sends x right: x is a category in the node's set. Missing values
// follow the default; negative, huge or out-of-set categories go left.
inline int CategoryGoesRight(const CompiledForest& f, uint32_t feature_flags, float value,
                             float x) {
  if (std::isnan(x)) return (feature_flags & kDefaultLeftBit) ? 0 : 1;
  if (!(x >= 0.0f && x < 16777216.0f)) return 0;
  const uint32_t c = static_cast<uint32_t>(x);
  const CategorySet& set = f.category_sets()[std::bit_cast<uint32_t>(value)];
  if (c / 32 >= set.num_words) return 0;
  return (f.category_bits()[set.word + c / 32] >> (c % 32)) & 1;
}

// One step of a walk: from node `idx`, read the row's feature and go to a child.
template <bool kNaN, bool kCat>
inline int32_t Step(const CompiledForest& f, const Node* nodes, int32_t idx, const float* row) {
  const Node& n = nodes[idx];
  const uint32_t ff = n.feature_flags;
  const float x = row[ff & kFeatureMask];
  int right;
  if (kCat && (ff & kCategoricalBit)) {
    right = CategoryGoesRight(f, ff, n.value, x);
  } else {
    right = !(x < n.value);
    // NaN compares false, so it already goes right; flip it where the default is left.
    if (kNaN) right ^= static_cast<int>((x != x) & (ff >> 31));
  }
  return n.left + right;
}

// Walks kLanes (start node, row) pairs `depth` steps, leaving the leaf indices in idx.
template <bool kNaN, bool kCat>
inline void Walk(const CompiledForest& f, int depth, int32_t* idx, const float* const* row) {
  const Node* nodes = f.nodes().data();
  int32_t i[kLanes];
  for (int j = 0; j < kLanes; ++j) i[j] = idx[j];
  for (int d = 0; d < depth; ++d) {
    for (int j = 0; j < kLanes; ++j) i[j] = Step<kNaN, kCat>(f, nodes, i[j], row[j]);
  }
  for (int j = 0; j < kLanes; ++j) idx[j] = i[j];
}

template <bool kNaN>
inline void WalkTree(const CompiledForest& f, bool cat, int depth, int32_t* idx,
                     const float* const* row) {
  if (cat) {
    Walk<kNaN, true>(f, depth, idx, row);
  } else {
    Walk<kNaN, false>(f, depth, idx, row);
  }
}

// Rows in flight: each tree walks kLanes rows of the block at a time.
template <bool kNaN>
void SumTreesOverRows(const CompiledForest& f, const float* block, int64_t stride, int64_t n,
                      float* acc) {
  const int groups = f.num_groups();
  const Node* nodes = f.nodes().data();
  for (const CompiledTree& t : f.trees()) {
    for (int64_t r0 = 0; r0 < n; r0 += kLanes) {
      const int live = static_cast<int>(std::min<int64_t>(kLanes, n - r0));
      int32_t idx[kLanes];
      const float* row[kLanes];
      for (int j = 0; j < kLanes; ++j) {
        idx[j] = t.root;
        // Lanes past the end of the block repeat its last row; their results are dropped.
        row[j] = block + std::min<int64_t>(r0 + j, n - 1) * stride;
      }
      WalkTree<kNaN>(f, t.has_categorical, t.depth, idx, row);
      for (int j = 0; j < live; ++j) acc[(r0 + j) * groups + t.group] += nodes[idx[j]].value;
    }
  }
}

// Trees in flight: for one row, kLanes consecutive trees walk together.
template <bool kNaN>
void SumTreesForRow(const CompiledForest& f, const float* row, float* acc) {
  const Node* nodes = f.nodes().data();
  const auto& trees = f.trees();
  const int64_t n = static_cast<int64_t>(trees.size());
  const float* rows[kLanes];
  for (int j = 0; j < kLanes; ++j) rows[j] = row;
  for (int64_t t0 = 0; t0 < n; t0 += kLanes) {
    const int live = static_cast<int>(std::min<int64_t>(kLanes, n - t0));
    int32_t idx[kLanes];
    int depth = 0;
    bool cat = false;
    for (int j = 0; j < kLanes; ++j) {
      const CompiledTree& t = trees[t0 + std::min(j, live - 1)];
      idx[j] = t.root;
      depth = std::max(depth, static_cast<int>(t.depth));
      cat |= t.has_categorical;
    }
    // Walking past a tree's own depth is harmless: its leaves step to themselves.
    WalkTree<kNaN>(f, cat, depth, idx, rows);
    // Added one by one, in tree order, so each output's sum is XGBoost's.
    for (int j = 0; j < live; ++j) acc[trees[t0 + j].group] += nodes[idx[j]].value;
  }
}

// Rows [r0, r1) of the input, in blocks.
void PredictRange(const CompiledForest& f, OutputTransform transform, const float* rows, int64_t r0,
                  int64_t r1, float* out) {
  const int64_t cols = f.num_features();
  const int64_t stride = cols + 1;
  const int groups = f.num_groups();
  const int out_cols = TransformedColumns(transform, groups);
  const int64_t block_rows = std::clamp<int64_t>(
      kBlockBytes / (stride * static_cast<int64_t>(sizeof(float))), kLanes, kMaxBlockRows);
  Scratch& s = ThreadScratch();
  if (static_cast<int64_t>(s.rows.size()) < block_rows * stride) s.rows.resize(block_rows * stride);
  if (static_cast<int64_t>(s.acc.size()) < block_rows * groups) s.acc.resize(block_rows * groups);
  constexpr float kNan = std::numeric_limits<float>::quiet_NaN();

  for (int64_t b0 = r0; b0 < r1; b0 += block_rows) {
    const int64_t n = std::min(block_rows, r1 - b0);
    bool has_nan = false;
    for (int64_t r = 0; r < n; ++r) {
      const float* src = rows + (b0 + r) * cols;
      float* dst = s.rows.data() + r * stride;
      std::memcpy(dst, src, cols * sizeof(float));
      dst[cols] = kNan;
      for (int64_t c = 0; c < cols; ++c) has_nan |= std::isnan(src[c]);
    }
    std::fill(s.acc.begin(), s.acc.begin() + n * groups, f.base_margin());
    if (n >= kLanes) {
      if (has_nan) {
        SumTreesOverRows<true>(f, s.rows.data(), stride, n, s.acc.data());
      } else {
        SumTreesOverRows<false>(f, s.rows.data(), stride, n, s.acc.data());
      }
    } else {
      for (int64_t r = 0; r < n; ++r) {
        if (has_nan) {
          SumTreesForRow<true>(f, s.rows.data() + r * stride, s.acc.data() + r * groups);
        } else {
          SumTreesForRow<false>(f, s.rows.data() + r * stride, s.acc.data() + r * groups);
        }
      }
    }
    ApplyTransform(transform, s.acc.data(), n, groups, out + b0 * out_cols);
  }
}

}  // namespace

void PredictRows(const CompiledForest& forest, OutputTransform transform, const float* rows,
                 int64_t n_rows, float* out, ThreadPool* pool) {
  if (n_rows <= 0) return;
  // Below a few blocks per thread, splitting costs more than it saves.
  constexpr int64_t kGrain = 2 * kMaxBlockRows;
  if (pool == nullptr || pool->num_threads() <= 1 || n_rows < 2 * kGrain) {
    PredictRange(forest, transform, rows, 0, n_rows, out);
    return;
  }
  const int64_t grain =
      std::max(kGrain, (n_rows + 4 * pool->num_threads() - 1) / (4 * pool->num_threads()));
  pool->ParallelFor(n_rows, grain, [&](int64_t r0, int64_t r1) {
    PredictRange(forest, transform, rows, r0, r1, out);
  });
}

}  // namespace flywheel::trees
