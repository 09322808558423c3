#include "trees/model_doc.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace flywheel::trees {
namespace {

template <typename U>
U LoadBigEndian(const char* p) {
  U v;
  std::memcpy(&v, p, sizeof(U));
  if constexpr (std::endian::native == std::endian::little) {
    if constexpr (sizeof(U) == 2) v = __builtin_bswap16(v);
    if constexpr (sizeof(U) == 4) v = __builtin_bswap32(v);
    if constexpr (sizeof(U) == 8) v = __builtin_bswap64(v);
  }
  return v;
}

// A binary number widened to int64 (integers) or double (floats); `is_float` says which.
void DecodeBinary(const NumberRef& n, int64_t* i, double* d, bool* is_float) {
  *is_float = false;
  switch (n.encoding) {
    case NumEncoding::kInt8:
      *i = static_cast<int8_t>(n.data[0]);
      return;
    case NumEncoding::kUInt8:
      *i = static_cast<uint8_t>(n.data[0]);
      return;
    case NumEncoding::kInt16:
      *i = static_cast<int16_t>(LoadBigEndian<uint16_t>(n.data));
      return;
    case NumEncoding::kInt32:
      *i = static_cast<int32_t>(LoadBigEndian<uint32_t>(n.data));
      return;
    case NumEncoding::kInt64:
      *i = static_cast<int64_t>(LoadBigEndian<uint64_t>(n.data));
      return;
    case NumEncoding::kFloat32:
      *is_float = true;
      *d = std::bit_cast<float>(LoadBigEndian<uint32_t>(n.data));
      return;
    case NumEncoding::kFloat64:
      *is_float = true;
      *d = std::bit_cast<double>(LoadBigEndian<uint64_t>(n.data));
      return;
    case NumEncoding::kText:
      break;
  }
  *i = 0;
}

// Parses all of [p, p+n) as T; false when the text is not entirely a T.
template <typename T>
bool ParseAll(const char* p, size_t n, T* out, std::errc* err) {
  auto [end, ec] = std::from_chars(p, p + n, *out);
  *err = ec;
  return ec == std::errc() && end == p + n;
}

absl::Status NotANumber(const NumberRef& n) {
  return absl::InvalidArgumentError(absl::StrCat("'", n.DebugString(), "' is not a number"));
}

}  // namespace

int NumEncodingSize(NumEncoding e) {
  switch (e) {
    case NumEncoding::kText:
      return 0;
    case NumEncoding::kInt8:
    case NumEncoding::kUInt8:
      return 1;
    case NumEncoding::kInt16:
      return 2;
    case NumEncoding::kInt32:
    case NumEncoding::kFloat32:
      return 4;
    case NumEncoding::kInt64:
    case NumEncoding::kFloat64:
      return 8;
  }
  return 0;
}

absl::StatusOr<double> NumberRef::ToDouble() const {
  if (encoding != NumEncoding::kText) {
    int64_t i;
    double d;
    bool is_float;
    DecodeBinary(*this, &i, &d, &is_float);
    return is_float ? d : static_cast<double>(i);
  }
  double d;
  std::errc err;
  if (ParseAll(data, length, &d, &err)) return d;
  if (err == std::errc::result_out_of_range) {
    // from_chars refuses values beyond double's range; strtod's answer (inf or 0) is the one
    // every JSON writer means.
    std::string text(data, length);
    return std::strtod(text.c_str(), nullptr);
  }
  return NotANumber(*this);
}

absl::StatusOr<float> NumberRef::ToFloat() const {
  if (encoding == NumEncoding::kText) {
    // Parsed straight to float: going through double could round twice.
    float f;
    std::errc err;
    if (ParseAll(data, length, &f, &err)) return f;
    if (err != std::errc::result_out_of_range) return NotANumber(*this);
  }
  auto d = ToDouble();
  if (!d.ok()) return d.status();
  return static_cast<float>(*d);
}

absl::StatusOr<int64_t> NumberRef::ToInt64() const {
  if (encoding == NumEncoding::kText) {
    int64_t i;
    std::errc err;
    if (ParseAll(data, length, &i, &err)) return i;
  } else {
    int64_t i;
    double d;
    bool is_float;
    DecodeBinary(*this, &i, &d, &is_float);
    if (!is_float) return i;
  }
  // Integral values written as floats ("3.0", "3E0") are accepted.
  auto d = ToDouble();
  if (!d.ok()) return d.status();
  if (!(std::trunc(*d) == *d && std::abs(*d) < 9.2e18)) {
    return absl::InvalidArgumentError(absl::StrCat(DebugString(), " is not an integer"));
  }
  return static_cast<int64_t>(*d);
}

std::string NumberRef::DebugString() const {
  if (encoding == NumEncoding::kText) {
    constexpr uint32_t kMax = 40;
    if (length > kMax) return absl::StrCat(absl::string_view(data, kMax), "...");
    return std::string(data, length);
  }
  int64_t i;
  double d;
  bool is_float;
  DecodeBinary(*this, &i, &d, &is_float);
  return is_float ? absl::StrCat(d) : absl::StrCat(i);
}

Value Value::Bool(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.bool_ = b;
  return v;
}

Value Value::Number(NumberRef n) {
  Value v;
  v.kind_ = Kind::kNumber;
  v.number_ = n;
  return v;
}

Value Value::String(absl::string_view s) {
  Value v;
  v.kind_ = Kind::kString;
  v.string_ = s;
  return v;
}

Value Value::Array(std::vector<Value> items) {
  Value v;
  v.kind_ = Kind::kArray;
  v.items_ = std::move(items);
  return v;
}

Value Value::Object(std::vector<Member> members) {
  Value v;
  v.kind_ = Kind::kObject;
  v.members_ = std::move(members);
  return v;
}

Value Value::PackedNumbers(NumEncoding encoding, const char* data, size_t count) {
  Value v;
  v.kind_ = Kind::kNumberArray;
  v.packed_encoding_ = encoding;
  v.packed_data_ = data;
  v.packed_count_ = count;
  return v;
}

Value Value::TextNumbers(const char* base, std::vector<std::pair<uint32_t, uint32_t>> spans) {
  Value v;
  v.kind_ = Kind::kNumberArray;
  v.packed_encoding_ = NumEncoding::kText;
  v.packed_data_ = base;
  v.spans_ = std::move(spans);
  return v;
}

const char* Value::KindName(Kind kind) {
  switch (kind) {
    case Kind::kNull:
      return "null";
    case Kind::kBool:
      return "boolean";
    case Kind::kNumber:
      return "number";
    case Kind::kString:
      return "string";
    case Kind::kArray:
      return "array";
    case Kind::kObject:
      return "object";
    case Kind::kNumberArray:
      return "array of numbers";
  }
  return "?";
}

const Value* Value::Find(absl::string_view key) const {
  for (const Member& m : members_) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

bool Value::IsNumberList() const {
  if (kind_ == Kind::kNumberArray) return true;
  if (kind_ != Kind::kArray) return false;
  for (const Value& v : items_) {
    if (v.kind_ != Kind::kNumber) return false;
  }
  return true;
}

size_t Value::NumberCount() const {
  if (kind_ == Kind::kArray) return items_.size();
  if (packed_encoding_ == NumEncoding::kText) return spans_.size();
  return packed_count_;
}

NumberRef Value::NumberAt(size_t i) const {
  if (kind_ == Kind::kArray) return items_[i].number_;
  NumberRef n;
  n.encoding = packed_encoding_;
  if (packed_encoding_ == NumEncoding::kText) {
    n.data = packed_data_ + spans_[i].first;
    n.length = spans_[i].second;
  } else {
    const int size = NumEncodingSize(packed_encoding_);
    n.data = packed_data_ + i * size;
    n.length = static_cast<uint32_t>(size);
  }
  return n;
}

}  // namespace flywheel::trees
