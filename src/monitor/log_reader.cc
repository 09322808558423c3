#include "monitor/log_reader.h"

#include <fcntl.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "monitor/log_files.h"
#include "monitor/log_record.h"

namespace flywheel::monitor {
namespace {

namespace fs = std::filesystem;

constexpr size_t kReadChunk = size_t{1} << 20;
constexpr size_t kMaxProblems = 10;
// Records are stamped before they are queued, so a file's records predate the next file's
// start; this allows for the wall clock being stepped back meanwhile.
constexpr absl::Duration kClockSlack = absl::Minutes(5);

// The "time" of a line the writer wrote: the first `,"time":"` is the key, since inside a JSON
// string every '"' follows a backslash.
std::optional<absl::Time> LineTime(absl::string_view line) {
  constexpr absl::string_view kKey = ",\"time\":\"";
  const size_t at = line.find(kKey);
  if (at == absl::string_view::npos) return std::nullopt;
  const size_t begin = at + kKey.size();
  const size_t end = line.find('"', begin);
  if (end == absl::string_view::npos) return std::nullopt;
  auto t = ParseLogTime(line.substr(begin, end - begin));
  if (!t.ok()) return std::nullopt;
  return *t;
}

}  // namespace

// One model version's files, read frame by frame; each frame's records sorted by time.
class LogReader::Stream {
 public:
  Stream(std::string model, int64_t version, std::vector<std::string> files, LogReader* reader)
      : model_(std::move(model)), version_(version), files_(std::move(files)), reader_(reader) {}
  ~Stream() {
    CloseFile();
    ZSTD_freeDCtx(dctx_);
  }

  // Makes entries_ non-empty unless the stream is exhausted (then false).
  absl::StatusOr<bool> Fill() {
    while (entries_.empty()) {
      if (fd_ < 0) {
        if (next_file_ >= files_.size()) return false;
        if (absl::Status s = OpenFile(files_[next_file_++]); !s.ok()) return s;
      }
      auto frame = ReadFrame();
      if (!frame.ok()) return frame.status();
      if (!*frame) {
        CloseFile();
        continue;
      }
      SplitFrame();
    }
    return true;
  }
  LogEntry& front() { return entries_.front(); }
  void pop() { entries_.pop_front(); }

 private:
  absl::Status OpenFile(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      return absl::NotFoundError(absl::StrCat("cannot open '", path, "': ", std::strerror(errno)));
    }
    path_ = path;
    buf_.clear();
    start_ = 0;
    consumed_ = 0;
    eof_ = false;
    ++reader_->stats_.files;
    return absl::OkStatus();
  }

  void CloseFile() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  void Problem(std::string text) {
    if (reader_->stats_.problems.size() < kMaxProblems) {
      reader_->stats_.problems.push_back(absl::StrCat(path_, ": ", text));
    }
  }

  // The next complete frame, decompressed into text_; false at the file's end.
  absl::StatusOr<bool> ReadFrame() {
    LogReadStats& stats = reader_->stats_;
    for (;;) {
      const size_t avail = buf_.size() - start_;
      if (avail > 0) {
        const char* src = buf_.data() + start_;
        const size_t size = ZSTD_findFrameCompressedSize(src, avail);
        if (!ZSTD_isError(size)) {
          start_ += size;
          // Padding the writer adds for direct I/O (log_file_writer.cc): no records.
          if (IsZstdSkippableFrame(src, size)) continue;
          if (Decompress(src, size)) {
            ++stats.frames;
            return true;
          }
          ++stats.corrupt_frames;
          stats.skipped_bytes += static_cast<int64_t>(size);
          continue;
        }
        if (ZSTD_getErrorCode(size) != ZSTD_error_srcSize_wrong) {
          ++stats.corrupt_frames;
          stats.skipped_bytes += static_cast<int64_t>(avail) + RestOfFile();
          Problem(absl::StrCat("not a zstd frame at byte ", consumed_ + start_,
                               "; the rest of the file is skipped"));
          return false;
        }
      }
      if (eof_) {
        if (avail > 0) {
          ++stats.truncated_frames;
          stats.skipped_bytes += static_cast<int64_t>(avail);
          Problem(absl::StrCat("last frame incomplete (", avail,
                               " bytes; the writer was killed or is still writing)"));
        }
        return false;
      }
      // Keep the unread tail and read more behind it.
      consumed_ += start_;
      buf_.erase(0, start_);
      start_ = 0;
      const size_t old = buf_.size();
      buf_.resize(old + std::max(kReadChunk, old));
      ssize_t n;
      do {
        n = ::read(fd_, buf_.data() + old, buf_.size() - old);
      } while (n < 0 && errno == EINTR);
      if (n < 0) {
        return absl::DataLossError(absl::StrCat("reading '", path_, "': ", std::strerror(errno)));
      }
      buf_.resize(old + static_cast<size_t>(n));
      if (n == 0) eof_ = true;
    }
  }

  int64_t RestOfFile() {
    int64_t rest = 0;
    char chunk[65536];
    ssize_t n;
    while ((n = ::read(fd_, chunk, sizeof(chunk))) > 0) rest += n;
    eof_ = true;
    return rest;
  }

  bool Decompress(const char* src, size_t size) {
    if (dctx_ == nullptr) dctx_ = ZSTD_createDCtx();
    ZSTD_DCtx_reset(dctx_, ZSTD_reset_session_only);
    text_.clear();
    ZSTD_inBuffer in{src, size, 0};
    char chunk[1 << 16];
    for (;;) {
      ZSTD_outBuffer out{chunk, sizeof(chunk), 0};
      const size_t r = ZSTD_decompressStream(dctx_, &out, &in);
      if (ZSTD_isError(r)) {
        Problem(absl::StrCat("damaged frame skipped: ", ZSTD_getErrorName(r)));
        return false;
      }
      text_.append(chunk, out.pos);
      if (r == 0 && in.pos == in.size) return true;
      if (in.pos == in.size && out.pos < out.size) {
        Problem("damaged frame skipped: it ends before its content");
        return false;
      }
    }
  }

  void SplitFrame() {
    const LogReaderOptions& opt = reader_->options_;
    absl::string_view text = text_;
    while (!text.empty()) {
      const size_t nl = text.find('\n');
      const bool complete = nl != absl::string_view::npos;
      const absl::string_view line = complete ? text.substr(0, nl) : text;
      text.remove_prefix(complete ? nl + 1 : text.size());
      if (line.empty()) continue;
      const std::optional<absl::Time> t = complete ? LineTime(line) : std::nullopt;
      if (!t.has_value()) {
        ++reader_->stats_.bad_lines;
        continue;
      }
      if (*t < opt.since || *t >= opt.until) continue;
      entries_.push_back(LogEntry{*t, model_, version_, std::string(line)});
    }
    std::stable_sort(entries_.begin(), entries_.end(),
                     [](const LogEntry& a, const LogEntry& b) { return a.time < b.time; });
  }

  std::string model_;
  int64_t version_;
  std::vector<std::string> files_;
  LogReader* reader_;
  size_t next_file_ = 0;
  int fd_ = -1;
  std::string path_;
  std::string buf_;  // compressed bytes read, from start_ on not yet used
  size_t start_ = 0;
  int64_t consumed_ = 0;  // file offset of buf_[0]
  bool eof_ = false;
  ZSTD_DCtx* dctx_ = nullptr;
  std::string text_;
  std::deque<LogEntry> entries_;
};

LogReader::LogReader(LogReaderOptions options) : options_(std::move(options)) {}
LogReader::~LogReader() = default;

absl::StatusOr<std::unique_ptr<LogReader>> LogReader::Open(LogReaderOptions options) {
  std::error_code ec;
  if (!fs::is_directory(options.dir, ec)) {
    return absl::NotFoundError(absl::StrCat("prediction log folder '", options.dir,
                                            "' does not exist or is not a folder"));
  }
  std::unique_ptr<LogReader> reader(new LogReader(std::move(options)));
  const LogReaderOptions& opt = reader->options_;
  // Sorted folder names, so that ties in time come out in one order every time.
  auto sorted_entries = [&](const fs::path& dir) -> absl::StatusOr<std::vector<fs::path>> {
    std::vector<fs::path> out;
    fs::directory_iterator it(dir, ec);
    if (ec)
      return absl::NotFoundError(absl::StrCat("cannot list '", dir.string(), "': ", ec.message()));
    for (const fs::directory_entry& e : it) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
  };
  // The log files of one stream folder, less those whose successor started before `since`
  // (they hold only older records).
  auto stream_files = [&](const fs::path& dir) -> absl::StatusOr<std::vector<std::string>> {
    auto files = sorted_entries(dir);
    if (!files.ok()) return files.status();
    std::vector<std::string> paths;
    std::vector<absl::Time> starts;
    for (const fs::path& file : *files) {
      const std::optional<LogFileInfo> info = ParseLogFileName(file.filename().string());
      if (!info.has_value()) {
        ++reader->stats_.ignored_files;
        continue;
      }
      paths.push_back(file.string());
      starts.push_back(info->start);
    }
    std::vector<std::string> kept;
    for (size_t i = 0; i < paths.size(); ++i) {
      if (i + 1 < paths.size() && starts[i + 1] + kClockSlack < opt.since) continue;
      kept.push_back(std::move(paths[i]));
    }
    return kept;
  };
  if (opt.flat) {
    auto files = stream_files(opt.dir);
    if (!files.ok()) return files.status();
    if (!files->empty()) {
      reader->streams_.push_back(
          std::make_unique<Stream>(std::string(), 0, std::move(*files), reader.get()));
    }
    return reader;
  }
  auto model_dirs = sorted_entries(opt.dir);
  if (!model_dirs.ok()) return model_dirs.status();
  for (const fs::path& model_dir : *model_dirs) {
    const std::optional<std::string> model = UnescapeModelDir(model_dir.filename().string());
    if (!model.has_value() || !fs::is_directory(model_dir, ec)) continue;
    if (opt.model.has_value() && *opt.model != *model) continue;
    auto version_dirs = sorted_entries(model_dir);
    if (!version_dirs.ok()) return version_dirs.status();
    for (const fs::path& version_dir : *version_dirs) {
      int64_t version;
      const std::string name = version_dir.filename().string();
      if (!absl::SimpleAtoi(name, &version) || absl::StrCat(version) != name ||
          !fs::is_directory(version_dir, ec)) {
        continue;
      }
      if (opt.version.has_value() && *opt.version != version) continue;
      auto kept_files = stream_files(version_dir);
      if (!kept_files.ok()) return kept_files.status();
      std::vector<std::string> kept = std::move(*kept_files);
      if (kept.empty()) continue;
      reader->streams_.push_back(
          std::make_unique<Stream>(*model, version, std::move(kept), reader.get()));
    }
  }
  return reader;
}

absl::StatusOr<bool> LogReader::Next(LogEntry* entry) {
  if (!started_) {
    started_ = true;
    for (size_t i = 0; i < streams_.size(); ++i) {
      auto more = streams_[i]->Fill();
      if (!more.ok()) return more.status();
      if (*more) heap_.push({streams_[i]->front().time, i});
    }
  }
  if (heap_.empty()) return false;
  const size_t i = heap_.top().second;
  heap_.pop();
  Stream& stream = *streams_[i];
  *entry = std::move(stream.front());
  stream.pop();
  ++stats_.records;
  auto more = stream.Fill();
  if (!more.ok()) return more.status();
  if (*more) heap_.push({stream.front().time, i});
  return true;
}

absl::StatusOr<absl::Time> ParseTimeArg(absl::string_view text, absl::Time now) {
  text = absl::StripAsciiWhitespace(text);
  if (text == "now") return now;
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) {
    const bool negative = text[0] == '-';
    absl::string_view rest = text.substr(1);
    absl::Duration d = absl::ZeroDuration();
    // absl::ParseDuration has no days.
    const size_t day = rest.find('d');
    if (day != absl::string_view::npos) {
      int64_t days;
      if (!absl::SimpleAtoi(rest.substr(0, day), &days) || days < 0 || days > 36500) {
        return absl::InvalidArgumentError(
            absl::StrCat("time '", text, "': days must be a whole number (like -2d or -1d12h)"));
      }
      d += absl::Hours(24 * days);
      rest.remove_prefix(day + 1);
    }
    absl::Duration part = absl::ZeroDuration();
    if (!rest.empty() && (!absl::ParseDuration(rest, &part) || part < absl::ZeroDuration())) {
      return absl::InvalidArgumentError(
          absl::StrCat("time '", text, "' is not a duration (like -1h, -90m, -1h30m or -2d)"));
    }
    if (day == absl::string_view::npos && rest.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("time '", text, "': no duration after the sign"));
    }
    d += part;
    return negative ? now - d : now + d;
  }
  if (text.size() == 10) {  // 2024-05-01
    absl::Time t;
    std::string error;
    if (absl::ParseTime("%Y-%m-%d", text, absl::UTCTimeZone(), &t, &error)) return t;
  }
  auto t = ParseLogTime(text);
  if (!t.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("time '", text,
                     "' is neither RFC 3339 (2024-05-01T12:00:00Z), a date (2024-05-01), 'now', "
                     "nor a duration from now (-1h, -30m, -2d)"));
  }
  return *t;
}

}  // namespace flywheel::monitor
