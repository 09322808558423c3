#include "api/http/http_message.h"

#include <algorithm>
#include <cstring>
#include <new>

namespace flywheel::api::http {
namespace {

constexpr size_t kAlignment = 64;

char* AllocateAligned(size_t bytes) {
  return static_cast<char*>(::operator new (bytes, std::align_val_t{kAlignment}));
}

void FreeAligned(char* p) { ::operator delete (p, std::align_val_t{kAlignment}); }

}  // namespace

BodyBytes::BodyBytes(size_t capacity, size_t aligned_at)
    : offset_((kAlignment - aligned_at % kAlignment) % kAlignment) {
  Reserve(std::max<size_t>(capacity, 1));
}

BodyBytes::~BodyBytes() {
  if (storage_ != nullptr) FreeAligned(storage_);
}

void BodyBytes::Reserve(size_t capacity) {
  char* storage = AllocateAligned(offset_ + capacity);
  if (size_ > 0) std::memcpy(storage + offset_, data_, size_);
  if (storage_ != nullptr) FreeAligned(storage_);
  storage_ = storage;
  data_ = storage + offset_;
  capacity_ = capacity;
}

void BodyBytes::Append(const char* p, size_t n) {
  if (n == 0) return;
  // Only chunked bodies grow; a Content-Length body was sized exactly by init().
  if (size_ + n > capacity_) Reserve(std::max(capacity_ * 2, size_ + n));
  std::memcpy(data_ + size_, p, n);
  size_ += n;
}

}  // namespace flywheel::api::http
