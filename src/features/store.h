// The online feature store: a durable key-value map from (feature view, entity key) to that
// entity's serialized state, plus the positions of the streams that produced it. Two
// implementations pass the same conformance tests: RocksDB embedded in the server's data folder
// (the default) and Redis (`redis://host:port`) for many servers sharing one store.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace flywheel::features {

// Everything in one batch becomes durable together or not at all: the state a stream produced
// and the stream position it was read up to are committed in the same batch, so a crash and a
// restart neither lose nor double-count an event. Puts apply before deletes (a key in both ends up
// deleted); of two puts of one key the later wins.
struct WriteBatch {
  // (key, value) pairs to store. A key is `<view>\x1f<entity key>` (see StateKey).
  std::vector<std::pair<std::string, std::string>> puts;
  // Keys to remove (expired state).
  std::vector<std::string> deletes;
  // (source name, position) pairs, e.g. a Redis Stream entry id "1700000000000-0".
  std::vector<std::pair<std::string, std::string>> positions;

  bool empty() const { return puts.empty() && deletes.empty() && positions.empty(); }
};

class OnlineStore {
 public:
  virtual ~OnlineStore() = default;

  // Applies the whole batch atomically.
  virtual absl::Status Write(const WriteBatch& batch) = 0;

  // Looks up many keys in one round trip; a missing key gives std::nullopt at its index.
  virtual absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      absl::Span<const std::string> keys) = 0;

  // The last committed position of a source, or std::nullopt when none was ever written.
  virtual absl::StatusOr<std::optional<std::string>> GetPosition(absl::string_view source) = 0;

  // Visits every stored (key, value) whose key starts with `prefix` (used to rebuild in-memory
  // state at start and by tests). Stops early and returns the error the visitor returns.
  virtual absl::Status Scan(
      absl::string_view prefix,
      const std::function<absl::Status(absl::string_view key, absl::string_view value)>& visit) = 0;

  // A short description for logs and errors, e.g. "rocksdb:/var/lib/flywheel/features".
  virtual std::string Describe() const = 0;
};

// The key of one entity's state in one feature view.
std::string StateKey(absl::string_view view, absl::string_view entity_key);

// Opens a store from a URL: `redis://host:port[/db]` or `rocksdb:PATH` (a plain path means
// RocksDB too). The RocksDB folder is created when missing. Errors name the URL and the cause.
// Options: `redis://...?prefix=NS&pool=N&timeout_ms=N&connect_timeout_ms=N` (redis_store.h),
// `rocksdb:PATH?sync=true&cache_mb=N` (rocksdb_store.h).
absl::StatusOr<std::unique_ptr<OnlineStore>> OpenOnlineStore(absl::string_view url);

}  // namespace flywheel::features
