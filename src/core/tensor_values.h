// Reads the elements of a tensor of any numeric element type as doubles (FP16 and BF16
// included), so that monitoring (profiles, drift, quality), loop evaluation and shadow
// comparison share one conversion.
#pragma once

#include <cstdint>
#include <cstring>

#include "core/tensor.h"

namespace flywheel {

inline float Bf16ToFloat(uint16_t bits) {
  const uint32_t word = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &word, sizeof(f));
  return f;
}

inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t word;
  if (exponent == 0x1f) {
    word = sign | 0x7f800000u | (mantissa << 13);  // infinity or NaN
  } else if (exponent != 0) {
    word = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    word = sign;
  } else {
    // Subnormal half: normalise into a float's wider exponent range.
    exponent = 113;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    word = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &word, sizeof(f));
  return f;
}

// Calls fn(get) where get(i) returns element i of `t` as a double, with the element type fixed
// at compile time inside fn. Returns false (fn not called) for BYTES and invalid tensors.
template <typename Fn>
bool VisitNumeric(const Tensor& t, Fn&& fn) {
  auto typed = [&](auto tag) {
    using T = decltype(tag);
    const T* p = t.data<T>();
    fn([p](int64_t i) { return static_cast<double>(p[i]); });
  };
  switch (t.dtype()) {
    case DataType::kFp32:
      typed(float{});
      return true;
    case DataType::kFp64:
      typed(double{});
      return true;
    case DataType::kInt64:
      typed(int64_t{});
      return true;
    case DataType::kInt32:
      typed(int32_t{});
      return true;
    case DataType::kInt16:
      typed(int16_t{});
      return true;
    case DataType::kInt8:
      typed(int8_t{});
      return true;
    case DataType::kUint64:
      typed(uint64_t{});
      return true;
    case DataType::kUint32:
      typed(uint32_t{});
      return true;
    case DataType::kUint16:
      typed(uint16_t{});
      return true;
    case DataType::kUint8:
      typed(uint8_t{});
      return true;
    case DataType::kBool: {
      const bool* p = t.data<bool>();
      fn([p](int64_t i) { return p[i] ? 1.0 : 0.0; });
      return true;
    }
    case DataType::kFp16: {
      const uint16_t* p = t.data<uint16_t>();
      fn([p](int64_t i) { return static_cast<double>(HalfToFloat(p[i])); });
      return true;
    }
    case DataType::kBf16: {
      const uint16_t* p = t.data<uint16_t>();
      fn([p](int64_t i) { return static_cast<double>(Bf16ToFloat(p[i])); });
      return true;
    }
    default:
      return false;
  }
}

}  // namespace flywheel
