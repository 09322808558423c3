// The event log's reader (see event_log.h).
#include <zstd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "features/event_log.h"
#include "features/event_log_format.h"

namespace flywheel::features {
namespace {

using event_log_internal::HourStart;

// No frame we write comes near this; a header claiming more is damage, not data.
constexpr unsigned long long kMaxFrameContent = 1ull << 32;

struct DCtxDeleter {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::UnavailableError(absl::StrCat("event log: cannot open '", path, "'"));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::UnavailableError(absl::StrCat("event log: cannot read '", path, "'"));
  return data;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EventLogReader>> EventLogReader::Open(
    absl::string_view dir, std::vector<std::string> sources, absl::Time from, absl::Time to) {
  std::error_code ec;
  if (!std::filesystem::is_directory(std::string(dir), ec)) {
    return absl::NotFoundError(absl::StrCat("event log folder '", dir, "' does not exist"));
  }
  for (const std::string& source : sources) {
    FW_RETURN_IF_ERROR(event_log_internal::ValidateSource(source));
  }
  std::unique_ptr<EventLogReader> reader(new EventLogReader());
  reader->from_ = from;
  reader->to_ = to;
  std::map<int64_t, std::vector<HourFile>> hours;
  if (from < to) {
    for (size_t s = 0; s < sources.size(); ++s) {
      const std::filesystem::path source_dir = std::filesystem::path(std::string(dir)) / sources[s];
      if (!std::filesystem::is_directory(source_dir, ec)) continue;
      for (const auto& day : std::filesystem::directory_iterator(source_dir, ec)) {
        int64_t first_hour = 0;
        if (!event_log_internal::ParseDateName(day.path().filename().string(), &first_hour)) {
          continue;
        }
        if (HourStart(first_hour + 24) <= from || HourStart(first_hour) >= to) continue;
        for (const auto& file : std::filesystem::directory_iterator(day.path(), ec)) {
          int hour_of_day = 0;
          int64_t seq = 0;
          if (!event_log_internal::ParseFileName(file.path().filename().string(), &hour_of_day,
                                                 &seq)) {
            continue;
          }
          const int64_t hour = first_hour + hour_of_day;
          if (HourStart(hour + 1) <= from || HourStart(hour) >= to) continue;
          hours[hour].push_back(HourFile{s, seq, file.path().string()});
        }
        if (ec) break;
      }
      if (ec) {
        return absl::UnavailableError(
            absl::StrCat("event log: cannot list '", source_dir.string(), "': ", ec.message()));
      }
    }
  }
  for (auto& [hour, files] : hours) {
    std::sort(files.begin(), files.end(), [](const HourFile& a, const HourFile& b) {
      return a.source_index != b.source_index ? a.source_index < b.source_index : a.seq < b.seq;
    });
    reader->hours_.emplace_back(hour, std::move(files));
  }
  reader->sources_ = std::move(sources);
  return reader;
}

absl::StatusOr<bool> EventLogReader::Next(EventLogEntry* entry) {
  while (next_event_ == buffer_.size()) {
    if (next_hour_ == hours_.size()) return false;
    buffer_.clear();
    next_event_ = 0;
    FW_RETURN_IF_ERROR(LoadHour(hours_[next_hour_++].second));
  }
  *entry = std::move(buffer_[next_event_++]);
  return true;
}

absl::Status EventLogReader::LoadHour(absl::Span<const HourFile> files) {
  for (const HourFile& file : files) FW_RETURN_IF_ERROR(ReadFile(file));
  // Files come in source then sequence order and lines in append order, so a stable sort by time
  // leaves ties in that order.
  std::stable_sort(buffer_.begin(), buffer_.end(),
                   [](const EventLogEntry& a, const EventLogEntry& b) { return a.time < b.time; });
  return absl::OkStatus();
}

absl::Status EventLogReader::ReadFile(const HourFile& file) {
  FW_ASSIGN_OR_RETURN(std::string data, ReadWholeFile(file.path));
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> dctx(ZSTD_createDCtx());
  if (dctx == nullptr) return absl::ResourceExhaustedError("event log: no zstd context");
  const std::string& source = sources_[file.source_index];
  std::string text;
  size_t offset = 0;
  while (offset < data.size()) {
    const char* frame = data.data() + offset;
    const size_t left = data.size() - offset;
    const size_t frame_size = ZSTD_findFrameCompressedSize(frame, left);
    // A frame that does not end inside the file is the one a crash cut short: nothing follows.
    if (ZSTD_isError(frame_size) || frame_size > left) {
      truncated_files_.push_back(file.path);
      break;
    }
    const bool last = frame_size == left;
    auto damaged = [&](absl::string_view why) {
      return absl::DataLossError(absl::StrCat("event log '", file.path, "': frame at byte ", offset,
                                              " is damaged: ", why));
    };
    const unsigned long long content = ZSTD_getFrameContentSize(frame, frame_size);
    if (content == ZSTD_CONTENTSIZE_ERROR || content == ZSTD_CONTENTSIZE_UNKNOWN ||
        content > kMaxFrameContent) {
      if (last) {
        truncated_files_.push_back(file.path);
        break;
      }
      return damaged("no valid content size");
    }
    text.resize(content);
    const size_t n = ZSTD_decompressDCtx(dctx.get(), text.data(), text.size(), frame, frame_size);
    if (ZSTD_isError(n) || n != content) {
      if (last) {
        truncated_files_.push_back(file.path);
        break;
      }
      return damaged(ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short content");
    }
    absl::string_view rest(text);
    while (!rest.empty()) {
      const size_t end = rest.find('\n');
      if (end == absl::string_view::npos) return damaged("a line without its end");
      absl::Time time;
      absl::string_view json;
      if (!event_log_internal::ParseLine(rest.substr(0, end), &time, &json)) {
        return damaged("a line not in the event log format");
      }
      rest.remove_prefix(end + 1);
      if (time < from_ || time >= to_) continue;
      buffer_.push_back(EventLogEntry{source, time, std::string(json)});
    }
    offset += frame_size;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<EventLogEntry>> ReadEventLog(absl::string_view dir,
                                                        std::vector<std::string> sources,
                                                        absl::Time from, absl::Time to) {
  FW_ASSIGN_OR_RETURN(std::unique_ptr<EventLogReader> reader,
                      EventLogReader::Open(dir, std::move(sources), from, to));
  std::vector<EventLogEntry> events;
  EventLogEntry entry;
  while (true) {
    FW_ASSIGN_OR_RETURN(bool more, reader->Next(&entry));
    if (!more) break;
    events.push_back(std::move(entry));
  }
  return events;
}

}  // namespace flywheel::features
