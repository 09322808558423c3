// The event log's names and line format, shared by its writer and reader (see event_log.h).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "features/event_log.h"

namespace flywheel::features::event_log_internal {

constexpr absl::string_view kFileSuffix = ".jsonl.zst";

// Hours since the Unix epoch, rounded down (also before 1970).
int64_t UnixHour(absl::Time time);
absl::Time HourStart(int64_t hour);
// 0..23, the UTC hour of day of `hour`.
int HourOfDay(int64_t hour);

// "YYYY-MM-DD" of the UTC day holding `hour`, and the file name "HH-NNNNNN.jsonl.zst".
std::string DateName(int64_t hour);
std::string FileName(int64_t hour, int64_t seq);

// The first hour of a "YYYY-MM-DD" folder; false when the name is not a date.
bool ParseDateName(absl::string_view name, int64_t* first_hour);
// The hour of day (0..23) and sequence number of a file name; false when it is not a log file.
bool ParseFileName(absl::string_view name, int* hour_of_day, int64_t* seq);

// A source names a folder: letters, digits, '_', '-', '.', not starting with '.', 1..200 bytes.
absl::Status ValidateSource(absl::string_view source);

// Appends {"t":<unix micros>,"e":<json>}\n, line breaks in the JSON replaced by spaces.
void AppendLine(const LoggedEvent& event, std::string* out);
// Parses one line without its '\n'; false when it is not in the format AppendLine writes.
bool ParseLine(absl::string_view line, absl::Time* time, absl::string_view* json);

}  // namespace flywheel::features::event_log_internal
