#include "monitor/log_record.h"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/data_type.h"

namespace flywheel::monitor {
namespace {

float HalfToFloat(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  if (exp == 0) {
    const float f = static_cast<float>(mant) * (1.0f / 16777216.0f);  // mant * 2^-24
    return sign ? -f : f;
  }
  const uint32_t bits =
      exp == 31 ? (sign | 0x7f800000u | (mant << 13)) : (sign | ((exp + 112) << 23) | (mant << 13));
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

float Bf16ToFloat(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// Shortest text that reads back as the same value (std::to_chars), integers included.
// Base64 (RFC 4648, padded) of `data`, appended in place.
constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// The two characters of every 12-bit value, first character in the low byte: one lookup per
// half of a 3-byte group instead of one per character. Numeric tensors are most of a record, and
// at 100% logging their encoding is a visible part of the writer's CPU.
const std::array<uint16_t, 4096>& Base64Pairs() {
  static const std::array<uint16_t, 4096> pairs = [] {
    std::array<uint16_t, 4096> t{};
    for (size_t i = 0; i < t.size(); ++i) {
      t[i] = static_cast<uint16_t>(static_cast<unsigned char>(kBase64Alphabet[i >> 6]) |
                                   (static_cast<unsigned char>(kBase64Alphabet[i & 63]) << 8));
    }
    return t;
  }();
  return pairs;
}

void AppendBase64(const unsigned char* data, size_t size, std::string* out) {
  const size_t start = out->size();
  out->resize(start + (size + 2) / 3 * 4);
  char* p = out->data() + start;
  size_t i = 0;
  if constexpr (std::endian::native == std::endian::little) {
    // Six bytes (two groups) a step, read as one big-endian word; eight bytes must be readable.
    const std::array<uint16_t, 4096>& pairs = Base64Pairs();
    for (; i + 8 <= size; i += 6) {
      uint64_t w;
      std::memcpy(&w, data + i, sizeof(w));
      w = __builtin_bswap64(w);
      const uint64_t chars =
          uint64_t{pairs[(w >> 52) & 0xfff]} | (uint64_t{pairs[(w >> 40) & 0xfff]} << 16) |
          (uint64_t{pairs[(w >> 28) & 0xfff]} << 32) | (uint64_t{pairs[(w >> 16) & 0xfff]} << 48);
      std::memcpy(p, &chars, sizeof(chars));
      p += 8;
    }
  }
  for (; i + 3 <= size; i += 3) {
    const uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
    p[0] = kBase64Alphabet[v >> 18];
    p[1] = kBase64Alphabet[(v >> 12) & 63];
    p[2] = kBase64Alphabet[(v >> 6) & 63];
    p[3] = kBase64Alphabet[v & 63];
    p += 4;
  }
  if (i < size) {
    const uint32_t v = (uint32_t{data[i]} << 16) | (i + 1 < size ? uint32_t{data[i + 1]} << 8 : 0);
    p[0] = kBase64Alphabet[v >> 18];
    p[1] = kBase64Alphabet[(v >> 12) & 63];
    p[2] = i + 1 < size ? kBase64Alphabet[(v >> 6) & 63] : '=';
    p[3] = '=';
  }
}

// Non-finite values are the JSON strings "NaN", "Infinity", "-Infinity" (unquoted for CSV).
template <typename T>
void AppendNumber(T v, std::string* out, bool quote = true) {
  if constexpr (std::is_floating_point_v<T>) {
    if (!std::isfinite(v)) {
      if (quote) out->push_back('"');
      out->append(std::isnan(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
      if (quote) out->push_back('"');
      return;
    }
  }
  char buf[32];
  const auto result = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, result.ptr);
}

template <typename T>
void AppendElements(const Tensor& t, int64_t n, std::string* out) {
  const T* p = t.data<T>();
  for (int64_t i = 0; i < n; ++i) {
    if (i > 0) out->push_back(',');
    AppendNumber(p[i], out);
  }
}

void AppendBytesElement(const std::string& s, std::string* out) {
  if (IsValidUtf8(s)) {
    AppendJsonString(s, out);
  } else {
    out->append("{\"b64\":\"");
    AppendBase64(reinterpret_cast<const unsigned char*>(s.data()), s.size(), out);
    out->append("\"}");
  }
}

void AppendData(const Tensor& t, std::string* out) {
  const int64_t n = t.NumElements();
  if (n > 0 && t.dtype() != DataType::kBytes && t.raw_data() == nullptr) return;
  switch (t.dtype()) {
    case DataType::kBool: {
      const bool* p = t.data<bool>();
      for (int64_t i = 0; i < n; ++i) {
        if (i > 0) out->push_back(',');
        out->append(p[i] ? "true" : "false");
      }
      break;
    }
    case DataType::kUint8:
      AppendElements<uint8_t>(t, n, out);
      break;
    case DataType::kUint16:
      AppendElements<uint16_t>(t, n, out);
      break;
    case DataType::kUint32:
      AppendElements<uint32_t>(t, n, out);
      break;
    case DataType::kUint64:
      AppendElements<uint64_t>(t, n, out);
      break;
    case DataType::kInt8:
      AppendElements<int8_t>(t, n, out);
      break;
    case DataType::kInt16:
      AppendElements<int16_t>(t, n, out);
      break;
    case DataType::kInt32:
      AppendElements<int32_t>(t, n, out);
      break;
    case DataType::kInt64:
      AppendElements<int64_t>(t, n, out);
      break;
    case DataType::kFp16:
    case DataType::kBf16: {
      const uint16_t* p = t.data<uint16_t>();
      const bool half = t.dtype() == DataType::kFp16;
      for (int64_t i = 0; i < n; ++i) {
        if (i > 0) out->push_back(',');
        AppendNumber(half ? HalfToFloat(p[i]) : Bf16ToFloat(p[i]), out);
      }
      break;
    }
    case DataType::kFp32:
      AppendElements<float>(t, n, out);
      break;
    case DataType::kFp64:
      AppendElements<double>(t, n, out);
      break;
    case DataType::kBytes: {
      const std::vector<std::string>& strings = t.strings();
      const int64_t count = std::min<int64_t>(n, static_cast<int64_t>(strings.size()));
      for (int64_t i = 0; i < count; ++i) {
        if (i > 0) out->push_back(',');
        AppendBytesElement(strings[i], out);
      }
      break;
    }
    case DataType::kInvalid:
      break;
  }
}

void AppendTensor(const Tensor& t, TensorDataFormat format, std::string* out) {
  out->append("{\"datatype\":\"");
  absl::StrAppend(out, DataTypeName(t.dtype()));
  out->append("\",\"shape\":[");
  for (int i = 0; i < t.rank(); ++i) {
    if (i > 0) out->push_back(',');
    AppendNumber(t.dim(i), out);
  }
  const bool binary = format == TensorDataFormat::kBase64 && !t.empty() &&
                      t.dtype() != DataType::kBytes &&
                      (t.raw_data() != nullptr || t.ByteSize() == 0);
  if (binary) {
    out->append("],\"data_b64\":\"");
    AppendBase64(static_cast<const unsigned char*>(t.raw_data()), t.ByteSize(), out);
    out->append("\"}");
    return;
  }
  out->append("],\"data\":[");
  if (!t.empty()) AppendData(t, out);
  out->append("]}");
}

// Names are JSON keys, which must be strings: a name that is not UTF-8 (never seen in practice)
// has its bytes above 0x7f replaced by '?'.
void AppendName(absl::string_view name, std::string* out) {
  if (IsValidUtf8(name)) {
    AppendJsonString(name, out);
    return;
  }
  std::string ascii(name);
  for (char& c : ascii) {
    if (static_cast<unsigned char>(c) >= 0x80) c = '?';
  }
  AppendJsonString(ascii, out);
}

void AppendTensors(absl::string_view key, const NamedTensors& tensors, TensorDataFormat format,
                   std::string* out) {
  out->append(",\"");
  absl::StrAppend(out, key);
  out->append("\":{");
  bool first = true;
  for (const auto& [name, tensor] : tensors) {
    if (!first) out->push_back(',');
    first = false;
    AppendName(name, out);
    out->push_back(':');
    AppendTensor(tensor, format, out);
  }
  out->push_back('}');
}

void AppendParameter(const LogParameterValue& value, std::string* out) {
  if (const bool* b = std::get_if<bool>(&value)) {
    out->append(*b ? "true" : "false");
  } else if (const int64_t* i = std::get_if<int64_t>(&value)) {
    AppendNumber(*i, out);
  } else if (const double* d = std::get_if<double>(&value)) {
    const size_t start = out->size();
    AppendNumber(*d, out);
    // "2.0", not "2", so that the value reads back as a double.
    if (out->find_first_of(".e\"", start) == std::string::npos) out->append(".0");
  } else {
    AppendBytesElement(std::get<std::string>(value), out);
  }
}

void AppendDigits(int64_t v, int width, char* p) {
  for (int i = width - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

}  // namespace

void AppendElementText(const Tensor& t, int64_t i, std::string* out) {
  switch (t.dtype()) {
    case DataType::kBool:
      out->append(t.data<bool>()[i] ? "true" : "false");
      return;
    case DataType::kUint8:
      return AppendNumber(t.data<uint8_t>()[i], out);
    case DataType::kUint16:
      return AppendNumber(t.data<uint16_t>()[i], out);
    case DataType::kUint32:
      return AppendNumber(t.data<uint32_t>()[i], out);
    case DataType::kUint64:
      return AppendNumber(t.data<uint64_t>()[i], out);
    case DataType::kInt8:
      return AppendNumber(t.data<int8_t>()[i], out);
    case DataType::kInt16:
      return AppendNumber(t.data<int16_t>()[i], out);
    case DataType::kInt32:
      return AppendNumber(t.data<int32_t>()[i], out);
    case DataType::kInt64:
      return AppendNumber(t.data<int64_t>()[i], out);
    case DataType::kFp16:
      return AppendNumber(HalfToFloat(t.data<uint16_t>()[i]), out, /*quote=*/false);
    case DataType::kBf16:
      return AppendNumber(Bf16ToFloat(t.data<uint16_t>()[i]), out, /*quote=*/false);
    case DataType::kFp32:
      return AppendNumber(t.data<float>()[i], out, /*quote=*/false);
    case DataType::kFp64:
      return AppendNumber(t.data<double>()[i], out, /*quote=*/false);
    case DataType::kBytes: {
      const std::string& s = t.strings()[i];
      if (IsValidUtf8(s)) {
        out->append(s);
      } else {
        out->append("b64:");
        AppendBase64(reinterpret_cast<const unsigned char*>(s.data()), s.size(), out);
      }
      return;
    }
    case DataType::kInvalid:
      return;
  }
}

bool IsValidUtf8(absl::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int extra;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      extra = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    p += extra + 1;
  }
  return true;
}

void AppendJsonString(absl::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // start of the current run of characters that need no escape
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xf]);
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

std::string FormatLogTime(absl::Time t) {
  // Civil date from days since 1970-01-01 (proleptic Gregorian), without a time zone lookup.
  const int64_t ns = absl::ToUnixNanos(t);
  int64_t secs = ns / 1000000000;
  int64_t frac = ns % 1000000000;
  if (frac < 0) {
    frac += 1000000000;
    --secs;
  }
  int64_t days = secs / 86400;
  int64_t sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    --days;
  }
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  if (year < 0 || year > 9999)
    return absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", t, absl::UTCTimeZone());
  std::string s = "0000-00-00T00:00:00.000000000Z";
  AppendDigits(year, 4, &s[0]);
  AppendDigits(month, 2, &s[5]);
  AppendDigits(day, 2, &s[8]);
  AppendDigits(sod / 3600, 2, &s[11]);
  AppendDigits(sod / 60 % 60, 2, &s[14]);
  AppendDigits(sod % 60, 2, &s[17]);
  AppendDigits(frac, 9, &s[20]);
  return s;
}

absl::StatusOr<absl::Time> ParseLogTime(absl::string_view text) {
  // The writer's own form, "2024-05-01T12:00:00.123456789Z", without a general parser.
  static constexpr absl::string_view kPattern = "dddd-dd-ddTdd:dd:dd.dddddddddZ";
  bool fast = text.size() == kPattern.size();
  for (size_t i = 0; fast && i < text.size(); ++i) {
    fast = kPattern[i] == 'd' ? absl::ascii_isdigit(static_cast<unsigned char>(text[i]))
                              : text[i] == kPattern[i];
  }
  if (fast) {
    auto num = [&](size_t pos, size_t len) {
      int64_t v = 0;
      for (size_t i = pos; i < pos + len; ++i) v = v * 10 + (text[i] - '0');
      return v;
    };
    const int64_t year = num(0, 4), month = num(5, 2), day = num(8, 2);
    const int64_t hour = num(11, 2), minute = num(14, 2), second = num(17, 2);
    static constexpr int kMonthDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    if (month >= 1 && month <= 12 && day >= 1 && day <= kMonthDays[month - 1] &&
        (month != 2 || day <= 28 || leap) && hour < 24 && minute < 60 && second < 60) {
      // Days since 1970-01-01 of a proleptic Gregorian date.
      const int64_t y = year - (month <= 2 ? 1 : 0);
      const int64_t era = (y >= 0 ? y : y - 399) / 400;
      const int64_t yoe = y - era * 400;
      const int64_t doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
      const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
      const int64_t days = era * 146097 + doe - 719468;
      const int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second;
      return absl::FromUnixSeconds(secs) + absl::Nanoseconds(num(20, 9));
    }
  }
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &error)) {
    return absl::InvalidArgumentError(
        absl::StrCat("time '", text, "' is not RFC 3339 (like 2024-05-01T12:00:00Z): ", error));
  }
  return t;
}

void AppendRecordJson(const PredictionRecord& record, TensorDataFormat format, std::string* out) {
  out->append("{\"id\":");
  AppendBytesElement(record.request_id, out);
  out->append(",\"time\":\"");
  out->append(FormatLogTime(record.time));
  out->append("\",\"model\":");
  AppendName(record.model, out);
  out->append(",\"version\":");
  AppendNumber(record.version, out);
  AppendTensors("inputs", record.inputs, format, out);
  AppendTensors("outputs", record.outputs, format, out);
  if (!record.parameters.empty()) {
    out->append(",\"parameters\":{");
    bool first = true;
    for (const auto& [name, value] : record.parameters) {
      if (!first) out->push_back(',');
      first = false;
      AppendName(name, out);
      out->push_back(':');
      AppendParameter(value, out);
    }
    out->push_back('}');
  }
  if (!record.features.empty()) AppendTensors("features", record.features, format, out);
  out->append("}\n");
}

}  // namespace flywheel::monitor
