// OpenOnlineStore: the store a URL names (see store.h).
//   redis://host[:port][/db][?prefix=NS&pool=N&timeout_ms=N&connect_timeout_ms=N]
//   rocksdb:PATH[?sync=true&cache_mb=N]   (rocksdb://PATH too)
//   PATH                                  (taken literally, no options)
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/status.h"
#include "features/redis_store.h"
#include "features/rocksdb_store.h"
#include "features/store.h"

namespace flywheel::features {
namespace {

constexpr absl::string_view kExpected =
    "expected redis://host[:port][/db][?prefix=NS&pool=N], rocksdb:PATH[?sync=true&cache_mb=N] "
    "or a folder path";

absl::StatusOr<RocksDbStoreOptions> ParseRocksDbUrl(absl::string_view url) {
  absl::string_view rest = url.substr(url.find(':') + 1);
  if (absl::StartsWith(rest, "//")) rest.remove_prefix(2);
  RocksDbStoreOptions options;
  absl::string_view query;
  if (size_t q = rest.find('?'); q != absl::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (rest.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("store URL '", url, "': missing the folder path after 'rocksdb:'"));
  }
  options.path = std::string(rest);
  for (absl::string_view item : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(item, '=');
    const auto& [key, value] = kv;
    if (key == "sync") {
      if (!absl::SimpleAtob(value, &options.sync)) {
        return absl::InvalidArgumentError(
            absl::StrCat("store URL '", url, "': sync='", value, "' is not true or false"));
      }
    } else if (key == "cache_mb") {
      size_t mb = 0;
      if (!absl::SimpleAtoi(value, &mb) || mb == 0 || mb > (size_t{1} << 20)) {
        return absl::InvalidArgumentError(absl::StrCat("store URL '", url, "': cache_mb='", value,
                                                       "' is not a number in 1..1048576"));
      }
      options.block_cache_bytes = mb << 20;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("store URL '", url, "': unknown option '", key,
                                                     "' (known: sync, cache_mb)"));
    }
  }
  return options;
}

}  // namespace

absl::StatusOr<std::unique_ptr<OnlineStore>> OpenOnlineStore(absl::string_view url) {
  if (url.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("empty online store URL; ", kExpected));
  }
  if (absl::StartsWithIgnoreCase(url, "redis://")) {
    FW_ASSIGN_OR_RETURN(RedisStoreOptions options, ParseRedisUrl(url));
    return OpenRedisStore(options);
  }
  if (absl::StartsWithIgnoreCase(url, "redis:")) {
    return absl::InvalidArgumentError(
        absl::StrCat("online store URL '", url, "': a Redis URL starts with 'redis://'"));
  }
  if (absl::StartsWithIgnoreCase(url, "rocksdb:")) {
    FW_ASSIGN_OR_RETURN(RocksDbStoreOptions options, ParseRocksDbUrl(url));
    return OpenRocksDbStore(options);
  }
  // Any other scheme is a mistake, not a folder called "rediss:" or "http:".
  if (size_t colon = url.find("://"); colon != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("online store URL '", url,
                                                   "': unsupported scheme '", url.substr(0, colon),
                                                   "'; ", kExpected));
  }
  RocksDbStoreOptions options;
  options.path = std::string(url);
  return OpenRocksDbStore(options);
}

}  // namespace flywheel::features
