#include "monitor/log_files.h"

#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "monitor/log_record.h"

namespace flywheel::monitor {
namespace {

bool IsSafeDirChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string EscapeModelDir(absl::string_view model) {
  std::string out;
  out.reserve(model.size());
  for (size_t i = 0; i < model.size(); ++i) {
    const char c = model[i];
    if (IsSafeDirChar(c) && !(i == 0 && c == '.')) {
      out.push_back(c);
    } else {
      absl::StrAppendFormat(&out, "%%%02X", static_cast<unsigned char>(c));
    }
  }
  return out;
}

std::optional<std::string> UnescapeModelDir(absl::string_view dir) {
  if (dir.empty()) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < dir.size(); ++i) {
    const char c = dir[i];
    if (c != '%') {
      if (!IsSafeDirChar(c) || (i == 0 && c == '.')) return std::nullopt;
      out.push_back(c);
      continue;
    }
    if (i + 2 >= dir.size()) return std::nullopt;
    const int hi = HexValue(dir[i + 1]);
    const int lo = HexValue(dir[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

std::string LogFileName(absl::Time start, int64_t seq) {
  // FormatLogTime without the separators that are awkward in file names.
  std::string t = FormatLogTime(start);  // 2024-05-01T12:00:00.123456789Z
  std::string compact;
  for (char c : t) {
    if (c != '-' && c != ':') compact.push_back(c);
  }
  return absl::StrFormat("%s-%06d%s", compact, seq, kLogFileSuffix);
}

std::optional<LogFileInfo> ParseLogFileName(absl::string_view name) {
  // 20240501T120000.123456789Z-000003.jsonl.zst
  constexpr size_t kTimeLen = 26;
  if (!absl::ConsumeSuffix(&name, kLogFileSuffix)) return std::nullopt;
  if (name.size() < kTimeLen + 2 || name[kTimeLen] != '-') return std::nullopt;
  const absl::string_view t = name.substr(0, kTimeLen);
  if (t[8] != 'T' || t[15] != '.' || t[25] != 'Z') return std::nullopt;
  const std::string rfc =
      absl::StrCat(t.substr(0, 4), "-", t.substr(4, 2), "-", t.substr(6, 2), "T", t.substr(9, 2),
                   ":", t.substr(11, 2), ":", t.substr(13, 2), t.substr(15));
  LogFileInfo info;
  auto start = ParseLogTime(rfc);
  if (!start.ok()) return std::nullopt;
  info.start = *start;
  const absl::string_view seq = name.substr(kTimeLen + 1);
  for (char c : seq) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  if (!absl::SimpleAtoi(seq, &info.seq)) return std::nullopt;
  return info;
}

}  // namespace flywheel::monitor
