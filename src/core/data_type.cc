#include "core/data_type.h"

#include <array>

#include "absl/strings/str_cat.h"

namespace flywheel {
namespace {

struct TypeInfo {
  DataType type;
  absl::string_view name;
  size_t size;
};

constexpr std::array<TypeInfo, 15> kTypes = {{
    {DataType::kInvalid, "INVALID", 0},
    {DataType::kBool, "BOOL", 1},
    {DataType::kUint8, "UINT8", 1},
    {DataType::kUint16, "UINT16", 2},
    {DataType::kUint32, "UINT32", 4},
    {DataType::kUint64, "UINT64", 8},
    {DataType::kInt8, "INT8", 1},
    {DataType::kInt16, "INT16", 2},
    {DataType::kInt32, "INT32", 4},
    {DataType::kInt64, "INT64", 8},
    {DataType::kFp16, "FP16", 2},
    {DataType::kBf16, "BF16", 2},
    {DataType::kFp32, "FP32", 4},
    {DataType::kFp64, "FP64", 8},
    {DataType::kBytes, "BYTES", 0},
}};

const TypeInfo& Info(DataType type) {
  size_t i = static_cast<size_t>(type);
  return i < kTypes.size() ? kTypes[i] : kTypes[0];
}

}  // namespace

size_t DataTypeSize(DataType type) { return Info(type).size; }

absl::string_view DataTypeName(DataType type) { return Info(type).name; }

absl::StatusOr<DataType> DataTypeFromName(absl::string_view name) {
  for (const TypeInfo& t : kTypes) {
    if (t.type != DataType::kInvalid && t.name == name) return t.type;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown datatype '", name,
                   "' (expected one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, "
                   "INT64, FP16, BF16, FP32, FP64, BYTES)"));
}

bool IsFloatingPoint(DataType type) {
  return type == DataType::kFp16 || type == DataType::kBf16 || type == DataType::kFp32 ||
         type == DataType::kFp64;
}

bool IsInteger(DataType type) {
  switch (type) {
    case DataType::kUint8:
    case DataType::kUint16:
    case DataType::kUint32:
    case DataType::kUint64:
    case DataType::kInt8:
    case DataType::kInt16:
    case DataType::kInt32:
    case DataType::kInt64:
      return true;
    default:
      return false;
  }
}

}  // namespace flywheel
