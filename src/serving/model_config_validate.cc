// ValidateModelConfig: every field Triton defines is either checked and honoured, reported as
// unsupported by name, or (when it cannot change results on a CPU server) accepted with a
// warning. Nothing is silently ignored.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/text_format.h>

#include <cmath>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "serving/model_config.h"
#include "serving/model_config_checks.h"

namespace flywheel::serving {

namespace {

using config_internal::CheckDataType;
using config_internal::CheckDims;
using config_internal::DimsString;
using config_internal::IsSafeRelativePath;
using config_internal::kMaxElements;
using config_internal::Problems;
using config_internal::TensorField;

// reshape must describe the same number of elements as dims; -1 matches -1.
void CheckReshape(const std::string& field, absl::Span<const int64_t> dims,
                  const inference::ModelTensorReshape& reshape, Problems* problems) {
  CheckDims(field + ".reshape.shape", reshape.shape(), /*allow_variable=*/true, problems);
  if (dims.empty()) return;  // completed from the model later
  auto count = [](absl::Span<const int64_t> shape, int* variable) {
    int64_t n = 1;
    for (int64_t d : shape) {
      if (d < 0) {
        ++*variable;
      } else if (d > 0 && n <= kMaxElements / d) {
        n *= d;
      }
    }
    return n;
  };
  int dims_variable = 0, reshape_variable = 0;
  const int64_t dims_elements = count(dims, &dims_variable);
  const int64_t reshape_elements = count(reshape.shape(), &reshape_variable);
  if ((dims_variable == 0) != (reshape_variable == 0) ||
      (dims_variable == 0 && dims_elements != reshape_elements)) {
    problems->Invalid(
        field + ".reshape",
        absl::StrCat("shape ", DimsString(reshape.shape()),
                     " does not hold the same number of elements as dims ", DimsString(dims)));
  }
}

void CheckInputs(const inference::ModelConfig& config, Problems* problems) {
  std::set<std::string> names;
  for (int i = 0; i < config.input_size(); ++i) {
    const inference::ModelInput& input = config.input(i);
    const std::string field = TensorField("input", i, input.name());
    if (input.name().empty()) {
      problems->Invalid(field, "name is not set");
    } else if (!names.insert(input.name()).second) {
      problems->Invalid(field, "declared more than once");
    }
    CheckDataType(field + ".data_type", input.data_type(), /*allow_unset=*/true, problems);
    CheckDims(field + ".dims", input.dims(), /*allow_variable=*/true, problems);
    if (input.has_reshape()) CheckReshape(field, input.dims(), input.reshape(), problems);
    if (!inference::ModelInput::Format_IsValid(input.format())) {
      problems->Invalid(field + ".format", absl::StrCat(input.format(), " is not a valid format"));
    } else if (input.format() != inference::ModelInput::FORMAT_NONE && input.dims_size() != 3) {
      problems->Invalid(field + ".format",
                        absl::StrCat(inference::ModelInput::Format_Name(input.format()),
                                     " needs 3 dims (CHW or HWC, without the batch dimension), "
                                     "dims are ",
                                     DimsString(input.dims())));
    }
    if (input.is_shape_tensor()) {
      problems->Unsupported(field + ".is_shape_tensor", "shape tensors are TensorRT-only");
    }
    if (input.is_non_linear_format_io()) {
      problems->Unsupported(field + ".is_non_linear_format_io", "a TensorRT-only I/O format");
    }
    if (input.allow_ragged_batch()) {
      problems->Unsupported(field + ".allow_ragged_batch",
                            "requests whose shapes differ are batched apart");
    }
  }
}

void CheckOutputs(const inference::ModelConfig& config, Problems* problems) {
  std::set<std::string> names;
  for (int i = 0; i < config.output_size(); ++i) {
    const inference::ModelOutput& output = config.output(i);
    const std::string field = TensorField("output", i, output.name());
    if (output.name().empty()) {
      problems->Invalid(field, "name is not set");
    } else if (!names.insert(output.name()).second) {
      problems->Invalid(field, "declared more than once");
    }
    CheckDataType(field + ".data_type", output.data_type(), /*allow_unset=*/true, problems);
    CheckDims(field + ".dims", output.dims(), /*allow_variable=*/true, problems);
    if (output.has_reshape()) CheckReshape(field, output.dims(), output.reshape(), problems);
    if (!output.label_filename().empty() && !IsSafeRelativePath(output.label_filename())) {
      problems->Invalid(field + ".label_filename",
                        absl::StrCat("'", output.label_filename(),
                                     "' is not a file name inside the model folder"));
    }
    if (output.is_shape_tensor()) {
      problems->Unsupported(field + ".is_shape_tensor", "shape tensors are TensorRT-only");
    }
    if (output.is_non_linear_format_io()) {
      problems->Unsupported(field + ".is_non_linear_format_io", "a TensorRT-only I/O format");
    }
  }
}

bool IsBoolString(const std::string& s) { return s == "true" || s == "false"; }

void CheckFilParameters(const inference::ModelConfig& config, Problems* problems) {
  const auto& params = config.parameters();
  auto model_type = params.find("model_type");
  if (model_type == params.end()) {
    problems->Invalid("parameters.model_type",
                      "not set (backend fil needs xgboost_json or xgboost_ubj)");
  } else {
    const std::string& type = model_type->second.string_value();
    if (type == "xgboost" || type == "lightgbm" || type == "treelite_checkpoint") {
      problems->Unsupported("parameters.model_type",
                            absl::StrCat("'", type,
                                         "' models; save the model as XGBoost JSON or UBJSON and "
                                         "use xgboost_json or xgboost_ubj"));
    } else if (type != "xgboost_json" && type != "xgboost_ubj") {
      problems->Invalid("parameters.model_type",
                        absl::StrCat("'", type,
                                     "' is not a FIL model type (flywheel reads "
                                     "xgboost_json and xgboost_ubj)"));
    }
  }
  for (const char* key : {"output_class", "predict_proba"}) {
    auto it = params.find(key);
    if (it != params.end() && !IsBoolString(it->second.string_value())) {
      problems->Invalid(absl::StrCat("parameters.", key),
                        absl::StrCat("'", it->second.string_value(), "' is not true or false"));
    }
  }
  auto threshold = params.find("threshold");
  if (threshold != params.end()) {
    double value = 0;
    if (!absl::SimpleAtod(threshold->second.string_value(), &value) || !std::isfinite(value)) {
      problems->Invalid("parameters.threshold",
                        absl::StrCat("'", threshold->second.string_value(), "' is not a number"));
    }
  }
  static const std::set<std::string> kKnown = {"model_type", "output_class", "predict_proba",
                                               "threshold"};
  for (const auto& [key, value] : params) {
    if (kKnown.count(key) == 0) {
      problems->Warn(absl::StrCat("parameters.", key),
                     "not used by flywheel's tree engine (GPU tuning in Triton's FIL backend)");
    }
  }
}

constexpr char kServedRuntimes[] =
    "flywheel serves platform onnxruntime_onnx, backend onnxruntime, backend fil, backend "
    "feature_lookup and platform ensemble";

void CheckPlatform(const inference::ModelConfig& config, Problems* problems) {
  const std::string& platform = config.platform();
  const std::string& backend = config.backend();
  if (platform.empty() && backend.empty()) {
    problems->Invalid("platform",
                      "neither platform nor backend is set (platform "
                      "\"onnxruntime_onnx\" or backend \"onnxruntime\" for ONNX "
                      "models, backend \"fil\" for XGBoost models, platform \"ensemble\" "
                      "for ensembles, backend \"feature_lookup\" for feature lookups)");
    return;
  }
  switch (PlatformOf(config)) {
    case ModelPlatform::kOnnx:
      for (const auto& [key, value] : config.parameters()) {
        problems->Warn(absl::StrCat("parameters.", key), "not used by flywheel's ONNX engine");
      }
      return;
    case ModelPlatform::kFil:
      CheckFilParameters(config, problems);
      return;
    case ModelPlatform::kEnsemble:
      config_internal::CheckEnsembleConfig(config, problems);
      return;
    case ModelPlatform::kFeatureLookup:
      config_internal::CheckFeatureLookupConfig(config, problems);
      return;
    case ModelPlatform::kUnknown:
      break;
  }
  const bool known_platform =
      platform.empty() || platform == "onnxruntime_onnx" || platform == "ensemble";
  const bool known_backend = backend.empty() || backend == "onnxruntime" || backend == "fil" ||
                             backend == "feature_lookup";
  if (known_platform && known_backend) {
    problems->Invalid("backend", absl::StrCat("platform '", platform, "' and backend '", backend,
                                              "' name different runtimes"));
  } else if (!known_platform) {
    problems->Unsupported(absl::StrCat("platform '", platform, "'"), kServedRuntimes);
  } else {
    problems->Unsupported(absl::StrCat("backend '", backend, "'"), kServedRuntimes);
  }
}

void CheckQueuePolicy(const std::string& field, const inference::ModelQueuePolicy& policy,
                      Problems* problems) {
  if (!inference::ModelQueuePolicy::TimeoutAction_IsValid(policy.timeout_action())) {
    problems->Invalid(field + ".timeout_action",
                      absl::StrCat(policy.timeout_action(), " is not REJECT or DELAY"));
  }
}

void CheckDynamicBatching(const inference::ModelConfig& config, Problems* problems) {
  if (config.has_sequence_batching()) {
    problems->Unsupported("sequence_batching", "stateful sequence models are not implemented");
  }
  if (config.has_ensemble_scheduling() && PlatformOf(config) != ModelPlatform::kEnsemble) {
    problems->Invalid("ensemble_scheduling",
                      absl::StrCat("set, but the model is not an ensemble (platform '",
                                   config.platform(), "', backend '", config.backend(),
                                   "'; an ensemble has platform \"ensemble\" and no backend)"));
  }
  if (!config.has_dynamic_batching()) return;
  const inference::ModelDynamicBatching& batching = config.dynamic_batching();
  std::set<int> seen;
  for (int i = 0; i < batching.preferred_batch_size_size(); ++i) {
    const int size = batching.preferred_batch_size(i);
    const std::string field = absl::StrCat("dynamic_batching.preferred_batch_size[", i, "]");
    if (size < 1) {
      problems->Invalid(field, absl::StrCat(size, " is not a positive batch size"));
    } else if (config.max_batch_size() > 0 && size > config.max_batch_size()) {
      problems->Invalid(
          field, absl::StrCat(size, " is larger than max_batch_size ", config.max_batch_size()));
    } else if (!seen.insert(size).second) {
      problems->Invalid(field, absl::StrCat(size, " is listed twice"));
    }
  }
  if (batching.preserve_ordering()) {
    problems->Warn("dynamic_batching.preserve_ordering",
                   "every request gets its own response; there is no response stream to order");
  }
  const uint64_t levels = batching.priority_levels();
  if (levels > kMaxPriorityLevels) {
    problems->Invalid("dynamic_batching.priority_levels",
                      absl::StrCat(levels, " is more than ", kMaxPriorityLevels, " levels"));
  } else if (levels == 0) {
    if (batching.default_priority_level() != 0) {
      problems->Invalid(
          "dynamic_batching.default_priority_level",
          absl::StrCat(batching.default_priority_level(), " is set but priority_levels is not"));
    }
    if (!batching.priority_queue_policy().empty()) {
      problems->Invalid("dynamic_batching.priority_queue_policy",
                        "is set but priority_levels is not");
    }
  } else {
    if (batching.default_priority_level() < 1 || batching.default_priority_level() > levels) {
      problems->Invalid("dynamic_batching.default_priority_level",
                        absl::StrCat(batching.default_priority_level(), " is not in [1, ", levels,
                                     "] (priority_levels is ", levels, ")"));
    }
    for (const auto& [level, policy] : batching.priority_queue_policy()) {
      if (level < 1 || level > levels) {
        problems->Invalid(absl::StrCat("dynamic_batching.priority_queue_policy[", level, "]"),
                          absl::StrCat("level ", level, " is not in [1, ", levels, "]"));
      }
    }
  }
  CheckQueuePolicy("dynamic_batching.default_queue_policy", batching.default_queue_policy(),
                   problems);
  for (const auto& [level, policy] : batching.priority_queue_policy()) {
    CheckQueuePolicy(absl::StrCat("dynamic_batching.priority_queue_policy[", level, "]"), policy,
                     problems);
  }
}

void CheckVersionPolicy(const inference::ModelConfig& config, Problems* problems) {
  const inference::ModelVersionPolicy& policy = config.version_policy();
  if (policy.has_latest() && policy.latest().num_versions() < 1) {
    problems->Invalid("version_policy.latest.num_versions", "must be at least 1");
  }
  if (policy.has_specific()) {
    if (policy.specific().versions().empty()) {
      problems->Invalid("version_policy.specific.versions", "lists no version");
    }
    std::set<int64_t> seen;
    for (int64_t v : policy.specific().versions()) {
      if (v < 1) {
        problems->Invalid("version_policy.specific.versions",
                          absl::StrCat(v, " is not a version (versions are positive integers)"));
      } else if (!seen.insert(v).second) {
        problems->Invalid("version_policy.specific.versions",
                          absl::StrCat("version ", v, " is listed twice"));
      }
    }
  }
}

void CheckInstanceGroups(const inference::ModelConfig& config, Problems* problems) {
  int64_t total = 0;
  for (int i = 0; i < config.instance_group_size(); ++i) {
    const inference::ModelInstanceGroup& group = config.instance_group(i);
    const std::string field = absl::StrCat("instance_group[", i, "]");
    if (group.count() < 0) {
      problems->Invalid(field + ".count", absl::StrCat(group.count(), " is negative"));
    }
    total += std::max(1, group.count());
    if (!inference::ModelInstanceGroup::Kind_IsValid(group.kind())) {
      problems->Invalid(field + ".kind", absl::StrCat(group.kind(), " is not a valid kind"));
    } else if (group.kind() == inference::ModelInstanceGroup::KIND_GPU) {
      problems->Unsupported(field + ".kind KIND_GPU",
                            "flywheel runs models on CPU; use KIND_CPU or KIND_AUTO");
    }
    if (!group.gpus().empty()) problems->Unsupported(field + ".gpus", "no GPU execution");
    if (!group.secondary_devices().empty()) {
      problems->Unsupported(field + ".secondary_devices", "no NVDLA execution");
    }
    if (!group.profile().empty()) {
      problems->Unsupported(field + ".profile", "TensorRT optimization profiles");
    }
    if (group.passive()) {
      problems->Unsupported(field + ".passive", "every instance receives requests");
    }
    if (group.has_rate_limiter()) {
      problems->Warn(field + ".rate_limiter",
                     "no rate limiter (as Triton without --rate-limit); ignored");
    }
    if (!group.host_policy().empty()) {
      problems->Warn(field + ".host_policy", "no host policies; ignored");
    }
  }
  if (total > kMaxInstanceCount) {
    problems->Invalid("instance_group", absl::StrCat(total, " instances is more than ",
                                                     kMaxInstanceCount, " in one model"));
  }
}

void CheckOptimization(const inference::ModelConfig& config, Problems* problems) {
  if (!config.has_optimization()) return;
  const inference::ModelOptimizationPolicy& opt = config.optimization();
  if (opt.has_cuda() && opt.cuda().ByteSizeLong() > 0) {
    problems->Unsupported("optimization.cuda", "no CUDA execution");
  }
  if (opt.has_execution_accelerators()) {
    for (const auto& acc : opt.execution_accelerators().gpu_execution_accelerator()) {
      problems->Unsupported(
          absl::StrCat("optimization.execution_accelerators.gpu_execution_accelerator '",
                       acc.name(), "'"),
          "no GPU execution");
    }
    for (const auto& acc : opt.execution_accelerators().cpu_execution_accelerator()) {
      problems->Unsupported(
          absl::StrCat("optimization.execution_accelerators.cpu_execution_accelerator '",
                       acc.name(), "'"),
          "flywheel's engine is the CPU runtime");
    }
  }
  if (opt.has_graph() && opt.graph().level() != 0) {
    problems->Warn("optimization.graph.level", "flywheel always applies its graph optimizations");
  }
  if (!inference::ModelOptimizationPolicy::ModelPriority_IsValid(opt.priority())) {
    problems->Invalid("optimization.priority", absl::StrCat(opt.priority(), " is not valid"));
  } else if (opt.priority() != inference::ModelOptimizationPolicy::PRIORITY_DEFAULT) {
    problems->Warn("optimization.priority", "model priorities are TensorRT-only; ignored");
  }
  if (opt.has_input_pinned_memory() || opt.has_output_pinned_memory() ||
      opt.gather_kernel_buffer_threshold() != 0 || opt.eager_batching()) {
    problems->Warn("optimization", "GPU transfer settings have no effect on CPU; ignored");
  }
}

void CheckOtherFields(const inference::ModelConfig& config, Problems* problems) {
  if (config.max_batch_size() < 0) {
    problems->Invalid("max_batch_size", absl::StrCat(config.max_batch_size(), " is negative"));
  }
  if (!config.runtime().empty()) {
    problems->Unsupported("runtime", absl::StrCat("backend library '", config.runtime(), "'"));
  }
  if (!config.default_model_filename().empty() &&
      !IsSafeRelativePath(config.default_model_filename())) {
    problems->Invalid("default_model_filename",
                      absl::StrCat("'", config.default_model_filename(),
                                   "' is not a file name inside the version folder"));
  }
  if (!config.cc_model_filenames().empty()) {
    problems->Warn("cc_model_filenames", "CUDA compute capabilities do not apply on CPU; ignored");
  }
  if (!config.batch_input().empty()) {
    problems->Unsupported("batch_input", "ragged batching is not implemented");
  }
  if (!config.batch_output().empty()) {
    problems->Unsupported("batch_output", "ragged batching is not implemented");
  }
  if (!config.model_operations().op_library_filename().empty()) {
    problems->Unsupported("model_operations.op_library_filename",
                          "custom operator libraries are not loaded");
  }
  if (config.model_transaction_policy().decoupled()) {
    problems->Unsupported("model_transaction_policy.decoupled",
                          "models send exactly one response per request");
  }
  if (!config.model_repository_agents().agents().empty()) {
    problems->Unsupported(
        "model_repository_agents",
        absl::StrCat("repository agent '", config.model_repository_agents().agents(0).name(),
                     "' cannot run"));
  }
  if (config.has_model_metrics()) {
    problems->Warn("model_metrics", "flywheel's latency histograms have fixed buckets; ignored");
  }
  for (const auto& [key, value] : config.parameters()) {
    if (key.empty()) problems->Invalid("parameters", "a parameter has an empty key");
  }
}

// Names and values travel in JSON and gRPC strings, which must be UTF-8. A map key given twice
// (text format accepts it; the last value silently wins) is a mistake worth reporting.
void CheckStringsAndMaps(const google::protobuf::Message& message, const std::string& prefix,
                         Problems* problems) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* r = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    const std::string name = prefix.empty() ? field->name() : prefix + "." + field->name();
    if (field->is_map()) {
      const FieldDescriptor* key = field->message_type()->map_key();
      std::set<std::string> keys;
      for (int i = 0; i < r->FieldSize(message, field); ++i) {
        const google::protobuf::Message& entry = r->GetRepeatedMessage(message, field, i);
        std::string text;
        google::protobuf::TextFormat::PrintFieldValueToString(entry, key, -1, &text);
        if (!keys.insert(text).second) {
          problems->Invalid(name, absl::StrCat("key ", text, " is given more than once"));
          break;
        }
      }
    }
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      const int n = field->is_repeated() ? r->FieldSize(message, field) : 1;
      for (int i = 0; i < n; ++i) {
        const std::string value = field->is_repeated() ? r->GetRepeatedString(message, field, i)
                                                       : r->GetString(message, field);
        if (!config_internal::IsValidUtf8(value)) {
          problems->Invalid(name, "not valid UTF-8");
          return;
        }
      }
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (field->is_repeated()) {
        for (int i = 0; i < r->FieldSize(message, field); ++i) {
          CheckStringsAndMaps(r->GetRepeatedMessage(message, field, i),
                              absl::StrCat(name, "[", i, "]"), problems);
        }
      } else {
        CheckStringsAndMaps(r->GetMessage(message, field), name, problems);
      }
    }
  }
}

}  // namespace

absl::Status ValidateModelConfig(const inference::ModelConfig& config, const std::string& path,
                                 std::vector<std::string>* warnings) {
  Problems problems(path);
  CheckStringsAndMaps(config, "", &problems);
  CheckPlatform(config, &problems);
  CheckOtherFields(config, &problems);
  CheckInputs(config, &problems);
  CheckOutputs(config, &problems);
  CheckDynamicBatching(config, &problems);
  CheckVersionPolicy(config, &problems);
  CheckInstanceGroups(config, &problems);
  CheckOptimization(config, &problems);
  config_internal::CheckWarmupAgainstConfig(config, &problems);
  if (warnings != nullptr) {
    warnings->insert(warnings->end(), problems.warnings().begin(), problems.warnings().end());
  }
  return problems.ToStatus();
}

}  // namespace flywheel::serving
