#include "features/event_log_format.h"

#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace flywheel::features::event_log_internal {
namespace {

constexpr int64_t kMicrosPerHour = int64_t{3600} * 1000 * 1000;
constexpr absl::string_view kLineStart = "{\"t\":";
constexpr absl::string_view kEventField = ",\"e\":";

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

}  // namespace

int64_t UnixHour(absl::Time time) { return FloorDiv(absl::ToUnixMicros(time), kMicrosPerHour); }

absl::Time HourStart(int64_t hour) { return absl::FromUnixSeconds(hour * 3600); }

int HourOfDay(int64_t hour) { return static_cast<int>(hour - FloorDiv(hour, 24) * 24); }

std::string DateName(int64_t hour) {
  return absl::FormatTime("%Y-%m-%d", HourStart(hour), absl::UTCTimeZone());
}

std::string FileName(int64_t hour, int64_t seq) {
  return absl::StrFormat("%02d-%06d%s", HourOfDay(hour), seq, kFileSuffix);
}

bool ParseDateName(absl::string_view name, int64_t* first_hour) {
  if (name.size() != 10 || name[4] != '-' || name[7] != '-') return false;
  absl::Time day;
  std::string error;
  if (!absl::ParseTime("%Y-%m-%d", name, absl::UTCTimeZone(), &day, &error)) return false;
  *first_hour = UnixHour(day);
  return true;
}

bool ParseFileName(absl::string_view name, int* hour_of_day, int64_t* seq) {
  if (!absl::ConsumeSuffix(&name, kFileSuffix)) return false;
  if (name.size() < 4 || name[2] != '-') return false;
  if (!absl::ascii_isdigit(name[0]) || !absl::ascii_isdigit(name[1])) return false;
  *hour_of_day = (name[0] - '0') * 10 + (name[1] - '0');
  if (*hour_of_day > 23) return false;
  absl::string_view digits = name.substr(3);
  for (char c : digits) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  return absl::SimpleAtoi(digits, seq);
}

absl::Status ValidateSource(absl::string_view source) {
  bool ok = !source.empty() && source.size() <= 200 && source[0] != '.';
  for (char c : source) {
    ok = ok && (absl::ascii_isalnum(c) || c == '_' || c == '-' || c == '.');
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("event log source '", absl::CHexEscape(source),
                   "' must be 1..200 letters, digits, '_', '-' or '.', not starting with '.'"));
}

void AppendLine(const LoggedEvent& event, std::string* out) {
  absl::StrAppend(out, kLineStart, absl::ToUnixMicros(event.time), kEventField);
  const size_t start = out->size();
  out->append(event.json);
  for (size_t i = start; i < out->size(); ++i) {
    if ((*out)[i] == '\n' || (*out)[i] == '\r') (*out)[i] = ' ';
  }
  out->append("}\n");
}

bool ParseLine(absl::string_view line, absl::Time* time, absl::string_view* json) {
  if (!absl::ConsumePrefix(&line, kLineStart) || !absl::ConsumeSuffix(&line, "}")) return false;
  const size_t comma = line.find(kEventField);
  if (comma == absl::string_view::npos) return false;
  int64_t micros = 0;
  if (!absl::SimpleAtoi(line.substr(0, comma), &micros)) return false;
  *time = absl::FromUnixMicros(micros);
  *json = line.substr(comma + kEventField.size());
  return true;
}

}  // namespace flywheel::features::event_log_internal
