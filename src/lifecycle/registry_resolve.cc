// Registry::Resolve and Snapshot: the read path a server takes per request. An in-memory copy of
// each model's registry file is served while it is younger than the refresh interval; after that
// one stat() tells whether the file was replaced, and only then is it read again.
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/status.h"
#include "lifecycle/registry.h"
#include "lifecycle/registry_file.h"
#include "lifecycle/registry_format.h"
#include "lifecycle/registry_names.h"

namespace flywheel::lifecycle {

absl::StatusOr<std::shared_ptr<const ModelRecord>> Registry::Snapshot(absl::string_view model) {
  FW_RETURN_IF_ERROR(ValidateModelName(model));
  const absl::Time now = absl::Now();
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = cache_.find(model);
    if (it != cache_.end() && now - it->second.checked < options_.refresh_interval) {
      return it->second.record;
    }
  }
  const std::string path = FilePath(model);
  FW_ASSIGN_OR_RETURN(const std::string stamp, FileStamp(path));
  if (stamp.empty()) {
    // No file: nothing to cache (keeps the cache bounded by the files on disk).
    {
      absl::MutexLock lock(&mu_);
      cache_.erase(std::string(model));
    }
    auto empty = std::make_shared<ModelRecord>();
    empty->model = std::string(model);
    return std::shared_ptr<const ModelRecord>(std::move(empty));
  }
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(model);
    if (it != cache_.end() && it->second.stamp == stamp) {
      it->second.checked = now;
      return it->second.record;
    }
  }
  FW_ASSIGN_OR_RETURN(std::optional<FileContents> contents, ReadWholeFile(path));
  ModelRecord record;
  std::string read_stamp;
  if (contents.has_value()) {
    FW_ASSIGN_OR_RETURN(record, DecodeRecord(contents->data, path));
    read_stamp = std::move(contents->stamp);
  }
  record.model = std::string(model);
  auto shared = std::make_shared<const ModelRecord>(std::move(record));
  absl::MutexLock lock(&mu_);
  Cached& cached = cache_[std::string(model)];
  cached.record = shared;
  cached.stamp = std::move(read_stamp);
  cached.checked = now;
  return shared;
}

absl::StatusOr<int64_t> Registry::Resolve(absl::string_view model,
                                          absl::string_view version_or_alias) {
  if (auto number = ParseVersionNumber(version_or_alias); number.ok()) return *number;
  if (!ValidateAliasName(version_or_alias).ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", model, "': version '", absl::CHexEscape(version_or_alias),
        "' is neither a version number nor an alias name ([a-z0-9_-], not all digits)"));
  }
  FW_ASSIGN_OR_RETURN(std::shared_ptr<const ModelRecord> record, Snapshot(model));
  auto it = record->aliases.find(version_or_alias);
  if (it == record->aliases.end()) {
    return absl::NotFoundError(absl::StrCat("model '", model, "' has no alias '", version_or_alias,
                                            "' (aliases: ", AliasNames(record->aliases),
                                            "; registry ", FilePath(model), ")"));
  }
  return it->second.version;
}

}  // namespace flywheel::lifecycle
