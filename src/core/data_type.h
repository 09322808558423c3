// Element types of tensors: every datatype of the KServe v2 protocol, with their sizes and
// protocol names ("FP32", "INT64", ...).
#pragma once

#include <cstddef>
#include <cstdint>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace flywheel {

enum class DataType : uint8_t {
  kInvalid = 0,
  kBool,
  kUint8,
  kUint16,
  kUint32,
  kUint64,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kFp16,
  kBf16,
  kFp32,
  kFp64,
  kBytes,  // variable-length byte strings; see Tensor::strings()
};

// Size of one element in bytes; 0 for kBytes and kInvalid.
size_t DataTypeSize(DataType type);
// KServe v2 name: "BOOL", "UINT8", ..., "FP32", "BYTES"; "INVALID" for kInvalid.
absl::string_view DataTypeName(DataType type);
// Parses a KServe v2 name (exact, upper case).
absl::StatusOr<DataType> DataTypeFromName(absl::string_view name);
bool IsFloatingPoint(DataType type);
bool IsInteger(DataType type);  // signed or unsigned, not bool

// The C++ type of each element type, for templates: CppType<DataType::kFp32> is float.
template <DataType T>
struct CppTypeOf;
template <>
struct CppTypeOf<DataType::kBool> {
  using type = bool;
};
template <>
struct CppTypeOf<DataType::kUint8> {
  using type = uint8_t;
};
template <>
struct CppTypeOf<DataType::kUint16> {
  using type = uint16_t;
};
template <>
struct CppTypeOf<DataType::kUint32> {
  using type = uint32_t;
};
template <>
struct CppTypeOf<DataType::kUint64> {
  using type = uint64_t;
};
template <>
struct CppTypeOf<DataType::kInt8> {
  using type = int8_t;
};
template <>
struct CppTypeOf<DataType::kInt16> {
  using type = int16_t;
};
template <>
struct CppTypeOf<DataType::kInt32> {
  using type = int32_t;
};
template <>
struct CppTypeOf<DataType::kInt64> {
  using type = int64_t;
};
template <>
struct CppTypeOf<DataType::kFp32> {
  using type = float;
};
template <>
struct CppTypeOf<DataType::kFp64> {
  using type = double;
};
template <DataType T>
using CppType = typename CppTypeOf<T>::type;

// The element type of a C++ type: DataTypeOf<float>() == DataType::kFp32.
template <typename T>
constexpr DataType DataTypeOf() {
  if constexpr (std::is_same_v<T, bool>) return DataType::kBool;
  if constexpr (std::is_same_v<T, uint8_t>) return DataType::kUint8;
  if constexpr (std::is_same_v<T, uint16_t>) return DataType::kUint16;
  if constexpr (std::is_same_v<T, uint32_t>) return DataType::kUint32;
  if constexpr (std::is_same_v<T, uint64_t>) return DataType::kUint64;
  if constexpr (std::is_same_v<T, int8_t>) return DataType::kInt8;
  if constexpr (std::is_same_v<T, int16_t>) return DataType::kInt16;
  if constexpr (std::is_same_v<T, int32_t>) return DataType::kInt32;
  if constexpr (std::is_same_v<T, int64_t>) return DataType::kInt64;
  if constexpr (std::is_same_v<T, float>) return DataType::kFp32;
  if constexpr (std::is_same_v<T, double>) return DataType::kFp64;
  return DataType::kInvalid;
}

}  // namespace flywheel
