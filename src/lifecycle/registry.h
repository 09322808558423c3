// The model registry: per model version, how it was made (training data, code revision,
// parameters, metrics, parent), and aliases (`production`, `staging`, any name) that move between
// versions with a history that makes rollback possible. Stored beside the model repository.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace flywheel::lifecycle {

// How one version was made. Every field but `version` and `created` may be empty.
struct VersionMetadata {
  int64_t version = 0;
  absl::Time created = absl::InfinitePast();
  std::string training_data;  // a reference: a path, a URI, a query, a log range
  std::string code_revision;  // e.g. a git commit of the training code
  std::map<std::string, std::string> parameters;
  std::map<std::string, double> metrics;
  int64_t parent = 0;  // the version this one was trained from or compared against; 0: none
  std::string description;
  std::string registered_by;
};

// One move of an alias. `from` 0: the alias was new; `to` 0: it was removed.
struct AliasChange {
  absl::Time time = absl::InfinitePast();
  std::string alias;
  std::string action;  // "set", "promote", "rollback", "remove"
  int64_t from = 0;
  int64_t to = 0;
  std::string by;
  std::string note;
};

struct Alias {
  int64_t version = 0;
  // The targets it had before, oldest first: Rollback goes back to the last one.
  std::vector<int64_t> previous;
  absl::Time updated = absl::InfinitePast();
  std::string updated_by;
};

// Everything the registry file of one model holds.
struct ModelRecord {
  std::string model;
  std::map<int64_t, VersionMetadata> versions;
  std::map<std::string, Alias, std::less<>> aliases;  // find() takes a string_view
  std::vector<AliasChange> history;                   // oldest first
};

// A version as List and Show report it: on disk, registered, or both.
struct VersionInfo {
  int64_t version = 0;
  bool on_disk = false;
  bool registered = false;
  VersionMetadata metadata;          // meaningful when `registered`
  std::vector<std::string> aliases;  // the aliases pointing at it, sorted
};

struct ModelInfo {
  std::string model;
  std::string registry_file;
  std::vector<VersionInfo> versions;  // ascending
  std::map<std::string, Alias, std::less<>> aliases;
  std::vector<AliasChange> history;
};

// Who makes a change, and why (kept in the alias history).
struct ChangeAuthor {
  std::string by;
  std::string note;
};

struct RegistryOptions {
  // How old a cached registry file may be before Resolve looks at the file again (one stat; a
  // reload only when it changed). Changes made through this Registry are seen at once.
  absl::Duration refresh_interval = absl::Seconds(1);
  // Alias changes kept per model; older ones are dropped (the rollback stacks are kept apart).
  size_t max_history = 10000;
  // For tests: called after the new file is written and synced, before it is renamed into place.
  std::function<void()> before_rename;
};

// The registry of one model repository folder. Thread-safe; several processes may change the
// same repository at once (each change holds an exclusive lock on the model's lock file).
class Registry {
 public:
  // The registry of a model lives in <repository>/<model>/.flywheel/: a folder that is neither
  // a version nor a file of the model, so that changing aliases never looks like a model change
  // to the server's repository polling.
  static constexpr const char* kFolderName = ".flywheel";
  static constexpr const char* kFileName = "registry.json";
  static constexpr const char* kLockFileName = "registry.lock";

  // Fails when `repository` is not a folder.
  static absl::StatusOr<std::unique_ptr<Registry>> Open(const std::string& repository,
                                                        RegistryOptions options = {});

  const std::string& repository() const { return repository_; }
  // <repository>/<model>/.flywheel/registry.json
  std::string FilePath(absl::string_view model) const;

  // Every model folder (sorted), with its versions on disk and registered.
  absl::StatusOr<std::vector<ModelInfo>> ListAll() const;
  absl::StatusOr<ModelInfo> List(absl::string_view model) const;
  // One version, addressed by number or alias.
  absl::StatusOr<VersionInfo> Show(absl::string_view model, absl::string_view version) const;

  // Records how a version was made. The version folder must exist; a version registered before is
  // AlreadyExists unless `replace`. An unset `created` becomes now, an empty `registered_by`
  // becomes author.by.
  absl::StatusOr<VersionMetadata> Register(absl::string_view model, VersionMetadata metadata,
                                           const ChangeAuthor& author, bool replace = false);
  // Changes the metadata of a version under the lock (read, `update`, write), e.g. to add metrics
  // after an evaluation. A version not registered yet (its folder must exist) starts from empty
  // metadata created now.
  absl::StatusOr<VersionMetadata> Update(absl::string_view model, int64_t version,
                                         const std::function<void(VersionMetadata&)>& update,
                                         const ChangeAuthor& author);

  // Points `alias` at `version` (which must be on disk). Setting the target it already has
  // changes nothing and returns a change with from == to.
  absl::StatusOr<AliasChange> SetAlias(absl::string_view model, absl::string_view alias,
                                       int64_t version, const ChangeAuthor& author);
  // SetAlias recorded as a promotion (default alias `production`).
  absl::StatusOr<AliasChange> Promote(absl::string_view model, int64_t version,
                                      const ChangeAuthor& author,
                                      absl::string_view alias = "production");
  // Moves `alias` back to the target it had before its last set/promote; repeated rollbacks walk
  // further back. FailedPrecondition when there is no earlier target or it is gone from disk.
  absl::StatusOr<AliasChange> Rollback(absl::string_view model, const ChangeAuthor& author,
                                       absl::string_view alias = "production");
  absl::StatusOr<AliasChange> RemoveAlias(absl::string_view model, absl::string_view alias,
                                          const ChangeAuthor& author);

  // "3" → 3; an alias → its version. Meant for every request: it reads an in-memory copy of the
  // registry file, refreshed when the file changed (see refresh_interval). A number is returned
  // as it is (whether it is loaded is the server's business).
  absl::StatusOr<int64_t> Resolve(absl::string_view model, absl::string_view version_or_alias);
  // The cached record of a model (empty when it has no registry file), refreshed like Resolve.
  absl::StatusOr<std::shared_ptr<const ModelRecord>> Snapshot(absl::string_view model);

 private:
  struct Cached {
    std::shared_ptr<const ModelRecord> record;
    std::string stamp;  // inode, size and mtime of the file it was read from
    absl::Time checked = absl::InfinitePast();
  };

  Registry(std::string repository, RegistryOptions options);

  // Reads the model's record fresh from disk (empty when there is no file).
  absl::StatusOr<ModelRecord> Read(absl::string_view model) const;
  // The locked read-modify-write every change goes through: `change` edits the record and says
  // whether it changed anything (nothing is written when not).
  absl::StatusOr<ModelRecord> Modify(
      absl::string_view model, const std::function<absl::StatusOr<bool>(ModelRecord&)>& change);
  absl::StatusOr<AliasChange> MoveAlias(absl::string_view model, absl::string_view alias,
                                        int64_t version, absl::string_view action,
                                        const ChangeAuthor& author);
  absl::StatusOr<ModelInfo> Describe(absl::string_view model, const ModelRecord& record) const;
  absl::Status CheckModel(absl::string_view model) const;
  void Remember(absl::string_view model, ModelRecord record, std::string stamp);

  const std::string repository_;
  const RegistryOptions options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Cached> cache_ ABSL_GUARDED_BY(mu_);
};

// Alias names: [a-z0-9_-]+, at most 64 characters, not all digits (those are version numbers).
absl::Status ValidateAliasName(absl::string_view alias);
// "1", "42": a positive integer without leading zeros, as version folders are named.
absl::StatusOr<int64_t> ParseVersionNumber(absl::string_view text);

}  // namespace flywheel::lifecycle
