// The Redis online store, for many servers sharing one store: state values are plain string keys
// `<prefix>:<key>` (MGET reads a lookup in one round trip), stream positions are fields of the hash
// `<prefix>#positions`, and a write is one MULTI/EXEC, so state and positions commit together.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "features/redis_client.h"
#include "features/store.h"

namespace flywheel::features {

struct RedisStoreOptions {
  RedisOptions server;
  // The namespace of every key, so that several stores share one Redis database. Letters,
  // digits, '_', '-' and '.' only: keeps data keys and the positions hash from ever colliding.
  std::string prefix = "flywheel";
  // Connections to the server; request threads beyond this wait for a free one.
  int pool_size = 8;
};

// Parses `redis://host[:port][/db][?prefix=NS&pool=N&timeout_ms=N&connect_timeout_ms=N]`
// (IPv6 hosts in brackets; port 6379 and db 0 by default). Errors name the URL and the part.
absl::StatusOr<RedisStoreOptions> ParseRedisUrl(absl::string_view url);

// Connects (and PINGs) so that a wrong address fails at start, not at the first lookup.
absl::StatusOr<std::unique_ptr<OnlineStore>> OpenRedisStore(const RedisStoreOptions& options);

}  // namespace flywheel::features
