// The registry's operations: every change is a locked read-modify-write of the model's registry
// file. The per-request read path (Resolve, Snapshot) is in registry_resolve.cc.
#include "lifecycle/registry.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <system_error>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/status.h"
#include "lifecycle/registry_file.h"
#include "lifecycle/registry_format.h"
#include "lifecycle/registry_names.h"

namespace flywheel::lifecycle {
namespace {

namespace fs = std::filesystem;

// How far back an alias can be rolled back.
constexpr size_t kMaxPrevious = 100;

// The numbered version folders of `dir`.
absl::StatusOr<std::set<int64_t>> VersionsOnDisk(const fs::path& dir, absl::string_view model) {
  std::set<int64_t> versions;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    auto version = ParseVersionNumber(it->path().filename().string());
    std::error_code dir_ec;
    if (version.ok() && it->is_directory(dir_ec)) versions.insert(*version);
  }
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("model '", model, "': cannot list ", dir.string(), ": ", ec.message()));
  }
  return versions;
}

absl::Status ValidateMetadata(absl::string_view model, const VersionMetadata& m) {
  const std::string who = absl::StrCat("model '", model, "' version ", m.version);
  if (m.version <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model '", model, "': version ", m.version, " is not a positive number"));
  }
  if (m.parent < 0 || m.parent == m.version) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": parent ", m.parent, " must be another version (or 0 for none)"));
  }
  for (const auto& [key, value] : m.parameters) {
    if (key.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(who, ": a parameter name is empty"));
    }
  }
  for (const auto& [key, value] : m.metrics) {
    if (key.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(who, ": a metric name is empty"));
    }
    if (!std::isfinite(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat(who, ": metric '", key, "' is ", value, " (metrics must be finite)"));
    }
  }
  return absl::OkStatus();
}

AliasChange MakeChange(absl::string_view alias, absl::string_view action, int64_t from, int64_t to,
                       const ChangeAuthor& author) {
  AliasChange change;
  change.time = absl::Now();
  change.alias = std::string(alias);
  change.action = std::string(action);
  change.from = from;
  change.to = to;
  change.by = author.by;
  change.note = author.note;
  return change;
}

// ValidateAliasName, with the model in the message.
absl::Status CheckAlias(absl::string_view model, absl::string_view alias) {
  absl::Status valid = ValidateAliasName(alias);
  if (valid.ok()) return valid;
  return absl::InvalidArgumentError(absl::StrCat("model '", model, "': ", valid.message()));
}

void AppendHistory(ModelRecord& record, AliasChange change, size_t max_history) {
  record.history.push_back(std::move(change));
  if (record.history.size() > max_history) {
    record.history.erase(record.history.begin(),
                         record.history.end() - static_cast<ptrdiff_t>(max_history));
  }
}

}  // namespace

Registry::Registry(std::string repository, RegistryOptions options)
    : repository_(std::move(repository)), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<Registry>> Registry::Open(const std::string& repository,
                                                         RegistryOptions options) {
  std::error_code ec;
  if (repository.empty() || !fs::is_directory(repository, ec)) {
    return absl::NotFoundError(
        absl::StrCat("model repository '", repository, "' is not a readable folder"));
  }
  if (options.max_history == 0) options.max_history = 1;
  return std::unique_ptr<Registry>(new Registry(repository, std::move(options)));
}

std::string Registry::FilePath(absl::string_view model) const {
  return (fs::path(repository_) / std::string(model) / kFolderName / kFileName).string();
}

absl::Status Registry::CheckModel(absl::string_view model) const {
  FW_RETURN_IF_ERROR(ValidateModelName(model));
  const fs::path dir = fs::path(repository_) / std::string(model);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("model '", model, "': no folder ", dir.string(),
                                            " in model repository ", repository_));
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelRecord> Registry::Read(absl::string_view model) const {
  const std::string path = FilePath(model);
  FW_ASSIGN_OR_RETURN(std::optional<FileContents> contents, ReadWholeFile(path));
  ModelRecord record;
  if (contents.has_value()) {
    FW_ASSIGN_OR_RETURN(record, DecodeRecord(contents->data, path));
  }
  // The folder name is what the server serves; a copied folder keeps its old name inside.
  record.model = std::string(model);
  return record;
}

void Registry::Remember(absl::string_view model, ModelRecord record, std::string stamp) {
  absl::MutexLock lock(&mu_);
  Cached& cached = cache_[std::string(model)];
  cached.record = std::make_shared<const ModelRecord>(std::move(record));
  cached.stamp = std::move(stamp);
  cached.checked = absl::Now();
}

absl::StatusOr<ModelRecord> Registry::Modify(
    absl::string_view model, const std::function<absl::StatusOr<bool>(ModelRecord&)>& change) {
  FW_RETURN_IF_ERROR(CheckModel(model));
  const fs::path dir = fs::path(repository_) / std::string(model) / kFolderName;
  std::error_code ec;
  fs::create_directory(dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(absl::StrCat(
        "model '", model, "': cannot create registry folder ", dir.string(), ": ", ec.message()));
  }
  FW_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire((dir / kLockFileName).string()));
  FW_ASSIGN_OR_RETURN(ModelRecord record, Read(model));
  FW_ASSIGN_OR_RETURN(const bool changed, change(record));
  if (!changed) return record;
  const std::string path = FilePath(model);
  FW_RETURN_IF_ERROR(WriteFileAtomically(path, EncodeRecord(record), options_.before_rename));
  FW_ASSIGN_OR_RETURN(std::string stamp, FileStamp(path));
  Remember(model, record, std::move(stamp));
  return record;
}

absl::StatusOr<ModelInfo> Registry::Describe(absl::string_view model,
                                             const ModelRecord& record) const {
  const fs::path dir = fs::path(repository_) / std::string(model);
  FW_ASSIGN_OR_RETURN(const std::set<int64_t> on_disk, VersionsOnDisk(dir, model));
  ModelInfo info;
  info.model = std::string(model);
  info.registry_file = FilePath(model);
  info.aliases = record.aliases;
  info.history = record.history;
  std::set<int64_t> all = on_disk;
  for (const auto& [version, metadata] : record.versions) all.insert(version);
  for (int64_t version : all) {
    VersionInfo v;
    v.version = version;
    v.on_disk = on_disk.count(version) > 0;
    if (auto it = record.versions.find(version); it != record.versions.end()) {
      v.registered = true;
      v.metadata = it->second;
    } else {
      v.metadata.version = version;
    }
    for (const auto& [name, alias] : record.aliases) {
      if (alias.version == version) v.aliases.push_back(name);
    }
    info.versions.push_back(std::move(v));
  }
  return info;
}

absl::StatusOr<ModelInfo> Registry::List(absl::string_view model) const {
  FW_RETURN_IF_ERROR(CheckModel(model));
  FW_ASSIGN_OR_RETURN(const ModelRecord record, Read(model));
  return Describe(model, record);
}

absl::StatusOr<std::vector<ModelInfo>> Registry::ListAll() const {
  std::vector<std::string> models;
  std::error_code ec;
  fs::directory_iterator it(repository_, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code dir_ec;
    if (ValidateModelName(name).ok() && it->is_directory(dir_ec)) models.push_back(name);
  }
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("model repository ", repository_, ": cannot list: ", ec.message()));
  }
  std::sort(models.begin(), models.end());
  std::vector<ModelInfo> out;
  for (const std::string& model : models) {
    FW_ASSIGN_OR_RETURN(ModelInfo info, List(model));
    out.push_back(std::move(info));
  }
  return out;
}

absl::StatusOr<VersionInfo> Registry::Show(absl::string_view model,
                                           absl::string_view version) const {
  FW_ASSIGN_OR_RETURN(const ModelInfo info, List(model));
  int64_t number = 0;
  if (auto parsed = ParseVersionNumber(version); parsed.ok()) {
    number = *parsed;
  } else {
    if (!ValidateAliasName(version).ok()) {
      return absl::InvalidArgumentError(absl::StrCat("model '", model, "': '",
                                                     absl::CHexEscape(version),
                                                     "' is neither a version number nor an alias"));
    }
    auto alias = info.aliases.find(version);
    if (alias == info.aliases.end()) {
      return absl::NotFoundError(absl::StrCat("model '", model, "' has no alias '", version,
                                              "' (aliases: ", AliasNames(info.aliases),
                                              "; registry ", info.registry_file, ")"));
    }
    number = alias->second.version;
  }
  for (const VersionInfo& v : info.versions) {
    if (v.version == number) return v;
  }
  return absl::NotFoundError(absl::StrCat("model '", model, "' has no version ", number,
                                          " on disk or in ", info.registry_file));
}

absl::StatusOr<VersionMetadata> Registry::Register(absl::string_view model,
                                                   VersionMetadata metadata,
                                                   const ChangeAuthor& author, bool replace) {
  if (metadata.created == absl::InfinitePast()) metadata.created = absl::Now();
  if (metadata.registered_by.empty()) metadata.registered_by = author.by;
  FW_RETURN_IF_ERROR(ValidateMetadata(model, metadata));
  FW_ASSIGN_OR_RETURN(
      ModelRecord record, Modify(model, [&](ModelRecord& r) -> absl::StatusOr<bool> {
        const fs::path dir = fs::path(repository_) / std::string(model);
        FW_ASSIGN_OR_RETURN(const std::set<int64_t> on_disk, VersionsOnDisk(dir, model));
        if (on_disk.count(metadata.version) == 0) {
          return absl::NotFoundError(absl::StrCat("model '", model, "' has no version folder ",
                                                  (dir / std::to_string(metadata.version)).string(),
                                                  " to register"));
        }
        if (!replace && r.versions.count(metadata.version) > 0) {
          return absl::AlreadyExistsError(absl::StrCat(
              "model '", model, "' version ", metadata.version, " is registered already in ",
              FilePath(model), " (update it, or replace its metadata)"));
        }
        r.versions[metadata.version] = metadata;
        return true;
      }));
  return record.versions.at(metadata.version);
}

absl::StatusOr<VersionMetadata> Registry::Update(
    absl::string_view model, int64_t version, const std::function<void(VersionMetadata&)>& update,
    const ChangeAuthor& author) {
  FW_ASSIGN_OR_RETURN(
      ModelRecord record, Modify(model, [&](ModelRecord& r) -> absl::StatusOr<bool> {
        VersionMetadata m;
        if (auto it = r.versions.find(version); it != r.versions.end()) {
          m = it->second;
        } else {
          // Metadata only for versions that exist (or existed when registered).
          const fs::path folder =
              fs::path(repository_) / std::string(model) / std::to_string(version);
          std::error_code ec;
          if (version <= 0 || !fs::is_directory(folder, ec)) {
            return absl::NotFoundError(
                absl::StrCat("model '", model, "' has no version folder ", folder.string(),
                             " and no metadata for version ", version, " in ", FilePath(model)));
          }
          m.created = absl::Now();
          m.registered_by = author.by;
        }
        update(m);
        m.version = version;
        if (m.created == absl::InfinitePast()) m.created = absl::Now();
        FW_RETURN_IF_ERROR(ValidateMetadata(model, m));
        r.versions[version] = std::move(m);
        return true;
      }));
  return record.versions.at(version);
}

absl::StatusOr<AliasChange> Registry::MoveAlias(absl::string_view model, absl::string_view alias,
                                                int64_t version, absl::string_view action,
                                                const ChangeAuthor& author) {
  FW_RETURN_IF_ERROR(CheckAlias(model, alias));
  if (version <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("model '", model, "' alias '", alias,
                                                   "': version ", version, " is not positive"));
  }
  AliasChange change;
  auto change_record = [&](ModelRecord& r) -> absl::StatusOr<bool> {
    const fs::path dir = fs::path(repository_) / std::string(model);
    FW_ASSIGN_OR_RETURN(const std::set<int64_t> on_disk, VersionsOnDisk(dir, model));
    if (on_disk.count(version) == 0) {
      return absl::NotFoundError(absl::StrCat("model '", model, "' alias '", alias,
                                              "': no version folder ",
                                              (dir / std::to_string(version)).string()));
    }
    Alias& target = r.aliases[std::string(alias)];
    change = MakeChange(alias, action, target.version, version, author);
    if (target.version == version) return false;
    if (target.version != 0) target.previous.push_back(target.version);
    if (target.previous.size() > kMaxPrevious) {
      target.previous.erase(target.previous.begin());
    }
    target.version = version;
    target.updated = change.time;
    target.updated_by = author.by;
    AppendHistory(r, change, options_.max_history);
    return true;
  };
  FW_RETURN_IF_ERROR(Modify(model, change_record).status());
  return change;
}

absl::StatusOr<AliasChange> Registry::SetAlias(absl::string_view model, absl::string_view alias,
                                               int64_t version, const ChangeAuthor& author) {
  return MoveAlias(model, alias, version, "set", author);
}

absl::StatusOr<AliasChange> Registry::Promote(absl::string_view model, int64_t version,
                                              const ChangeAuthor& author, absl::string_view alias) {
  return MoveAlias(model, alias, version, "promote", author);
}

absl::StatusOr<AliasChange> Registry::Rollback(absl::string_view model, const ChangeAuthor& author,
                                               absl::string_view alias) {
  FW_RETURN_IF_ERROR(CheckAlias(model, alias));
  AliasChange change;
  FW_RETURN_IF_ERROR(
      Modify(model, [&](ModelRecord& r) -> absl::StatusOr<bool> {
        const std::string file = FilePath(model);
        auto it = r.aliases.find(alias);
        if (it == r.aliases.end()) {
          return absl::NotFoundError(absl::StrCat(
              "model '", model, "' has no alias '", alias,
              "' to roll back (aliases: ", AliasNames(r.aliases), "; registry ", file, ")"));
        }
        Alias& target = it->second;
        if (target.previous.empty()) {
          return absl::FailedPreconditionError(
              absl::StrCat("model '", model, "' alias '", alias, "' (version ", target.version,
                           ") has no earlier version to roll back to (registry ", file, ")"));
        }
        const int64_t back = target.previous.back();
        const fs::path dir = fs::path(repository_) / std::string(model);
        FW_ASSIGN_OR_RETURN(const std::set<int64_t> on_disk, VersionsOnDisk(dir, model));
        if (on_disk.count(back) == 0) {
          return absl::FailedPreconditionError(
              absl::StrCat("model '", model, "' alias '", alias, "': the earlier version ", back,
                           " is gone from disk (", (dir / std::to_string(back)).string(),
                           "); point the alias at a version explicitly"));
        }
        target.previous.pop_back();
        change = MakeChange(alias, "rollback", target.version, back, author);
        target.version = back;
        target.updated = change.time;
        target.updated_by = author.by;
        AppendHistory(r, change, options_.max_history);
        return true;
      }).status());
  return change;
}

absl::StatusOr<AliasChange> Registry::RemoveAlias(absl::string_view model, absl::string_view alias,
                                                  const ChangeAuthor& author) {
  FW_RETURN_IF_ERROR(CheckAlias(model, alias));
  AliasChange change;
  auto change_record = [&](ModelRecord& r) -> absl::StatusOr<bool> {
    auto it = r.aliases.find(alias);
    if (it == r.aliases.end()) {
      return absl::NotFoundError(absl::StrCat("model '", model, "' has no alias '", alias,
                                              "' (aliases: ", AliasNames(r.aliases), "; registry ",
                                              FilePath(model), ")"));
    }
    change = MakeChange(alias, "remove", it->second.version, 0, author);
    r.aliases.erase(it);
    AppendHistory(r, change, options_.max_history);
    return true;
  };
  FW_RETURN_IF_ERROR(Modify(model, change_record).status());
  return change;
}

}  // namespace flywheel::lifecycle
