#include "trees/perfect_walk.h"

#include <algorithm>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "trees/perfect_walk.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace flywheel::trees::perfect_walk_internal {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Each row's direction at every node of the top levels comes from one compare of the node's
// threshold against its feature's column: 2^levels - 1 contiguous loads and compares per vector
// of rows, all independent. A row's direction at level L is then the outcome of the node it is
// at, picked from the level's 2^L outcomes by the directions it took above: a tree of 2^L - 1
// blends, each one instruction, with no per-node compare of positions.

// The outcome among go[kFirst, kFirst + kCount) that the directions bit[kBit..] pick (the most
// significant first). Recursion on template arguments unrolls it, so every vector stays in a
// register.
template <int kFirst, int kCount, int kBit, class V, class M>
HWY_INLINE V Pick(const V* go, const M* bit) {
  if constexpr (kCount == 1) {
    return go[kFirst];
  } else {
    constexpr int kHalf = kCount / 2;
    return hn::IfThenElse(bit[kBit], Pick<kFirst + kHalf, kHalf, kBit + 1>(go, bit),
                          Pick<kFirst, kHalf, kBit + 1>(go, bit));
  }
}

template <int kLevel, int kLevels, class D, class V, class M>
HWY_INLINE void Directions(D di, const V* go, M* bit) {
  if constexpr (kLevel < kLevels) {
    bit[kLevel] = hn::MaskFromVec(Pick<(1 << kLevel) - 1, (1 << kLevel), 0>(go, bit));
    Directions<kLevel + 1, kLevels>(di, go, bit);
  }
}

template <int kLevels, bool kNaN>
HWY_INLINE void WalkGroups(const PerfectNode* nodes, const uint8_t* default_left, const float* xt,
                           int64_t group_stride, int64_t n_groups, int32_t* out) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  constexpr size_t N = HWY_LANES(float);
  static_assert(N <= kGroupRows && kGroupRows % N == 0, "a group holds whole vectors");
  constexpr size_t kVecs = kGroupRows / N;
  constexpr int kNodes = (1 << kLevels) - 1;
  using VI = hn::Vec<decltype(di)>;
  using MI = hn::Mask<decltype(di)>;

  // The nodes, read once for all groups: the stores of positions below may alias them, so
  // the compiler would otherwise read them again for every group.
  const float* columns[kNodes];
  float thresholds[kNodes];
#pragma GCC unroll 64
  for (int m = 0; m < kNodes; ++m) {
    columns[m] = xt + nodes[m].offset;
    thresholds[m] = nodes[m].value;
  }
  for (int64_t g = 0; g < n_groups; ++g) {
    const int64_t at = g * group_stride;
    for (size_t v = 0; v < kVecs; ++v) {
      VI go[kNodes];
#pragma GCC unroll 64
      for (int m = 0; m < kNodes; ++m) {
        const auto x = hn::LoadU(df, columns[m] + at + v * N);
        const auto threshold = hn::Set(df, thresholds[m]);
        // Right when x >= threshold. A missing value (NaN) compares false: it goes left where
        // that is the default, else right. Without missing values, only nodes that lead to the
        // same leaf either way read NaN (the padding column).
        const auto right =
            (kNaN && !default_left[m]) ? hn::Not(hn::Lt(x, threshold)) : hn::Ge(x, threshold);
        go[m] = hn::VecFromMask(di, hn::RebindMask(di, right));
      }
      MI bit[kLevels];
      Directions<0, kLevels>(di, go, bit);
      const auto one = hn::Set(di, 1);
      auto pos = hn::Zero(di);
#pragma GCC unroll 8
      for (int level = 0; level < kLevels; ++level) {
        pos = hn::Add(hn::Add(pos, pos), hn::IfThenElseZero(bit[level], one));
      }
      hn::StoreU(pos, di, out + g * kGroupRows + v * N);
    }
  }
}

template <int kLevels>
HWY_INLINE void WalkGroupsAnyNaN(const PerfectNode* nodes, const uint8_t* default_left,
                                 const float* xt, int64_t group_stride, int64_t n_groups,
                                 bool with_nan, int32_t* pos) {
  if (with_nan) {
    WalkGroups<kLevels, true>(nodes, default_left, xt, group_stride, n_groups, pos);
  } else {
    WalkGroups<kLevels, false>(nodes, default_left, xt, group_stride, n_groups, pos);
  }
}

void WalkTopLevels(const PerfectNode* nodes, const uint8_t* default_left, int levels,
                   const float* xt, int64_t group_stride, int64_t n_groups, bool with_nan,
                   int32_t* pos) {
  switch (levels) {
    case 0:
      std::fill(pos, pos + n_groups * kGroupRows, 0);
      return;
    case 1:
      return WalkGroupsAnyNaN<1>(nodes, default_left, xt, group_stride, n_groups, with_nan, pos);
    case 2:
      return WalkGroupsAnyNaN<2>(nodes, default_left, xt, group_stride, n_groups, with_nan, pos);
    case 3:
      return WalkGroupsAnyNaN<3>(nodes, default_left, xt, group_stride, n_groups, with_nan, pos);
    case 4:
      return WalkGroupsAnyNaN<4>(nodes, default_left, xt, group_stride, n_groups, with_nan, pos);
    default:
      return WalkGroupsAnyNaN<5>(nodes, default_left, xt, group_stride, n_groups, with_nan, pos);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace flywheel::trees::perfect_walk_internal
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace flywheel::trees {
namespace perfect_walk_internal {
HWY_EXPORT(WalkTopLevels);

// Dispatches from inside this namespace: with a single compiled target, HWY_DYNAMIC_DISPATCH
// expands to a namespace-relative name that must resolve here.
void Dispatch(const PerfectNode* nodes, const uint8_t* default_left, int levels, const float* xt,
              int64_t group_stride, int64_t n_groups, bool with_nan, int32_t* pos) {
  HWY_DYNAMIC_DISPATCH(WalkTopLevels)
  (nodes, default_left, levels, xt, group_stride, n_groups, with_nan, pos);
}
}  // namespace perfect_walk_internal

void WalkTopLevels(const PerfectNode* nodes, const uint8_t* default_left, int levels,
                   const float* xt, int64_t group_stride, int64_t n_groups, bool with_nan,
                   int32_t* pos) {
  perfect_walk_internal::Dispatch(nodes, default_left, levels, xt, group_stride, n_groups, with_nan,
                                  pos);
}

}  // namespace flywheel::trees
#endif  // HWY_ONCE
