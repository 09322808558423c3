#include "serving/repository.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"
#include "serving/model_config.h"

namespace flywheel::serving {
namespace {

namespace fs = std::filesystem;

// A model folder with more entries than this is not a model; the fingerprint stops counting.
constexpr int kMaxFingerprintEntries = 10000;

// Whether `path` (canonical) is `root` (canonical) or inside it.
bool Within(const fs::path& root, const fs::path& path) {
  auto r = root.begin(), p = path.begin();
  for (; r != root.end(); ++r, ++p) {
    // A trailing separator shows up as an empty last component.
    if (r->empty() && std::next(r) == root.end()) return true;
    if (p == path.end() || *r != *p) return false;
  }
  return true;
}

// Resolves `path` (symlinks included) and checks that it stays inside `root` (canonical).
absl::StatusOr<fs::path> ResolveInside(const fs::path& root, const fs::path& path) {
  std::error_code ec;
  fs::path resolved = fs::weakly_canonical(path, ec);
  if (ec) {
    return absl::NotFoundError(absl::StrCat("cannot resolve ", path.string(), ": ", ec.message()));
  }
  if (!Within(root, resolved)) {
    return absl::PermissionDeniedError(
        absl::StrCat(path.string(), " resolves to ", resolved.string(),
                     ", outside the model repository ", root.string()));
  }
  return resolved;
}

absl::StatusOr<fs::path> RepositoryRoot(const ModelLocation& location) {
  std::error_code ec;
  fs::path root = fs::weakly_canonical(location.repository, ec);
  if (ec) {
    return absl::NotFoundError(
        absl::StrCat("model repository ", location.repository, ": ", ec.message()));
  }
  return root;
}

// The numbered version folders of a model, resolved and checked, by version.
absl::StatusOr<std::map<int64_t, fs::path>> ListVersions(const ModelLocation& location) {
  FW_ASSIGN_OR_RETURN(const fs::path root, RepositoryRoot(location));
  std::map<int64_t, fs::path> versions;
  std::error_code ec;
  fs::directory_iterator it(location.path, ec), end;
  if (ec) {
    return absl::NotFoundError(absl::StrCat("model '", location.name, "': cannot list ",
                                            location.path, ": ", ec.message()));
  }
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    auto version = ParseVersionFolder(it->path().filename().string());
    std::error_code dir_ec;
    if (!version.ok() || !it->is_directory(dir_ec)) continue;
    FW_ASSIGN_OR_RETURN(fs::path resolved, ResolveInside(root, it->path()));
    versions[*version] = std::move(resolved);
  }
  if (ec) {
    return absl::UnavailableError(absl::StrCat("model '", location.name, "': listing ",
                                               location.path, " failed: ", ec.message()));
  }
  return versions;
}

bool IsFile(const fs::path& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

// What a model file name says about its platform (and FIL model type).
struct Detected {
  ModelPlatform platform = ModelPlatform::kUnknown;
  std::string fil_model_type;
};

Detected DetectFromName(absl::string_view file) {
  if (absl::EndsWith(file, ".onnx")) return {ModelPlatform::kOnnx, ""};
  if (absl::EndsWith(file, ".json")) return {ModelPlatform::kFil, "xgboost_json"};
  if (absl::EndsWith(file, ".ubj")) return {ModelPlatform::kFil, "xgboost_ubj"};
  return {};
}

// The default model file names, in the order they are looked for.
std::vector<std::string> DefaultModelFiles(const inference::ModelConfig& config) {
  switch (PlatformOf(config)) {
    case ModelPlatform::kOnnx:
      return {"model.onnx"};
    case ModelPlatform::kFil: {
      const std::string* type = ConfigParameter(config, "model_type");
      if (type != nullptr && *type == "xgboost_ubj") {
        return {"xgboost.ubj", "model.ubj"};
      }
      return {"xgboost.json", "model.json"};
    }
    case ModelPlatform::kEnsemble:
    case ModelPlatform::kFeatureLookup:
    case ModelPlatform::kUnknown:
      break;
  }
  return {};
}

// The highest version's recognizable model file, for configurations that name no platform.
Detected DetectFromVersions(const std::map<int64_t, fs::path>& versions,
                            const inference::ModelConfig& config) {
  static const char* const kKnownFiles[] = {"model.onnx", "xgboost.json", "model.json",
                                            "xgboost.ubj", "model.ubj"};
  for (auto it = versions.rbegin(); it != versions.rend(); ++it) {
    if (!config.default_model_filename().empty()) {
      if (IsFile(it->second / config.default_model_filename())) {
        return DetectFromName(config.default_model_filename());
      }
      continue;
    }
    for (const char* file : kKnownFiles) {
      if (IsFile(it->second / file)) return DetectFromName(file);
    }
  }
  return {};
}

void AppendEntry(const fs::directory_entry& entry, std::string* out) {
  std::error_code ec;
  const auto status = entry.status(ec);
  absl::StrAppend(out, entry.path().filename().string(), ":");
  if (ec) {
    absl::StrAppend(out, "?;");
    return;
  }
  const auto mtime = fs::last_write_time(entry.path(), ec);
  if (!ec) absl::StrAppend(out, mtime.time_since_epoch().count());
  if (fs::is_regular_file(status)) {
    const auto size = fs::file_size(entry.path(), ec);
    if (!ec) absl::StrAppend(out, ",", size);
  } else if (fs::is_directory(status)) {
    absl::StrAppend(out, ",d");
  }
  absl::StrAppend(out, ";");
}

// Sorted entries of one folder (directory order differs between scans on some filesystems).
std::vector<fs::directory_entry> SortedEntries(const fs::path& dir, int* budget) {
  std::vector<fs::directory_entry> entries;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end && *budget > 0; it.increment(ec), --*budget) entries.push_back(*it);
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.path().filename() < b.path().filename(); });
  return entries;
}

}  // namespace

absl::Status ValidateModelName(absl::string_view name) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid model name '", absl::CHexEscape(name), "': ", why));
  };
  if (name.empty()) return bad("empty");
  if (name.size() > 255) return bad("longer than 255 bytes");
  if (name.front() == '.') return bad("starts with '.'");
  for (unsigned char c : name) {
    if (c == '/' || c == '\\') return bad("contains a path separator");
    if (c < 0x20 || c == 0x7f) return bad("contains a control character");
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ParseVersionFolder(absl::string_view name) {
  int64_t version = 0;
  if (name.empty() || name.size() > 18 || name.front() == '0' ||
      !std::all_of(name.begin(), name.end(), [](char c) { return absl::ascii_isdigit(c); }) ||
      !absl::SimpleAtoi(name, &version)) {
    return absl::InvalidArgumentError(absl::StrCat("'", absl::CHexEscape(name),
                                                   "' is not a version folder (a positive "
                                                   "integer without leading zeros)"));
  }
  return version;
}

absl::StatusOr<std::map<std::string, ModelLocation>> ScanRepositories(
    const std::vector<std::string>& repos) {
  std::map<std::string, ModelLocation> found;
  for (const std::string& repo : repos) {
    std::error_code ec;
    const fs::path root = fs::weakly_canonical(repo, ec);
    if (ec || !fs::is_directory(root, ec)) {
      return absl::NotFoundError(
          absl::StrCat("model repository '", repo, "' is not a readable folder"));
    }
    fs::directory_iterator it(root, ec), end;
    if (ec) {
      return absl::PermissionDeniedError(
          absl::StrCat("model repository '", repo, "': ", ec.message()));
    }
    for (; it != end; it.increment(ec)) {
      if (ec) break;
      const std::string name = it->path().filename().string();
      std::error_code dir_ec;
      if (name.empty() || name.front() == '.' || !it->is_directory(dir_ec)) continue;
      ModelLocation location{name, repo, it->path().string(), ""};
      if (absl::Status valid = ValidateModelName(name); !valid.ok()) {
        location.error = std::string(valid.message());
      } else if (auto resolved = ResolveInside(root, it->path()); !resolved.ok()) {
        location.error = absl::StrCat("model '", name, "': ", resolved.status().message());
      } else {
        location.path = resolved->string();
      }
      auto [slot, inserted] = found.emplace(name, location);
      if (!inserted) {
        slot->second.error =
            absl::StrCat("model '", name, "' is in more than one repository (",
                         slot->second.repository, " and ", repo, "); remove one of them");
      }
    }
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("model repository '", repo, "': listing failed: ", ec.message()));
    }
  }
  return found;
}

absl::StatusOr<inference::ModelConfig> ReadModelConfig(const ModelLocation& location,
                                                       std::vector<std::string>* warnings) {
  if (!location.error.empty()) return absl::FailedPreconditionError(location.error);
  FW_ASSIGN_OR_RETURN(const fs::path root, RepositoryRoot(location));
  const fs::path file = fs::path(location.path) / "config.pbtxt";
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(file, ec))) {
    return PrepareModelConfig(location, inference::ModelConfig(), file.string(), warnings);
  }
  FW_ASSIGN_OR_RETURN(const fs::path resolved, ResolveInside(root, file));
  if (!fs::is_regular_file(resolved, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(file.string(), ": not a regular file"));
  }
  const auto size = fs::file_size(resolved, ec);
  if (ec || size > kMaxConfigBytes) {
    return absl::InvalidArgumentError(absl::StrCat(file.string(), ": ",
                                                   ec ? ec.message()
                                                      : absl::StrCat(size,
                                                                     " bytes is too large for a "
                                                                     "model configuration")));
  }
  std::ifstream in(resolved, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) {
    return absl::UnavailableError(absl::StrCat(file.string(), ": read failed"));
  }
  FW_ASSIGN_OR_RETURN(inference::ModelConfig config,
                      ParseModelConfigText(text.str(), file.string()));
  return PrepareModelConfig(location, std::move(config), file.string(), warnings);
}

absl::StatusOr<inference::ModelConfig> PrepareModelConfig(const ModelLocation& location,
                                                          inference::ModelConfig config,
                                                          const std::string& source,
                                                          std::vector<std::string>* warnings) {
  if (!location.error.empty()) return absl::FailedPreconditionError(location.error);
  if (config.name().empty()) {
    config.set_name(location.name);
  } else if (config.name() != location.name) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": name: '", config.name(), "' does not match the model folder '",
                     location.name, "' (leave it out or make them equal)"));
  }
  const bool needs_platform = config.platform().empty() && config.backend().empty();
  const bool needs_model_type = config.platform().empty() && config.backend() == "fil" &&
                                config.parameters().count("model_type") == 0;
  if (needs_platform || needs_model_type) {
    auto versions = ListVersions(location);
    const Detected detected = versions.ok() ? DetectFromVersions(*versions, config) : Detected{};
    if (needs_platform && detected.platform == ModelPlatform::kOnnx) {
      config.set_platform("onnxruntime_onnx");
    } else if (needs_platform && detected.platform == ModelPlatform::kFil) {
      config.set_backend("fil");
    }
    if (PlatformOf(config) == ModelPlatform::kFil && !detected.fil_model_type.empty() &&
        config.parameters().count("model_type") == 0) {
      (*config.mutable_parameters())["model_type"].set_string_value(detected.fil_model_type);
    }
  }
  // Triton reports both names for ONNX models; so do we.
  if (PlatformOf(config) == ModelPlatform::kOnnx) {
    if (config.platform().empty()) config.set_platform("onnxruntime_onnx");
    if (config.backend().empty()) config.set_backend("onnxruntime");
  }
  FW_RETURN_IF_ERROR(ValidateModelConfig(config, source, warnings));
  return config;
}

absl::StatusOr<std::vector<ModelVersionDir>> SelectVersions(const ModelLocation& location,
                                                            const inference::ModelConfig& config) {
  if (!location.error.empty()) return absl::FailedPreconditionError(location.error);
  FW_ASSIGN_OR_RETURN(const fs::path root, RepositoryRoot(location));
  FW_ASSIGN_OR_RETURN(const auto versions, ListVersions(location));
  const std::string model = absl::StrCat("model '", location.name, "'");
  if (versions.empty()) {
    return absl::NotFoundError(absl::StrCat(model, ": no version folder in ", location.path,
                                            " (versions are folders named 1, 2, ...)"));
  }
  std::vector<int64_t> selected;
  const inference::ModelVersionPolicy& policy = config.version_policy();
  if (policy.has_specific()) {
    for (int64_t v : policy.specific().versions()) {
      if (versions.count(v) == 0) {
        std::vector<int64_t> have;
        for (const auto& [n, path] : versions) have.push_back(n);
        return absl::NotFoundError(absl::StrCat(
            model, ": version_policy.specific lists version ", v, ", but ", location.path,
            " has no folder ", v, " (versions found: ", absl::StrJoin(have, ", "), ")"));
      }
      selected.push_back(v);
    }
    std::sort(selected.begin(), selected.end());
    selected.erase(std::unique(selected.begin(), selected.end()), selected.end());
  } else if (policy.has_all()) {
    for (const auto& [v, path] : versions) selected.push_back(v);
  } else {
    const uint32_t n = policy.has_latest() ? std::max(1u, policy.latest().num_versions()) : 1u;
    for (auto it = versions.rbegin(); it != versions.rend() && selected.size() < n; ++it) {
      selected.push_back(it->first);
    }
    std::reverse(selected.begin(), selected.end());
  }

  const ModelPlatform platform = PlatformOf(config);
  if (platform == ModelPlatform::kEnsemble || platform == ModelPlatform::kFeatureLookup) {
    // Nothing to read: the version folder (empty, as Triton's ensembles have) stands for it.
    std::vector<ModelVersionDir> out;
    for (int64_t v : selected) out.push_back({v, versions.at(v).string(), versions.at(v).string()});
    return out;
  }
  std::vector<std::string> candidates;
  if (!config.default_model_filename().empty()) {
    candidates = {config.default_model_filename()};
  } else {
    candidates = DefaultModelFiles(config);
  }
  if (candidates.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(model, ": no default model file name for platform '", config.platform(),
                     "' / backend '", config.backend(), "'; set default_model_filename"));
  }
  std::vector<ModelVersionDir> out;
  for (int64_t v : selected) {
    const fs::path& dir = versions.at(v);
    std::optional<fs::path> file;
    for (const std::string& name : candidates) {
      if (!IsFile(dir / name)) continue;
      FW_ASSIGN_OR_RETURN(fs::path resolved, ResolveInside(root, dir / name));
      file = std::move(resolved);
      break;
    }
    if (!file) {
      return absl::NotFoundError(absl::StrCat(model, " version ", v, ": no model file (looked for ",
                                              absl::StrJoin(candidates, ", "), " in ", dir.string(),
                                              ")"));
    }
    out.push_back({v, dir.string(), file->string()});
  }
  return out;
}

std::string Fingerprint(const ModelLocation& location) {
  if (!location.error.empty()) return "error:" + location.error;
  std::string out;
  int budget = kMaxFingerprintEntries;
  for (const fs::directory_entry& entry : SortedEntries(location.path, &budget)) {
    const std::string name = entry.path().filename().string();
    std::error_code ec;
    const bool is_dir = entry.is_directory(ec);
    if (!is_dir) {
      AppendEntry(entry, &out);  // config.pbtxt, label files
      continue;
    }
    if (!ParseVersionFolder(name).ok() && name != "warmup") continue;
    AppendEntry(entry, &out);
    absl::StrAppend(&out, "{");
    for (const fs::directory_entry& inner : SortedEntries(entry.path(), &budget)) {
      AppendEntry(inner, &out);
    }
    absl::StrAppend(&out, "}");
  }
  return out;
}

}  // namespace flywheel::serving
