// Helpers shared by the elementwise kernel files: visiting a DataType with its C++ type, wrapping
// integer arithmetic (no undefined behaviour on overflow or division by zero), and the
// registration entry points of each file, called from RegisterElementwiseKernels.
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>

#include "core/data_type.h"
#include "engine/kernels/registry.h"

namespace flywheel::engine {

// Calls f(T{}) with T the C++ type of `t` for the numeric types (not bool, fp16, bytes); returns
// false when `t` is not one of them.
template <typename F>
bool VisitNumeric(DataType t, F&& f) {
  switch (t) {
    case DataType::kFp32:
      f(float{});
      return true;
    case DataType::kFp64:
      f(double{});
      return true;
    case DataType::kInt8:
      f(int8_t{});
      return true;
    case DataType::kUint8:
      f(uint8_t{});
      return true;
    case DataType::kInt16:
      f(int16_t{});
      return true;
    case DataType::kUint16:
      f(uint16_t{});
      return true;
    case DataType::kInt32:
      f(int32_t{});
      return true;
    case DataType::kUint32:
      f(uint32_t{});
      return true;
    case DataType::kInt64:
      f(int64_t{});
      return true;
    case DataType::kUint64:
      f(uint64_t{});
      return true;
    default:
      return false;
  }
}

// Like VisitNumeric, and bool too.
template <typename F>
bool VisitNumericOrBool(DataType t, F&& f) {
  if (t == DataType::kBool) {
    f(bool{});
    return true;
  }
  return VisitNumeric(t, f);
}

// Integer arithmetic that wraps like two's complement instead of overflowing.
template <typename T>
using WideUnsigned = std::conditional_t<(sizeof(T) <= 4), uint32_t, uint64_t>;

template <typename T>
T WrapAdd(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(static_cast<WideUnsigned<T>>(a) + static_cast<WideUnsigned<T>>(b));
  } else {
    return a + b;
  }
}
template <typename T>
T WrapSub(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(static_cast<WideUnsigned<T>>(a) - static_cast<WideUnsigned<T>>(b));
  } else {
    return a - b;
  }
}
template <typename T>
T WrapMul(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(static_cast<WideUnsigned<T>>(a) * static_cast<WideUnsigned<T>>(b));
  } else {
    return a * b;
  }
}
// Integer division truncates toward zero; x / 0 is 0 (instead of a crash) and MIN / -1 wraps.
template <typename T>
T SafeDiv(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    if (b == 0) return 0;
    if constexpr (std::is_signed_v<T>) {
      if (b == -1) return WrapSub(T{0}, a);
    }
    return static_cast<T>(a / b);
  } else {
    return a / b;
  }
}

// Converts a floating-point value to an integer type without undefined behaviour: truncates
// toward zero, NaN gives 0, values beyond the range of T saturate.
template <typename T, typename F>
T SaturatingCast(F v) {
  if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(v);
  } else {
    if (v != v) return 0;
    if (v <= static_cast<F>(std::numeric_limits<T>::min())) return std::numeric_limits<T>::min();
    if (v >= static_cast<F>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
    return static_cast<T>(v);
  }
}

// Registration of each elementwise file.
void RegisterBinaryKernels(KernelRegistry& registry);   // binary.cc
void RegisterUnaryKernels(KernelRegistry& registry);    // unary.cc
void RegisterCastKernels(KernelRegistry& registry);     // cast.cc
void RegisterSoftmaxKernels(KernelRegistry& registry);  // softmax.cc

}  // namespace flywheel::engine
