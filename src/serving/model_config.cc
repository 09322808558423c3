// Parsing (text and JSON) and the converters from a model configuration to what the scheduler
// uses. Validation is in model_config_validate.cc, completion in model_config_complete.cc, the
// config endpoint's JSON in model_config_json.cc.
#include "serving/model_config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace flywheel::serving {
namespace {

namespace pb = google::protobuf;

// Collects the text parser's messages with their location (the parser counts from 0).
class LocatedErrors : public pb::io::ErrorCollector {
 public:
  explicit LocatedErrors(const std::string& path) : path_(path) {}

  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    if (line >= 0) {
      errors_.push_back(absl::StrCat(path_, ":", line + 1, ":", column + 1, ": ", message));
    } else {
      errors_.push_back(absl::StrCat(path_, ": ", message));
    }
  }
  void AddWarning(int, pb::io::ColumnNumber, const std::string&) override {}

  std::string Joined() const { return absl::StrJoin(errors_, "; "); }

 private:
  const std::string& path_;
  std::vector<std::string> errors_;
};

QueuePolicy QueuePolicyFromConfig(const inference::ModelQueuePolicy& policy) {
  QueuePolicy out;
  out.timeout_action = policy.timeout_action() == inference::ModelQueuePolicy::DELAY
                           ? QueuePolicy::TimeoutAction::kDelay
                           : QueuePolicy::TimeoutAction::kReject;
  out.default_timeout_us = policy.default_timeout_microseconds();
  out.allow_timeout_override = policy.allow_timeout_override();
  out.max_queue_size = policy.max_queue_size();
  return out;
}

}  // namespace

absl::StatusOr<inference::ModelConfig> ParseModelConfigText(absl::string_view text,
                                                            const std::string& path) {
  inference::ModelConfig config;
  LocatedErrors errors(path);
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &config)) {
    std::string message = errors.Joined();
    if (message.empty()) message = absl::StrCat(path, ": not a valid model configuration");
    return absl::InvalidArgumentError(message);
  }
  return config;
}

absl::StatusOr<inference::ModelConfig> ModelConfigFromJson(absl::string_view json) {
  inference::ModelConfig config;
  pb::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto status = pb::util::JsonStringToMessage(std::string(json), &config, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model configuration JSON: ", std::string(status.message())));
  }
  return config;
}

absl::StatusOr<DataType> DataTypeFromConfig(inference::DataType type) {
  switch (type) {
    case inference::TYPE_BOOL:
      return DataType::kBool;
    case inference::TYPE_UINT8:
      return DataType::kUint8;
    case inference::TYPE_UINT16:
      return DataType::kUint16;
    case inference::TYPE_UINT32:
      return DataType::kUint32;
    case inference::TYPE_UINT64:
      return DataType::kUint64;
    case inference::TYPE_INT8:
      return DataType::kInt8;
    case inference::TYPE_INT16:
      return DataType::kInt16;
    case inference::TYPE_INT32:
      return DataType::kInt32;
    case inference::TYPE_INT64:
      return DataType::kInt64;
    case inference::TYPE_FP16:
      return DataType::kFp16;
    case inference::TYPE_FP32:
      return DataType::kFp32;
    case inference::TYPE_FP64:
      return DataType::kFp64;
    case inference::TYPE_STRING:
      return DataType::kBytes;
    case inference::TYPE_BF16:
      return DataType::kBf16;
    default:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("data type ", ConfigDataTypeName(type), " is not a tensor element type"));
}

inference::DataType DataTypeToConfig(DataType type) {
  switch (type) {
    case DataType::kBool:
      return inference::TYPE_BOOL;
    case DataType::kUint8:
      return inference::TYPE_UINT8;
    case DataType::kUint16:
      return inference::TYPE_UINT16;
    case DataType::kUint32:
      return inference::TYPE_UINT32;
    case DataType::kUint64:
      return inference::TYPE_UINT64;
    case DataType::kInt8:
      return inference::TYPE_INT8;
    case DataType::kInt16:
      return inference::TYPE_INT16;
    case DataType::kInt32:
      return inference::TYPE_INT32;
    case DataType::kInt64:
      return inference::TYPE_INT64;
    case DataType::kFp16:
      return inference::TYPE_FP16;
    case DataType::kBf16:
      return inference::TYPE_BF16;
    case DataType::kFp32:
      return inference::TYPE_FP32;
    case DataType::kFp64:
      return inference::TYPE_FP64;
    case DataType::kBytes:
      return inference::TYPE_STRING;
    case DataType::kInvalid:
      break;
  }
  return inference::TYPE_INVALID;
}

std::string ConfigDataTypeName(inference::DataType type) {
  if (inference::DataType_IsValid(type)) return inference::DataType_Name(type);
  return absl::StrCat(static_cast<int>(type));
}

std::vector<IOSpec> InputSpecs(const inference::ModelConfig& config) {
  std::vector<IOSpec> specs;
  specs.reserve(config.input_size());
  for (const inference::ModelInput& input : config.input()) {
    IOSpec spec;
    spec.name = input.name();
    spec.dtype = DataTypeFromConfig(input.data_type()).value_or(DataType::kInvalid);
    spec.dims.assign(input.dims().begin(), input.dims().end());
    spec.has_reshape = input.has_reshape();
    spec.reshape.assign(input.reshape().shape().begin(), input.reshape().shape().end());
    spec.optional = input.optional();
    specs.push_back(std::move(spec));
  }
  return specs;
}

std::vector<IOSpec> OutputSpecs(const inference::ModelConfig& config) {
  std::vector<IOSpec> specs;
  specs.reserve(config.output_size());
  for (const inference::ModelOutput& output : config.output()) {
    IOSpec spec;
    spec.name = output.name();
    spec.dtype = DataTypeFromConfig(output.data_type()).value_or(DataType::kInvalid);
    spec.dims.assign(output.dims().begin(), output.dims().end());
    spec.has_reshape = output.has_reshape();
    spec.reshape.assign(output.reshape().shape().begin(), output.reshape().shape().end());
    specs.push_back(std::move(spec));
  }
  return specs;
}

SchedulerOptions SchedulerOptionsFromConfig(const inference::ModelConfig& config,
                                            const std::string& version) {
  SchedulerOptions options;
  options.model_name = config.name();
  options.model_version = version;
  options.max_batch_size = config.max_batch_size();
  if (!config.has_dynamic_batching()) return options;
  const inference::ModelDynamicBatching& batching = config.dynamic_batching();
  options.dynamic_batching = true;
  options.preferred_batch_sizes.assign(batching.preferred_batch_size().begin(),
                                       batching.preferred_batch_size().end());
  options.max_queue_delay_us = batching.max_queue_delay_microseconds();
  // Validation bounds both by kMaxPriorityLevels.
  options.priority_levels = static_cast<uint32_t>(batching.priority_levels());
  options.default_priority_level = static_cast<uint32_t>(batching.default_priority_level());
  options.default_queue_policy = QueuePolicyFromConfig(batching.default_queue_policy());
  for (const auto& [level, policy] : batching.priority_queue_policy()) {
    options.priority_queue_policy[static_cast<uint32_t>(level)] = QueuePolicyFromConfig(policy);
  }
  return options;
}

const std::string* ConfigParameter(const inference::ModelConfig& config, const std::string& key) {
  auto it = config.parameters().find(key);
  return it == config.parameters().end() ? nullptr : &it->second.string_value();
}

ModelPlatform PlatformOf(const inference::ModelConfig& config) {
  const std::string& platform = config.platform();
  const std::string& backend = config.backend();
  if ((platform == "onnxruntime_onnx" && (backend.empty() || backend == "onnxruntime")) ||
      (platform.empty() && backend == "onnxruntime")) {
    return ModelPlatform::kOnnx;
  }
  if (platform.empty() && backend == "fil") return ModelPlatform::kFil;
  if (platform == "ensemble" && backend.empty()) return ModelPlatform::kEnsemble;
  if (platform.empty() && backend == "feature_lookup") return ModelPlatform::kFeatureLookup;
  return ModelPlatform::kUnknown;
}

}  // namespace flywheel::serving
