// Encoding of KServe v2 inference responses (JSON + binary tensor extension); see infer_codec.h.
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <variant>

#include "absl/strings/str_cat.h"
#include "api/http/infer_codec.h"
#include "rapidjson/allocators.h"
#include "rapidjson/writer.h"

namespace flywheel::api::http {
namespace {

namespace rj = rapidjson;

// A RapidJSON output stream that appends to a std::string, so the JSON is written once, straight
// into the buffer the reply sends.
class StringSink {
 public:
  using Ch = char;
  explicit StringSink(std::string& out) : out_(out) {}
  void Put(char c) { out_.push_back(c); }
  void Flush() {}

 private:
  std::string& out_;
};
using Writer = rj::Writer<StringSink, rj::UTF8<>, rj::UTF8<>, rj::MemoryPoolAllocator<>>;

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF),
// i.e. when it can go into a JSON string unchanged.
bool IsUtf8(absl::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int extra;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = cp << 6 | (p[i] & 0x3F);
    }
    if ((extra == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF))) {
      return false;
    }
    p += extra + 1;
  }
  return true;
}

bool AllUtf8(const Tensor& t) {
  for (const std::string& s : t.strings()) {
    if (!IsUtf8(s)) return false;
  }
  return true;
}

// Appends one number; floating point in the shortest form that reads back to the same value.
// JSON has no NaN or infinities: they are written as NaN / Infinity, which Python's json reads.
template <typename T>
void AppendNumber(std::string& out, T v) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(v)) {
      out += "NaN";
      return;
    }
    if (std::isinf(v)) {
      out += v > 0 ? "Infinity" : "-Infinity";
      return;
    }
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

template <typename T>
void AppendArray(std::string& out, const T* data, int64_t n) {
  out.reserve(out.size() + 2 + static_cast<size_t>(n) * 8);
  out += '[';
  for (int64_t i = 0; i < n; ++i) {
    if (i > 0) out += ',';
    if constexpr (std::is_same_v<T, bool>) {
      out += data[i] ? "true" : "false";
    } else if constexpr (std::is_same_v<T, int8_t> || std::is_same_v<T, uint8_t>) {
      AppendNumber(out, static_cast<int>(data[i]));
    } else {
      AppendNumber(out, data[i]);
    }
  }
  out += ']';
}

// The text of a numeric or boolean tensor's "data" array.
absl::Status NumericArray(const Tensor& t, std::string& out) {
  int64_t n = t.NumElements();
  switch (t.dtype()) {
    case DataType::kBool:
      AppendArray(out, t.data<bool>(), n);
      break;
    case DataType::kUint8:
      AppendArray(out, t.data<uint8_t>(), n);
      break;
    case DataType::kUint16:
      AppendArray(out, t.data<uint16_t>(), n);
      break;
    case DataType::kUint32:
      AppendArray(out, t.data<uint32_t>(), n);
      break;
    case DataType::kUint64:
      AppendArray(out, t.data<uint64_t>(), n);
      break;
    case DataType::kInt8:
      AppendArray(out, t.data<int8_t>(), n);
      break;
    case DataType::kInt16:
      AppendArray(out, t.data<int16_t>(), n);
      break;
    case DataType::kInt32:
      AppendArray(out, t.data<int32_t>(), n);
      break;
    case DataType::kInt64:
      AppendArray(out, t.data<int64_t>(), n);
      break;
    case DataType::kFp32:
      AppendArray(out, t.data<float>(), n);
      break;
    case DataType::kFp64:
      AppendArray(out, t.data<double>(), n);
      break;
    default:
      return absl::InternalError(
          absl::StrCat("cannot write ", DataTypeName(t.dtype()), " tensor data as JSON"));
  }
  return absl::OkStatus();
}

void WriteParameter(Writer& w, const serving::ParameterValue& value) {
  std::visit(
      [&w](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, bool>) {
          w.Bool(v);
        } else if constexpr (std::is_same_v<V, int64_t>) {
          w.Int64(v);
        } else if constexpr (std::is_same_v<V, double>) {
          std::string text;
          AppendNumber(text, v);
          w.RawValue(text.data(), text.size(), rj::kNumberType);
        } else {
          w.String(v.data(), static_cast<rj::SizeType>(v.size()));
        }
      },
      value);
}

void WriteString(Writer& w, absl::string_view s) {
  w.String(s.data(), static_cast<rj::SizeType>(s.size()));
}

void WriteKey(Writer& w, absl::string_view s) {
  w.Key(s.data(), static_cast<rj::SizeType>(s.size()));
}

std::string SerializeStrings(const Tensor& t) {
  size_t total = 0;
  for (const std::string& s : t.strings()) total += 4 + s.size();
  std::string out;
  out.resize(total);
  char* p = out.data();
  for (const std::string& s : t.strings()) {
    uint32_t n = static_cast<uint32_t>(s.size());
    unsigned char len[4] = {static_cast<unsigned char>(n), static_cast<unsigned char>(n >> 8),
                            static_cast<unsigned char>(n >> 16),
                            static_cast<unsigned char>(n >> 24)};
    std::memcpy(p, len, 4);
    if (!s.empty()) std::memcpy(p + 4, s.data(), s.size());
    p += 4 + s.size();
  }
  return out;
}

}  // namespace

std::string EncodedInferResponse::Flatten() const {
  std::string out = json;
  out.reserve(json.size() + binary_size);
  for (const Chunk& c : binary) out.append(c.data, c.size);
  return out;
}

absl::StatusOr<EncodedInferResponse> EncodeInferResponse(const serving::InferResponse& response,
                                                         const InferEncodeOptions& options) {
  EncodedInferResponse out;
  // Room for the envelope and typical small outputs; larger ones grow the string as needed.
  out.json.reserve(256);
  StringSink sink(out.json);
  // The writer's nesting stack lives in this buffer: no allocation for it.
  char stack_buffer[1024];
  rj::MemoryPoolAllocator<> stack_allocator(stack_buffer, sizeof(stack_buffer));
  Writer w(sink, &stack_allocator);
  // Numeric data is formatted here first (RawValue); kept per thread so it is allocated once.
  thread_local std::string scratch;
  w.StartObject();
  WriteKey(w, "model_name");
  WriteString(w, response.model_name);
  WriteKey(w, "model_version");
  WriteString(w, response.model_version);
  if (!response.id.empty()) {
    WriteKey(w, "id");
    WriteString(w, response.id);
  }
  if (!response.parameters.empty()) {
    WriteKey(w, "parameters");
    w.StartObject();
    for (const auto& [key, value] : response.parameters) {
      WriteKey(w, key);
      WriteParameter(w, value);
    }
    w.EndObject();
  }
  WriteKey(w, "outputs");
  w.StartArray();
  for (const serving::InferOutput& output : response.outputs) {
    const Tensor& t = output.data;
    if (t.empty()) {
      return absl::InternalError(absl::StrCat("output '", output.name, "' has no tensor"));
    }
    w.StartObject();
    WriteKey(w, "name");
    WriteString(w, output.name);
    WriteKey(w, "datatype");
    WriteString(w, DataTypeName(t.dtype()));
    WriteKey(w, "shape");
    w.StartArray();
    for (int64_t d : t.shape().dims()) w.Int64(d);
    w.EndArray();
    bool is_bytes = t.dtype() == DataType::kBytes;
    bool binary = output.binary_data || options.all_outputs_binary ||
                  t.dtype() == DataType::kFp16 || t.dtype() == DataType::kBf16 ||
                  (is_bytes && !AllUtf8(t));
    if (binary) {
      EncodedInferResponse::Chunk chunk;
      if (is_bytes) {
        const std::string& bytes = out.strings.emplace_back(SerializeStrings(t));
        chunk = {bytes.data(), bytes.size()};
      } else {
        out.tensors.push_back(t);
        chunk = {static_cast<const char*>(t.raw_data()), t.ByteSize()};
      }
      WriteKey(w, "parameters");
      w.StartObject();
      WriteKey(w, "binary_data_size");
      w.Uint64(chunk.size);
      w.EndObject();
      out.binary.push_back(chunk);
      out.binary_size += chunk.size;
    } else if (is_bytes) {
      WriteKey(w, "data");
      w.StartArray();
      for (const std::string& s : t.strings()) WriteString(w, s);
      w.EndArray();
    } else {
      WriteKey(w, "data");
      scratch.clear();
      absl::Status status = NumericArray(t, scratch);
      if (!status.ok()) return status;
      w.RawValue(scratch.data(), scratch.size(), rj::kArrayType);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return out;
}

}  // namespace flywheel::api::http
