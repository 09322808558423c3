// ModelConfigToJson: the JSON Triton's model_configuration endpoint returns. Protobuf's own JSON
// printer writes 64-bit integers as strings and maps in no fixed order; Triton's endpoint writes
// numbers (clients read dims as integers), so the message is printed here from its descriptor:
// proto field names in declaration order, every non-oneof scalar and every list and map (empty
// ones too), messages and oneof members when set, map keys sorted.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "serving/model_config.h"
#include "serving/model_config_checks.h"

namespace flywheel::serving {
namespace {

namespace pb = google::protobuf;
using Field = pb::FieldDescriptor;

// A JSON string. Bytes that are not UTF-8 (validation refuses them; this keeps the output JSON
// regardless) become U+FFFD.
void AppendQuoted(absl::string_view s, std::string* out) {
  out->push_back('"');
  while (!s.empty()) {
    const unsigned char c = s.front();
    if (c >= 0x80) {
      const int n = config_internal::Utf8SequenceLength(s);
      if (n == 0) {
        out->append("\\ufffd");
        s.remove_prefix(1);
      } else {
        out->append(s.data(), n);
        s.remove_prefix(n);
      }
      continue;
    }
    s.remove_prefix(1);
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
        if (c < 0x20) {
          static const char kHex[] = "0123456789abcdef";
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 15]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

// Shortest text that reads back to the same value; protobuf's names for the non-finite ones.
template <typename T>
void AppendFloat(T value, std::string* out) {
  if (std::isnan(value)) {
    out->append("\"NaN\"");
  } else if (std::isinf(value)) {
    out->append(value > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else {
    char buffer[64];
    auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
    out->append(buffer, result.ptr);
  }
}

void AppendMessage(const pb::Message& message, std::string* out);

// One value of `field` (element `index` when repeated, -1 when singular).
void AppendValue(const pb::Message& message, const Field* field, int index, std::string* out) {
  const pb::Reflection* r = message.GetReflection();
  const bool rep = index >= 0;
  switch (field->cpp_type()) {
    case Field::CPPTYPE_INT32:
      absl::StrAppend(
          out, rep ? r->GetRepeatedInt32(message, field, index) : r->GetInt32(message, field));
      break;
    case Field::CPPTYPE_INT64:
      absl::StrAppend(
          out, rep ? r->GetRepeatedInt64(message, field, index) : r->GetInt64(message, field));
      break;
    case Field::CPPTYPE_UINT32:
      absl::StrAppend(
          out, rep ? r->GetRepeatedUInt32(message, field, index) : r->GetUInt32(message, field));
      break;
    case Field::CPPTYPE_UINT64:
      absl::StrAppend(
          out, rep ? r->GetRepeatedUInt64(message, field, index) : r->GetUInt64(message, field));
      break;
    case Field::CPPTYPE_FLOAT:
      AppendFloat(rep ? r->GetRepeatedFloat(message, field, index) : r->GetFloat(message, field),
                  out);
      break;
    case Field::CPPTYPE_DOUBLE:
      AppendFloat(rep ? r->GetRepeatedDouble(message, field, index) : r->GetDouble(message, field),
                  out);
      break;
    case Field::CPPTYPE_BOOL:
      out->append((rep ? r->GetRepeatedBool(message, field, index) : r->GetBool(message, field))
                      ? "true"
                      : "false");
      break;
    case Field::CPPTYPE_ENUM: {
      const int number =
          rep ? r->GetRepeatedEnumValue(message, field, index) : r->GetEnumValue(message, field);
      const pb::EnumValueDescriptor* value = field->enum_type()->FindValueByNumber(number);
      if (value != nullptr) {
        AppendQuoted(value->name(), out);
      } else {
        absl::StrAppend(out, number);  // an open enum's unknown value
      }
      break;
    }
    case Field::CPPTYPE_STRING: {
      const std::string s =
          rep ? r->GetRepeatedString(message, field, index) : r->GetString(message, field);
      AppendQuoted(field->type() == Field::TYPE_BYTES ? absl::Base64Escape(s) : s, out);
      break;
    }
    case Field::CPPTYPE_MESSAGE:
      AppendMessage(
          rep ? r->GetRepeatedMessage(message, field, index) : r->GetMessage(message, field), out);
      break;
  }
}

// A map field as a JSON object, keys sorted (numerically for integer keys).
void AppendMap(const pb::Message& message, const Field* field, std::string* out) {
  const pb::Reflection* r = message.GetReflection();
  const Field* key_field = field->message_type()->map_key();
  const Field* value_field = field->message_type()->map_value();
  struct Entry {
    std::string key;
    bool numeric;
    int64_t signed_key;
    uint64_t unsigned_key;
    const pb::Message* entry;
  };
  std::vector<Entry> entries;
  for (int i = 0; i < r->FieldSize(message, field); ++i) {
    const pb::Message& entry = r->GetRepeatedMessage(message, field, i);
    const pb::Reflection* er = entry.GetReflection();
    Entry e{"", true, 0, 0, &entry};
    switch (key_field->cpp_type()) {
      case Field::CPPTYPE_STRING:
        e.key = er->GetString(entry, key_field);
        e.numeric = false;
        break;
      case Field::CPPTYPE_BOOL:
        e.key = er->GetBool(entry, key_field) ? "true" : "false";
        e.numeric = false;
        break;
      case Field::CPPTYPE_INT32:
        e.signed_key = er->GetInt32(entry, key_field);
        break;
      case Field::CPPTYPE_INT64:
        e.signed_key = er->GetInt64(entry, key_field);
        break;
      case Field::CPPTYPE_UINT32:
        e.unsigned_key = er->GetUInt32(entry, key_field);
        break;
      default:
        e.unsigned_key = er->GetUInt64(entry, key_field);
        break;
    }
    if (e.numeric) {
      e.key = key_field->cpp_type() == Field::CPPTYPE_INT32 ||
                      key_field->cpp_type() == Field::CPPTYPE_INT64
                  ? absl::StrCat(e.signed_key)
                  : absl::StrCat(e.unsigned_key);
    }
    entries.push_back(std::move(e));
  }
  auto less = [](const Entry& a, const Entry& b) {
    if (a.numeric) {
      return a.signed_key != b.signed_key ? a.signed_key < b.signed_key
                                          : a.unsigned_key < b.unsigned_key;
    }
    return a.key < b.key;
  };
  // A key given twice (text format allows it) keeps its last value, as the map itself does.
  std::stable_sort(entries.begin(), entries.end(), less);
  std::vector<Entry> unique;
  for (Entry& e : entries) {
    if (!unique.empty() && !less(unique.back(), e)) {
      unique.back() = std::move(e);
    } else {
      unique.push_back(std::move(e));
    }
  }
  entries.swap(unique);
  out->push_back('{');
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendQuoted(entries[i].key, out);
    out->push_back(':');
    AppendValue(*entries[i].entry, value_field, -1, out);
  }
  out->push_back('}');
}

void AppendMessage(const pb::Message& message, std::string* out) {
  const pb::Descriptor* type = message.GetDescriptor();
  const pb::Reflection* r = message.GetReflection();
  out->push_back('{');
  bool first = true;
  for (int i = 0; i < type->field_count(); ++i) {
    const Field* field = type->field(i);
    const bool in_oneof = field->containing_oneof() != nullptr;
    const bool is_message = field->cpp_type() == Field::CPPTYPE_MESSAGE;
    if (!field->is_repeated() && (in_oneof || is_message) && !r->HasField(message, field)) {
      continue;
    }
    if (!first) out->push_back(',');
    first = false;
    AppendQuoted(field->name(), out);
    out->push_back(':');
    if (field->is_map()) {
      AppendMap(message, field, out);
    } else if (field->is_repeated()) {
      out->push_back('[');
      for (int j = 0; j < r->FieldSize(message, field); ++j) {
        if (j > 0) out->push_back(',');
        AppendValue(message, field, j, out);
      }
      out->push_back(']');
    } else {
      AppendValue(message, field, -1, out);
    }
  }
  out->push_back('}');
}

}  // namespace

std::string ModelConfigToJson(const inference::ModelConfig& config) {
  std::string out;
  AppendMessage(config, &out);
  return out;
}

}  // namespace flywheel::serving
