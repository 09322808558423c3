#include "features/redis_store.h"

#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/status.h"

namespace flywheel::features {
namespace {

// Keys per SCAN step: large enough to make a rebuild of millions of keys a few thousand round
// trips, small enough not to stall the server.
constexpr absl::string_view kScanCount = "1000";

bool ValidPrefix(absl::string_view prefix) {
  if (prefix.empty()) return false;
  for (char c : prefix) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

absl::Status ParseMillis(absl::string_view url, absl::string_view key, absl::string_view value,
                         absl::Duration* out) {
  int64_t ms = 0;
  if (!absl::SimpleAtoi(value, &ms) || ms <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("store URL '", url, "': ", key, "='", value,
                                                   "' is not a positive number of milliseconds"));
  }
  *out = absl::Milliseconds(ms);
  return absl::OkStatus();
}

// A glob matching exactly the keys that start with `literal`.
std::string GlobPrefix(absl::string_view literal) {
  std::string out;
  out.reserve(literal.size() + 2);
  for (char c : literal) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('*');
  return out;
}

class RedisStore final : public OnlineStore {
 public:
  explicit RedisStore(const RedisStoreOptions& options)
      : options_(options),
        pool_(options.server, options.pool_size),
        key_prefix_(absl::StrCat(options.prefix, ":")),
        positions_key_(absl::StrCat(options.prefix, "#positions")) {}

  absl::Status Ping() {
    FW_ASSIGN_OR_RETURN(RedisPool::Lease connection, pool_.Acquire());
    FW_ASSIGN_OR_RETURN(RedisReply reply, connection->Command({"PING"}));
    if (reply.str != "PONG") {
      return absl::FailedPreconditionError(
          absl::StrCat(Describe(), ": PING answered '", reply.str, "', not PONG"));
    }
    return absl::OkStatus();
  }

  absl::Status Write(const WriteBatch& batch) override {
    if (batch.empty()) return absl::OkStatus();
    // Every key is prefixed; the views below point into `keys`, reserved so it never moves.
    size_t key_bytes = 0;
    for (const auto& [key, value] : batch.puts) key_bytes += key_prefix_.size() + key.size();
    for (const auto& key : batch.deletes) key_bytes += key_prefix_.size() + key.size();
    std::string keys;
    keys.reserve(key_bytes);

    std::vector<RedisArgs> commands;
    commands.reserve(5);
    commands.push_back({"MULTI"});
    if (!batch.puts.empty()) {
      RedisArgs& mset = commands.emplace_back();
      mset.reserve(1 + 2 * batch.puts.size());
      mset.push_back("MSET");
      for (const auto& [key, value] : batch.puts) {
        mset.push_back(AppendKey(key, &keys));
        mset.push_back(value);
      }
    }
    if (!batch.deletes.empty()) {
      RedisArgs& del = commands.emplace_back();
      del.reserve(1 + batch.deletes.size());
      del.push_back("DEL");
      for (const auto& key : batch.deletes) del.push_back(AppendKey(key, &keys));
    }
    if (!batch.positions.empty()) {
      RedisArgs& hset = commands.emplace_back();
      hset.reserve(2 + 2 * batch.positions.size());
      hset.push_back("HSET");
      hset.push_back(positions_key_);
      for (const auto& [source, position] : batch.positions) {
        hset.push_back(source);
        hset.push_back(position);
      }
    }
    commands.push_back({"EXEC"});

    FW_ASSIGN_OR_RETURN(RedisPool::Lease connection, pool_.Acquire());
    // Sending the transaction again after a broken connection is harmless: it sets the same
    // values, and Redis discards a MULTI whose EXEC never arrived.
    FW_ASSIGN_OR_RETURN(std::vector<RedisReply> replies,
                        connection->Pipeline(commands, RedisRetry::kOnce));
    for (size_t i = 0; i + 1 < replies.size(); ++i) {
      if (replies[i].is_error()) {
        return absl::FailedPreconditionError(
            absl::StrCat(Describe(), ": write of ", batch.puts.size(), " puts, ",
                         batch.deletes.size(), " deletes, ", batch.positions.size(),
                         " positions: ", commands[i][0], ": ", replies[i].str));
      }
    }
    const RedisReply& exec = replies.back();
    if (exec.type != RedisReply::Type::kArray) {
      return absl::FailedPreconditionError(absl::StrCat(
          Describe(),
          ": write: EXEC: ", exec.is_error() ? exec.str : std::string("transaction discarded")));
    }
    for (const RedisReply& reply : exec.elements) {
      if (reply.is_error()) {
        return absl::InternalError(
            absl::StrCat(Describe(), ": write: a command of the transaction failed: ", reply.str));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      absl::Span<const std::string> keys) override {
    std::vector<std::optional<std::string>> values(keys.size());
    if (keys.empty()) return values;
    size_t key_bytes = 0;
    for (const std::string& key : keys) key_bytes += key_prefix_.size() + key.size();
    std::string buffer;
    buffer.reserve(key_bytes);
    RedisArgs args;
    args.reserve(1 + keys.size());
    args.push_back("MGET");
    for (const std::string& key : keys) args.push_back(AppendKey(key, &buffer));

    FW_ASSIGN_OR_RETURN(RedisPool::Lease connection, pool_.Acquire());
    FW_ASSIGN_OR_RETURN(RedisReply reply, connection->Command(args));
    if (reply.type != RedisReply::Type::kArray || reply.elements.size() != keys.size()) {
      return absl::InternalError(
          absl::StrCat(Describe(), ": MGET of ", keys.size(), " keys: unexpected reply shape"));
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      RedisReply& element = reply.elements[i];
      if (element.type == RedisReply::Type::kString) values[i] = std::move(element.str);
    }
    return values;
  }

  absl::StatusOr<std::optional<std::string>> GetPosition(absl::string_view source) override {
    FW_ASSIGN_OR_RETURN(RedisPool::Lease connection, pool_.Acquire());
    FW_ASSIGN_OR_RETURN(RedisReply reply, connection->Command({"HGET", positions_key_, source}));
    if (reply.is_nil()) return std::optional<std::string>();
    if (reply.type != RedisReply::Type::kString) {
      return absl::InternalError(
          absl::StrCat(Describe(), ": HGET position of '", source, "': unexpected reply type"));
    }
    return std::optional<std::string>(std::move(reply.str));
  }

  absl::Status Scan(absl::string_view prefix,
                    const std::function<absl::Status(absl::string_view key,
                                                     absl::string_view value)>& visit) override {
    const std::string full_prefix = absl::StrCat(key_prefix_, prefix);
    const std::string pattern = GlobPrefix(full_prefix);
    // SCAN may return a key more than once (while the table rehashes); visit each once.
    absl::flat_hash_set<std::string> seen;
    std::string cursor = "0";
    do {
      std::vector<std::string> keys;
      RedisReply values;
      {
        // The lease is returned before visiting: the visitor may use the store itself.
        FW_ASSIGN_OR_RETURN(RedisPool::Lease connection, pool_.Acquire());
        FW_ASSIGN_OR_RETURN(RedisReply step, connection->Command({"SCAN", cursor, "MATCH", pattern,
                                                                  "COUNT", kScanCount}));
        if (step.type != RedisReply::Type::kArray || step.elements.size() != 2 ||
            step.elements[1].type != RedisReply::Type::kArray) {
          return absl::InternalError(absl::StrCat(Describe(), ": SCAN: unexpected reply shape"));
        }
        cursor = std::move(step.elements[0].str);
        for (RedisReply& key : step.elements[1].elements) {
          if (!absl::StartsWith(key.str, full_prefix)) continue;
          if (!seen.insert(key.str).second) continue;
          keys.push_back(std::move(key.str));
        }
        if (keys.empty()) continue;
        RedisArgs mget;
        mget.reserve(1 + keys.size());
        mget.push_back("MGET");
        for (const std::string& key : keys) mget.push_back(key);
        FW_ASSIGN_OR_RETURN(values, connection->Command(mget));
        if (values.type != RedisReply::Type::kArray || values.elements.size() != keys.size()) {
          return absl::InternalError(absl::StrCat(Describe(), ": MGET: unexpected reply shape"));
        }
      }
      for (size_t i = 0; i < keys.size(); ++i) {
        const RedisReply& value = values.elements[i];
        // A key deleted between SCAN and MGET is gone: not visited.
        if (value.type != RedisReply::Type::kString) continue;
        FW_RETURN_IF_ERROR(visit(absl::string_view(keys[i]).substr(key_prefix_.size()), value.str));
      }
    } while (cursor != "0");
    return absl::OkStatus();
  }

  std::string Describe() const override {
    return absl::StrCat("redis://", options_.server.Address(), "/", options_.server.db,
                        "?prefix=", options_.prefix);
  }

 private:
  absl::string_view AppendKey(absl::string_view key, std::string* buffer) const {
    const size_t start = buffer->size();
    buffer->append(key_prefix_);
    buffer->append(key.data(), key.size());
    return absl::string_view(*buffer).substr(start);
  }

  const RedisStoreOptions options_;
  RedisPool pool_;
  const std::string key_prefix_;
  const std::string positions_key_;
};

}  // namespace

absl::StatusOr<RedisStoreOptions> ParseRedisUrl(absl::string_view url) {
  constexpr absl::string_view kScheme = "redis://";
  auto bad = [url](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("store URL '", url, "': ", why,
                     " (expected redis://host[:port][/db][?prefix=NS&pool=N&timeout_ms=N])"));
  };
  if (!absl::StartsWithIgnoreCase(url, kScheme)) return bad("not a redis:// URL");
  absl::string_view rest = url.substr(kScheme.size());
  absl::string_view query;
  if (size_t q = rest.find('?'); q != absl::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  absl::string_view path;
  if (size_t slash = rest.find('/'); slash != absl::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  if (absl::StrContains(rest, '@')) return bad("credentials in the URL are not supported");

  RedisStoreOptions options;
  absl::string_view host = rest;
  absl::string_view port;
  if (absl::StartsWith(rest, "[")) {
    size_t close = rest.find(']');
    if (close == absl::string_view::npos) return bad("unterminated '[' in the IPv6 host");
    host = rest.substr(1, close - 1);
    absl::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("expected ':port' after the IPv6 host");
      port = after.substr(1);
    }
  } else if (size_t colon = rest.find(':'); colon != absl::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (host.empty()) return bad("missing host");
  options.server.host = std::string(host);
  if (!port.empty() || rest.back() == ':') {
    if (!absl::SimpleAtoi(port, &options.server.port) || options.server.port <= 0 ||
        options.server.port > 65535) {
      return bad(absl::StrCat("port '", port, "' is not a number in 1..65535"));
    }
  }
  if (!path.empty()) {
    if (!absl::SimpleAtoi(path, &options.server.db) || options.server.db < 0) {
      return bad(absl::StrCat("database '", path, "' is not a non-negative number"));
    }
  }
  if (!query.empty()) {
    for (absl::string_view item : absl::StrSplit(query, '&')) {
      if (item.empty()) continue;
      std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(item, '=');
      const auto& [key, value] = kv;
      if (key == "prefix") {
        if (!ValidPrefix(value)) {
          return bad(absl::StrCat("prefix '", value,
                                  "' must be letters, digits, '_', '-' or '.' (at least one)"));
        }
        options.prefix = std::string(value);
      } else if (key == "pool") {
        if (!absl::SimpleAtoi(value, &options.pool_size) || options.pool_size < 1 ||
            options.pool_size > 1024) {
          return bad(absl::StrCat("pool '", value, "' is not a number in 1..1024"));
        }
      } else if (key == "timeout_ms") {
        if (absl::Status s = ParseMillis(url, key, value, &options.server.command_timeout);
            !s.ok()) {
          return s;
        }
      } else if (key == "connect_timeout_ms") {
        if (absl::Status s = ParseMillis(url, key, value, &options.server.connect_timeout);
            !s.ok()) {
          return s;
        }
      } else {
        return bad(absl::StrCat("unknown option '", key,
                                "' (known: prefix, pool, timeout_ms, connect_timeout_ms)"));
      }
    }
  }
  return options;
}

absl::StatusOr<std::unique_ptr<OnlineStore>> OpenRedisStore(const RedisStoreOptions& options) {
  if (!ValidPrefix(options.prefix)) {
    return absl::InvalidArgumentError(
        absl::StrCat("redis store prefix '", options.prefix,
                     "' must be letters, digits, '_', '-' or '.' (at least one)"));
  }
  auto store = std::make_unique<RedisStore>(options);
  absl::Status ping = store->Ping();
  if (!ping.ok()) {
    return absl::Status(
        ping.code(), absl::StrCat("cannot open store ", store->Describe(), ": ", ping.message()));
  }
  return store;
}

}  // namespace flywheel::features
