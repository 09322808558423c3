#include "engine/kernels/broadcast.h"

#include "absl/strings/str_cat.h"

namespace flywheel::engine {

absl::StatusOr<Shape> BroadcastOutputShape(const Node& node, const Shape* const* shapes, int n) {
  Shape out = *shapes[0];
  for (int k = 1; k < n; ++k) {
    absl::StatusOr<Shape> s = BroadcastShapes(out, *shapes[k]);
    if (!s.ok()) {
      std::string all;
      for (int j = 0; j < n; ++j) absl::StrAppend(&all, j ? " and " : "", shapes[j]->ToString());
      return absl::InvalidArgumentError(
          absl::StrCat(node.Describe(), ": input shapes ", all, " cannot be broadcast"));
    }
    out = *std::move(s);
  }
  if (out.rank() > kMaxBroadcastRank) {
    return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": rank ", out.rank(),
                                                   " is above the supported maximum of ",
                                                   kMaxBroadcastRank));
  }
  return out;
}

void MakeBroadcastPlan(const Shape* const* shapes, int n, const Shape& out, BroadcastPlan* plan) {
  const int r = out.rank();
  plan->num_inputs = n;
  plan->rank = 0;
  plan->total = out.NumElements();
  unsigned prev_flags = ~0u;
  unsigned flags_of[kMaxBroadcastRank];
  for (int i = 0; i < r; ++i) {
    const int64_t od = out[i];
    if (od == 1) continue;  // size-1 output dims never move any index
    unsigned flags = 0;     // bit k: input k is broadcast along this dim
    for (int k = 0; k < n; ++k) {
      const int ik = i - (r - shapes[k]->rank());
      const int64_t d = ik >= 0 ? (*shapes[k])[ik] : 1;
      if (d == 1) flags |= 1u << k;
    }
    if (plan->rank > 0 && flags == prev_flags) {
      plan->dims[plan->rank - 1] *= od;
    } else {
      plan->dims[plan->rank] = od;
      flags_of[plan->rank] = flags;
      ++plan->rank;
    }
    prev_flags = flags;
  }
  if (plan->rank == 0) {
    plan->rank = 1;
    plan->dims[0] = 1;
    flags_of[0] = (1u << n) - 1;
  }
  for (int k = 0; k < n; ++k) {
    int64_t s = 1;
    for (int i = plan->rank - 1; i >= 0; --i) {
      if (flags_of[i] & (1u << k)) {
        plan->strides[k][i] = 0;
      } else {
        plan->strides[k][i] = s;
        s *= plan->dims[i];
      }
    }
  }
}

}  // namespace flywheel::engine
