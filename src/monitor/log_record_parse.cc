// ParseRecordJson: a prediction log line back into a PredictionRecord (see log_record.h).
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "monitor/log_record.h"
#include "rapidjson/document.h"
#include "rapidjson/error/en.h"
#include "rapidjson/reader.h"

namespace flywheel::monitor {
namespace {

namespace rj = rapidjson;

// Builds a document in which every string value starts with 's' and every number is kept as its
// text behind an 'n': exact conversion per datatype, and the string "2" stays apart from 2.
struct TaggingHandler {
  rj::Document& d;
  std::string scratch;

  bool Tagged(char tag, const char* s, rj::SizeType n) {
    scratch.assign(1, tag);
    scratch.append(s, n);
    return d.String(scratch.data(), static_cast<rj::SizeType>(scratch.size()), true);
  }
  bool Null() { return d.Null(); }
  bool Bool(bool b) { return d.Bool(b); }
  bool Int(int i) { return d.Int(i); }
  bool Uint(unsigned i) { return d.Uint(i); }
  bool Int64(int64_t i) { return d.Int64(i); }
  bool Uint64(uint64_t i) { return d.Uint64(i); }
  bool Double(double v) { return d.Double(v); }
  bool RawNumber(const char* s, rj::SizeType n, bool) { return Tagged('n', s, n); }
  bool String(const char* s, rj::SizeType n, bool) { return Tagged('s', s, n); }
  bool StartObject() { return d.StartObject(); }
  bool Key(const char* s, rj::SizeType n, bool) { return d.Key(s, n, true); }
  bool EndObject(rj::SizeType n) { return d.EndObject(n); }
  bool StartArray() { return d.StartArray(); }
  bool EndArray(rj::SizeType n) { return d.EndArray(n); }
};

bool IsNumber(const rj::Value& v) { return v.IsString() && v.GetString()[0] == 'n'; }
bool IsText(const rj::Value& v) { return v.IsString() && v.GetString()[0] == 's'; }
absl::string_view Body(const rj::Value& v) {
  return absl::string_view(v.GetString() + 1, v.GetStringLength() - 1);
}

absl::Status Bad(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("log record field '", field, "': ", what));
}

// A string, or {"b64": ...} for bytes that are not UTF-8.
absl::StatusOr<std::string> Bytes(const rj::Value& v, absl::string_view field) {
  if (IsText(v)) return std::string(Body(v));
  if (v.IsObject()) {
    auto b64 = v.FindMember("b64");
    std::string out;
    if (b64 != v.MemberEnd() && IsText(b64->value) &&
        absl::Base64Unescape(Body(b64->value), &out)) {
      return out;
    }
  }
  return Bad(field, "expected a string or {\"b64\": base64}");
}

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  const uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) return static_cast<uint16_t>(sign | (x > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (x >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504
  if (x < 0x38800000u) {  // below 2^-14: a subnormal half, mantissa = value * 2^24 rounded
    float a;
    std::memcpy(&a, &x, sizeof(a));
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(a * 16777216.0f)));
  }
  // Rebias the exponent (127 -> 15) and round the mantissa to nearest even.
  x += 0xc8000fffu + ((x >> 13) & 1u);
  return static_cast<uint16_t>(sign | (x >> 13));
}

uint16_t FloatToBf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  if (std::isnan(f)) return static_cast<uint16_t>((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

template <typename T>
bool ParseFloat(const rj::Value& v, T* out) {
  if (IsText(v)) {
    const absl::string_view s = Body(v);
    if (s == "NaN")
      *out = std::numeric_limits<T>::quiet_NaN();
    else if (s == "Infinity")
      *out = std::numeric_limits<T>::infinity();
    else if (s == "-Infinity")
      *out = -std::numeric_limits<T>::infinity();
    else
      return false;
    return true;
  }
  if (!IsNumber(v)) return false;
  if constexpr (std::is_same_v<T, float>)
    return absl::SimpleAtof(Body(v), out);
  else
    return absl::SimpleAtod(Body(v), out);
}

template <typename T>
bool ParseInt(const rj::Value& v, T* out) {
  if (!IsNumber(v)) return false;
  using Wide = std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>;
  Wide w;
  if (!absl::SimpleAtoi(Body(v), &w)) return false;
  if constexpr (!std::is_same_v<T, Wide>) {
    if (w > static_cast<Wide>(std::numeric_limits<T>::max())) return false;
    if constexpr (std::is_signed_v<T>) {
      if (w < static_cast<Wide>(std::numeric_limits<T>::min())) return false;
    }
  }
  *out = static_cast<T>(w);
  return true;
}

bool ParseElement(const rj::Value& v, DataType dtype, Tensor& t, int64_t i) {
  switch (dtype) {
    case DataType::kBool:
      if (!v.IsBool()) return false;
      t.data<bool>()[i] = v.GetBool();
      return true;
    case DataType::kUint8:
      return ParseInt(v, &t.data<uint8_t>()[i]);
    case DataType::kUint16:
      return ParseInt(v, &t.data<uint16_t>()[i]);
    case DataType::kUint32:
      return ParseInt(v, &t.data<uint32_t>()[i]);
    case DataType::kUint64:
      return ParseInt(v, &t.data<uint64_t>()[i]);
    case DataType::kInt8:
      return ParseInt(v, &t.data<int8_t>()[i]);
    case DataType::kInt16:
      return ParseInt(v, &t.data<int16_t>()[i]);
    case DataType::kInt32:
      return ParseInt(v, &t.data<int32_t>()[i]);
    case DataType::kInt64:
      return ParseInt(v, &t.data<int64_t>()[i]);
    case DataType::kFp16:
    case DataType::kBf16: {
      float f;
      if (!ParseFloat(v, &f)) return false;
      t.data<uint16_t>()[i] = dtype == DataType::kFp16 ? FloatToHalf(f) : FloatToBf16(f);
      return true;
    }
    case DataType::kFp32:
      return ParseFloat(v, &t.data<float>()[i]);
    case DataType::kFp64:
      return ParseFloat(v, &t.data<double>()[i]);
    case DataType::kBytes: {
      auto s = Bytes(v, "");
      if (!s.ok()) return false;
      t.strings()[i] = *std::move(s);
      return true;
    }
    case DataType::kInvalid:
      return false;
  }
  return false;
}

absl::StatusOr<Tensor> ParseTensor(const rj::Value& v, const std::string& field) {
  if (!v.IsObject()) return Bad(field, "expected a tensor object");
  auto dt = v.FindMember("datatype");
  if (dt == v.MemberEnd() || !IsText(dt->value)) return Bad(field, "no \"datatype\"");
  auto dtype = DataTypeFromName(Body(dt->value));
  if (!dtype.ok()) return Bad(field, dtype.status().message());
  auto shape_v = v.FindMember("shape");
  if (shape_v == v.MemberEnd() || !shape_v->value.IsArray()) return Bad(field, "no \"shape\"");
  std::vector<int64_t> dims;
  for (const rj::Value& d : shape_v->value.GetArray()) {
    int64_t dim;
    if (!ParseInt(d, &dim)) return Bad(field, "a shape dimension is not an integer");
    dims.push_back(dim);
  }
  auto shape = Shape::Checked(dims, field);
  if (!shape.ok()) return shape.status();
  auto tensor = Tensor::SafeAllocate(*dtype, *shape, field);
  if (!tensor.ok()) return tensor.status();
  const int64_t n = tensor->NumElements();
  auto b64 = v.FindMember("data_b64");
  if (b64 != v.MemberEnd() && *dtype != DataType::kBytes) {
    std::string raw;
    if (!IsText(b64->value) || !absl::Base64Unescape(Body(b64->value), &raw)) {
      return Bad(field, "\"data_b64\" is not base64");
    }
    if (raw.size() != tensor->ByteSize()) {
      return Bad(field,
                 absl::StrCat("\"data_b64\" holds ", raw.size(), " bytes; ", DataTypeName(*dtype),
                              " ", shape->ToString(), " needs ", tensor->ByteSize()));
    }
    if (!raw.empty()) std::memcpy(tensor->raw_data(), raw.data(), raw.size());
    return tensor;
  }
  auto data = v.FindMember("data");
  if (data == v.MemberEnd() || !data->value.IsArray()) return Bad(field, "no \"data\"");
  if (static_cast<int64_t>(data->value.Size()) != n) {
    return Bad(field, absl::StrCat("\"data\" has ", data->value.Size(), " elements; shape ",
                                   shape->ToString(), " needs ", n));
  }
  for (int64_t i = 0; i < n; ++i) {
    if (!ParseElement(data->value[static_cast<rj::SizeType>(i)], *dtype, *tensor, i)) {
      return Bad(field, absl::StrCat("element ", i, " is not a ", DataTypeName(*dtype), " value"));
    }
  }
  return tensor;
}

absl::Status ParseTensors(const rj::Value& record, const char* key, NamedTensors* out) {
  auto section = record.FindMember(key);
  if (section == record.MemberEnd()) return absl::OkStatus();
  if (!section->value.IsObject()) return Bad(key, "expected an object of tensors");
  for (const auto& m : section->value.GetObject()) {
    std::string name(m.name.GetString(), m.name.GetStringLength());
    auto t = ParseTensor(m.value, absl::StrCat(key, ".", name));
    if (!t.ok()) return t.status();
    out->emplace_back(std::move(name), *std::move(t));
  }
  return absl::OkStatus();
}

absl::StatusOr<LogParameterValue> ParseParameter(const rj::Value& v, const std::string& field) {
  if (v.IsBool()) return LogParameterValue(v.GetBool());
  if (IsNumber(v)) {
    const absl::string_view s = Body(v);
    int64_t i;
    if (s.find_first_of(".eE") == absl::string_view::npos && absl::SimpleAtoi(s, &i)) {
      return LogParameterValue(i);
    }
    double d;
    if (absl::SimpleAtod(s, &d)) return LogParameterValue(d);
  }
  auto s = Bytes(v, field);
  if (!s.ok()) return s.status();
  return LogParameterValue(*std::move(s));
}

}  // namespace

absl::StatusOr<PredictionRecord> ParseRecordJson(absl::string_view line) {
  const std::string text(line);  // the reader wants a terminated string
  rj::Document d;
  rj::Reader reader;
  rj::ParseResult result;
  auto generate = [&](rj::Document& doc) {
    TaggingHandler handler{doc, {}};
    rj::StringStream stream(text.c_str());
    result = reader.Parse<rj::kParseNumbersAsStringsFlag>(stream, handler);
    return !result.IsError();
  };
  d.Populate(generate);
  if (result.IsError()) {
    return absl::InvalidArgumentError(absl::StrCat("log record: not JSON at byte ", result.Offset(),
                                                   ": ", rj::GetParseError_En(result.Code())));
  }
  if (!d.IsObject()) return absl::InvalidArgumentError("log record: not a JSON object");
  PredictionRecord r;
  auto id = d.FindMember("id");
  if (id != d.MemberEnd()) {
    auto s = Bytes(id->value, "id");
    if (!s.ok()) return s.status();
    r.request_id = *std::move(s);
  }
  auto time = d.FindMember("time");
  if (time == d.MemberEnd() || !IsText(time->value)) return Bad("time", "missing");
  auto t = ParseLogTime(Body(time->value));
  if (!t.ok()) return Bad("time", t.status().message());
  r.time = *t;
  auto model = d.FindMember("model");
  if (model == d.MemberEnd() || !IsText(model->value)) return Bad("model", "missing");
  r.model = std::string(Body(model->value));
  auto version = d.FindMember("version");
  if (version != d.MemberEnd() && !ParseInt(version->value, &r.version)) {
    return Bad("version", "not an integer");
  }
  for (auto [key, out] : {std::pair{"inputs", &r.inputs}, std::pair{"outputs", &r.outputs},
                          std::pair{"features", &r.features}}) {
    if (absl::Status s = ParseTensors(d, key, out); !s.ok()) return s;
  }
  auto params = d.FindMember("parameters");
  if (params != d.MemberEnd()) {
    if (!params->value.IsObject()) return Bad("parameters", "expected an object");
    for (const auto& m : params->value.GetObject()) {
      std::string name(m.name.GetString(), m.name.GetStringLength());
      auto value = ParseParameter(m.value, "parameters." + name);
      if (!value.ok()) return value.status();
      r.parameters.emplace(std::move(name), *std::move(value));
    }
  }
  return r;
}

}  // namespace flywheel::monitor
