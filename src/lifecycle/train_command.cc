// Runs a training command (train_command.h) with fork/exec: everything the child needs is built
// before fork, since the server is multi-threaded and the child may only make async-signal-safe
// calls until exec.
#include "lifecycle/train_command.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

extern char** environ;

namespace flywheel::lifecycle {
namespace {

constexpr absl::Duration kKillGrace = absl::Seconds(5);
constexpr size_t kTailBytes = 2048;

std::string ErrnoText(int err) { return std::strerror(err); }

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// argv[0] as exec will run it: a name with '/' as given (relative to the working dir), else the
// first executable match on PATH (the command's PATH when its env sets one).
absl::StatusOr<std::string> ResolveExecutable(const TrainCommandOptions& o) {
  const std::string& name = o.argv[0];
  if (name.find('/') != std::string::npos) {
    std::string path = name;
    if (name[0] != '/' && !o.working_dir.empty()) path = absl::StrCat(o.working_dir, "/", name);
    if (!IsExecutableFile(path)) {
      return absl::NotFoundError(absl::StrCat(
          "training command '", name, "': ", path,
          ::access(path.c_str(), F_OK) == 0 ? " is not an executable file" : " does not exist"));
    }
    return path;
  }
  std::string search;
  if (auto it = o.env.find("PATH"); it != o.env.end()) {
    search = it->second;
  } else if (const char* p = std::getenv("PATH"); p != nullptr) {
    search = p;
  } else {
    search = "/usr/local/bin:/usr/bin:/bin";
  }
  for (absl::string_view dir : absl::StrSplit(search, ':')) {
    const std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", name);
    if (IsExecutableFile(candidate)) return candidate;
  }
  return absl::NotFoundError(
      absl::StrCat("training command '", name, "': no such executable on PATH (", search, ")"));
}

// The server's environment with `extra` added (replacing variables of the same name).
std::vector<std::string> MergedEnvironment(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    const std::string name = eq == nullptr ? std::string(*e) : std::string(*e, eq - *e);
    if (extra.count(name) == 0) env.emplace_back(*e);
  }
  for (const auto& [name, value] : extra) env.push_back(absl::StrCat(name, "=", value));
  return env;
}

std::vector<char*> CPointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// The last kTailBytes of the log, starting at a character boundary.
std::string ReadTail(const std::string& path) {
  if (path.empty()) return "";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  struct stat st;
  std::string tail;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    const off_t size = st.st_size;
    const off_t start = size > static_cast<off_t>(kTailBytes) ? size - kTailBytes : 0;
    tail.resize(static_cast<size_t>(size - start));
    const ssize_t n = ::pread(fd, tail.data(), tail.size(), start);
    tail.resize(n > 0 ? static_cast<size_t>(n) : 0);
    size_t skip = 0;
    while (start > 0 && skip < tail.size() &&
           (static_cast<unsigned char>(tail[skip]) & 0xC0) == 0x80) {
      ++skip;
    }
    tail.erase(0, skip);
  }
  ::close(fd);
  return tail;
}

// In the child, between fork and exec: async-signal-safe calls only.
[[noreturn]] void ExecChild(const char* path, char* const* argv, char* const* envp, int log_fd,
                            int null_fd, const char* working_dir, int error_fd) {
  ::setpgid(0, 0);
  // The server may block or ignore signals for its own threads; the command starts clean.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD}) ::sigaction(sig, &dfl, nullptr);
  int err = 0;
  if (::dup2(null_fd, 0) < 0 || ::dup2(log_fd, 1) < 0 || ::dup2(log_fd, 2) < 0) err = errno;
  if (err == 0 && working_dir != nullptr && ::chdir(working_dir) != 0) err = errno;
  if (err == 0) {
    // Descriptors the server opened without O_CLOEXEC do not leak into the command.
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    ::execve(path, argv, envp);
    err = errno;
  }
  ssize_t ignored = ::write(error_fd, &err, sizeof(err));
  (void)ignored;
  ::_exit(127);
}

}  // namespace

absl::StatusOr<TrainCommandResult> RunTrainCommand(const TrainCommandOptions& options) {
  if (options.argv.empty() || options.argv[0].empty()) {
    return absl::InvalidArgumentError("training command is empty (no executable)");
  }
  const std::string& exe = options.argv[0];
  if (!options.working_dir.empty()) {
    struct stat st;
    if (::stat(options.working_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return absl::NotFoundError(absl::StrCat("training command '", exe, "': working dir '",
                                              options.working_dir, "' is not a folder"));
    }
  }
  absl::StatusOr<std::string> path = ResolveExecutable(options);
  if (!path.ok()) return path.status();

  const std::string log_path = options.log_path.empty() ? "/dev/null" : options.log_path;
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "training command '", exe, "': cannot open log '", log_path, "': ", ErrnoText(errno)));
  }
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int error_pipe[2];
  if (null_fd < 0 || ::pipe2(error_pipe, O_CLOEXEC) != 0) {
    const int err = errno;
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    return absl::InternalError(
        absl::StrCat("training command '", exe, "': cannot set up: ", ErrnoText(err)));
  }

  std::vector<std::string> argv_strings = options.argv;
  std::vector<std::string> env_strings = MergedEnvironment(options.env);
  std::vector<char*> argv = CPointers(argv_strings);
  std::vector<char*> envp = CPointers(env_strings);
  const char* working_dir = options.working_dir.empty() ? nullptr : options.working_dir.c_str();

  const absl::Time start = absl::Now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ExecChild(path->c_str(), argv.data(), envp.data(), log_fd, null_fd, working_dir, error_pipe[1]);
  }
  const int fork_errno = errno;
  ::close(log_fd);
  ::close(null_fd);
  ::close(error_pipe[1]);
  if (pid < 0) {
    ::close(error_pipe[0]);
    return absl::ResourceExhaustedError(
        absl::StrCat("training command '", exe, "': fork failed: ", ErrnoText(fork_errno)));
  }
  // Both sides set the group, so that a kill right after fork reaches the whole group.
  ::setpgid(pid, pid);

  // EOF means exec succeeded (the pipe closed on exec); an int is the child's errno.
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(error_pipe[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  ::close(error_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof(child_errno))) {
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return absl::FailedPreconditionError(absl::StrCat("training command '", exe, "' (", *path,
                                                      "): cannot start: ", ErrnoText(child_errno)));
  }

  TrainCommandResult result;
  const absl::Time deadline = start + options.timeout;
  absl::Time kill_at = absl::InfiniteFuture();
  absl::Duration pause = absl::Milliseconds(2);
  for (;;) {
    // WNOWAIT leaves the leader unreaped, so its pid (the group id) cannot be reused while the
    // rest of the group is killed below.
    siginfo_t info;
    std::memset(&info, 0, sizeof(info));
    const int w = ::waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT);
    if (w == 0 && info.si_pid == pid) break;
    if (w < 0 && errno != EINTR) break;  // not our child any more (cannot happen); stop waiting
    const absl::Time now = absl::Now();
    const bool cancelled = options.cancel != nullptr && options.cancel->load();
    if (!result.timed_out && (now >= deadline || cancelled)) {
      result.timed_out = true;
      ::kill(-pid, SIGTERM);
      kill_at = now + kKillGrace;
    }
    if (now >= kill_at) {
      ::kill(-pid, SIGKILL);
      kill_at = absl::InfiniteFuture();
    }
    std::this_thread::sleep_for(absl::ToChronoMicroseconds(pause));
    pause = std::min(pause * 2, absl::Milliseconds(50));
  }
  // What the command left running in its group ends with it.
  ::kill(-pid, SIGKILL);
  int status = 0;
  pid_t reaped;
  do {
    reaped = ::waitpid(pid, &status, 0);
  } while (reaped < 0 && errno == EINTR);
  result.wall = absl::Now() - start;
  if (reaped != pid) {
    // Someone else reaped it (a SIGCHLD handler set to SIG_IGN, say): its exit status is lost,
    // and a guess would pass a failed training off as a good one.
    return absl::InternalError(absl::StrCat("training command '", exe, "' (pid ", pid,
                                            "): its exit status was lost: ", ErrnoText(errno)));
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  result.log_tail = ReadTail(options.log_path);
  return result;
}

absl::StatusOr<std::string> SubstitutePlaceholders(
    const std::string& text, const std::map<std::string, std::string>& values) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '}') {
      if (i + 1 < text.size() && text[i + 1] == '}') {
        out.push_back('}');
        ++i;
        continue;
      }
      return absl::InvalidArgumentError(
          absl::StrCat("a single '}' in '", text, "' (write }} for a literal brace)"));
    }
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '{') {
      out.push_back('{');
      ++i;
      continue;
    }
    const size_t close = text.find('}', i + 1);
    if (close == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("an unclosed '{' in '", text, "' (write {{ for a literal brace)"));
    }
    const std::string name = text.substr(i + 1, close - i - 1);
    auto it = values.find(name);
    if (it == values.end()) {
      std::vector<std::string> known;
      for (const auto& [k, v] : values) known.push_back(absl::StrCat("{", k, "}"));
      return absl::InvalidArgumentError(absl::StrCat("unknown placeholder {", name, "} in '", text,
                                                     "' (known: ", absl::StrJoin(known, " "), ")"));
    }
    out += it->second;
    i = close;
  }
  return out;
}

}  // namespace flywheel::lifecycle
