// The event log's writer (see event_log.h); the reader is in event_log_reader.cc.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "features/event_log.h"
#include "features/event_log_format.h"

namespace flywheel::features {

using event_log_internal::DateName;
using event_log_internal::FileName;
using event_log_internal::UnixHour;

struct EventLog::File {
  ~File() {
    if (fd >= 0) close(fd);
  }
  int fd = -1;
  std::string path;
  uint64_t size = 0;       // bytes of complete frames
  uint64_t last_used = 0;  // EventLog::clock_ at the last append
};

namespace {

std::string ErrnoText(int error) {
  return std::error_code(error, std::generic_category()).message();
}

// fsync of a folder makes the names created in it durable.
absl::Status SyncDir(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("event log: cannot open folder '", dir, "': ", ErrnoText(errno)));
  }
  const int rc = fsync(fd);
  const int error = errno;
  close(fd);
  if (rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("event log: cannot sync folder '", dir, "': ", ErrnoText(error)));
  }
  return absl::OkStatus();
}

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};

absl::StatusOr<std::string> Compress(absl::string_view text, int level) {
  // One context per thread: appends from many threads compress in parallel, without a lock.
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxDeleter> cctx(ZSTD_createCCtx());
  if (cctx == nullptr) return absl::ResourceExhaustedError("event log: no zstd context");
  ZSTD_CCtx_reset(cctx.get(), ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 1);
  std::string frame(ZSTD_compressBound(text.size()), '\0');
  const size_t n = ZSTD_compress2(cctx.get(), frame.data(), frame.size(), text.data(), text.size());
  if (ZSTD_isError(n)) {
    return absl::InternalError(absl::StrCat("event log: zstd: ", ZSTD_getErrorName(n)));
  }
  frame.resize(n);
  return frame;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EventLog>> EventLog::Open(const EventLogOptions& options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("event log: empty folder path");
  if (options.compression_level < 1 || options.compression_level > ZSTD_maxCLevel()) {
    return absl::InvalidArgumentError(
        absl::StrCat("event log '", options.dir, "': compression level ", options.compression_level,
                     " is not in 1..", ZSTD_maxCLevel()));
  }
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("event log: cannot create folder '", options.dir, "': ", ec.message()));
  }
  return std::unique_ptr<EventLog>(new EventLog(options));
}

EventLog::~EventLog() = default;

absl::StatusOr<std::shared_ptr<EventLog::File>> EventLog::FileFor(absl::string_view source,
                                                                  int64_t hour) {
  const std::string key = absl::StrCat(source, "/", hour);
  if (auto it = files_.find(key); it != files_.end()) return it->second;

  if (files_.size() >= static_cast<size_t>(std::max(1, options_.max_open_files))) {
    auto oldest = std::min_element(files_.begin(), files_.end(), [](const auto& a, const auto& b) {
      return a.second->last_used < b.second->last_used;
    });
    files_.erase(oldest);  // closes when no append still syncs it
  }

  const std::string source_dir = absl::StrCat(options_.dir, "/", source);
  const std::string date_dir = absl::StrCat(source_dir, "/", DateName(hour));
  std::error_code ec;
  std::filesystem::create_directories(date_dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("event log: cannot create folder '", date_dir, "': ", ec.message()));
  }
  // A new file per process and hour: the next sequence number after those already there.
  int64_t seq = 0;
  for (const auto& item : std::filesystem::directory_iterator(date_dir, ec)) {
    int hour_of_day = 0;
    int64_t existing = 0;
    const std::string name = item.path().filename().string();
    if (event_log_internal::ParseFileName(name, &hour_of_day, &existing) &&
        hour_of_day == event_log_internal::HourOfDay(hour)) {
      seq = std::max(seq, existing + 1);
    }
  }
  auto file = std::make_shared<File>();
  for (int attempt = 0; attempt < 100; ++attempt, ++seq) {
    file->path = absl::StrCat(date_dir, "/", FileName(hour, seq));
    // O_EXCL: another process that picked the same number keeps its file.
    file->fd = open(file->path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (file->fd >= 0 || errno != EEXIST) break;
  }
  if (file->fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("event log: cannot create '", file->path, "': ", ErrnoText(errno)));
  }
  if (options_.sync) {
    for (const std::string& dir : {date_dir, source_dir, options_.dir}) {
      FW_RETURN_IF_ERROR(SyncDir(dir));
    }
  }
  files_[key] = file;
  return file;
}

void EventLog::Retire(const File& file) {
  for (auto it = files_.begin(); it != files_.end(); ++it) {
    if (it->second.get() == &file) {
      files_.erase(it);
      return;
    }
  }
}

absl::Status EventLog::WriteFrame(File& file, absl::string_view frame) {
  size_t written = 0;
  while (written < frame.size()) {
    const ssize_t n = write(file.fd, frame.data() + written, frame.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : EIO;
      // Cut the partial frame off so later frames follow complete ones; when even that fails,
      // the file is retired and the next append of its hour starts a new one.
      if (written > 0 && ftruncate(file.fd, static_cast<off_t>(file.size)) != 0) Retire(file);
      return absl::UnavailableError(absl::StrCat("event log: cannot append ", frame.size(),
                                                 " bytes to '", file.path,
                                                 "': ", ErrnoText(error)));
    }
    written += static_cast<size_t>(n);
  }
  file.size += frame.size();
  return absl::OkStatus();
}

absl::Status EventLog::Append(absl::string_view source, absl::Span<const LoggedEvent> events) {
  FW_RETURN_IF_ERROR(event_log_internal::ValidateSource(source));
  if (events.empty()) return absl::OkStatus();
  // Four-digit years keep the day folders' names (and their sort order) what the reader expects.
  static const absl::Time kEarliest =
      absl::FromCivil(absl::CivilDay(1000, 1, 1), absl::UTCTimeZone());
  static const absl::Time kLatest =
      absl::FromCivil(absl::CivilDay(10000, 1, 1), absl::UTCTimeZone());
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i].time < kEarliest || events[i].time >= kLatest) {
      return absl::InvalidArgumentError(absl::StrCat(
          "event log source '", source, "': event ", i, " of ", events.size(), " has time ",
          absl::FormatTime(events[i].time, absl::UTCTimeZone()), ", outside the years 1000..9999"));
    }
    if (events[i].json.find_first_not_of(" \t\r\n") == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("event log source '", source, "': event ", i,
                                                     " of ", events.size(), " has no JSON text"));
    }
  }
  // One frame per hour the batch touches, compressed before taking the lock.
  std::map<int64_t, std::string> text_by_hour;
  for (const LoggedEvent& event : events) {
    event_log_internal::AppendLine(event, &text_by_hour[UnixHour(event.time)]);
  }
  std::vector<std::pair<int64_t, std::string>> frames;
  frames.reserve(text_by_hour.size());
  for (auto& [hour, text] : text_by_hour) {
    FW_ASSIGN_OR_RETURN(std::string frame, Compress(text, options_.compression_level));
    frames.emplace_back(hour, std::move(frame));
  }

  std::vector<std::shared_ptr<File>> written;
  written.reserve(frames.size());
  {
    absl::MutexLock lock(&mu_);
    ++clock_;
    for (const auto& [hour, frame] : frames) {
      FW_ASSIGN_OR_RETURN(std::shared_ptr<File> file, FileFor(source, hour));
      file->last_used = clock_;
      FW_RETURN_IF_ERROR(WriteFrame(*file, frame));
      written.push_back(std::move(file));
    }
  }
  // Outside the lock, so that appends arriving meanwhile write their frames and one fsync covers
  // several of them.
  if (options_.sync) {
    for (const std::shared_ptr<File>& file : written) {
      if (fdatasync(file->fd) != 0) {
        const int error = errno;
        // After a failed fsync the kernel may have dropped the pages: never trust this file again.
        absl::MutexLock lock(&mu_);
        Retire(*file);
        return absl::UnavailableError(
            absl::StrCat("event log: cannot sync '", file->path, "': ", ErrnoText(error)));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace flywheel::features
