// A small read-only document tree shared by the JSON and UBJSON model readers. Strings and
// numbers point into the model bytes, which the ModelDoc keeps; arrays of numbers stay packed
// (text spans for JSON, big-endian runs for UBJSON) so a large forest costs a few bytes per
// number, and each number is converted once, exactly, to the type its reader asks for.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace flywheel::trees {

// How a number is stored in the model bytes.
enum class NumEncoding : uint8_t {
  kText,  // decimal text (JSON, UBJSON high-precision 'H')
  kInt8,
  kUInt8,
  kInt16,
  kInt32,
  kInt64,
  kFloat32,
  kFloat64,  // the binary ones are big-endian (UBJSON)
};

// Bytes of one binary number; 0 for text.
int NumEncodingSize(NumEncoding e);

// One number in the model bytes.
struct NumberRef {
  NumEncoding encoding = NumEncoding::kText;
  const char* data = nullptr;
  uint32_t length = 0;  // text length; binary numbers have their encoding's size

  // Exact conversions: fail when the value does not fit (a fraction for an integer, an integer
  // beyond the target range). Floats accept NaN and infinities.
  absl::StatusOr<int64_t> ToInt64() const;
  absl::StatusOr<float> ToFloat() const;
  absl::StatusOr<double> ToDouble() const;
  // The number as it would be printed, for error messages.
  std::string DebugString() const;
};

class Value {
 public:
  enum class Kind : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject, kNumberArray };
  using Member = std::pair<absl::string_view, Value>;

  Value() = default;
  Value(Value&&) = default;
  Value& operator=(Value&&) = default;

  static Value Null() { return Value(); }
  static Value Bool(bool b);
  static Value Number(NumberRef n);
  static Value String(absl::string_view s);
  static Value Array(std::vector<Value> items);
  static Value Object(std::vector<Member> members);
  // Packed binary numbers: `count` elements of `encoding`, back to back from `data`.
  static Value PackedNumbers(NumEncoding encoding, const char* data, size_t count);
  // Decimal numbers given as (offset, length) spans from `base`.
  static Value TextNumbers(const char* base, std::vector<std::pair<uint32_t, uint32_t>> spans);

  Kind kind() const { return kind_; }
  bool is_object() const { return kind_ == Kind::kObject; }
  // "object", "array", "string", ... for error messages.
  static const char* KindName(Kind kind);
  const char* kind_name() const { return KindName(kind_); }

  bool bool_value() const { return bool_; }
  absl::string_view string_value() const { return string_; }
  NumberRef number() const { return number_; }
  const std::vector<Value>& items() const { return items_; }
  const std::vector<Member>& members() const { return members_; }

  // kObject: the first member named `key`, or nullptr.
  const Value* Find(absl::string_view key) const;

  // True for a number array or an array of numbers only (an empty array included).
  bool IsNumberList() const;
  // Elements of a number list.
  size_t NumberCount() const;
  NumberRef NumberAt(size_t i) const;

 private:
  Kind kind_ = Kind::kNull;
  bool bool_ = false;
  NumEncoding packed_encoding_ = NumEncoding::kText;
  absl::string_view string_;
  NumberRef number_;
  // kNumberArray: packed binary elements (packed_data_, packed_count_) or text spans.
  const char* packed_data_ = nullptr;
  size_t packed_count_ = 0;
  std::vector<std::pair<uint32_t, uint32_t>> spans_;
  std::vector<Value> items_;
  std::vector<Member> members_;
};

// A parsed model file: the root value and the bytes its strings and numbers point into.
class ModelDoc {
 public:
  ModelDoc(std::unique_ptr<std::string> bytes, Value root)
      : bytes_(std::move(bytes)), root_(std::move(root)) {}
  const Value& root() const { return root_; }

 private:
  std::unique_ptr<std::string> bytes_;  // heap-held so that views survive moves of the doc
  Value root_;
};

// Nesting deeper than this is refused by both readers (an XGBoost model needs 6 levels).
inline constexpr int kMaxDocDepth = 64;

}  // namespace flywheel::trees
