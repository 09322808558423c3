// Decoding of KServe v2 inference requests (JSON + binary tensor extension); see infer_codec.h.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "api/http/infer_codec.h"
#include "core/status.h"
#include "rapidjson/document.h"
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
std::string Preview(const Json& v) {
  if (v.IsObject() || v.IsArray()) return JsonTypeName(v);
  rj::StringBuffer sb;
  rj::Writer<rj::StringBuffer, rj::UTF8<>, rj::UTF8<>, rj::CrtAllocator, rj::kWriteNanAndInfFlag> w(
      sb);
  v.Accept(w);
  std::string s(sb.GetString(), sb.GetSize());
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

absl::string_view StringOf(const Json& v) { return {v.GetString(), v.GetStringLength()}; }

absl::StatusOr<serving::ParameterValue> ParameterFromJson(const Json& v, absl::string_view where,
                                                          absl::string_view key) {
  if (v.IsBool()) return serving::ParameterValue(v.GetBool());
  if (v.IsInt64()) return serving::ParameterValue(v.GetInt64());
  if (v.IsUint64()) {
    return Invalid(where, "parameter '", key, "' is ", v.GetUint64(), ", above the INT64 range");
  }
  if (v.IsNumber()) return serving::ParameterValue(v.GetDouble());
  if (v.IsString()) return serving::ParameterValue(std::string(StringOf(v)));
  return Invalid(where, "parameter '", key, "' must be a boolean, number or string, got ",
                 JsonTypeName(v));
}

absl::Status DecodeParameters(const Json& v, absl::string_view where, serving::Parameters* out) {
  if (!v.IsObject()) {
    return Invalid(where, "'parameters' must be a JSON object, got ", JsonTypeName(v));
  }
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
    absl::string_view key = StringOf(it->name);
    FW_ASSIGN_OR_RETURN(serving::ParameterValue value, ParameterFromJson(it->value, where, key));
    (*out)[std::string(key)] = std::move(value);
  }
  return absl::OkStatus();
}

// Removes `key` from `params` and returns it as a non-negative integer, if present.
absl::StatusOr<std::optional<uint64_t>> TakeUnsigned(serving::Parameters& params,
                                                     const std::string& key,
                                                     absl::string_view where) {
  auto it = params.find(key);
  if (it == params.end()) return std::optional<uint64_t>();
  const int64_t* value = std::get_if<int64_t>(&it->second);
  if (value == nullptr || *value < 0) {
    return Invalid(where, "parameter '", key, "' must be a non-negative integer");
  }
  uint64_t result = static_cast<uint64_t>(*value);
  params.erase(it);
  return std::optional<uint64_t>(result);
}

absl::StatusOr<std::optional<bool>> TakeBool(serving::Parameters& params, const std::string& key,
                                             absl::string_view where) {
  auto it = params.find(key);
  if (it == params.end()) return std::optional<bool>();
  const bool* value = std::get_if<bool>(&it->second);
  if (value == nullptr) return Invalid(where, "parameter '", key, "' must be a boolean");
  bool result = *value;
  params.erase(it);
  return std::optional<bool>(result);
}

absl::Status RefuseSharedMemory(const serving::Parameters& params, absl::string_view where) {
  for (const char* key :
       {"shared_memory_region", "shared_memory_byte_size", "shared_memory_offset"}) {
    if (params.count(key)) {
      return absl::UnimplementedError(absl::StrCat(
          where, "parameter '", key,
          "': the shared-memory extension is not supported; send the data in the body"));
    }
  }
  return absl::OkStatus();
}

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
  return Invalid(what, ": element ", index, " of 'data' is ", Preview(v), ", not a valid ",
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

uint32_t LoadLe32(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
}

// BYTES in the binary extension: per element, a 4-byte little-endian length and the bytes.
absl::StatusOr<Tensor> StringsFromBinary(const char* p, size_t size, const Shape& shape,
                                         absl::string_view what) {
  int64_t n = shape.NumElements();
  // Every element takes at least its 4-byte length; checking first bounds the allocation.
  if (static_cast<uint64_t>(n) > size / 4) {
    return Invalid(what, ": binary_data_size ", size, " is too small for the ", n,
                   " BYTES elements of shape ", shape.ToString(),
                   " (each needs a 4-byte length prefix)");
  }
  Tensor t = Tensor::Allocate(DataType::kBytes, shape);
  std::vector<std::string>& strings = t.strings();
  size_t left = size;
  for (int64_t i = 0; i < n; ++i) {
    if (left < 4) {
      return Invalid(what, ": BYTES element ", i, ": its 4-byte length prefix is truncated");
    }
    uint32_t len = LoadLe32(p);
    p += 4;
    left -= 4;
    if (len > left) {
      return Invalid(what, ": BYTES element ", i, " claims ", len, " bytes but only ", left,
                     " remain in its binary data");
    }
    strings[i].assign(p, len);
    p += len;
    left -= len;
  }
  if (left != 0) {
    return Invalid(what, ": ", left, " bytes remain after the last of its ", n,
                   " BYTES elements (binary_data_size is ", size, ")");
  }
  return t;
}

// The binary section, consumed in input order.
struct BinaryCursor {
  const char* next;
  size_t left;
  bool has_header;  // whether Inference-Header-Content-Length was given
};

absl::StatusOr<Tensor> TensorFromBinary(BinaryCursor& cursor, uint64_t size, DataType dtype,
                                        const Shape& shape,
                                        const std::shared_ptr<const void>& owner,
                                        absl::string_view what) {
  if (!cursor.has_header) {
    return Invalid(what, ": has parameters.binary_data_size but the request has no ",
                   kInferHeaderLengthHeader, " header");
  }
  if (size > cursor.left) {
    return Invalid(what, ": binary_data_size is ", size, " but only ", cursor.left,
                   " bytes of binary data remain (truncated body?)");
  }
  const char* p = cursor.next;
  cursor.next += size;
  cursor.left -= size;
  if (dtype == DataType::kBytes) return StringsFromBinary(p, size, shape, what);
  size_t expected = static_cast<size_t>(shape.NumElements()) * DataTypeSize(dtype);
  if (size != expected) {
    return Invalid(what, ": binary_data_size is ", size, " but ", DataTypeName(dtype), " ",
                   shape.ToString(), " needs ", expected, " bytes");
  }
  if (dtype == DataType::kBool) {
    for (size_t i = 0; i < size; ++i) {
      if (static_cast<unsigned char>(p[i]) > 1) {
        return Invalid(what, ": BOOL element ", i, " is byte ",
                       static_cast<unsigned>(static_cast<unsigned char>(p[i])),
                       "; BOOL elements must be 0 or 1");
      }
    }
  }
  // A view needs the element type's alignment; otherwise copy (one memcpy, no per-element work).
  if (reinterpret_cast<uintptr_t>(p) % DataTypeSize(dtype) == 0) {
    return Tensor::Shared(dtype, shape, owner, const_cast<char*>(p));
  }
  FW_ASSIGN_OR_RETURN(Tensor t, Tensor::SafeAllocate(dtype, shape, what));
  if (size > 0) std::memcpy(t.raw_data(), p, size);
  return t;
}

absl::StatusOr<Shape> ShapeFromJson(const Json* v, absl::string_view what) {
  if (v == nullptr) return Invalid(what, ": missing 'shape'");
  if (!v->IsArray()) return Invalid(what, ": 'shape' must be an array, got ", JsonTypeName(*v));
  Shape::Dims dims;
  for (const Json& d : v->GetArray()) {
    if (!d.IsInt64() || d.GetInt64() < 0) {
      return Invalid(what, ": 'shape' must hold non-negative integers, got ", Preview(d));
    }
    dims.push_back(d.GetInt64());
  }
  return Shape::Checked(dims, what);
}

const Json* Member(const Json& object, const char* key) {
  auto it = object.FindMember(key);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

absl::Status DecodeInput(const Json& in, size_t index, BinaryCursor& cursor,
                         const std::shared_ptr<const void>& owner, serving::InferInput* out) {
  if (!in.IsObject()) return Invalid("inputs[", index, "] must be an object");
  const Json* name = Member(in, "name");
  if (name == nullptr || !name->IsString()) {
    return Invalid("inputs[", index, "]: missing string 'name'");
  }
  out->name.assign(name->GetString(), name->GetStringLength());
  std::string what = absl::StrCat("input '", out->name, "'");
  FW_ASSIGN_OR_RETURN(Shape shape, ShapeFromJson(Member(in, "shape"), what));
  const Json* datatype = Member(in, "datatype");
  if (datatype == nullptr || !datatype->IsString()) {
    return Invalid(what, ": missing string 'datatype'");
  }
  auto dtype = DataTypeFromName(StringOf(*datatype));
  if (!dtype.ok()) return Invalid(what, ": ", dtype.status().message());
  std::string where = what + ": ";
  if (const Json* params = Member(in, "parameters")) {
    FW_RETURN_IF_ERROR(DecodeParameters(*params, where, &out->parameters));
    FW_RETURN_IF_ERROR(RefuseSharedMemory(out->parameters, where));
  }
  FW_ASSIGN_OR_RETURN(std::optional<uint64_t> binary_size,
                      TakeUnsigned(out->parameters, "binary_data_size", where));
  const Json* data = Member(in, "data");
  if (binary_size.has_value()) {
    if (data != nullptr) return Invalid(what, ": has both 'data' and binary_data_size");
    FW_ASSIGN_OR_RETURN(out->data,
                        TensorFromBinary(cursor, *binary_size, *dtype, shape, owner, what));
    return absl::OkStatus();
  }
  if (data == nullptr) return Invalid(what, ": has neither 'data' nor binary_data_size");
  FW_ASSIGN_OR_RETURN(out->data, TensorFromJson(*data, *dtype, shape, what));
  return absl::OkStatus();
}

absl::Status DecodeOutput(const Json& o, size_t index, bool binary_default,
                          serving::RequestedOutput* out) {
  if (!o.IsObject()) return Invalid("outputs[", index, "] must be an object");
  const Json* name = Member(o, "name");
  if (name == nullptr || !name->IsString()) {
    return Invalid("outputs[", index, "]: missing string 'name'");
  }
  out->name.assign(name->GetString(), name->GetStringLength());
  std::string where = absl::StrCat("output '", out->name, "': ");
  out->binary_data = binary_default;
  if (const Json* params = Member(o, "parameters")) {
    FW_RETURN_IF_ERROR(DecodeParameters(*params, where, &out->parameters));
    FW_RETURN_IF_ERROR(RefuseSharedMemory(out->parameters, where));
    if (out->parameters.count("classification")) {
      return absl::UnimplementedError(absl::StrCat(
          where, "the classification extension is not supported; request the raw output"));
    }
    FW_ASSIGN_OR_RETURN(std::optional<bool> binary,
                        TakeBool(out->parameters, "binary_data", where));
    if (binary.has_value()) out->binary_data = *binary;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<size_t> ParseInferHeaderLength(absl::string_view value, size_t body_size) {
  uint64_t n = 0;
  absl::string_view trimmed = absl::StripAsciiWhitespace(value);
  if (trimmed.empty() || !absl::ascii_isdigit(static_cast<unsigned char>(trimmed[0])) ||
      !absl::SimpleAtoi(trimmed, &n)) {
    return Invalid(kInferHeaderLengthHeader, " must be a non-negative integer, got '", value, "'");
  }
  if (n > body_size) {
    return Invalid(kInferHeaderLengthHeader, " is ", n, " but the body has only ", body_size,
                   " bytes");
  }
  return static_cast<size_t>(n);
}

absl::Status DecodeInferRequest(const char* body, size_t body_size, std::optional<size_t> json_size,
                                std::shared_ptr<const void> owner, serving::InferRequest* request,
                                InferEncodeOptions* options) {
  size_t header_size = json_size.value_or(body_size);
  if (header_size > body_size) {
    return Invalid(kInferHeaderLengthHeader, " is ", header_size, " but the body has only ",
                   body_size, " bytes");
  }
  if (header_size == 0) return Invalid("the request body has no JSON");
  rj::Document doc;
  rj::ParseResult parsed;
  ExactNumbers handler(doc);
  auto generate = [&](rj::Document&) {
    rj::MemoryStream stream(body, header_size);
    rj::Reader reader;
    parsed = reader.Parse<kParseFlags>(stream, handler);
    return !parsed.IsError();
  };
  doc.Populate(generate);
  if (parsed.IsError()) {
    if (!handler.bad_number().empty()) {
      return Invalid("number ", handler.bad_number(), " at offset ", parsed.Offset(),
                     " is out of the FP64 range");
    }
    return Invalid("malformed JSON at offset ", parsed.Offset(), ": ",
                   rj::GetParseError_En(parsed.Code()));
  }
  if (!doc.IsObject()) {
    return Invalid("the request body must be a JSON object, got ", JsonTypeName(doc));
  }
  if (const Json* id = Member(doc, "id")) {
    if (!id->IsString()) return Invalid("'id' must be a string, got ", JsonTypeName(*id));
    request->id.assign(id->GetString(), id->GetStringLength());
  }
  bool binary_output = false;
  if (const Json* params = Member(doc, "parameters")) {
    FW_RETURN_IF_ERROR(DecodeParameters(*params, "", &request->parameters));
    FW_ASSIGN_OR_RETURN(std::optional<uint64_t> priority,
                        TakeUnsigned(request->parameters, "priority", ""));
    if (priority.has_value()) {
      if (*priority > std::numeric_limits<uint32_t>::max()) {
        return Invalid("parameter 'priority' is ", *priority, ", above the UINT32 range");
      }
      request->priority = static_cast<uint32_t>(*priority);
    }
    FW_ASSIGN_OR_RETURN(std::optional<uint64_t> timeout,
                        TakeUnsigned(request->parameters, "timeout", ""));
    if (timeout.has_value()) request->timeout_us = *timeout;
    FW_ASSIGN_OR_RETURN(std::optional<bool> binary,
                        TakeBool(request->parameters, "binary_data_output", ""));
    binary_output = binary.value_or(false);
  }
  const Json* inputs = Member(doc, "inputs");
  if (inputs == nullptr || !inputs->IsArray()) {
    return Invalid("the request needs an 'inputs' array",
                   inputs == nullptr ? "" : absl::StrCat(", got ", JsonTypeName(*inputs)));
  }
  BinaryCursor cursor{body + header_size, body_size - header_size, json_size.has_value()};
  request->inputs.resize(inputs->Size());
  absl::flat_hash_set<absl::string_view> seen;
  for (rj::SizeType i = 0; i < inputs->Size(); ++i) {
    FW_RETURN_IF_ERROR(DecodeInput((*inputs)[i], i, cursor, owner, &request->inputs[i]));
    if (!seen.insert(request->inputs[i].name).second) {
      return Invalid("input '", request->inputs[i].name, "' appears more than once");
    }
  }
  if (cursor.left != 0) {
    return Invalid("the body has ", cursor.left,
                   " bytes of binary data that no input's binary_data_size accounts for");
  }
  if (const Json* outputs = Member(doc, "outputs")) {
    if (!outputs->IsArray()) {
      return Invalid("'outputs' must be an array, got ", JsonTypeName(*outputs));
    }
    request->outputs.resize(outputs->Size());
    absl::flat_hash_set<absl::string_view> seen_outputs;
    for (rj::SizeType i = 0; i < outputs->Size(); ++i) {
      FW_RETURN_IF_ERROR(DecodeOutput((*outputs)[i], i, binary_output, &request->outputs[i]));
      if (!seen_outputs.insert(request->outputs[i].name).second) {
        return Invalid("output '", request->outputs[i].name, "' is requested more than once");
      }
    }
  }
  options->all_outputs_binary = binary_output && request->outputs.empty();
  request->body = std::move(owner);
  return absl::OkStatus();
}

}  // namespace flywheel::api::http
