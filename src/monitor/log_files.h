// Where the prediction log keeps its files: <dir>/<model>/<version>/<UTC start>-<seq>.jsonl.zst,
// one "stream" folder per model version. File names sort by the time their file was started.
// Shared by the writer (prediction_log.h) and the reader (log_reader.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace flywheel::monitor {

inline constexpr absl::string_view kLogFileSuffix = ".jsonl.zst";

// zstd skippable frames (a magic number in [0x184D2A50, 0x184D2A5F], a 4-byte payload size, the
// payload): the padding that direct I/O writes after each frame, which readers skip.
inline constexpr uint32_t kZstdSkippableMagic = 0x184D2A50;
inline bool IsZstdSkippableFrame(const char* frame, size_t size) {
  if (size < 4) return false;
  uint32_t magic = 0;
  for (int i = 3; i >= 0; --i) magic = (magic << 8) | static_cast<unsigned char>(frame[i]);
  return (magic & 0xFFFFFFF0u) == kZstdSkippableMagic;
}

// A model name as one safe folder name: bytes outside [A-Za-z0-9._-], and a leading '.', are
// written as %XX, so "../x" cannot leave the log folder and "a/b" is one folder.
std::string EscapeModelDir(absl::string_view model);
// The inverse; nullopt for a name EscapeModelDir cannot have written.
std::optional<std::string> UnescapeModelDir(absl::string_view dir);

// "20240501T120000.123456789Z-000003.jsonl.zst"
std::string LogFileName(absl::Time start, int64_t seq);

struct LogFileInfo {
  absl::Time start;
  int64_t seq = 0;
};
// nullopt when `name` is not a log file name.
std::optional<LogFileInfo> ParseLogFileName(absl::string_view name);

}  // namespace flywheel::monitor
