// A model's configuration (Triton's config.pbtxt, protobuf text format, or the JSON of the load
// API): parsing with located errors, validation that names the file, field and problem,
// completion from the loaded model as Triton does, and conversion to what the scheduler uses.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/data_type.h"
#include "model_config.pb.h"
#include "serving/backend.h"
#include "serving/scheduler.h"

namespace flywheel::serving {

// Triton's default max_batch_size for a completed model that can batch (its
// --backend-config=default-max-batch-size default).
inline constexpr int kDefaultMaxBatchSize = 4;
// More instances than this in one model is a typo, not a deployment (each is a thread and an
// engine session with its own memory).
inline constexpr int kMaxInstanceCount = 1024;
// Priority levels beyond this are refused: the scheduler keeps one queue per level.
inline constexpr uint64_t kMaxPriorityLevels = 1 << 16;

// Parses config.pbtxt text. Errors read "<path>:<line>:<column>: <problem>" (an unknown field is
// named). No validation beyond the syntax and the schema.
absl::StatusOr<inference::ModelConfig> ParseModelConfigText(absl::string_view text,
                                                            const std::string& path);

// Checks a configuration before completion: every problem (invalid values, fields flywheel does
// not implement) is reported in one InvalidArgument error "<path>: <field>: <problem>; ...".
// Inputs and outputs may leave data_type and dims unset (completion fills them from the model).
// Fields that are accepted but have no effect here (GPU tuning, metrics options) are described
// in *warnings when it is not null.
absl::Status ValidateModelConfig(const inference::ModelConfig& config, const std::string& path,
                                 std::vector<std::string>* warnings = nullptr);

// Completes `config` from the loaded model as Triton's auto-complete does: inputs and outputs
// when the config lists none (data types and dims of listed ones when unset), max_batch_size
// (kDefaultMaxBatchSize) when unset and every model input and output has a variable first
// dimension, dynamic batching when max_batch_size > 1 and no scheduler is configured, one CPU
// instance group, and version_policy latest { num_versions: 1 }. Then checks that every declared
// tensor exists in the model with the same data type and compatible dims (the error names the
// tensor and both shapes) and that the model's required inputs are all declared. `inputs` and
// `outputs` are the model's, dims including the batch dimension.
absl::Status CompleteModelConfig(const std::vector<BackendTensorInfo>& inputs,
                                 const std::vector<BackendTensorInfo>& outputs,
                                 inference::ModelConfig* config);

// The model_configuration endpoint's JSON: proto field names in declaration order, every scalar,
// list and map (defaults included; messages and oneof members when set), 64-bit integers as JSON
// numbers as Triton returns them, map keys sorted. ModelConfigFromJson reads it back.
std::string ModelConfigToJson(const inference::ModelConfig& config);
// The load API's `config` parameter. Unknown fields are errors.
absl::StatusOr<inference::ModelConfig> ModelConfigFromJson(absl::string_view json);

// Element types: TYPE_STRING is BYTES. TYPE_INVALID and values outside the enum are errors.
absl::StatusOr<DataType> DataTypeFromConfig(inference::DataType type);
inference::DataType DataTypeToConfig(DataType type);
// "TYPE_FP32", or the number for a value outside the enum.
std::string ConfigDataTypeName(inference::DataType type);

// What requests are validated against. REQUIRES: a completed, valid configuration.
std::vector<IOSpec> InputSpecs(const inference::ModelConfig& config);
std::vector<IOSpec> OutputSpecs(const inference::ModelConfig& config);
SchedulerOptions SchedulerOptionsFromConfig(const inference::ModelConfig& config,
                                            const std::string& version);

// The string value of `parameters { key: ... }`; null when the config does not set it.
const std::string* ConfigParameter(const inference::ModelConfig& config, const std::string& key);

// Backends flywheel serves, from platform/backend: ONNX models, XGBoost models (backend fil),
// ensembles (platform ensemble) and online feature lookups (backend feature_lookup).
enum class ModelPlatform { kUnknown, kOnnx, kFil, kEnsemble, kFeatureLookup };
ModelPlatform PlatformOf(const inference::ModelConfig& config);

}  // namespace flywheel::serving
