// Checking and converting the events of one source — JSON objects pushed over HTTP, field/value
// pairs read from a Redis Stream — into the typed field values the aggregations fold. Every
// problem names the event's position (0-based) in its batch and the field.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "features/definitions.h"
#include "features/tiles.h"
#include "rapidjson/document.h"

namespace flywheel::features {

// A malformed event: where it is in its batch and what is wrong with it.
struct EventError {
  size_t index = 0;
  std::string message;  // "field 'user_id' missing"

  std::string ToString() const;  // "event 3: field 'user_id' missing"
};

// Several errors in one status message: "event 3: ...; event 7: ... (and 12 more)".
std::string JoinEventErrors(absl::Span<const EventError> errors);

// One key field's value: a string, or an integer (which keys the same entity as its decimal
// text, so "42" and 42 are one user).
struct KeyValue {
  bool is_int = false;
  int64_t int_value = 0;
  absl::string_view str;
};

// Events of one source, converted. String values point into the input, which must outlive it.
// Buffers keep their room between batches.
struct ParsedEvents {
  size_t size = 0;
  std::vector<int64_t> times;         // per event, nanoseconds since the epoch
  std::vector<KeyValue> keys;         // size * key_fields
  std::vector<FieldValue> values;     // size * value_fields
  std::vector<uint32_t> input_index;  // position of each event in its input batch

  void Clear() {
    size = 0;
    times.clear();
    keys.clear();
    values.clear();
    input_index.clear();
  }
};

class EventParser {
 public:
  // REQUIRES: `source` outlives the parser.
  explicit EventParser(const SourceDef& source) : source_(&source) {}

  // Events with a later time than this are refused (a far-future timestamp would move the
  // watermark and make every later event late). Nanoseconds since the epoch; no limit by default.
  void set_max_time(int64_t max_time_ns) { max_time_ns_ = max_time_ns; }

  // Appends the events of a JSON array of objects. Stops collecting after `max_errors` errors.
  // Returns false (and leaves `out` partly filled) when any event is malformed.
  bool ParseJson(const rapidjson::Value& events, ParsedEvents* out, std::vector<EventError>* errors,
                 size_t max_errors = 20) const;

  // Appends one object (a single event); false and an error at `index` when it is malformed.
  bool ParseJsonEvent(const rapidjson::Value& event, size_t index, ParsedEvents* out,
                      std::vector<EventError>* errors) const;

  // Appends one stream entry's fields (all strings: numbers and booleans are parsed as declared).
  bool ParseFields(absl::Span<const std::pair<std::string, std::string>> fields, size_t index,
                   ParsedEvents* out, std::vector<EventError>* errors) const;

  // Parses a timestamp as this source reads them: a number of timestamp_unit since the epoch, or
  // an RFC 3339 string. Also used for the times of the export's spine.
  static absl::Status ParseTime(const rapidjson::Value& value, absl::Duration unit,
                                int64_t* time_ns);
  static absl::Status ParseTimeText(absl::string_view text, absl::Duration unit, int64_t* time_ns);

 private:
  absl::Status CheckTime(int64_t time_ns) const;

  const SourceDef* source_;
  int64_t max_time_ns_ = kMaxTime;
};

// The entity key of one event for a view: the key values in the entity's order; several keys
// are joined with '\x1e' (a character keys may not contain).
void AppendEntityKey(const ParsedEvents& events, size_t event, const SourceDef& source,
                     const ViewDef& view, std::string* out);
// The same key from key values given as text (lookups, spine rows), in the entity's key order.
// Fails when a value is empty or holds a separator character.
absl::Status EntityKeyFromParts(absl::Span<const absl::string_view> parts, std::string* out);

}  // namespace flywheel::features
