#include "engine/kernels/kernel_util.h"

#include "absl/strings/str_cat.h"

namespace flywheel::engine {

absl::StatusOr<int> NormalizeAxis(int64_t axis, int rank, const Node& node) {
  if (axis < -rank || axis >= std::max(rank, 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat(node.Describe(), ": axis ", axis, " is out of range for rank ", rank));
  }
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

absl::StatusOr<IntList> ReadInts(const Tensor& t, const Node& node, absl::string_view what) {
  IntList out;
  const int64_t n = t.NumElements();
  if (t.dtype() == DataType::kInt64) {
    out.assign(t.data<int64_t>(), t.data<int64_t>() + n);
  } else if (t.dtype() == DataType::kInt32) {
    out.assign(t.data<int32_t>(), t.data<int32_t>() + n);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        node.Describe(), ": ", what, " must be INT64 or INT32, got ", DataTypeName(t.dtype())));
  }
  return out;
}

IntList Strides(const Shape& shape) {
  IntList strides(shape.rank());
  int64_t s = 1;
  for (int i = shape.rank() - 1; i >= 0; --i) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

}  // namespace flywheel::engine
