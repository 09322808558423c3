// Private to serving/model_config*.cc: the collector of configuration problems and the checks
// that run both before completion (on the file) and after it (on the completed configuration).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "model_config.pb.h"

namespace flywheel::serving::config_internal {

// No real tensor has more elements; the bound keeps later size arithmetic (batch x elements x
// element size) far from overflowing int64.
inline constexpr int64_t kMaxElements = int64_t{1} << 40;

// Gathers every problem so that one error lists them all, as "<path>: <field>: <problem>; ...".
class Problems {
 public:
  explicit Problems(std::string path) : path_(std::move(path)) {}

  void Invalid(const std::string& field, const std::string& problem);
  // A field set to something flywheel does not implement.
  void Unsupported(const std::string& field, const std::string& why);
  void Warn(const std::string& field, const std::string& note);

  bool empty() const { return errors_.empty(); }
  absl::Status ToStatus() const;
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  std::string path_;
  std::vector<std::string> errors_;
  std::vector<std::string> warnings_;
};

// "[1,-1,3]".
std::string DimsString(absl::Span<const int64_t> dims);
// "input 'x'" for a named tensor, else "input[2]".
std::string TensorField(const char* kind, int index, const std::string& name);
// A path inside a model folder: relative, no "..", no empty or "." components, no NUL.
bool IsSafeRelativePath(const std::string& path);

// Length of the valid UTF-8 sequence starting `s` (1..4), or 0 when the bytes there are not one
// (overlong forms, surrogates and values above U+10FFFF included).
int Utf8SequenceLength(absl::string_view s);
bool IsValidUtf8(absl::string_view s);

// dims as a config declares them: each a positive size, or -1 (variable) when allowed.
void CheckDims(const std::string& field, absl::Span<const int64_t> dims, bool allow_variable,
               Problems* problems);
// TYPE_INVALID passes when allow_unset (completion fills it).
void CheckDataType(const std::string& field, inference::DataType type, bool allow_unset,
                   Problems* problems);

// Warm-up samples against the declared inputs (when there are any) and max_batch_size (when the
// model batches): names, data types, dims and batch sizes.
void CheckWarmupAgainstConfig(const inference::ModelConfig& config, Problems* problems);

// The parts of a configuration only ensembles have (ensemble_config.cc): declared inputs and
// outputs, and the steps' structure (names, maps, every tensor produced once and available, no
// cycle). What needs the step models is checked when the ensemble loads (BuildEnsemblePlan).
void CheckEnsembleConfig(const inference::ModelConfig& config, Problems* problems);

// A feature_lookup model's parameters (features, missing_value) and its one key input and its
// values and presence outputs (feature_lookup_backend.cc).
void CheckFeatureLookupConfig(const inference::ModelConfig& config, Problems* problems);

}  // namespace flywheel::serving::config_internal
