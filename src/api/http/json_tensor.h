// JSON helpers of the HTTP inference codec: parsing a body with exact number conversion, naming
// JSON values in errors, and reading a tensor's "data" array (flat or nested) into a Tensor.
// Internal to api/http.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensor.h"
#include "rapidjson/document.h"

namespace flywheel::api::http {

// Parses `size` bytes of JSON into `doc`. Numbers are converted from their text exactly (integers
// as INT64/UINT64, others as the correctly rounded double); NaN and Infinity are accepted. Deep
// nesting cannot exhaust the stack. Errors give the byte offset.
absl::Status ParseJson(const char* data, size_t size, rapidjson::Document* doc);

// "an array", "a string", "an integer"... for error messages.
const char* JsonTypeName(const rapidjson::Value& v);
// A short rendering of a scalar value (the type name for objects and arrays).
std::string JsonPreview(const rapidjson::Value& v);

// The tensor of `dtype` and `shape` whose elements are the leaves of `data`, a flat or nested
// array. The element count is checked before anything is allocated; every element must be of
// `dtype` (booleans for BOOL, integers in range for integer types, numbers for FP32/FP64, strings
// for BYTES). FP16/BF16 have no JSON form and are refused. `what` names the tensor in errors.
absl::StatusOr<Tensor> TensorFromJson(const rapidjson::Value& data, DataType dtype,
                                      const Shape& shape, absl::string_view what);

}  // namespace flywheel::api::http
