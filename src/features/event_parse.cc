#include "features/event_parse.h"

#include <bit>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"

namespace flywheel::features {
namespace {

constexpr char kKeySeparator = '\x1e';

const char* JsonType(const rapidjson::Value& v) {
  switch (v.GetType()) {
    case rapidjson::kNullType:
      return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      return "a boolean";
    case rapidjson::kObjectType:
      return "an object";
    case rapidjson::kArrayType:
      return "an array";
    case rapidjson::kStringType:
      return "a string";
    case rapidjson::kNumberType:
      if (v.IsInt64()) return "an integer";
      return v.IsUint64() ? "an integer beyond int64" : "a number";
  }
  return "?";
}

bool ValidKeyText(absl::string_view s) {
  return !s.empty() && s.find(kKeySeparator) == absl::string_view::npos &&
         s.find('\x1f') == absl::string_view::npos;
}

const rapidjson::Value* Member(const rapidjson::Value& object, const std::string& name) {
  auto it = object.FindMember(rapidjson::StringRef(name.data(), name.size()));
  if (it == object.MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

// Converts a field's JSON value to the declared type; the message says what was wrong.
absl::Status JsonValue(const rapidjson::Value& v, FieldType type, FieldValue* out) {
  out->present = true;
  switch (type) {
    case FieldType::kInt64:
      if (v.IsInt64()) {
        out->bits = static_cast<uint64_t>(v.GetInt64());
        return absl::OkStatus();
      }
      // 3.0 from a client that writes every number as a float is still the integer 3.
      if (v.IsDouble() && std::trunc(v.GetDouble()) == v.GetDouble() &&
          std::fabs(v.GetDouble()) < 9.2e18) {
        out->bits = static_cast<uint64_t>(static_cast<int64_t>(v.GetDouble()));
        return absl::OkStatus();
      }
      break;
    case FieldType::kFloat64:
      if (v.IsNumber()) {
        double d = v.GetDouble();
        if (!std::isfinite(d)) return absl::InvalidArgumentError("expected a finite float64");
        out->bits = std::bit_cast<uint64_t>(d);
        return absl::OkStatus();
      }
      break;
    case FieldType::kString:
      if (v.IsString()) {
        out->str = absl::string_view(v.GetString(), v.GetStringLength());
        return absl::OkStatus();
      }
      break;
    case FieldType::kBool:
      if (v.IsBool()) {
        out->bits = v.GetBool() ? 1 : 0;
        return absl::OkStatus();
      }
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("expected ", FieldTypeName(type), ", got ", JsonType(v)));
}

absl::Status TextValue(absl::string_view text, FieldType type, FieldValue* out) {
  out->present = true;
  switch (type) {
    case FieldType::kInt64: {
      int64_t v = 0;
      if (!absl::SimpleAtoi(text, &v)) break;
      out->bits = static_cast<uint64_t>(v);
      return absl::OkStatus();
    }
    case FieldType::kFloat64: {
      double d = 0;
      if (!absl::SimpleAtod(text, &d) || !std::isfinite(d)) break;
      out->bits = std::bit_cast<uint64_t>(d);
      return absl::OkStatus();
    }
    case FieldType::kString:
      out->str = text;
      return absl::OkStatus();
    case FieldType::kBool:
      if (text == "true" || text == "1") {
        out->bits = 1;
      } else if (text == "false" || text == "0") {
        out->bits = 0;
      } else {
        break;
      }
      return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("expected ", FieldTypeName(type), ", got '", text.substr(0, 64), "'"));
}

void Rollback(ParsedEvents* out, size_t keys, size_t values) {
  out->keys.resize(out->size * keys);
  out->values.resize(out->size * values);
  out->times.resize(out->size);
  out->input_index.resize(out->size);
}

}  // namespace

std::string EventError::ToString() const { return absl::StrCat("event ", index, ": ", message); }

std::string JoinEventErrors(absl::Span<const EventError> errors) {
  constexpr size_t kShown = 10;
  std::vector<std::string> parts;
  for (size_t i = 0; i < errors.size() && i < kShown; ++i) parts.push_back(errors[i].ToString());
  std::string out = absl::StrJoin(parts, "; ");
  if (errors.size() > kShown) absl::StrAppend(&out, " (and ", errors.size() - kShown, " more)");
  return out;
}

absl::Status EventParser::ParseTimeText(absl::string_view text, absl::Duration unit,
                                        int64_t* time_ns) {
  text = absl::StripAsciiWhitespace(text);
  int64_t unit_ns = absl::ToInt64Nanoseconds(unit);
  int64_t i = 0;
  double d = 0;
  if (absl::SimpleAtoi(text, &i)) {
    if (i < 0 || i > kMaxTime / unit_ns) {
      return absl::InvalidArgumentError(absl::StrCat("timestamp ", i, " is out of range"));
    }
    *time_ns = i * unit_ns;
    return absl::OkStatus();
  }
  // "1700000000.123456789": whole and fraction in integers, exact to the nanosecond.
  size_t dot = text.find('.');
  int64_t whole = 0, frac = 0;
  if (dot != absl::string_view::npos && dot > 0 && dot + 1 < text.size() &&
      text.size() - dot - 1 <= 18 && absl::ascii_isdigit(text[0]) &&
      absl::SimpleAtoi(text.substr(0, dot), &whole) &&
      absl::SimpleAtoi(text.substr(dot + 1), &frac) && text[dot + 1] != '+' &&
      text[dot + 1] != '-' && whole <= kMaxTime / unit_ns) {
    int64_t scale = 1;
    for (size_t i = dot + 1; i < text.size(); ++i) scale *= 10;
    // frac / scale of a unit, in nanoseconds: split so the product cannot overflow.
    int64_t ns = whole * unit_ns + (frac / scale) * unit_ns +
                 static_cast<int64_t>(static_cast<__int128>(frac % scale) * unit_ns / scale);
    if (ns < kMaxTime) {
      *time_ns = ns;
      return absl::OkStatus();
    }
  }
  if (absl::SimpleAtod(text, &d)) {
    double ns = d * static_cast<double>(unit_ns);
    if (!(ns >= 0 && ns < static_cast<double>(kMaxTime))) {
      return absl::InvalidArgumentError(absl::StrCat("timestamp ", text, " is out of range"));
    }
    *time_ns = std::llround(ns);
    return absl::OkStatus();
  }
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &error)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad timestamp '", text.substr(0, 64), "': expected a number of ",
                     FormatFeatureDuration(unit), " units since 1970 or an RFC 3339 time"));
  }
  if (t < absl::UnixEpoch() || t >= absl::FromUnixNanos(kMaxTime)) {
    return absl::InvalidArgumentError(absl::StrCat("timestamp '", text, "' is out of range"));
  }
  *time_ns = absl::ToUnixNanos(t);
  return absl::OkStatus();
}

absl::Status EventParser::ParseTime(const rapidjson::Value& value, absl::Duration unit,
                                    int64_t* time_ns) {
  if (value.IsString()) {
    return ParseTimeText(absl::string_view(value.GetString(), value.GetStringLength()), unit,
                         time_ns);
  }
  if (!value.IsNumber()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected a number or an RFC 3339 string, got ", JsonType(value)));
  }
  int64_t unit_ns = absl::ToInt64Nanoseconds(unit);
  if (value.IsInt64()) {
    int64_t i = value.GetInt64();
    if (i < 0 || i > kMaxTime / unit_ns) {
      return absl::InvalidArgumentError(absl::StrCat("timestamp ", i, " is out of range"));
    }
    *time_ns = i * unit_ns;
    return absl::OkStatus();
  }
  double ns = value.GetDouble() * static_cast<double>(unit_ns);
  if (!(ns >= 0 && ns < static_cast<double>(kMaxTime))) {
    return absl::InvalidArgumentError(
        absl::StrCat("timestamp ", value.GetDouble(), " is out of range"));
  }
  *time_ns = std::llround(ns);
  return absl::OkStatus();
}

absl::Status EventParser::CheckTime(int64_t time_ns) const {
  if (time_ns > max_time_ns_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "timestamp ",
        absl::FormatTime(absl::RFC3339_full, absl::FromUnixNanos(time_ns), absl::UTCTimeZone()),
        " is too far in the future"));
  }
  return absl::OkStatus();
}

bool EventParser::ParseJsonEvent(const rapidjson::Value& event, size_t index, ParsedEvents* out,
                                 std::vector<EventError>* errors) const {
  const SourceDef& src = *source_;
  auto fail = [&](std::string message) {
    Rollback(out, src.key_fields.size(), src.value_fields.size());
    if (errors) errors->push_back(EventError{index, std::move(message)});
    return false;
  };
  if (!event.IsObject()) return fail(absl::StrCat("expected an object, got ", JsonType(event)));
  const rapidjson::Value* ts = Member(event, src.timestamp_field);
  if (!ts) return fail(absl::StrCat("timestamp field '", src.timestamp_field, "' missing"));
  int64_t time_ns = 0;
  absl::Status status = ParseTime(*ts, src.timestamp_unit, &time_ns);
  if (status.ok()) status = CheckTime(time_ns);
  if (!status.ok()) {
    return fail(absl::StrCat("field '", src.timestamp_field, "': ", status.message()));
  }
  for (const std::string& key : src.key_fields) {
    const rapidjson::Value* v = Member(event, key);
    if (!v) return fail(absl::StrCat("field '", key, "' missing"));
    KeyValue kv;
    if (v->IsString()) {
      kv.str = absl::string_view(v->GetString(), v->GetStringLength());
      if (!ValidKeyText(kv.str)) {
        return fail(absl::StrCat("key field '", key, "' is empty or holds \\x1e or \\x1f"));
      }
    } else if (v->IsInt64()) {
      kv.is_int = true;
      kv.int_value = v->GetInt64();
    } else {
      return fail(absl::StrCat("key field '", key, "': expected a string or an integer, got ",
                               JsonType(*v)));
    }
    out->keys.push_back(kv);
  }
  for (const auto& [name, type] : src.value_fields) {
    FieldValue fv;
    if (const rapidjson::Value* v = Member(event, name)) {
      status = JsonValue(*v, type, &fv);
      if (!status.ok()) return fail(absl::StrCat("field '", name, "': ", status.message()));
    }
    out->values.push_back(fv);
  }
  out->times.push_back(time_ns);
  out->input_index.push_back(static_cast<uint32_t>(index));
  ++out->size;
  return true;
}

bool EventParser::ParseJson(const rapidjson::Value& events, ParsedEvents* out,
                            std::vector<EventError>* errors, size_t max_errors) const {
  if (!events.IsArray()) {
    if (errors) errors->push_back(EventError{0, "expected a JSON array of events"});
    return false;
  }
  bool ok = true;
  size_t failures = 0;
  for (rapidjson::SizeType i = 0; i < events.Size(); ++i) {
    if (!ParseJsonEvent(events[i], i, out, failures < max_errors ? errors : nullptr)) {
      ok = false;
      ++failures;
    }
  }
  return ok;
}

bool EventParser::ParseFields(absl::Span<const std::pair<std::string, std::string>> fields,
                              size_t index, ParsedEvents* out,
                              std::vector<EventError>* errors) const {
  const SourceDef& src = *source_;
  auto fail = [&](std::string message) {
    Rollback(out, src.key_fields.size(), src.value_fields.size());
    if (errors) errors->push_back(EventError{index, std::move(message)});
    return false;
  };
  auto find = [&](const std::string& name) -> const std::string* {
    for (const auto& [field, value] : fields) {
      if (field == name) return &value;
    }
    return nullptr;
  };
  const std::string* ts = find(src.timestamp_field);
  if (!ts) return fail(absl::StrCat("timestamp field '", src.timestamp_field, "' missing"));
  int64_t time_ns = 0;
  absl::Status status = ParseTimeText(*ts, src.timestamp_unit, &time_ns);
  if (status.ok()) status = CheckTime(time_ns);
  if (!status.ok()) {
    return fail(absl::StrCat("field '", src.timestamp_field, "': ", status.message()));
  }
  for (const std::string& key : src.key_fields) {
    const std::string* v = find(key);
    if (!v) return fail(absl::StrCat("field '", key, "' missing"));
    if (!ValidKeyText(*v)) {
      return fail(absl::StrCat("key field '", key, "' is empty or holds \\x1e or \\x1f"));
    }
    KeyValue kv;
    kv.str = *v;
    out->keys.push_back(kv);
  }
  for (const auto& [name, type] : src.value_fields) {
    FieldValue fv;
    if (const std::string* v = find(name)) {
      status = TextValue(*v, type, &fv);
      if (!status.ok()) return fail(absl::StrCat("field '", name, "': ", status.message()));
    }
    out->values.push_back(fv);
  }
  out->times.push_back(time_ns);
  out->input_index.push_back(static_cast<uint32_t>(index));
  ++out->size;
  return true;
}

void AppendEntityKey(const ParsedEvents& events, size_t event, const SourceDef& source,
                     const ViewDef& view, std::string* out) {
  const KeyValue* keys = &events.keys[event * source.key_fields.size()];
  bool first = true;
  for (int k : view.key_field_indices) {
    if (!first) out->push_back(kKeySeparator);
    first = false;
    const KeyValue& kv = keys[k];
    if (kv.is_int) {
      absl::StrAppend(out, kv.int_value);
    } else {
      out->append(kv.str.data(), kv.str.size());
    }
  }
}

absl::Status EntityKeyFromParts(absl::Span<const absl::string_view> parts, std::string* out) {
  out->clear();
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!ValidKeyText(parts[i])) {
      return absl::InvalidArgumentError("a key value is empty or holds \\x1e or \\x1f");
    }
    if (i > 0) out->push_back(kKeySeparator);
    out->append(parts[i].data(), parts[i].size());
  }
  return absl::OkStatus();
}

}  // namespace flywheel::features
