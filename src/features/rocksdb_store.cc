#include "features/rocksdb_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace flywheel::features {
namespace {

constexpr char kPositionsFamily[] = "positions";
// Lookups of one entity read a few keys; up to this many need no heap for RocksDB's arguments.
constexpr size_t kInlineKeys = 32;

rocksdb::Slice ToSlice(absl::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
absl::string_view ToView(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }

// The smallest key greater than every key starting with `prefix`, or "" when there is none
// (the prefix is empty or all 0xff bytes).
std::string PrefixSuccessor(absl::string_view prefix) {
  std::string out(prefix);
  while (!out.empty() && static_cast<unsigned char>(out.back()) == 0xff) out.pop_back();
  if (!out.empty()) out.back() = static_cast<char>(static_cast<unsigned char>(out.back()) + 1);
  return out;
}

class RocksDbStore final : public OnlineStore {
 public:
  RocksDbStore(std::string path, bool sync) : path_(std::move(path)) { write_options_.sync = sync; }

  ~RocksDbStore() override {
    if (db_ == nullptr) return;
    for (rocksdb::ColumnFamilyHandle* handle : {data_, positions_}) {
      if (handle != nullptr) db_->DestroyColumnFamilyHandle(handle);
    }
    db_->Close().PermitUncheckedError();
    delete db_;
  }

  absl::Status Open(const RocksDbStoreOptions& options) {
    std::error_code ec;
    std::filesystem::create_directories(path_, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("rocksdb store '", path_, "': cannot create the folder: ", ec.message()));
    }
    rocksdb::Options db_options;
    db_options.create_if_missing = true;
    db_options.create_missing_column_families = true;
    db_options.keep_log_file_num = 5;

    // Point lookups dominate: a bloom filter per table skips files without the key, and a hash
    // index inside data blocks finds the key without a binary search.
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    table.data_block_index_type = rocksdb::BlockBasedTableOptions::kDataBlockBinaryAndHash;
    rocksdb::ColumnFamilyOptions data_options(db_options);
    data_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    data_options.memtable_whole_key_filtering = true;
    data_options.memtable_prefix_bloom_size_ratio = 0.02;

    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, data_options},
        {kPositionsFamily, rocksdb::ColumnFamilyOptions()}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::Status s = rocksdb::DB::Open(db_options, path_, families, &handles, &db_);
    if (!s.ok()) {
      db_ = nullptr;
      return Error("open", s);
    }
    data_ = handles[0];
    positions_ = handles[1];
    return absl::OkStatus();
  }

  absl::Status Write(const WriteBatch& batch) override {
    if (batch.empty()) return absl::OkStatus();
    rocksdb::WriteBatch write;
    rocksdb::Status s;
    for (const auto& [key, value] : batch.puts) {
      if (s.ok()) s = write.Put(data_, key, value);
    }
    for (const std::string& key : batch.deletes) {
      if (s.ok()) s = write.Delete(data_, key);
    }
    for (const auto& [source, position] : batch.positions) {
      if (s.ok()) s = write.Put(positions_, source, position);
    }
    if (s.ok()) s = db_->Write(write_options_, &write);
    if (!s.ok()) {
      return Error(absl::StrCat("write of ", batch.puts.size(), " puts, ", batch.deletes.size(),
                                " deletes, ", batch.positions.size(), " positions"),
                   s);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      absl::Span<const std::string> keys) override {
    const size_t n = keys.size();
    std::vector<std::optional<std::string>> values(n);
    if (n == 0) return values;
    absl::InlinedVector<rocksdb::Slice, kInlineKeys> slices(n);
    absl::InlinedVector<rocksdb::PinnableSlice, kInlineKeys> found(n);
    absl::InlinedVector<rocksdb::Status, kInlineKeys> statuses(n);
    for (size_t i = 0; i < n; ++i) slices[i] = ToSlice(keys[i]);
    db_->MultiGet(rocksdb::ReadOptions(), data_, n, slices.data(), found.data(), statuses.data());
    for (size_t i = 0; i < n; ++i) {
      if (statuses[i].ok()) {
        values[i].emplace(found[i].data(), found[i].size());
      } else if (!statuses[i].IsNotFound()) {
        return Error(absl::StrCat("lookup of ", n, " keys"), statuses[i]);
      }
    }
    return values;
  }

  absl::StatusOr<std::optional<std::string>> GetPosition(absl::string_view source) override {
    rocksdb::PinnableSlice value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), positions_, ToSlice(source), &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return Error(absl::StrCat("read of the position of '", source, "'"), s);
    return std::optional<std::string>(value.ToString());
  }

  absl::Status Scan(absl::string_view prefix,
                    const std::function<absl::Status(absl::string_view key,
                                                     absl::string_view value)>& visit) override {
    rocksdb::ReadOptions read;
    // A rebuild reads everything once; keep the cache for lookups.
    read.fill_cache = false;
    const std::string upper = PrefixSuccessor(prefix);
    rocksdb::Slice upper_slice(upper);
    if (!upper.empty()) read.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, data_));
    for (it->Seek(ToSlice(prefix)); it->Valid(); it->Next()) {
      const absl::string_view key = ToView(it->key());
      if (!absl::StartsWith(key, prefix)) break;
      absl::Status visited = visit(key, ToView(it->value()));
      if (!visited.ok()) return visited;
    }
    if (!it->status().ok()) return Error("scan", it->status());
    return absl::OkStatus();
  }

  std::string Describe() const override { return absl::StrCat("rocksdb:", path_); }

 private:
  absl::Status Error(absl::string_view what, const rocksdb::Status& s) const {
    const std::string message =
        absl::StrCat("rocksdb store '", path_, "': ", what, ": ", s.ToString());
    if (s.IsCorruption()) return absl::DataLossError(message);
    if (s.IsInvalidArgument()) return absl::InvalidArgumentError(message);
    if (s.IsNoSpace() || s.IsMemoryLimit()) return absl::ResourceExhaustedError(message);
    if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) return absl::UnavailableError(message);
    if (s.IsIOError()) return absl::UnavailableError(message);
    return absl::InternalError(message);
  }

  const std::string path_;
  rocksdb::WriteOptions write_options_;
  rocksdb::DB* db_ = nullptr;
  rocksdb::ColumnFamilyHandle* data_ = nullptr;
  rocksdb::ColumnFamilyHandle* positions_ = nullptr;
};

}  // namespace

absl::StatusOr<std::unique_ptr<OnlineStore>> OpenRocksDbStore(const RocksDbStoreOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("rocksdb store: empty path");
  std::error_code ec;
  std::filesystem::path path = std::filesystem::absolute(options.path, ec);
  if (ec) path = options.path;
  auto store = std::make_unique<RocksDbStore>(path.lexically_normal().string(), options.sync);
  absl::Status opened = store->Open(options);
  if (!opened.ok()) return opened;
  return store;
}

}  // namespace flywheel::features
