// Reading events from Redis Streams: XREAD from a position the caller keeps (the online store
// commits it with the state it produced, for exactly-once state), and XADD for producers, tests
// and benchmarks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "features/redis_client.h"

namespace flywheel::features {

// One stream entry: its id ("<milliseconds>-<sequence>") and its field/value pairs in order.
struct StreamEntry {
  std::string id;
  std::vector<std::pair<std::string, std::string>> fields;
};

// Where to read one stream from: entries with ids strictly after `after_id` ("0" reads from the
// start; an id returned earlier reads what came after it).
struct StreamCursor {
  std::string stream;
  std::string after_id;
};

// The entries read from one stream, oldest first.
struct StreamBatch {
  std::string stream;
  std::vector<StreamEntry> entries;
};

// Reads with its own connection: a blocking read holds it for up to `block`.
class StreamReader {
 public:
  static absl::StatusOr<std::unique_ptr<StreamReader>> Open(const RedisOptions& server);

  // Up to `count` entries after `after_id`. Waits up to `block` when there are none yet (no wait
  // when `block` is zero) and then returns an empty vector.
  absl::StatusOr<std::vector<StreamEntry>> Read(absl::string_view stream,
                                                absl::string_view after_id, int count,
                                                absl::Duration block);

  // Reads several streams in one call: up to `count` entries per stream, a batch for each stream
  // that had any, waiting up to `block` while none has.
  absl::StatusOr<std::vector<StreamBatch>> ReadMany(absl::Span<const StreamCursor> cursors,
                                                    int count, absl::Duration block);

  const RedisOptions& server() const { return connection_->options(); }

 private:
  explicit StreamReader(std::unique_ptr<RedisConnection> connection)
      : connection_(std::move(connection)) {}

  std::unique_ptr<RedisConnection> connection_;
};

// Appends one entry and returns its id. `id` "*" lets the server pick; `max_len` > 0 trims the
// stream to about that many entries (MAXLEN ~). Never sent twice: after a broken connection the
// error is returned, since the entry may or may not have been added.
absl::StatusOr<std::string> StreamAdd(RedisConnection& connection, absl::string_view stream,
                                      absl::Span<const std::pair<std::string, std::string>> fields,
                                      absl::string_view id = "*", int64_t max_len = 0);

// Appends many entries with server-picked ids in one round trip (pipelined XADDs); returns ids.
absl::StatusOr<std::vector<std::string>> StreamAddMany(
    RedisConnection& connection, absl::string_view stream,
    absl::Span<const std::vector<std::pair<std::string, std::string>>> entries,
    int64_t max_len = 0);

}  // namespace flywheel::features
