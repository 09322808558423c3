#include "trees/perfect_walk.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "trees/perfect_walk.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace flywheel::trees::perfect_walk_internal {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <bool kNaN>
HWY_INLINE void WalkGroup(const PerfectNode* nodes, const uint8_t* default_left, int top,
                          const float* group, int32_t* out) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  constexpr size_t N = HWY_LANES(float);
  static_assert(N <= kGroupRows && kGroupRows % N == 0, "a group holds whole vectors");
  constexpr size_t kVecs = kGroupRows / N;
  using VI = hn::Vec<decltype(di)>;
  using MI = hn::Mask<decltype(di)>;

  // SIMD levels: pos[v] is each row's node within the current level.
  VI pos[kVecs];
  for (size_t v = 0; v < kVecs; ++v) pos[v] = hn::Zero(di);
  for (int level = 0; level < top; ++level) {
    const int first = (1 << level) - 1;
    MI right[kVecs];
    for (size_t v = 0; v < kVecs; ++v) right[v] = hn::FirstN(di, 0);
    for (int m = 0; m < (1 << level); ++m) {
      const PerfectNode n = nodes[first + m];
      const auto threshold = hn::Set(df, n.value);
      const auto here = hn::Set(di, m);
      const bool dl = kNaN && default_left[first + m];
      for (size_t v = 0; v < kVecs; ++v) {
        const auto x = hn::LoadU(df, group + n.offset + v * N);
        // Right when x >= threshold. A missing value (NaN) compares false: it goes left where
        // that is the default, else right. Without missing values, only nodes that lead to the
        // same leaf either way read NaN (the padding column).
        const auto go = (kNaN && !dl) ? hn::Not(hn::Lt(x, threshold)) : hn::Ge(x, threshold);
        right[v] = hn::Or(right[v], hn::And(hn::Eq(pos[v], here), hn::RebindMask(di, go)));
      }
    }
    const auto one = hn::Set(di, 1);
    for (size_t v = 0; v < kVecs; ++v) {
      pos[v] = hn::Add(hn::Add(pos[v], pos[v]), hn::IfThenElseZero(right[v], one));
    }
  }

  for (size_t v = 0; v < kVecs; ++v) hn::StoreU(pos[v], di, out + v * N);
}

void WalkTopLevels(const PerfectNode* nodes, const uint8_t* default_left, int levels,
                   const float* xt, int64_t group_stride, int64_t n_groups, bool with_nan,
                   int32_t* pos) {
  for (int64_t g = 0; g < n_groups; ++g) {
    if (with_nan) {
      WalkGroup<true>(nodes, default_left, levels, xt + g * group_stride, pos + g * kGroupRows);
    } else {
      WalkGroup<false>(nodes, default_left, levels, xt + g * group_stride, pos + g * kGroupRows);
    }
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
