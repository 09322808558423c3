#include "api/http/json_tensor.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <type_traits>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "rapidjson/error/en.h"
#include "rapidjson/memorystream.h"
#include "rapidjson/reader.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace flywheel::api::http {
namespace {

namespace rj = rapidjson;
using Json = rj::Value;

// Iterative parsing keeps deeply nested input from exhausting the stack. Numbers are handed over
// as text and converted by ExactNumbers (RapidJSON 1.1's own full-precision path has a known
// out-of-bounds read on long mantissas). NaN and Infinity are accepted because the encoder writes
// them, as Python's json module does.
constexpr unsigned kParseFlags =
    rj::kParseIterativeFlag | rj::kParseNumbersAsStringsFlag | rj::kParseNanAndInfFlag;
// Nested "data" arrays deeper than this are refused (a tensor has at most 16 dimensions).
constexpr int kMaxDataDepth = 32;

template <typename... Args>
absl::Status Invalid(const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(args...));
}

// A SAX handler that builds `doc`, converting each number from its text with std::from_chars:
// integers exactly as INT64/UINT64, the rest as the correctly rounded double.
class ExactNumbers {
 public:
  explicit ExactNumbers(rj::Document& doc) : doc_(doc) {}
  bool Null() { return doc_.Null(); }
  bool Bool(bool b) { return doc_.Bool(b); }
  bool Int(int i) { return doc_.Int(i); }
  bool Uint(unsigned i) { return doc_.Uint(i); }
  bool Int64(int64_t i) { return doc_.Int64(i); }
  bool Uint64(uint64_t i) { return doc_.Uint64(i); }
  bool Double(double d) { return doc_.Double(d); }
  bool String(const char* s, rj::SizeType n, bool copy) { return doc_.String(s, n, copy); }
  bool StartObject() { return doc_.StartObject(); }
  bool Key(const char* s, rj::SizeType n, bool copy) { return doc_.Key(s, n, copy); }
  bool EndObject(rj::SizeType n) { return doc_.EndObject(n); }
  bool StartArray() { return doc_.StartArray(); }
  bool EndArray(rj::SizeType n) { return doc_.EndArray(n); }
  bool RawNumber(const char* s, rj::SizeType n, bool) {
    const char* end = s + n;
    bool integral = std::all_of(s, end, [](char c) {
      return c == '-' || absl::ascii_isdigit(static_cast<unsigned char>(c));
    });
    if (integral) {
      if (s[0] == '-') {
        int64_t v;
        if (std::from_chars(s, end, v).ec == std::errc()) return doc_.Int64(v);
      } else {
        uint64_t v;
        if (std::from_chars(s, end, v).ec == std::errc()) return doc_.Uint64(v);
      }
    }
    double d;
    auto [ptr, ec] = std::from_chars(s, end, d);
    if (ec == std::errc::result_out_of_range) {
      // from_chars leaves d unset both for overflow and for values that round to zero; strtod
      // (only on this rare path; flywheel never changes LC_NUMERIC) tells them apart.
      d = std::strtod(std::string(s, n).c_str(), nullptr);
      if (std::isinf(d)) {
        bad_number_.assign(s, n);
        return false;
      }
    } else if (ec != std::errc() || ptr != end) {
      bad_number_.assign(s, n);
      return false;
    }
    return doc_.Double(d);
  }
  // The number that stopped the parse, if one did.
  const std::string& bad_number() const { return bad_number_; }

 private:
  rj::Document& doc_;
  std::string bad_number_;
};

// Number of leaf values of a (possibly nested) "data" array.
absl::StatusOr<int64_t> CountElements(const Json& data, int depth, absl::string_view what) {
  if (depth > kMaxDataDepth) {
    return Invalid(what, ": 'data' is nested more than ", kMaxDataDepth, " levels deep");
  }
  int64_t n = 0;
  for (const Json& v : data.GetArray()) {
    if (v.IsArray()) {
      FW_ASSIGN_OR_RETURN(int64_t inner, CountElements(v, depth + 1, what));
      n += inner;
    } else {
      ++n;
    }
  }
  return n;
}

absl::Status ElementError(absl::string_view what, int64_t index, DataType dtype, const Json& v) {
  return Invalid(what, ": element ", index, " of 'data' is ", JsonPreview(v), ", not a valid ",
                 DataTypeName(dtype), " value");
}

// Converts one JSON leaf to T (range-checked for integers).
template <typename T>
bool Convert(const Json& v, T* out) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.IsBool()) return false;
    *out = v.GetBool();
    return true;
  } else if constexpr (std::is_integral_v<T>) {
    if (v.IsInt64()) {
      int64_t x = v.GetInt64();
      if constexpr (std::is_signed_v<T>) {
        if (x < std::numeric_limits<T>::min() || x > std::numeric_limits<T>::max()) return false;
      } else {
        if (x < 0 || static_cast<uint64_t>(x) > std::numeric_limits<T>::max()) return false;
      }
      *out = static_cast<T>(x);
      return true;
    }
    if (v.IsUint64() && std::is_same_v<T, uint64_t>) {
      *out = static_cast<T>(v.GetUint64());
      return true;
    }
    return false;
  } else {
    if (!v.IsNumber()) return false;
    double x = v.GetDouble();
    if constexpr (std::is_same_v<T, float>) {
      // A finite value beyond FP32's range would silently become infinity.
      if (std::isfinite(x) && std::abs(x) > std::numeric_limits<float>::max()) return false;
    }
    *out = static_cast<T>(x);
    return true;
  }
}

template <typename T>
absl::Status Fill(const Json& data, DataType dtype, absl::string_view what, T* out,
                  int64_t* index) {
  for (const Json& v : data.GetArray()) {
    if (v.IsArray()) {
      FW_RETURN_IF_ERROR(Fill(v, dtype, what, out, index));
      continue;
    }
    if (!Convert(v, out + *index)) return ElementError(what, *index, dtype, v);
    ++*index;
  }
  return absl::OkStatus();
}

absl::Status FillStrings(const Json& data, absl::string_view what, std::string* out,
                         int64_t* index) {
  for (const Json& v : data.GetArray()) {
    if (v.IsArray()) {
      FW_RETURN_IF_ERROR(FillStrings(v, what, out, index));
      continue;
    }
    if (!v.IsString()) return ElementError(what, *index, DataType::kBytes, v);
    out[*index].assign(v.GetString(), v.GetStringLength());
    ++*index;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseJson(const char* data, size_t size, rj::Document* doc) {
  rj::ParseResult parsed;
  ExactNumbers handler(*doc);
  auto generate = [&](rj::Document&) {
    rj::MemoryStream stream(data, size);
    // The reader's stack starts in this buffer and spills to the heap only for deep nesting.
    char stack_buffer[1024];
    rj::MemoryPoolAllocator<> stack_allocator(stack_buffer, sizeof(stack_buffer));
    rj::GenericReader<rj::UTF8<>, rj::UTF8<>, rj::MemoryPoolAllocator<>> reader(&stack_allocator,
                                                                                256);
    parsed = reader.Parse<kParseFlags>(stream, handler);
    return !parsed.IsError();
  };
  doc->Populate(generate);
  if (!parsed.IsError()) return absl::OkStatus();
  if (!handler.bad_number().empty()) {
    return Invalid("number ", handler.bad_number(), " at offset ", parsed.Offset(),
                   " is out of the FP64 range");
  }
  return Invalid("malformed JSON at offset ", parsed.Offset(), ": ",
                 rj::GetParseError_En(parsed.Code()));
}

const char* JsonTypeName(const Json& v) {
  switch (v.GetType()) {
    case rj::kNullType:
      return "null";
    case rj::kFalseType:
    case rj::kTrueType:
      return "a boolean";
    case rj::kObjectType:
      return "an object";
    case rj::kArrayType:
      return "an array";
    case rj::kStringType:
      return "a string";
    case rj::kNumberType:
      return v.IsDouble() ? "a floating-point number" : "an integer";
  }
  return "unknown";
}

// A short rendering of a JSON value for error messages.
std::string JsonPreview(const Json& v) {
  if (v.IsObject() || v.IsArray()) return JsonTypeName(v);
  rj::StringBuffer sb;
  rj::Writer<rj::StringBuffer, rj::UTF8<>, rj::UTF8<>, rj::CrtAllocator, rj::kWriteNanAndInfFlag> w(
      sb);
  v.Accept(w);
  std::string s(sb.GetString(), sb.GetSize());
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

absl::StatusOr<Tensor> TensorFromJson(const Json& data, DataType dtype, const Shape& shape,
                                      absl::string_view what) {
  if (!data.IsArray()) return Invalid(what, ": 'data' must be an array, got ", JsonTypeName(data));
  if (dtype == DataType::kFp16 || dtype == DataType::kBf16) {
    return Invalid(what, ": ", DataTypeName(dtype),
                   " data must be sent in binary (parameters.binary_data_size); JSON has no ",
                   DataTypeName(dtype), " numbers");
  }
  FW_ASSIGN_OR_RETURN(int64_t count, CountElements(data, 1, what));
  if (count != shape.NumElements()) {
    return Invalid(what, ": 'data' has ", count, " elements but shape ", shape.ToString(),
                   " needs ", shape.NumElements());
  }
  FW_ASSIGN_OR_RETURN(Tensor t, Tensor::SafeAllocate(dtype, shape, what));
  int64_t index = 0;
  absl::Status filled;
  switch (dtype) {
    case DataType::kBool:
      filled = Fill(data, dtype, what, t.data<bool>(), &index);
      break;
    case DataType::kUint8:
      filled = Fill(data, dtype, what, t.data<uint8_t>(), &index);
      break;
    case DataType::kUint16:
      filled = Fill(data, dtype, what, t.data<uint16_t>(), &index);
      break;
    case DataType::kUint32:
      filled = Fill(data, dtype, what, t.data<uint32_t>(), &index);
      break;
    case DataType::kUint64:
      filled = Fill(data, dtype, what, t.data<uint64_t>(), &index);
      break;
    case DataType::kInt8:
      filled = Fill(data, dtype, what, t.data<int8_t>(), &index);
      break;
    case DataType::kInt16:
      filled = Fill(data, dtype, what, t.data<int16_t>(), &index);
      break;
    case DataType::kInt32:
      filled = Fill(data, dtype, what, t.data<int32_t>(), &index);
      break;
    case DataType::kInt64:
      filled = Fill(data, dtype, what, t.data<int64_t>(), &index);
      break;
    case DataType::kFp32:
      filled = Fill(data, dtype, what, t.data<float>(), &index);
      break;
    case DataType::kFp64:
      filled = Fill(data, dtype, what, t.data<double>(), &index);
      break;
    case DataType::kBytes:
      filled = FillStrings(data, what, t.strings().data(), &index);
      break;
    default:
      return Invalid(what, ": unsupported datatype ", DataTypeName(dtype));
  }
  FW_RETURN_IF_ERROR(filled);
  return t;
}

}  // namespace flywheel::api::http
