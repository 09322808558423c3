// A small blocking Redis client on hiredis for the Redis online store and Redis Streams: one
// connection (binary-safe commands, pipelines, timeouts, one reconnect when the connection broke)
// and a pool of them, so that many request threads talk to Redis without sharing one socket.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

struct redisContext;

namespace flywheel::features {

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  // Selected on every (re)connect.
  int db = 0;
  absl::Duration connect_timeout = absl::Seconds(2);
  // How long one command (or pipeline) may wait for its reply before the connection is dropped.
  absl::Duration command_timeout = absl::Seconds(5);

  // "host:port", as errors name the server.
  std::string Address() const;
};

// One reply, converted from the RESP2 reply hiredis parsed. `str` holds the bytes of a bulk
// string, a status ("OK") or an error ("ERR ..."); `elements` those of an array.
struct RedisReply {
  enum class Type { kNil, kString, kStatus, kInteger, kArray, kError };

  Type type = Type::kNil;
  std::string str;
  int64_t integer = 0;
  std::vector<RedisReply> elements;

  bool is_nil() const { return type == Type::kNil; }
  bool is_error() const { return type == Type::kError; }
};

// A command's arguments, each sent as a binary-safe bulk string.
using RedisArgs = std::vector<absl::string_view>;

// Whether a command may be sent again on a fresh connection after an I/O error. Only commands
// whose repetition is harmless (reads, SET/DEL/HSET of fixed values, MULTI/EXEC of those) should
// be retried: when the connection breaks after the command was sent, it may have been applied.
enum class RedisRetry { kOnce, kNever };

// One blocking connection. Not thread-safe: one thread uses it at a time (see RedisPool).
class RedisConnection {
 public:
  using CommandArgs = absl::Span<const absl::string_view>;

  // Connects and selects options.db. Errors name host:port.
  static absl::StatusOr<std::unique_ptr<RedisConnection>> Connect(const RedisOptions& options);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Sends one command and returns its reply. An error reply becomes an error status naming
  // host:port and the command (never its values, which may be large or binary). On an I/O error
  // the connection is re-established once and, with RedisRetry::kOnce, the command sent again.
  // `timeout` replaces options.command_timeout for this call when positive (blocking reads).
  absl::StatusOr<RedisReply> Command(absl::Span<const absl::string_view> args,
                                     RedisRetry retry = RedisRetry::kOnce,
                                     absl::Duration timeout = absl::ZeroDuration());

  // Sends several commands in one write and reads their replies in order (one round trip).
  // Error replies stay in the returned vector (type kError); I/O errors fail the whole call.
  absl::StatusOr<std::vector<RedisReply>> Pipeline(absl::Span<const RedisArgs> commands,
                                                   RedisRetry retry = RedisRetry::kOnce);

  const RedisOptions& options() const { return options_; }
  // False after an I/O error until the next command reconnects.
  bool connected() const { return context_ != nullptr; }

 private:
  explicit RedisConnection(const RedisOptions& options) : options_(options) {}
  absl::Status Open();
  void Close();
  absl::Status SetReadTimeout(absl::Duration timeout);
  // True when the server closed an idle connection (it is readable with no reply pending).
  bool PeerClosed() const;
  // Opens when needed, runs one round trip and retries once as `retry` allows.
  absl::StatusOr<std::vector<RedisReply>> Run(absl::Span<const CommandArgs> commands,
                                              RedisRetry retry, absl::Duration timeout);
  // One attempt: appends every command, writes them, then reads every reply. Sets *sent when
  // bytes may have reached the server.
  absl::StatusOr<std::vector<RedisReply>> RoundTrip(absl::Span<const CommandArgs> commands,
                                                    absl::Duration timeout, bool* sent);
  // The error of a failed I/O on the context; closes it so the next command reconnects.
  absl::Status IoError(absl::string_view during, absl::Span<const CommandArgs> commands);

  RedisOptions options_;
  redisContext* context_ = nullptr;
  absl::Duration read_timeout_ = absl::ZeroDuration();  // the socket's current SO_RCVTIMEO
  // Scratch for hiredis' argv/argvlen, reused between commands.
  std::vector<const char*> argv_;
  std::vector<size_t> argv_len_;
};

// A bounded pool of connections to one server. Acquire hands out an idle connection, opens a new
// one while fewer than max_connections exist, or waits for one to come back.
class RedisPool {
 public:
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    ~Lease();
    RedisConnection* operator->() const { return connection_.get(); }
    RedisConnection& operator*() const { return *connection_; }

   private:
    friend class RedisPool;
    Lease(RedisPool* pool, std::unique_ptr<RedisConnection> connection)
        : pool_(pool), connection_(std::move(connection)) {}
    void Release();

    RedisPool* pool_ = nullptr;
    std::unique_ptr<RedisConnection> connection_;
  };

  RedisPool(const RedisOptions& options, int max_connections);
  ~RedisPool();
  RedisPool(const RedisPool&) = delete;
  RedisPool& operator=(const RedisPool&) = delete;

  absl::StatusOr<Lease> Acquire();
  const RedisOptions& options() const { return options_; }

 private:
  void Return(std::unique_ptr<RedisConnection> connection);

  const RedisOptions options_;
  const int max_connections_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<RedisConnection>> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;  // idle + leased + being opened
};

}  // namespace flywheel::features
