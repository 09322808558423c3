// Tensor shapes: a short list of dimensions. A negative dimension (-1) means "not known until run
// time" and appears only in declared signatures, never in the shape of a real tensor.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace flywheel {

class Shape {
 public:
  using Dims = absl::InlinedVector<int64_t, 6>;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) : dims_(dims) {}
  explicit Shape(absl::Span<const int64_t> dims) : dims_(dims.begin(), dims.end()) {}

  int rank() const { return static_cast<int>(dims_.size()); }
  int64_t dim(int i) const { return dims_[i]; }
  int64_t operator[](int i) const { return dims_[i]; }
  void set_dim(int i, int64_t d) { dims_[i] = d; }
  const Dims& dims() const { return dims_; }
  Dims& mutable_dims() { return dims_; }
  void push_back(int64_t d) { dims_.push_back(d); }

  // Product of dimensions (1 for a scalar). REQUIRES: IsFullyDefined().
  int64_t NumElements() const;
  // True when no dimension is negative.
  bool IsFullyDefined() const;
  // Product of dims [begin, end).
  int64_t Product(int begin, int end) const;

  // "[2,3,4]"; unknown dims print as -1.
  std::string ToString() const;

  // A shape whose element count fits int64 and whose dims are all >= 0. `what` names the tensor in
  // the error ("input 'x'").
  static absl::StatusOr<Shape> Checked(absl::Span<const int64_t> dims, absl::string_view what);

  friend bool operator==(const Shape& a, const Shape& b) { return a.dims_ == b.dims_; }
  friend bool operator!=(const Shape& a, const Shape& b) { return !(a == b); }
  template <typename H>
  friend H AbslHashValue(H h, const Shape& s) {
    return H::combine(std::move(h), s.dims_);
  }

 private:
  Dims dims_;
};

// Broadcasts two shapes with numpy rules; error names both shapes.
absl::StatusOr<Shape> BroadcastShapes(const Shape& a, const Shape& b);

}  // namespace flywheel
