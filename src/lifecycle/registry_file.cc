// POSIX file handling for the registry (see registry_file.h).
#include "lifecycle/registry_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace flywheel::lifecycle {
namespace {

namespace fs = std::filesystem;

absl::Status ErrnoError(int err, absl::string_view what, const std::string& path) {
  const std::string message = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

// Writes all of `data`, retrying short writes and EINTR.
bool WriteAll(int fd, const char* data, size_t size) {
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

int OpenRetrying(const char* path, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = ::open(path, flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

std::string TempPrefix(const fs::path& path) {
  return absl::StrCat(".", path.filename().string(), ".tmp-");
}

// Temp files of writers that died before their rename. Only called under the lock, so no live
// writer owns one.
void RemoveLeftovers(const fs::path& path) {
  const std::string prefix = TempPrefix(path);
  std::error_code ec;
  fs::directory_iterator it(path.parent_path(), ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (absl::StartsWith(it->path().filename().string(), prefix)) {
      std::error_code rm_ec;
      fs::remove(it->path(), rm_ec);
    }
  }
}

}  // namespace

absl::StatusOr<FileLock> FileLock::Acquire(const std::string& path) {
  const int fd = OpenRetrying(path.c_str(), O_RDWR | O_CREAT, 0644);
  if (fd < 0) return ErrnoError(errno, "cannot open lock file", path);
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    const int err = errno;
    ::close(fd);
    return ErrnoError(err, "cannot lock", path);
  }
  return FileLock(fd);
}

FileLock::FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

absl::StatusOr<std::string> FileStamp(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::string();
    return ErrnoError(errno, "cannot stat", path);
  }
  return absl::StrCat(st.st_dev, ":", st.st_ino, ":", st.st_size, ":", st.st_mtim.tv_sec, ".",
                      st.st_mtim.tv_nsec);
}

absl::StatusOr<std::optional<FileContents>> ReadWholeFile(const std::string& path) {
  const int fd = OpenRetrying(path.c_str(), O_RDONLY);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<FileContents>();
    return ErrnoError(errno, "cannot open", path);
  }
  FileContents out;
  struct stat st;
  if (::fstat(fd, &st) == 0) {
    // Stamped from the descriptor read, so a rename racing with this read is seen next time.
    out.stamp = absl::StrCat(st.st_dev, ":", st.st_ino, ":", st.st_size, ":", st.st_mtim.tv_sec,
                             ".", st.st_mtim.tv_nsec);
    out.data.reserve(static_cast<size_t>(st.st_size));
  }
  char buffer[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return ErrnoError(err, "cannot read", path);
    }
    if (n == 0) break;
    out.data.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return std::optional<FileContents>(std::move(out));
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& data,
                                 const std::function<void()>& before_rename) {
  static std::atomic<uint64_t> counter{0};
  const fs::path target(path);
  RemoveLeftovers(target);
  const std::string tmp = (target.parent_path() /
                           absl::StrCat(TempPrefix(target), ::getpid(), "-", counter.fetch_add(1)))
                              .string();
  const int fd = OpenRetrying(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) return ErrnoError(errno, "cannot create", tmp);
  if (!WriteAll(fd, data.data(), data.size()) || ::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return ErrnoError(err, "cannot write", tmp);
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoError(err, "cannot write", tmp);
  }
  if (before_rename) before_rename();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoError(err, absl::StrCat("cannot rename ", tmp, " to"), path);
  }
  // The rename itself is durable only once the folder's entry is on disk.
  const std::string dir = target.parent_path().empty() ? "." : target.parent_path().string();
  const int dir_fd = OpenRetrying(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd < 0) return ErrnoError(errno, "cannot open folder", dir);
  const bool synced = ::fsync(dir_fd) == 0;
  const int err = errno;
  ::close(dir_fd);
  if (!synced) return ErrnoError(err, "cannot sync folder", dir);
  return absl::OkStatus();
}

}  // namespace flywheel::lifecycle
