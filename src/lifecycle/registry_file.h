// Durable files for the registry: an exclusive lock between processes (flock on a lock file),
// whole-file reads with a stamp that tells whether the file changed, and atomic replacement
// (temp file, fsync, rename, fsync of the folder). Private to lifecycle/.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace flywheel::lifecycle {

// Holds flock(LOCK_EX) on a lock file (created if missing) until destroyed. Each FileLock opens
// the file itself, so it excludes other threads of this process as well as other processes.
class FileLock {
 public:
  static absl::StatusOr<FileLock> Acquire(const std::string& path);
  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&&) = delete;
  FileLock(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

struct FileContents {
  std::string data;
  std::string stamp;  // see FileStamp
};

// The file's contents, or nullopt when it does not exist.
absl::StatusOr<std::optional<FileContents>> ReadWholeFile(const std::string& path);
// Device, inode, size and modification time; "" when the file does not exist. A rename over the
// file changes the inode, so a replaced file always has a new stamp.
absl::StatusOr<std::string> FileStamp(const std::string& path);

// Replaces `path` by `data` so that readers and a crash see the old file or the new one, never a
// mix: writes <dir>/.<name>.tmp-<pid>-<n>, fsyncs it, calls `before_rename` (tests), renames it
// over `path` and fsyncs the folder. Call it under the FileLock; leftover temp files of writers
// that crashed are removed first.
absl::Status WriteFileAtomically(const std::string& path, const std::string& data,
                                 const std::function<void()>& before_rename);

}  // namespace flywheel::lifecycle
