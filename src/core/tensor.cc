#include "core/tensor.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "absl/strings/str_cat.h"

namespace flywheel {
namespace {

std::atomic<int64_t> g_alloc_count{0};

// Owner of an aligned buffer; the shared_ptr in Tensor points at this.
struct AlignedBuffer {
  explicit AlignedBuffer(size_t bytes) : data(AlignedAlloc(bytes)) {}
  ~AlignedBuffer() { AlignedFree(data); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  void* data;
};

}  // namespace

void* AlignedAlloc(size_t bytes) {
  g_alloc_count.fetch_add(1, std::memory_order_relaxed);
  // aligned_alloc needs a size that is a multiple of the alignment; never ask for 0 bytes.
  size_t rounded = (bytes + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment;
  if (rounded == 0) rounded = kTensorAlignment;
  void* p = std::aligned_alloc(kTensorAlignment, rounded);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void AlignedFree(void* p) { std::free(p); }

int64_t AlignedAllocCount() { return g_alloc_count.load(std::memory_order_relaxed); }

Tensor Tensor::Allocate(DataType dtype, Shape shape, bool zero) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  if (dtype == DataType::kBytes) {
    t.strings_ = std::make_shared<std::vector<std::string>>(t.NumElements());
    return t;
  }
  size_t bytes = t.ByteSize();
  auto buffer = std::make_shared<AlignedBuffer>(bytes);
  if (zero && bytes > 0) std::memset(buffer->data, 0, bytes);
  t.data_ = buffer->data;
  t.owner_ = std::move(buffer);
  return t;
}

absl::StatusOr<Tensor> Tensor::SafeAllocate(DataType dtype, Shape shape, absl::string_view what) {
  auto checked = Shape::Checked(shape.dims(), what);
  if (!checked.ok()) return checked.status();
  // 64 GiB is far above any model we serve and far below what would take the machine down.
  constexpr size_t kMaxBytes = size_t{64} << 30;
  size_t bytes = static_cast<size_t>(checked->NumElements()) * DataTypeSize(dtype);
  if (bytes > kMaxBytes) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": ", DataTypeName(dtype), " ",
                                                     checked->ToString(), " needs ", bytes,
                                                     " bytes, above the limit of ", kMaxBytes));
  }
  try {
    return Allocate(dtype, *std::move(checked));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": out of memory allocating ", bytes, " bytes"));
  }
}

Tensor Tensor::View(DataType dtype, Shape shape, void* data) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.data_ = data;
  return t;
}

Tensor Tensor::Shared(DataType dtype, Shape shape, std::shared_ptr<const void> owner, void* data) {
  Tensor t = View(dtype, std::move(shape), data);
  t.owner_ = std::move(owner);
  return t;
}

Tensor Tensor::Reshaped(Shape shape) const {
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::Clone() const {
  Tensor t = Allocate(dtype_, shape_);
  if (dtype_ == DataType::kBytes) {
    *t.strings_ = *strings_;
  } else if (ByteSize() > 0) {
    std::memcpy(t.data_, data_, ByteSize());
  }
  return t;
}

std::string Tensor::DebugString() const {
  return absl::StrCat(DataTypeName(dtype_), " ", shape_.ToString());
}

}  // namespace flywheel
