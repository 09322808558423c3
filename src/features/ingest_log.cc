#include "features/ingest_log.h"

#include <bit>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace flywheel::features {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void WriteString(JsonWriter& w, absl::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// A parsed value as the JSON a pushed event would carry for it.
void WriteTyped(JsonWriter& w, FieldType type, const FieldValue& v) {
  switch (type) {
    case FieldType::kInt64:
      w.Int64(static_cast<int64_t>(v.bits));
      return;
    case FieldType::kFloat64:
      // Parsed values are finite; Writer::Double prints a text that reads back exactly.
      w.Double(std::bit_cast<double>(v.bits));
      return;
    case FieldType::kString:
      WriteString(w, v.str);
      return;
    case FieldType::kBool:
      w.Bool(v.bits != 0);
      return;
  }
}

}  // namespace

size_t LogPushedEvents(const rapidjson::Value& events, const ParsedEvents& parsed,
                       absl::Span<const uint8_t> admitted, uint64_t first_sequence,
                       std::vector<LoggedEvent>* out) {
  rapidjson::StringBuffer buffer;
  size_t logged = 0;
  for (size_t i = 0; i < parsed.size; ++i) {
    if (!admitted[i]) continue;
    buffer.Clear();
    JsonWriter w(buffer);
    // The parser admits objects only.
    const rapidjson::Value& event = events[parsed.input_index[i]];
    w.StartObject();
    w.Key(kPushSequenceField);
    w.Uint64(first_sequence + logged);
    for (auto it = event.MemberBegin(); it != event.MemberEnd(); ++it) {
      absl::string_view name(it->name.GetString(), it->name.GetStringLength());
      if (name == kPushSequenceField) continue;
      WriteString(w, name);
      it->value.Accept(w);
    }
    w.EndObject();
    ++logged;
    out->push_back(LoggedEvent{absl::FromUnixNanos(parsed.times[i]),
                               std::string(buffer.GetString(), buffer.GetSize())});
  }
  return logged;
}

void LogStreamEntries(const SourceDef& source, absl::Span<const StreamEntry> entries,
                      const ParsedEvents& parsed, absl::Span<const uint8_t> admitted,
                      std::vector<LoggedEvent>* out) {
  const size_t num_values = source.value_fields.size();
  rapidjson::StringBuffer buffer;
  std::vector<absl::string_view> written;
  for (size_t i = 0; i < parsed.size; ++i) {
    if (!admitted[i]) continue;
    const StreamEntry& entry = entries[parsed.input_index[i]];
    const FieldValue* values = &parsed.values[i * num_values];
    buffer.Clear();
    JsonWriter w(buffer);
    w.StartObject();
    w.Key(kStreamIdField);
    WriteString(w, entry.id);
    written.clear();
    for (const auto& [name, text] : entry.fields) {
      if (name == kStreamIdField) continue;
      bool repeated = false;
      for (absl::string_view n : written) repeated |= n == name;
      if (repeated) continue;
      written.push_back(name);
      WriteString(w, name);
      bool typed = false;
      for (size_t f = 0; f < num_values; ++f) {
        if (source.value_fields[f].first == name && values[f].present) {
          WriteTyped(w, source.value_fields[f].second, values[f]);
          typed = true;
          break;
        }
      }
      if (!typed) WriteString(w, text);
    }
    w.EndObject();
    out->push_back(LoggedEvent{absl::FromUnixNanos(parsed.times[i]),
                               std::string(buffer.GetString(), buffer.GetSize())});
  }
}

absl::string_view LoggedStreamId(absl::string_view json) {
  // LogStreamEntries writes the id first, compactly, and ids hold no character JSON escapes.
  static constexpr absl::string_view kPrefix = "{\"_stream_id\":\"";
  if (!absl::StartsWith(json, kPrefix)) return {};
  json.remove_prefix(kPrefix.size());
  size_t end = json.find('"');
  if (end == absl::string_view::npos) return {};
  return json.substr(0, end);
}

std::optional<uint64_t> LoggedPushSequence(absl::string_view json) {
  // LogPushedEvents writes the sequence first, compactly, as an unsigned integer.
  static constexpr absl::string_view kPrefix = "{\"_push_seq\":";
  if (!absl::StartsWith(json, kPrefix)) return std::nullopt;
  json.remove_prefix(kPrefix.size());
  size_t end = 0;
  while (end < json.size() && absl::ascii_isdigit(static_cast<unsigned char>(json[end]))) ++end;
  uint64_t sequence = 0;
  if (end == 0 || !absl::SimpleAtoi(json.substr(0, end), &sequence)) return std::nullopt;
  return sequence;
}

bool StreamDuplicateFilter::Duplicate(absl::string_view source, absl::Time time,
                                      absl::string_view json) {
  absl::string_view id = LoggedStreamId(json);
  if (id.empty()) return false;
  if (time != time_) {
    seen_.clear();
    time_ = time;
  }
  if (seen_.emplace(std::string(source), std::string(id)).second) return false;
  ++dropped_;
  return true;
}

}  // namespace flywheel::features
