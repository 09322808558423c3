#include "trees/predictor.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "trees/perfect_walk.h"

namespace flywheel::trees {
namespace {

// Walks in flight per step. Each walk's chain of dependent loads (node, then feature, then the
// next node) is ~15 cycles long; independent walks keep the core busy meanwhile. Perfect trees
// walk all kGroupRows (16) rows of a group at once (measured: 8 are ~30% slower, 32 spill
// registers and are slower still); breadth-first walks over a group carry more state and walk
// 8 at a time; trees in flight for one row walk 16 at a time.
constexpr int kNodeLanes = 8;
constexpr int kRowLanes = 16;
static_assert(kGroupRows % kNodeLanes == 0);
// Rows per block: the block's rows stay in L1/L2 while every tree walks over them, and each
// tree's nodes are fetched once per block.
constexpr int64_t kMaxBlockGroups = 8;
constexpr int64_t kMaxBlockRows = kMaxBlockGroups * kGroupRows;
constexpr int64_t kBlockBytes = 256 * 1024;
// Models wider than this many features skip the feature-major copy (a group of kGroupRows rows
// would take more than 1 MiB) and walk each row on its own, trees in flight.
constexpr int64_t kMaxGroupedFeatures = (int64_t{1} << 20) / (kGroupRows * sizeof(float)) - 1;
constexpr float kNan = std::numeric_limits<float>::quiet_NaN();

struct Scratch {
  std::vector<float> rows;  // the block's feature-major groups, or one row (small batches)
  std::vector<float> acc;   // margins of the block's rows
  std::vector<float> leaf;  // one tree's leaf value per row of the block
};

Scratch& ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

// Runs fn(integral_constant<int, j>) for j in [0, kN), unrolled, so per-lane state lives in
// registers.
template <typename Fn, int... J>
inline __attribute__((always_inline)) void ForLanesImpl(Fn&& fn, std::integer_sequence<int, J...>) {
  (fn(std::integral_constant<int, J>()), ...);
}
template <int kN, typename Fn>
inline __attribute__((always_inline)) void ForLanes(Fn&& fn) {
  ForLanesImpl(fn, std::make_integer_sequence<int, kN>());
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

// One step from a breadth-first node for input x: to left + 0 or left + 1. A numeric split goes
// right unless x < threshold; NaN compares false and so goes right, and kNaN flips it where the
// default is left.
template <bool kNaN, bool kCat>
inline int32_t StepNode(const CompiledForest& f, const Node& n, float x) {
  const uint32_t ff = n.feature_flags;
  int right;
  if (kCat && (ff & kCategoricalBit)) {
    right = CategoryGoesRight(f, ff, n.value, x);
  } else {
    right = !(x < n.value);
    if (kNaN) right ^= static_cast<int>((x != x) & (ff >> 31));
  }
  return n.left + right;
}

// ---- Rows in flight: the block's rows, in feature-major groups, walk one tree at a time. ----

// Levels of a perfect tree walked in SIMD (perfect_walk.h) before the scalar walks take over.
// Level k costs 2^k column compares and 2^k - 1 blends per vector of rows against kGroupRows
// scalar steps; measured (1000 trees, depth 6 and 8): 4 levels beat 3 and 5 (docs/trees.md).
// WalkTopLevels takes at most 5.
constexpr int kSimdLevels = 4;

// The rest of a perfect tree for the kGroupRows rows of a group, from the nodes the SIMD levels
// reached (pos, within level `top`): `depth - top` steps of idx = 2 idx + 1 + right; the last
// level holds the values.
// kSteps > 0 fixes the number of steps at compile time (depth - top), so the loop unrolls and
// its counter does not take one of the registers the 16 walks need; 0 reads it at run time.
// kLanes < kGroupRows walks only the group's first rows (a block's last, partial group).
template <bool kNaN, bool kAdd, int kSteps, int kLanes = kGroupRows>
inline __attribute__((always_inline)) void FinishPerfect(const PerfectNode* nodes,
                                                         const uint8_t* default_left, int top,
                                                         int depth, const int32_t* pos,
                                                         const float* group, float* leaf) {
  // 64-bit indices and offsets fold into the loads' addressing modes.
  uint64_t idx[kLanes];
  const uint64_t first = (uint64_t{1} << top) - 1;
  ForLanes<kLanes>([&](auto j) { idx[j] = first + static_cast<uint64_t>(pos[j]); });
  const int steps = kSteps > 0 ? kSteps : depth - top;
#pragma GCC unroll 8
  for (int d = 0; d < steps; ++d) {
    ForLanes<kLanes>([&](auto j) {
      const PerfectNode n = nodes[idx[j]];
      const float x = group[uint64_t{n.offset} + j];
      if (kNaN) {
        // Missing values go right (NaN compares false) unless the default is left.
        const int right = !(x < n.value) ^ (static_cast<int>(x != x) & default_left[idx[j]]);
        idx[j] = 2 * idx[j] + 1 + right;
      } else {
        // No NaN here but the padding column, whose nodes lead to the same leaf either way:
        // x >= threshold is one flag of the compare, which the compiler adds with carry.
        idx[j] = 2 * idx[j] + 1 + (x >= n.value);
      }
    });
  }
  if (kAdd) {
    ForLanes<kLanes>([&](auto j) { leaf[j] += nodes[idx[j]].value; });
  } else {
    ForLanes<kLanes>([&](auto j) { leaf[j] = nodes[idx[j]].value; });
  }
}

// FinishPerfect over the block's n rows, with the step count fixed at compile time for the
// common depths (6 and 8, after the 4 SIMD levels). A last group of at most 8 rows walks only
// those (a batch of 100 is 6 groups and 4 rows).
template <bool kNaN, bool kAdd, int kSteps>
void FinishGroupsOf(const PerfectNode* nodes, const uint8_t* default_left, int top, int depth,
                    const int32_t* pos, const float* xt, int64_t group_stride, int64_t n,
                    float* out) {
  const int64_t full = n / kGroupRows;
  for (int64_t g = 0; g < full; ++g) {
    FinishPerfect<kNaN, kAdd, kSteps>(nodes, default_left, top, depth, pos + g * kGroupRows,
                                      xt + g * group_stride, out + g * kGroupRows);
  }
  const int64_t rest = n - full * kGroupRows;
  if (rest == 0) return;
  const int64_t o = full * kGroupRows;
  if (rest <= kGroupRows / 2) {
    FinishPerfect<kNaN, kAdd, kSteps, kGroupRows / 2>(nodes, default_left, top, depth, pos + o,
                                                      xt + full * group_stride, out + o);
  } else {
    FinishPerfect<kNaN, kAdd, kSteps>(nodes, default_left, top, depth, pos + o,
                                      xt + full * group_stride, out + o);
  }
}

template <bool kNaN, bool kAdd>
inline void FinishGroups(const PerfectNode* nodes, const uint8_t* default_left, int top, int depth,
                         const int32_t* pos, const float* xt, int64_t group_stride, int64_t n,
                         float* out) {
  switch (depth - top) {
    case 2:
      return FinishGroupsOf<kNaN, kAdd, 2>(nodes, default_left, top, depth, pos, xt, group_stride,
                                           n, out);
    case 4:
      return FinishGroupsOf<kNaN, kAdd, 4>(nodes, default_left, top, depth, pos, xt, group_stride,
                                           n, out);
    default:
      return FinishGroupsOf<kNaN, kAdd, 0>(nodes, default_left, top, depth, pos, xt, group_stride,
                                           n, out);
  }
}

// Any tree in the breadth-first layout, for kNodeLanes rows of a group starting at `group`.
template <bool kNaN, bool kCat>
inline void WalkNodes(const CompiledForest& f, int32_t root, int depth, const float* group,
                      float* leaf) {
  const Node* nodes = f.nodes().data();
  int32_t idx[kNodeLanes];
  ForLanes<kNodeLanes>([&](auto j) { idx[j] = root; });
  for (int d = 0; d < depth; ++d) {
    ForLanes<kNodeLanes>([&](auto j) {
      const Node& n = nodes[idx[j]];
      const float x = group[size_t{n.feature_flags & kFeatureMask} * kGroupRows + j];
      idx[j] = StepNode<kNaN, kCat>(f, n, x);
    });
  }
  ForLanes<kNodeLanes>([&](auto j) { leaf[j] = nodes[idx[j]].value; });
}

template <bool kNaN>
void SumTreesOverBlock(const CompiledForest& f, const float* xt, int64_t group_stride, int64_t n,
                       float* leaf, float* acc) {
  const int groups = f.num_groups();
  const PerfectNode* perfect = f.perfect_nodes().data();
  const uint8_t* perfect_dl = f.perfect_default_left().data();
  const int64_t n_groups = (n + kGroupRows - 1) / kGroupRows;
  int32_t pos[kMaxBlockRows];
  for (const CompiledTree& t : f.trees()) {
    if (t.perfect >= 0) {
      const int top = std::min<int>(t.depth, kSimdLevels);
      WalkTopLevels(perfect + t.perfect, perfect_dl + t.perfect, top, xt, group_stride, n_groups,
                    kNaN, pos);
      if (groups == 1) {
        // One output column: add straight into the margins (rows past n are scratch).
        FinishGroups<kNaN, true>(perfect + t.perfect, perfect_dl + t.perfect, top, t.depth, pos, xt,
                                 group_stride, n, acc);
        continue;
      }
      FinishGroups<kNaN, false>(perfect + t.perfect, perfect_dl + t.perfect, top, t.depth, pos, xt,
                                group_stride, n, leaf);
    }
    for (int64_t g = 0; g < n_groups && t.perfect < 0; ++g) {
      const float* group = xt + g * group_stride;
      float* out = leaf + g * kGroupRows;
      for (int j = 0; j < kGroupRows; j += kNodeLanes) {
        if (t.has_categorical) {
          WalkNodes<kNaN, true>(f, t.root, t.depth, group + j, out + j);
        } else {
          WalkNodes<kNaN, false>(f, t.root, t.depth, group + j, out + j);
        }
      }
    }
    // Added tree by tree, so each output's sum is XGBoost's, in XGBoost's order.
    if (groups == 1) {
      for (int64_t r = 0; r < n; ++r) acc[r] += leaf[r];  // contiguous: vectorised
    } else {
      float* a = acc + t.group;
      for (int64_t r = 0; r < n; ++r) a[r * groups] += leaf[r];
    }
  }
}

// ---- Trees in flight: for one row, kRowLanes consecutive trees walk together. ----

template <bool kNaN, bool kCat>
inline void WalkTreesOfRow(const CompiledForest& f, const int32_t* roots, int depth,
                           const float* row, float* leaf) {
  const Node* nodes = f.nodes().data();
  int32_t idx[kRowLanes];
  ForLanes<kRowLanes>([&](auto j) { idx[j] = roots[j]; });
  for (int d = 0; d < depth; ++d) {
    ForLanes<kRowLanes>([&](auto j) {
      const Node& n = nodes[idx[j]];
      idx[j] = StepNode<kNaN, kCat>(f, n, row[n.feature_flags & kFeatureMask]);
    });
  }
  ForLanes<kRowLanes>([&](auto j) { leaf[j] = nodes[idx[j]].value; });
}

template <bool kNaN>
void SumTreesForRow(const CompiledForest& f, const float* row, float* acc) {
  const auto& trees = f.trees();
  const int64_t n = static_cast<int64_t>(trees.size());
  int32_t roots[kRowLanes];
  float leaf[kRowLanes];
  for (int64_t t0 = 0; t0 < n; t0 += kRowLanes) {
    const int live = static_cast<int>(std::min<int64_t>(kRowLanes, n - t0));
    int depth = 0;
    bool cat = false;
    for (int j = 0; j < kRowLanes; ++j) {
      // Lanes past the last tree repeat it; their leaves are dropped.
      const CompiledTree& t = trees[t0 + std::min(j, live - 1)];
      roots[j] = t.root;
      depth = std::max(depth, static_cast<int>(t.depth));
      cat |= t.has_categorical;
    }
    // Walking past a tree's own depth is harmless: its leaves step to themselves.
    if (cat) {
      WalkTreesOfRow<kNaN, true>(f, roots, depth, row, leaf);
    } else {
      WalkTreesOfRow<kNaN, false>(f, roots, depth, row, leaf);
    }
    for (int j = 0; j < live; ++j) acc[trees[t0 + j].group] += leaf[j];
  }
}

// Rows [r0, r1) of the input, in blocks.
void PredictRange(const CompiledForest& f, OutputTransform transform, const float* rows, int64_t r0,
                  int64_t r1, float* out) {
  const int64_t cols = f.num_features();
  const int groups = f.num_groups();
  const int out_cols = TransformedColumns(transform, groups);
  // A group holds kGroupRows rows of cols + 1 features: the last is the NaN padding column that
  // leaves read.
  const int64_t group_stride = (cols + 1) * kGroupRows;
  const bool grouped = cols <= kMaxGroupedFeatures;
  const int64_t block_groups = std::clamp<int64_t>(
      kBlockBytes / (group_stride * static_cast<int64_t>(sizeof(float))), 1, kMaxBlockGroups);
  const int64_t block_rows = block_groups * kGroupRows;
  Scratch& s = ThreadScratch();
  const int64_t row_floats = grouped ? block_groups * group_stride : cols + 1;
  if (static_cast<int64_t>(s.rows.size()) < row_floats) s.rows.resize(row_floats);
  if (static_cast<int64_t>(s.acc.size()) < block_rows * groups) s.acc.resize(block_rows * groups);
  if (static_cast<int64_t>(s.leaf.size()) < block_rows) s.leaf.resize(block_rows);

  for (int64_t b0 = r0; b0 < r1; b0 += block_rows) {
    const int64_t n = std::min(block_rows, r1 - b0);
    const float* src = rows + b0 * cols;
    bool has_nan = false;
    for (int64_t i = 0; i < n * cols; ++i) has_nan |= std::isnan(src[i]);
    std::fill(s.acc.begin(), s.acc.begin() + n * groups, f.base_margin());
    if (grouped && n >= kNodeLanes) {
      // Transpose into feature-major groups; rows past n repeat the last row (their results are
      // dropped).
      const int64_t n_groups = (n + kGroupRows - 1) / kGroupRows;
      for (int64_t g = 0; g < n_groups; ++g) {
        float* dst = s.rows.data() + g * group_stride;
        for (int j = 0; j < kGroupRows; ++j) {
          const float* row = src + std::min<int64_t>(g * kGroupRows + j, n - 1) * cols;
          for (int64_t c = 0; c < cols; ++c) dst[c * kGroupRows + j] = row[c];
          dst[cols * kGroupRows + j] = kNan;
        }
      }
      if (has_nan) {
        SumTreesOverBlock<true>(f, s.rows.data(), group_stride, n, s.leaf.data(), s.acc.data());
      } else {
        SumTreesOverBlock<false>(f, s.rows.data(), group_stride, n, s.leaf.data(), s.acc.data());
      }
    } else {
      for (int64_t r = 0; r < n; ++r) {
        float* row = s.rows.data();
        std::memcpy(row, src + r * cols, cols * sizeof(float));
        row[cols] = kNan;
        if (has_nan) {
          SumTreesForRow<true>(f, row, s.acc.data() + r * groups);
        } else {
          SumTreesForRow<false>(f, row, s.acc.data() + r * groups);
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
  // Waking workers costs microseconds: split only batches worth tens of microseconds (a step
  // takes about a nanosecond), and give each thread at least a group of rows.
  constexpr int64_t kMinSteps = 100000;
  const int threads = pool == nullptr ? 1 : pool->num_threads();
  if (threads <= 1 || n_rows < 2 * kGroupRows ||
      n_rows * std::max<int64_t>(forest.total_depth(), 1) < kMinSteps) {
    PredictRange(forest, transform, rows, 0, n_rows, out);
    return;
  }
  // Small batches: one even chunk per thread. Large ones: a few blocks per chunk, so that
  // threads slowed by other work on the machine do not hold up the rest.
  const int64_t grain = n_rows <= threads * 4 * kMaxBlockRows
                            ? std::max<int64_t>(kGroupRows, (n_rows + threads - 1) / threads)
                            : 2 * kMaxBlockRows;
  pool->ParallelFor(n_rows, grain, [&](int64_t r0, int64_t r1) {
    PredictRange(forest, transform, rows, r0, r1, out);
  });
}

}  // namespace flywheel::trees
