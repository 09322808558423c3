// For tests only: a real redis-server on a free loopback port, started by the test and killed at
// the end, with nothing saved to disk. Missing redis-server is a failure, never a skip.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "features/redis_client.h"

namespace flywheel::features::testing {

inline constexpr char kRedisServerPath[] = "/usr/bin/redis-server";

// A port nothing listens on right now (the kernel's pick for an ephemeral bind).
inline int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

// A fresh empty folder under the test's temporary folder.
inline std::string MakeTempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string pattern = absl::StrCat(base != nullptr ? base : "/tmp", "/", name, "-XXXXXX");
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  const char* dir = mkdtemp(buffer.data());
  return dir != nullptr ? std::string(dir) : std::string();
}

class RedisTestServer {
 public:
  static absl::StatusOr<std::unique_ptr<RedisTestServer>> Start() {
    if (access(kRedisServerPath, X_OK) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(kRedisServerPath,
                       " is missing: install the redis-server package "
                       "(scripts/install-deps.sh); the Redis tests need a real server"));
    }
    std::unique_ptr<RedisTestServer> server(new RedisTestServer());
    server->dir_ = MakeTempDir("flywheel-redis");
    absl::Status last;
    for (int attempt = 0; attempt < 5; ++attempt) {
      server->port_ = FreeLoopbackPort();
      last = server->Launch();
      if (last.ok()) return server;
    }
    return last;
  }

  ~RedisTestServer() {
    Stop();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  int port() const { return port_; }
  RedisOptions options() const {
    RedisOptions options;
    options.host = "127.0.0.1";
    options.port = port_;
    return options;
  }
  std::string url() const { return absl::StrCat("redis://127.0.0.1:", port_); }

  // Kills the server (kill -9: no goodbye to clients).
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  // Starts it again on the same port, empty (nothing was saved).
  absl::Status Restart() {
    Stop();
    absl::Status last;
    // The old socket may linger a moment.
    for (int attempt = 0; attempt < 20; ++attempt) {
      last = Launch();
      if (last.ok()) return last;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return last;
  }

 private:
  RedisTestServer() = default;

  absl::Status Launch() {
    const std::string port = absl::StrCat(port_);
    const std::string log = absl::StrCat(dir_, "/redis-", port_, ".log");
    std::vector<std::string> args = {kRedisServerPath,
                                     "--port",
                                     port,
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--dir",
                                     dir_,
                                     "--logfile",
                                     log,
                                     "--daemonize",
                                     "no"};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) return absl::InternalError(absl::StrCat("cannot fork for ", kRedisServerPath));
    if (pid == 0) {
      // Dies with the test, even one that crashed: no server outlives its test.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
      execv(kRedisServerPath, argv.data());
      _exit(127);
    }
    pid_ = pid;
    // Ready when it answers PING; gone when it exited (port taken, bad option).
    RedisOptions options = this->options();
    options.connect_timeout = absl::Milliseconds(200);
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return absl::UnavailableError(
            absl::StrCat(kRedisServerPath, " exited at start on port ", port_, "; see ", log));
      }
      auto connection = RedisConnection::Connect(options);
      if (connection.ok()) {
        auto pong = (*connection)->Command({"PING"});
        if (pong.ok() && pong->str == "PONG") return absl::OkStatus();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    Stop();
    return absl::DeadlineExceededError(
        absl::StrCat(kRedisServerPath, " did not answer PING on port ", port_, " within 10 s"));
  }

  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// One server shared by every test of the binary that needs no server of its own, started by the
// first and killed at exit.
inline absl::StatusOr<RedisTestServer*> SharedRedisServer() {
  static absl::StatusOr<std::unique_ptr<RedisTestServer>> server = RedisTestServer::Start();
  if (!server.ok()) return server.status();
  return server->get();
}

}  // namespace flywheel::features::testing
