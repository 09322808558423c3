#include "monitor/log_file_writer.h"

#include <fcntl.h>
#include <unistd.h>
#include <zstd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "monitor/log_files.h"

namespace flywheel::monitor {
namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

// Writes all of `data`, retrying short writes; errno is kept on failure.
bool WriteFully(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Direct I/O writes whole blocks from aligned memory; 4 KiB suits 512-byte and 4 KiB devices.
constexpr size_t kBlock = 4096;
constexpr size_t kSkippableHeader = 8;

void PutLittleEndian32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// Pads `size` bytes at `data` up to the next block boundary with one skippable frame (whose
// header needs 8 bytes, so a gap smaller than that takes one more block); returns the new size.
size_t PadToBlock(char* data, size_t size) {
  size_t pad = (kBlock - size % kBlock) % kBlock;
  if (pad == 0) return size;
  if (pad < kSkippableHeader) pad += kBlock;
  PutLittleEndian32(data + size, kZstdSkippableMagic);
  PutLittleEndian32(data + size + 4, static_cast<uint32_t>(pad - kSkippableHeader));
  std::memset(data + size + kSkippableHeader, 0, pad - kSkippableHeader);
  return size + pad;
}

}  // namespace

LogFileWriter::LogFileWriter(const PredictionLogOptions& options, std::atomic<int64_t>* pending,
                             std::string name)
    : options_(options), pending_(pending), name_(std::move(name)), cctx_(ZSTD_createCCtx()) {
  ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, options_.zstd_level);
  // The reader then tells a damaged frame from a good one.
  ZSTD_CCtx_setParameter(cctx_, ZSTD_c_checksumFlag, 1);
}

LogFileWriter::~LogFileWriter() {
  CloseAll();
  ZSTD_freeCCtx(cctx_);
  std::free(frame_);
}

absl::Time LogFileWriter::Now() const { return options_.clock ? options_.clock() : absl::Now(); }

LogFileWriter::Stream& LogFileWriter::StreamFor(const PredictionRecord& record) {
  if (last_ != nullptr && last_->version == record.version && last_->model == record.model) {
    return *last_;
  }
  auto [it, inserted] = streams_.try_emplace(std::make_pair(record.model, record.version));
  if (inserted) {
    it->second = std::make_unique<Stream>();
    it->second->model = record.model;
    it->second->version = record.version;
    it->second->dir = (std::filesystem::path(options_.dir) / EscapeModelDir(record.model) /
                       absl::StrCat(record.version))
                          .string();
  }
  last_ = it->second.get();
  return *last_;
}

void LogFileWriter::Add(const PredictionRecord& record) {
  Stream& s = StreamFor(record);
  AppendRecordJson(record, options_.data_format, &s.buffer);
  Buffered(s);
}

void LogFileWriter::AddLine(absl::string_view line) {
  // The key no prediction stream has: Submit refuses records without a model.
  if (last_ == nullptr || !last_->model.empty() || last_->version != -1) {
    auto [it, inserted] = streams_.try_emplace(std::make_pair(std::string(), int64_t{-1}));
    if (inserted) {
      it->second = std::make_unique<Stream>();
      it->second->version = -1;
      it->second->dir = options_.dir;
    }
    last_ = it->second.get();
  }
  last_->buffer.append(line.data(), line.size());
  Buffered(*last_);
}

std::string LogFileWriter::Describe(const Stream& s) const {
  if (s.model.empty()) return absl::StrCat(s.records, " records");
  return absl::StrCat(s.records, " records of model '", s.model, "' version ", s.version);
}

void LogFileWriter::Buffered(Stream& s) {
  ++s.records;
  ++buffered_records_;
  if (s.buffer.size() >= options_.frame_bytes) WriteFrame(s);
}

void LogFileWriter::WriteAll() {
  for (auto& [key, stream] : streams_) WriteFrame(*stream);
}

void LogFileWriter::WriteFrame(Stream& s) {
  if (s.records == 0) return;
  // Room for the frame and its padding (at most one block and a skippable header more).
  const size_t needed = ZSTD_compressBound(s.buffer.size()) + 2 * kBlock;
  if (needed > frame_capacity_) {
    std::free(frame_);
    frame_capacity_ = (needed + kBlock - 1) / kBlock * kBlock;
    frame_ = static_cast<char*>(std::aligned_alloc(kBlock, frame_capacity_));
    if (frame_ == nullptr) {
      frame_capacity_ = 0;
      Fail(s, absl::StrCat("allocating ", needed, " bytes to compress ", Describe(s)));
      return;
    }
  }
  size_t size = ZSTD_compress2(cctx_, frame_, frame_capacity_, s.buffer.data(), s.buffer.size());
  if (ZSTD_isError(size)) {
    Fail(s, absl::StrCat("compressing ", Describe(s), ": ", ZSTD_getErrorName(size)));
    return;
  }
  // A file holds at least one frame, however large.
  if (s.fd >= 0 && s.file_bytes > 0 &&
      s.file_bytes + static_cast<int64_t>(size) > options_.max_file_bytes) {
    FinishFile(s, /*sync=*/false);
  }
  std::string error;
  if (s.fd < 0 && !OpenFile(s, &error)) {
    Fail(s, error);
    return;
  }
  if (options_.before_write) {
    absl::Status status = options_.before_write(s.path);
    if (!status.ok()) {
      Fail(s, absl::StrCat("writing '", s.path, "': ", status.message()));
      return;
    }
  }
  if (s.direct) size = PadToBlock(frame_, size);
  if (!WriteFully(s.fd, frame_, size)) {
    const int err = errno;
    // Cut a partial frame off, so that frames appended later stay readable; then start a new
    // file next time, in case this one is what went wrong.
    if (::ftruncate(s.fd, s.file_bytes) != 0) {
      // Nothing more to do: the reader stops at the partial frame.
    }
    FinishFile(s, /*sync=*/false);
    Fail(s, absl::StrCat("writing '", s.path, "': ", ErrnoText(err)));
    return;
  }
  s.file_bytes += static_cast<int64_t>(size);
  bytes_written.fetch_add(static_cast<int64_t>(size), std::memory_order_relaxed);
  written.fetch_add(s.records, std::memory_order_relaxed);
  Done(s);
}

void LogFileWriter::Done(Stream& s) {
  pending_->fetch_sub(s.records);
  buffered_records_ -= s.records;
  s.records = 0;
  s.buffer.clear();
}

void LogFileWriter::Fail(Stream& s, const std::string& error) {
  failed.fetch_add(s.records, std::memory_order_relaxed);
  const int64_t errors = write_errors.fetch_add(1, std::memory_order_relaxed) + 1;
  Done(s);
  // A full disk fails every write: say so once a minute, not once per frame.
  const absl::Time now = absl::Now();
  if (now - last_report_ < absl::Minutes(1)) {
    ++unreported_errors_;
    return;
  }
  std::fprintf(stderr,
               "flywheel: %s: %s (%lld write errors, %lld records lost so far; "
               "%lld errors not shown)\n",
               name_.c_str(), error.c_str(), static_cast<long long>(errors),
               static_cast<long long>(failed.load(std::memory_order_relaxed)),
               static_cast<long long>(unreported_errors_));
  last_report_ = now;
  unreported_errors_ = 0;
}

bool LogFileWriter::OpenFile(Stream& s, std::string* error) {
  std::error_code ec;
  std::filesystem::create_directories(s.dir, ec);
  if (ec) {
    *error = absl::StrCat("creating folder '", s.dir, "': ", ec.message());
    return false;
  }
  const absl::Time now = Now();
  // O_EXCL with a sequence number: never append to a file another process (or an earlier run
  // started in the same nanosecond) is writing.
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const std::string path =
        (std::filesystem::path(s.dir) / LogFileName(now, s.next_seq++)).string();
    const int flags = O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC;
    const bool direct = options_.direct_io && try_direct_;
    int fd = ::open(path.c_str(), flags | (direct ? O_DIRECT : 0), 0644);
    if (fd < 0 && direct && errno == EINVAL) {
      // The file system refuses O_DIRECT (tmpfs) after creating the file: write buffered.
      ::unlink(path.c_str());
      try_direct_ = false;
      fd = ::open(path.c_str(), flags, 0644);
    }
    if (fd >= 0) {
      s.direct = direct && try_direct_;
      s.fd = fd;
      s.path = path;
      s.file_bytes = 0;
      s.opened = now;
      files_opened.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    if (errno != EEXIST) {
      *error = absl::StrCat("creating '", path, "': ", ErrnoText(errno));
      return false;
    }
  }
  *error = absl::StrCat("creating a log file in '", s.dir, "': every name is taken");
  return false;
}

void LogFileWriter::FinishFile(Stream& s, bool sync) {
  if (s.fd < 0) return;
  if (sync) ::fdatasync(s.fd);
  ::close(s.fd);
  s.fd = -1;
  s.path.clear();
  s.file_bytes = 0;
}

void LogFileWriter::FinishOldFiles(absl::Time now) {
  for (auto it = streams_.begin(); it != streams_.end();) {
    Stream& s = *it->second;
    if (s.fd >= 0 && now - s.opened >= options_.max_file_age) FinishFile(s, /*sync=*/false);
    if (s.fd < 0 && s.records == 0) {
      if (last_ == &s) last_ = nullptr;
      streams_.erase(it++);
    } else {
      ++it;
    }
  }
}

void LogFileWriter::CloseAll() {
  WriteAll();
  for (auto& [key, stream] : streams_) FinishFile(*stream, /*sync=*/true);
  streams_.clear();
  last_ = nullptr;
}

LogStats LogFileWriter::Stats(int64_t dropped) const {
  LogStats s;
  s.written = written.load(std::memory_order_relaxed);
  s.dropped = dropped;
  s.failed = failed.load(std::memory_order_relaxed);
  s.write_errors = write_errors.load(std::memory_order_relaxed);
  s.bytes_written = bytes_written.load(std::memory_order_relaxed);
  s.files_opened = files_opened.load(std::memory_order_relaxed);
  s.queued = pending_->load(std::memory_order_relaxed);
  return s;
}

}  // namespace flywheel::monitor
