#include "core/shape.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace flywheel {

int64_t Shape::NumElements() const { return Product(0, rank()); }

int64_t Shape::Product(int begin, int end) const {
  int64_t n = 1;
  for (int i = begin; i < end; ++i) n *= dims_[i];
  return n;
}

bool Shape::IsFullyDefined() const {
  for (int64_t d : dims_) {
    if (d < 0) return false;
  }
  return true;
}

std::string Shape::ToString() const { return absl::StrCat("[", absl::StrJoin(dims_, ","), "]"); }

absl::StatusOr<Shape> Shape::Checked(absl::Span<const int64_t> dims, absl::string_view what) {
  // Elements above 2^40 cannot be real tensors on any machine we serve; refusing them early keeps
  // every later size computation far from overflow.
  constexpr int64_t kMaxElements = int64_t{1} << 40;
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": negative dimension in shape [", absl::StrJoin(dims, ","), "]"));
    }
    if (d != 0 && n > kMaxElements / d) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": shape [", absl::StrJoin(dims, ","), "] has too many elements"));
    }
    n *= d;
  }
  if (dims.size() > 16) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": rank ", dims.size(), " is above the supported maximum of 16"));
  }
  return Shape(dims);
}

absl::StatusOr<Shape> BroadcastShapes(const Shape& a, const Shape& b) {
  int rank = std::max(a.rank(), b.rank());
  Shape out;
  out.mutable_dims().resize(rank);
  for (int i = 0; i < rank; ++i) {
    int ia = i - (rank - a.rank()), ib = i - (rank - b.rank());
    int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    if (da == db || db == 1) {
      out.set_dim(i, da);
    } else if (da == 1) {
      out.set_dim(i, db);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("shapes ", a.ToString(), " and ", b.ToString(), " cannot be broadcast"));
    }
  }
  return out;
}

}  // namespace flywheel
