// What the event log keeps of an ingested batch: its admitted events, each a JSON object with its
// event time. Pushed events are kept as they were sent, led by their ingestion sequence, so that a
// restart can replay the pushes its committed state does not include. Stream entries (all text)
// become typed JSON (numbers and booleans as the source's views declare them) led by their entry
// id, so that an entry logged twice — read again after a crash, before its state was committed — is
// recognised when the log is read back (StreamDuplicateFilter).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "features/definitions.h"
#include "features/event_log.h"
#include "features/event_parse.h"
#include "features/stream_reader.h"
#include "rapidjson/document.h"

namespace flywheel::features {

// The member that carries a logged stream entry's id; always the first of its object.
inline constexpr char kStreamIdField[] = "_stream_id";

// The member that carries a pushed event's ingestion sequence; always the first of its object.
// Sequences increase by one per logged event of a source, across restarts (the feature service
// continues above the committed and the logged ones).
inline constexpr char kPushSequenceField[] = "_push_seq";

// Appends to `out` the admitted events of a pushed batch: events[parsed.input_index[i]] for each
// i with admitted[i], serialized compactly as {"_push_seq": sequence, <its members>...} with
// sequences first_sequence, first_sequence + 1, ... in batch order, at time parsed.times[i]. A
// member of the event named like the sequence is not kept. Returns how many were appended.
size_t LogPushedEvents(const rapidjson::Value& events, const ParsedEvents& parsed,
                       absl::Span<const uint8_t> admitted, uint64_t first_sequence,
                       std::vector<LoggedEvent>* out);

// Appends to `out` the admitted entries of a stream batch as JSON objects:
// {"_stream_id": id, <field>: <value>, ...}. The fields the source's views read are written with
// their parsed types, every other field (the timestamp and keys included) as a string; a field
// repeated in an entry is written once (the first, as the parser reads it).
void LogStreamEntries(const SourceDef& source, absl::Span<const StreamEntry> entries,
                      const ParsedEvents& parsed, absl::Span<const uint8_t> admitted,
                      std::vector<LoggedEvent>* out);

// Drops the second and later copies of a logged stream entry while reading the log in event-time
// order: copies have the same source, id and time, so only the ids of the current time are kept.
class StreamDuplicateFilter {
 public:
  // True when this event is a copy of one passed before.
  bool Duplicate(absl::string_view source, absl::Time time, absl::string_view json);
  uint64_t dropped() const { return dropped_; }

 private:
  absl::Time time_ = absl::InfinitePast();
  absl::flat_hash_set<std::pair<std::string, std::string>> seen_;
  uint64_t dropped_ = 0;
};

// The entry id of a logged stream event ("" for a pushed one).
absl::string_view LoggedStreamId(absl::string_view json);

// The ingestion sequence of a logged pushed event; nullopt for a stream entry or an event logged
// before pushes carried one.
std::optional<uint64_t> LoggedPushSequence(absl::string_view json);

}  // namespace flywheel::features
