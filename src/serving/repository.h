// Model repositories in Triton's layout: <repo>/<model>/config.pbtxt and
// <repo>/<model>/<version>/<model file>. Scans folders, reads and prepares configurations, picks
// the versions a version policy serves, and fingerprints a model for change polling. Nothing
// outside a repository is ever read: names are validated and symlinks resolved and checked.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model_config.pb.h"

namespace flywheel::serving {

// A config.pbtxt larger than this is not a model configuration.
inline constexpr size_t kMaxConfigBytes = 4 << 20;

// One model folder found by a scan.
struct ModelLocation {
  std::string name;
  // The repository folder as given, and the model folder (symlinks resolved).
  std::string repository;
  std::string path;
  // Set when the model cannot be loaded from this location (it is in two repositories, its
  // folder name is invalid, it resolves outside its repository): the reason, for the index.
  std::string error;
};

// One version folder a version policy selected.
struct ModelVersionDir {
  int64_t version = 0;
  std::string path;
  // The model file (or folder) inside it to load.
  std::string model_file;
};

// A model name must be a single folder name: 1..255 bytes, no '/', '\\' or control characters,
// not starting with '.'.
absl::Status ValidateModelName(absl::string_view name);
// A version folder name: a positive decimal integer without leading zeros (Triton ignores other
// folders). Returns the version.
absl::StatusOr<int64_t> ParseVersionFolder(absl::string_view name);

// Lists the model folders of every repository by name. A missing or unreadable repository
// fails the scan; problems with one model (a name in two repositories, an invalid folder name,
// a symlink leaving the repository) are reported in that model's `error`. Hidden entries
// (leading '.') and plain files are skipped.
absl::StatusOr<std::map<std::string, ModelLocation>> ScanRepositories(
    const std::vector<std::string>& repos);

// Reads <model>/config.pbtxt (a missing file gives an empty configuration) and prepares it with
// PrepareModelConfig; `warnings` (when not null) receives the validator's warnings.
absl::StatusOr<inference::ModelConfig> ReadModelConfig(
    const ModelLocation& location, std::vector<std::string>* warnings = nullptr);

// Makes a configuration (from config.pbtxt, or the load API's JSON) ready to load: the name is
// the folder's (a different name set in the configuration is an error), platform/backend are
// detected from the version folders' files when neither is set (model.onnx: onnxruntime_onnx;
// xgboost.json / model.json, xgboost.ubj / model.ubj: fil), FIL's model_type likewise, and the
// result is validated (ValidateModelConfig). `source` names the configuration in errors.
absl::StatusOr<inference::ModelConfig> PrepareModelConfig(
    const ModelLocation& location, inference::ModelConfig config, const std::string& source,
    std::vector<std::string>* warnings = nullptr);

// The version folders `config.version_policy` serves (latest N by default), lowest first, each
// with its model file: default_model_filename if set, else model.onnx for ONNX, and for FIL
// xgboost.json / model.json (xgboost_json) or xgboost.ubj / model.ubj (xgboost_ubj); ensembles and
// feature_lookup models have no model file (model_file is the version folder). A specific
// version that does not exist, a selected version without its model file, and no version at all
// are errors naming what was missing.
absl::StatusOr<std::vector<ModelVersionDir>> SelectVersions(const ModelLocation& location,
                                                            const inference::ModelConfig& config);

// Cheap change detection: sizes and modification times of config.pbtxt and of the files in the
// version folders (and the folders themselves). Equal fingerprints mean nothing to reload.
std::string Fingerprint(const ModelLocation& location);

}  // namespace flywheel::serving
