// The embedded online store: RocksDB in the server's data folder, the default. State values live
// in the default column family and stream positions in the "positions" family, so that a write
// batch commits both atomically and a Scan, whatever its prefix, never sees a position.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "features/store.h"

namespace flywheel::features {

struct RocksDbStoreOptions {
  std::string path;
  // Without sync a write survives a crash of the process (kill -9) but its last writes may be lost
  // with the machine; state and positions are lost together, so a stream is re-read from the older
  // position and nothing is double-counted. With sync every write is fsync'd before it returns.
  bool sync = false;
  // The LRU cache of uncompressed blocks shared by lookups.
  size_t block_cache_bytes = size_t{64} << 20;
};

// Opens (creating the folder and the database when missing) a RocksDB store. Errors name the path.
absl::StatusOr<std::unique_ptr<OnlineStore>> OpenRocksDbStore(const RocksDbStoreOptions& options);

}  // namespace flywheel::features
