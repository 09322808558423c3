// Tensor: an element type, a shape and a buffer. A tensor either owns its buffer (64-byte aligned,
// shared between copies of the Tensor object) or is a view on memory owned elsewhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data_type.h"
#include "core/shape.h"

namespace flywheel {

// Alignment of every buffer flywheel allocates: a cache line, and a full AVX-512 vector.
inline constexpr size_t kTensorAlignment = 64;

// Aligned allocation used by tensors and arenas. Counted, so that tests can assert a code path
// allocates nothing.
void* AlignedAlloc(size_t bytes);
void AlignedFree(void* p);
// Number of AlignedAlloc calls since the process started.
int64_t AlignedAllocCount();

class Tensor {
 public:
  Tensor() = default;

  // A new owning tensor; contents uninitialised (zeroed when `zero` is true). For kBytes the
  // tensor holds NumElements() empty strings.
  static Tensor Allocate(DataType dtype, Shape shape, bool zero = false);
  // Like Allocate, but refuses shapes that are negative or absurdly large instead of failing to
  // allocate; `what` names the tensor in the error.
  static absl::StatusOr<Tensor> SafeAllocate(DataType dtype, Shape shape, absl::string_view what);
  // A non-owning view on `data`, which must outlive the tensor and every copy of it.
  static Tensor View(DataType dtype, Shape shape, void* data);
  // A tensor whose buffer is kept alive by `owner` (any shared object).
  static Tensor Shared(DataType dtype, Shape shape, std::shared_ptr<const void> owner, void* data);

  DataType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  int64_t dim(int i) const { return shape_[i]; }
  int64_t NumElements() const { return shape_.NumElements(); }
  // Bytes of element data; 0 for kBytes.
  size_t ByteSize() const { return static_cast<size_t>(NumElements()) * DataTypeSize(dtype_); }
  bool empty() const { return dtype_ == DataType::kInvalid; }
  // True when this object (or a copy) owns the buffer rather than viewing it.
  bool owns_data() const { return owner_ != nullptr; }
  // True when no other Tensor object shares this tensor's buffer.
  bool unique() const { return owner_ != nullptr && owner_.use_count() == 1; }

  void* raw_data() { return data_; }
  const void* raw_data() const { return data_; }
  template <typename T>
  T* data() {
    return static_cast<T*>(data_);
  }
  template <typename T>
  const T* data() const {
    return static_cast<const T*>(data_);
  }

  // The same buffer seen with another shape of equal element count.
  Tensor Reshaped(Shape shape) const;
  // A deep copy that owns its buffer.
  Tensor Clone() const;

  // BYTES tensors: one string per element, row-major.
  std::vector<std::string>& strings() { return *strings_; }
  const std::vector<std::string>& strings() const { return *strings_; }

  // "FP32 [2,3]"
  std::string DebugString() const;

 private:
  DataType dtype_ = DataType::kInvalid;
  Shape shape_;
  void* data_ = nullptr;
  std::shared_ptr<const void> owner_;
  std::shared_ptr<std::vector<std::string>> strings_;
};

}  // namespace flywheel
