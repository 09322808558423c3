#include "features/redis_client.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"

namespace flywheel::features {
namespace {

RedisReply Convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
      break;
    default:
      out.type = RedisReply::Type::kNil;
      break;
  }
  return out;
}

// The command names of a pipeline for error messages, never its arguments: values may be large,
// binary or private.
std::string CommandNames(absl::Span<const RedisConnection::CommandArgs> commands) {
  std::vector<std::string> names;
  for (const auto& args : commands) {
    if (names.size() == 6) {
      names.push_back("...");
      break;
    }
    names.push_back(args.empty() ? std::string("<empty>")
                                 : absl::AsciiStrToUpper(args[0].substr(0, 32)));
  }
  return absl::StrJoin(names, " ");
}

// Error replies the server gives while it cannot serve for a while.
bool IsTransientReply(absl::string_view error) {
  for (absl::string_view prefix : {"LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN"}) {
    if (absl::StartsWith(error, prefix)) return true;
  }
  return false;
}

}  // namespace

std::string RedisOptions::Address() const {
  if (host.find(':') != std::string::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<std::unique_ptr<RedisConnection>> RedisConnection::Connect(
    const RedisOptions& options) {
  std::unique_ptr<RedisConnection> connection(new RedisConnection(options));
  FW_RETURN_IF_ERROR(connection->Open());
  return connection;
}

RedisConnection::~RedisConnection() { Close(); }

void RedisConnection::Close() {
  if (context_ != nullptr) redisFree(context_);
  context_ = nullptr;
}

absl::Status RedisConnection::Open() {
  Close();
  const std::string address = options_.Address();
  if (options_.port <= 0 || options_.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("redis ", address, ": invalid port"));
  }
  redisContext* c = redisConnectWithTimeout(options_.host.c_str(), options_.port,
                                            absl::ToTimeval(options_.connect_timeout));
  if (c == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("redis ", address, ": cannot allocate a connection"));
  }
  if (c->err != 0) {
    std::string why = c->errstr;
    redisFree(c);
    return absl::UnavailableError(absl::StrCat("redis ", address, ": cannot connect: ", why));
  }
  context_ = c;
  read_timeout_ = absl::ZeroDuration();
  redisEnableKeepAlive(c);
  FW_RETURN_IF_ERROR(SetReadTimeout(options_.command_timeout));
  if (options_.db != 0) {
    const std::string db = absl::StrCat(options_.db);
    const absl::string_view select[] = {"SELECT", db};
    const CommandArgs commands[] = {select};
    bool sent = false;
    FW_ASSIGN_OR_RETURN(std::vector<RedisReply> replies,
                        RoundTrip(commands, absl::ZeroDuration(), &sent));
    if (replies[0].is_error()) {
      Close();
      return absl::InvalidArgumentError(
          absl::StrCat("redis ", address, ": SELECT ", db, ": ", replies[0].str));
    }
  }
  return absl::OkStatus();
}

absl::Status RedisConnection::SetReadTimeout(absl::Duration timeout) {
  if (timeout <= absl::ZeroDuration()) timeout = options_.command_timeout;
  if (timeout == read_timeout_) return absl::OkStatus();
  if (redisSetTimeout(context_, absl::ToTimeval(timeout)) != REDIS_OK) {
    return IoError("setting the socket timeout", {});
  }
  read_timeout_ = timeout;
  return absl::OkStatus();
}

bool RedisConnection::PeerClosed() const {
  pollfd pfd{context_->fd, POLLIN, 0};
  // With no reply outstanding, a readable socket means EOF or a reset from the server side.
  return poll(&pfd, 1, 0) > 0;
}

absl::Status RedisConnection::IoError(absl::string_view during,
                                      absl::Span<const CommandArgs> commands) {
  const int saved_errno = errno;
  std::string why = context_ != nullptr && context_->err != 0 ? context_->errstr : "unknown error";
  const bool timed_out = context_ != nullptr && context_->err == REDIS_ERR_IO &&
                         (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK);
  Close();
  std::string message = absl::StrCat("redis ", options_.Address(), ": ");
  if (!commands.empty()) absl::StrAppend(&message, CommandNames(commands), ": ");
  if (timed_out) {
    return absl::DeadlineExceededError(absl::StrCat(
        message, "no reply within ", absl::FormatDuration(read_timeout_), " (", during, ")"));
  }
  return absl::UnavailableError(absl::StrCat(message, why, " (", during, ")"));
}

absl::StatusOr<std::vector<RedisReply>> RedisConnection::RoundTrip(
    absl::Span<const CommandArgs> commands, absl::Duration timeout, bool* sent) {
  *sent = false;
  FW_RETURN_IF_ERROR(SetReadTimeout(timeout));
  for (const CommandArgs& args : commands) {
    argv_.clear();
    argv_len_.clear();
    for (absl::string_view arg : args) {
      argv_.push_back(arg.data());
      argv_len_.push_back(arg.size());
    }
    if (redisAppendCommandArgv(context_, static_cast<int>(argv_.size()), argv_.data(),
                               argv_len_.data()) != REDIS_OK) {
      return IoError("formatting the command", commands);
    }
  }
  // Write by hand rather than in redisGetReply, to know whether anything left.
  for (int done = 0; !done;) {
    if (redisBufferWrite(context_, &done) != REDIS_OK) return IoError("sending", commands);
    *sent = true;
  }
  std::vector<RedisReply> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) {
      return IoError("reading the reply", commands);
    }
    replies.push_back(Convert(static_cast<redisReply*>(raw)));
    freeReplyObject(raw);
  }
  return replies;
}

absl::StatusOr<std::vector<RedisReply>> RedisConnection::Run(absl::Span<const CommandArgs> commands,
                                                             RedisRetry retry,
                                                             absl::Duration timeout) {
  for (int attempt = 0;; ++attempt) {
    // A connection opened by this call failing is a real failure; one reused from before may
    // just have gone stale (server restart, idle timeout), which deserves one more try.
    bool reused = context_ != nullptr;
    if (reused && retry == RedisRetry::kNever && PeerClosed()) {
      Close();
      reused = false;
    }
    if (!reused) {
      absl::Status opened = Open();
      if (!opened.ok()) {
        return absl::Status(opened.code(), absl::StrCat(opened.message(), " (while sending ",
                                                        CommandNames(commands), ")"));
      }
    }
    bool sent = false;
    absl::StatusOr<std::vector<RedisReply>> replies = RoundTrip(commands, timeout, &sent);
    if (replies.ok() || attempt > 0 || !reused || absl::IsDeadlineExceeded(replies.status()) ||
        (sent && retry == RedisRetry::kNever)) {
      return replies;
    }
  }
}

absl::StatusOr<RedisReply> RedisConnection::Command(absl::Span<const absl::string_view> args,
                                                    RedisRetry retry, absl::Duration timeout) {
  if (args.empty()) return absl::InvalidArgumentError("redis command without a name");
  const CommandArgs commands[] = {args};
  FW_ASSIGN_OR_RETURN(std::vector<RedisReply> replies, Run(commands, retry, timeout));
  RedisReply& reply = replies[0];
  if (reply.is_error()) {
    const std::string message =
        absl::StrCat("redis ", options_.Address(), ": ", CommandNames(commands), ": ", reply.str);
    if (IsTransientReply(reply.str)) return absl::UnavailableError(message);
    return absl::FailedPreconditionError(message);
  }
  return std::move(reply);
}

absl::StatusOr<std::vector<RedisReply>> RedisConnection::Pipeline(
    absl::Span<const RedisArgs> commands, RedisRetry retry) {
  if (commands.empty()) return std::vector<RedisReply>{};
  std::vector<CommandArgs> spans;
  spans.reserve(commands.size());
  for (const RedisArgs& args : commands) {
    if (args.empty()) return absl::InvalidArgumentError("redis command without a name");
    spans.emplace_back(args);
  }
  return Run(spans, retry, absl::ZeroDuration());
}

RedisPool::Lease::Lease(Lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)), connection_(std::move(other.connection_)) {}

RedisPool::Lease& RedisPool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Release();
    pool_ = std::exchange(other.pool_, nullptr);
    connection_ = std::move(other.connection_);
  }
  return *this;
}

RedisPool::Lease::~Lease() { Release(); }

void RedisPool::Lease::Release() {
  if (pool_ != nullptr && connection_ != nullptr) pool_->Return(std::move(connection_));
  pool_ = nullptr;
}

RedisPool::RedisPool(const RedisOptions& options, int max_connections)
    : options_(options), max_connections_(std::max(1, max_connections)) {}

// REQUIRES: every lease was returned.
RedisPool::~RedisPool() = default;

absl::StatusOr<RedisPool::Lease> RedisPool::Acquire() {
  {
    absl::MutexLock lock(&mu_);
    auto available = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !idle_.empty() || open_ < max_connections_;
    };
    mu_.Await(absl::Condition(&available));
    if (!idle_.empty()) {
      std::unique_ptr<RedisConnection> connection = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(connection));
    }
    ++open_;
  }
  // Connect outside the lock: other threads keep taking idle connections meanwhile.
  absl::StatusOr<std::unique_ptr<RedisConnection>> connection = RedisConnection::Connect(options_);
  if (!connection.ok()) {
    absl::MutexLock lock(&mu_);
    --open_;
    return connection.status();
  }
  return Lease(this, *std::move(connection));
}

void RedisPool::Return(std::unique_ptr<RedisConnection> connection) {
  absl::MutexLock lock(&mu_);
  idle_.push_back(std::move(connection));
}

}  // namespace flywheel::features
