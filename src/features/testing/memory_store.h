// Test-only: an OnlineStore in a std::map, with counters and injectable failures, for pipeline
// and lookup tests that need no RocksDB or Redis.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "features/store.h"

namespace flywheel::features::testing {

class MemoryStore : public OnlineStore {
 public:
  absl::Status Write(const WriteBatch& batch) override {
    absl::MutexLock lock(&mu_);
    ++writes_;
    if (fail_writes_) return absl::UnavailableError("memory store: writes are failing");
    for (const auto& [key, value] : batch.puts) data_[key] = value;
    for (const std::string& key : batch.deletes) data_.erase(key);
    for (const auto& [source, position] : batch.positions) positions_[source] = position;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      absl::Span<const std::string> keys) override {
    absl::MutexLock lock(&mu_);
    ++multi_gets_;
    std::vector<std::optional<std::string>> out;
    for (const std::string& key : keys) {
      auto it = data_.find(key);
      out.push_back(it == data_.end() ? std::nullopt : std::optional<std::string>(it->second));
    }
    return out;
  }

  absl::StatusOr<std::optional<std::string>> GetPosition(absl::string_view source) override {
    absl::MutexLock lock(&mu_);
    auto it = positions_.find(std::string(source));
    if (it == positions_.end()) return std::nullopt;
    return it->second;
  }

  absl::Status Scan(
      absl::string_view prefix,
      const std::function<absl::Status(absl::string_view, absl::string_view)>& visit) override {
    std::map<std::string, std::string> copy;
    {
      absl::MutexLock lock(&mu_);
      copy = data_;
    }
    for (auto it = copy.lower_bound(std::string(prefix));
         it != copy.end() && absl::StartsWith(it->first, prefix); ++it) {
      absl::Status status = visit(it->first, it->second);
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }

  std::string Describe() const override { return "memory"; }

  void set_fail_writes(bool fail) {
    absl::MutexLock lock(&mu_);
    fail_writes_ = fail;
  }
  std::map<std::string, std::string> data() const {
    absl::MutexLock lock(&mu_);
    return data_;
  }
  int writes() const {
    absl::MutexLock lock(&mu_);
    return writes_;
  }
  int multi_gets() const {
    absl::MutexLock lock(&mu_);
    return multi_gets_;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::string> data_;
  std::map<std::string, std::string> positions_;
  bool fail_writes_ = false;
  int writes_ = 0;
  int multi_gets_ = 0;
};

}  // namespace flywheel::features::testing
