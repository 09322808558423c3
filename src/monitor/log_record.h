// A sampled prediction (request id, time, model, version, input and output tensors) and its form
// in the prediction log: one JSON object per line. Shared by the log writer (prediction_log.h)
// and its reader (log_reader.h).
//
// One line, keys in this order (parameters and features only when present), shown with
// TensorDataFormat::kArray (the log itself writes kBase64, see below):
//   {"id":"r1","time":"2024-05-01T12:00:00.123456789Z","model":"rank","version":3,
//    "inputs":{"x":{"datatype":"FP32","shape":[1,2],"data":[0.5,1]}},
//    "outputs":{"y":{"datatype":"FP32","shape":[1],"data":[0.25]}},
//    "parameters":{"k":"v"},"features":{"user_age":{"datatype":"INT64","shape":[1],"data":[31]}}}
// Data is flat, row-major. FP16 and BF16 are written as their float values; non-finite floats as
// the strings "NaN", "Infinity" and "-Infinity"; BOOL as true/false; BYTES elements as JSON
// strings when they are valid UTF-8 and otherwise as {"b64":"<base64 of the bytes>"} (so are the
// request id and string parameters). Double parameters always have a '.' or an exponent, so
// they read back as doubles. Names (model, tensors, parameters) are JSON strings; the rare name
// that is not UTF-8 has its bytes above 0x7f written as '?'.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/tensor.h"

namespace flywheel::monitor {

// A request parameter. The same variant as serving::ParameterValue, so the server's parameter
// map assigns to PredictionRecord::parameters unchanged.
using LogParameterValue = std::variant<bool, int64_t, double, std::string>;
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct PredictionRecord {
  std::string request_id;
  // When the request arrived (wall clock). The default, the Unix epoch, means "now": Submit
  // stamps it.
  absl::Time time;
  // Required: a record without a model is dropped.
  std::string model;
  int64_t version = 0;
  NamedTensors inputs;
  NamedTensors outputs;
  // Optional: request parameters and the feature values looked up for the request.
  std::map<std::string, LogParameterValue> parameters;
  NamedTensors features;
  // Keeps alive the memory that view tensors point into (the request body). When it is null,
  // Submit copies every non-owning tensor, so set it to avoid those copies.
  std::shared_ptr<const void> keep_alive;
};

// How numeric tensor data is written. kBase64, the prediction log's default: "data_b64", the
// base64 of the elements' little-endian bytes (BOOL one byte each; FP16 and BF16 their 2-byte
// bits), about 25x cheaper to write than decimal text, which matters at 100% sampling.
// kArray: "data":[...], the form above. BYTES tensors are arrays of strings either way.
enum class TensorDataFormat { kBase64, kArray };

// Appends `record` to `out` as one JSON line, '\n' included.
void AppendRecordJson(const PredictionRecord& record, TensorDataFormat format, std::string* out);

// Reads a line AppendRecordJson wrote (either data format) back into a record: the tensors hold
// exactly the values written (FP16/BF16 from kArray text are rounded to nearest even). Errors
// name the field that is wrong.
absl::StatusOr<PredictionRecord> ParseRecordJson(absl::string_view line);

// Element `i` of `t` as the kArray form writes it, unquoted, for tables: numbers, true/false,
// NaN/Infinity/-Infinity, BYTES as their text or "b64:<base64>" when not UTF-8.
void AppendElementText(const Tensor& t, int64_t i, std::string* out);

// "2024-05-01T12:00:00.123456789Z": RFC 3339 in UTC with nanoseconds; sorts as text.
std::string FormatLogTime(absl::Time t);
// RFC 3339 with any offset and fraction ("2024-05-01T12:00:00Z", "...T14:00:00.5+02:00").
absl::StatusOr<absl::Time> ParseLogTime(absl::string_view text);

// Appends `s` to `out` as a JSON string (quotes included). REQUIRES: s is valid UTF-8.
void AppendJsonString(absl::string_view s, std::string* out);
bool IsValidUtf8(absl::string_view s);

}  // namespace flywheel::monitor
