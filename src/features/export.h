// Point-in-time-correct training export (`flywheel features export --spine rows.csv --features
// view:feature,... --out train.csv`): each spine row (entity keys, time T) gets every requested
// feature as the online lookup would have returned it at T had every event with event time <= T
// arrived by then — and nothing later:
//   - raw fields: the newest value with event time <= T (equal times: the later event in the
//     input); OUTSIDE_TTL when older than T - ttl;
//   - windowed aggregations: the fold over events in [end - window, end), end = floor(T / every)
//     * every, exactly as features/aggregation.h defines it; OUTSIDE_TTL when the entity's newest
//     event <= T is older than T - ttl (the view's effective ttl);
//   - NOT_FOUND when the entity has no event <= T, MISSING_KEY when the row lacks a key field.
// Events are given as (source, JSON object) in event-time order, as the event log reads them,
// and parsed by the same rules as pushed events; malformed ones are skipped and counted.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "features/definitions.h"
#include "features/feature_value.h"
#include "features/lookup.h"

namespace flywheel::features {

struct SpineRow {
  EntityRow keys;  // every column but the time, by column name
  absl::Time time;
};

// A spine read from CSV: the columns and cells are kept to be written back beside the features.
struct Spine {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> cells;  // one per row, header.size() each
  std::vector<SpineRow> rows;
};

// Reads a CSV spine (RFC 4180: a header line, quoted cells with "" for a quote, \n or \r\n).
// `time_column` holds RFC 3339 times or Unix seconds (fractions allowed). Errors give the line.
absl::StatusOr<Spine> ReadSpineCsv(absl::string_view csv,
                                   absl::string_view time_column = "timestamp");

// One logged event. Views stay valid until the stream is asked for the next event.
struct ExportEvent {
  absl::string_view source;
  absl::string_view json;
};
// Yields the next event into `event` and returns true, or false after the last one. Events must
// come in non-decreasing event time (to the microsecond, as the event log orders them).
using ExportEventStream = std::function<absl::StatusOr<bool>(ExportEvent* event)>;

struct ExportStats {
  uint64_t events = 0;   // read from the stream
  uint64_t applied = 0;  // folded into some requested view
  uint64_t invalid = 0;  // malformed, skipped
  uint64_t unknown_source = 0;
  uint64_t entities = 0;  // states built
};

// out[row][feature] for every spine row (in spine order) and requested "view:feature".
// Unknown feature references are an InvalidArgument error; events out of time order are a
// FailedPrecondition error naming the event.
absl::StatusOr<std::vector<std::vector<FeatureValue>>> PointInTimeJoin(
    const FeatureRegistry& registry, absl::Span<const SpineRow> rows,
    absl::Span<const std::string> features, const ExportEventStream& events,
    ExportStats* stats = nullptr);

// The same over events in memory, in any order: they are sorted by event time first (a stable
// sort, so equal times keep their order).
absl::StatusOr<std::vector<std::vector<FeatureValue>>> PointInTimeJoin(
    const FeatureRegistry& registry, absl::Span<const SpineRow> rows,
    absl::Span<const std::string> features, absl::Span<const ExportEvent> events,
    ExportStats* stats = nullptr);

// The spine's columns followed by one column per feature (named "view:feature"); absent values
// are empty cells, last_n lists JSON arrays, floats the shortest text that reads back exactly.
std::string WriteExportCsv(const Spine& spine, absl::Span<const std::string> features,
                           const std::vector<std::vector<FeatureValue>>& values);

// Splits RFC 4180 CSV into records of cells; `lines` (when given) receives each record's
// starting line number (1-based).
absl::StatusOr<std::vector<std::vector<std::string>>> ParseCsv(absl::string_view csv,
                                                               std::vector<int>* lines = nullptr);
// A cell as CSV writes it: quoted when it holds a comma, quote, or line break.
std::string CsvCell(absl::string_view cell);
// A value as an export cell: "" when absent.
std::string ValueToCell(const Value& value);

}  // namespace flywheel::features
