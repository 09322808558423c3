// CompleteModelConfig (Triton's auto-complete: what a partial config.pbtxt leaves out is taken
// from the model) and the warm-up checks shared with ValidateModelConfig.
#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "serving/model_config.h"
#include "serving/model_config_checks.h"

namespace flywheel::serving {
namespace config_internal {

void CheckWarmupAgainstConfig(const inference::ModelConfig& config, Problems* problems) {
  std::set<std::string> names;
  for (int i = 0; i < config.model_warmup_size(); ++i) {
    const inference::ModelWarmup& warmup = config.model_warmup(i);
    const std::string field = warmup.name().empty()
                                  ? absl::StrCat("model_warmup[", i, "]")
                                  : absl::StrCat("model_warmup '", warmup.name(), "'");
    if (warmup.name().empty()) {
      problems->Invalid(field + ".name", "not set");
    } else if (!names.insert(warmup.name()).second) {
      problems->Invalid(field, "the name is used twice");
    }
    if (warmup.batch_size() < 1) {
      problems->Invalid(field + ".batch_size", "must be at least 1");
    } else if (config.max_batch_size() > 0 &&
               warmup.batch_size() > static_cast<uint32_t>(config.max_batch_size())) {
      problems->Invalid(field + ".batch_size",
                        absl::StrCat(warmup.batch_size(), " is larger than max_batch_size ",
                                     config.max_batch_size()));
    }
    if (warmup.inputs().empty()) problems->Invalid(field + ".inputs", "no input is given");
    // Sorted, so that the error lists problems in the same order every time.
    std::vector<std::string> keys;
    for (const auto& [key, input] : warmup.inputs()) keys.push_back(key);
    std::sort(keys.begin(), keys.end());
    for (const std::string& key : keys) {
      const inference::ModelWarmup::Input& input = warmup.inputs().at(key);
      const std::string ifield = absl::StrCat(field, ".inputs['", key, "']");
      CheckDataType(ifield + ".data_type", input.data_type(), /*allow_unset=*/false, problems);
      CheckDims(ifield + ".dims", input.dims(), /*allow_variable=*/false, problems);
      if (input.input_data_type_case() == inference::ModelWarmup::Input::INPUT_DATA_TYPE_NOT_SET) {
        problems->Invalid(ifield, "no data: set zero_data, random_data or input_data_file");
      } else if (input.has_input_data_file() && !IsSafeRelativePath(input.input_data_file())) {
        problems->Invalid(ifield + ".input_data_file",
                          absl::StrCat("'", input.input_data_file(),
                                       "' is not a file inside the model's warmup folder"));
      }
      if (config.input().empty()) continue;
      auto declared =
          std::find_if(config.input().begin(), config.input().end(),
                       [&](const inference::ModelInput& in) { return in.name() == key; });
      if (declared == config.input().end()) {
        problems->Invalid(ifield, "not an input of the model");
        continue;
      }
      if (declared->data_type() != inference::TYPE_INVALID &&
          declared->data_type() != input.data_type()) {
        problems->Invalid(ifield + ".data_type",
                          absl::StrCat(ConfigDataTypeName(input.data_type()), ", but input '", key,
                                       "' is ", ConfigDataTypeName(declared->data_type())));
      }
      if (!declared->dims().empty()) {
        bool fits = declared->dims_size() == input.dims_size();
        for (int d = 0; fits && d < input.dims_size(); ++d) {
          fits = declared->dims(d) == -1 || declared->dims(d) == input.dims(d);
        }
        if (!fits) {
          problems->Invalid(ifield + ".dims",
                            absl::StrCat(DimsString(input.dims()), " do not fit input '", key,
                                         "' dims ", DimsString(declared->dims())));
        }
      }
    }
    for (const inference::ModelInput& in : config.input()) {
      if (!in.optional() && !in.name().empty() && warmup.inputs().count(in.name()) == 0) {
        problems->Invalid(field + ".inputs", absl::StrCat("no data for input '", in.name(), "'"));
      }
    }
  }
}

}  // namespace config_internal

namespace {

using config_internal::DimsString;
using config_internal::Problems;

std::string Describe(const BackendTensorInfo& t) {
  return absl::StrCat(t.name, " ", DataTypeName(t.dtype), " ", DimsString(t.dims));
}

std::string DescribeAll(const std::vector<BackendTensorInfo>& tensors) {
  return absl::StrJoin(tensors, ", ", [](std::string* out, const BackendTensorInfo& t) {
    absl::StrAppend(out, Describe(t));
  });
}

const BackendTensorInfo* Find(const std::vector<BackendTensorInfo>& tensors,
                              const std::string& name) {
  for (const BackendTensorInfo& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

// Whether every input and output of the model has a variable first dimension to batch along.
bool ModelCanBatch(const std::vector<BackendTensorInfo>& inputs,
                   const std::vector<BackendTensorInfo>& outputs) {
  if (inputs.empty() && outputs.empty()) return false;
  for (const auto* list : {&inputs, &outputs}) {
    for (const BackendTensorInfo& t : *list) {
      if (t.dims.empty() || t.dims[0] != -1) return false;
    }
  }
  return true;
}

// The first model tensor that cannot batch, for the error message.
const BackendTensorInfo* FirstUnbatchable(const std::vector<BackendTensorInfo>& inputs,
                                          const std::vector<BackendTensorInfo>& outputs) {
  for (const auto* list : {&inputs, &outputs}) {
    for (const BackendTensorInfo& t : *list) {
      if (t.dims.empty() || t.dims[0] != -1) return &t;
    }
  }
  return nullptr;
}

// A config that lists a tensor with as many dims as the model has declares the full shape, so
// the model is not batched by the server (Triton reads the same hint).
bool ConfigListsFullShapes(const inference::ModelConfig& config,
                           const std::vector<BackendTensorInfo>& inputs,
                           const std::vector<BackendTensorInfo>& outputs) {
  auto full = [](const auto& declared, const std::vector<BackendTensorInfo>& model) {
    for (const auto& tensor : declared) {
      if (tensor.dims().empty() || tensor.has_reshape()) continue;
      const BackendTensorInfo* m = Find(model, tensor.name());
      if (m != nullptr && tensor.dims_size() == static_cast<int>(m->dims.size())) return true;
    }
    return false;
  };
  return full(config.input(), inputs) || full(config.output(), outputs);
}

// The model's dims as the configuration writes them (without the batch dimension).
std::vector<int64_t> ConfigDims(const BackendTensorInfo& t, bool batched) {
  if (!batched || t.dims.empty()) return t.dims;
  return std::vector<int64_t>(t.dims.begin() + 1, t.dims.end());
}

// Declared dims fit the model's when the ranks agree and each declared size is one the model
// accepts (the config may be stricter than the model, never looser).
bool DimsFit(absl::Span<const int64_t> declared, absl::Span<const int64_t> model) {
  if (declared.size() != model.size()) return false;
  for (size_t i = 0; i < declared.size(); ++i) {
    if (model[i] != -1 && declared[i] != model[i]) return false;
  }
  return true;
}

// Fills and checks one declared tensor (ModelInput or ModelOutput) against the model's.
template <typename Declared>
void CompleteTensor(const char* kind, const BackendTensorInfo& model, bool batched,
                    Declared* declared, Problems* problems) {
  const std::string field = absl::StrCat(kind, " '", declared->name(), "'");
  const std::vector<int64_t> model_dims = ConfigDims(model, batched);
  const inference::DataType model_type = DataTypeToConfig(model.dtype);
  if (declared->data_type() == inference::TYPE_INVALID) declared->set_data_type(model_type);
  if (declared->dims().empty() && !declared->has_reshape()) {
    declared->mutable_dims()->Assign(model_dims.begin(), model_dims.end());
  }
  if (declared->data_type() != model_type) {
    problems->Invalid(field, absl::StrCat("config says ", ConfigDataTypeName(declared->data_type()),
                                          ", the model has ", ConfigDataTypeName(model_type)));
  }
  if (declared->dims().empty() && declared->has_reshape()) {
    problems->Invalid(field + ".dims", "not set (needed with reshape)");
    return;
  }
  // With reshape, the backend sees the reshaped tensor.
  const auto& backend_side =
      declared->has_reshape() ? declared->reshape().shape() : declared->dims();
  if (!DimsFit(backend_side, model_dims)) {
    std::vector<int64_t> full;
    if (batched) full.push_back(-1);
    full.insert(full.end(), backend_side.begin(), backend_side.end());
    problems->Invalid(field, absl::StrCat("config shape ", DimsString(full),
                                          declared->has_reshape() ? " (reshape)" : "",
                                          batched ? " (with the batch dimension)" : "",
                                          " does not fit the model's ", DimsString(model.dims)));
  }
}

}  // namespace

absl::Status CompleteModelConfig(const std::vector<BackendTensorInfo>& inputs,
                                 const std::vector<BackendTensorInfo>& outputs,
                                 inference::ModelConfig* config) {
  Problems problems(absl::StrCat("model '", config->name(), "'"));
  const bool can_batch = ModelCanBatch(inputs, outputs);
  if (config->max_batch_size() == 0 && can_batch &&
      !ConfigListsFullShapes(*config, inputs, outputs)) {
    config->set_max_batch_size(kDefaultMaxBatchSize);
  }
  const bool batched = config->max_batch_size() > 0;
  if (batched && !can_batch) {
    const BackendTensorInfo* t = FirstUnbatchable(inputs, outputs);
    return absl::InvalidArgumentError(
        absl::StrCat("model '", config->name(), "': max_batch_size is ", config->max_batch_size(),
                     " but the model cannot batch: ",
                     t == nullptr ? std::string("it has no inputs or outputs")
                                  : absl::StrCat("'", t->name, "' has shape ", DimsString(t->dims),
                                                 ", without a variable first dimension"),
                     " (set max_batch_size: 0 and give full shapes in dims)"));
  }

  if (config->input().empty()) {
    for (const BackendTensorInfo& t : inputs) config->add_input()->set_name(t.name);
  }
  for (inference::ModelInput& input : *config->mutable_input()) {
    const BackendTensorInfo* model = Find(inputs, input.name());
    if (model == nullptr) {
      problems.Invalid(
          absl::StrCat("input '", input.name(), "'"),
          absl::StrCat("not an input of the model (its inputs: ", DescribeAll(inputs), ")"));
      continue;
    }
    CompleteTensor("input", *model, batched, &input, &problems);
  }
  for (const BackendTensorInfo& t : inputs) {
    const bool declared =
        std::any_of(config->input().begin(), config->input().end(),
                    [&](const inference::ModelInput& in) { return in.name() == t.name; });
    if (!declared) {
      problems.Invalid(absl::StrCat("input '", t.name, "'"),
                       absl::StrCat("the model needs it (", Describe(t),
                                    ") but the configuration does not declare it (declare it, or "
                                    "list no inputs to take them all from the model)"));
    }
  }
  // Unlike inputs, a configuration may expose only some of the model's outputs.
  if (config->output().empty()) {
    for (const BackendTensorInfo& t : outputs) config->add_output()->set_name(t.name);
  }
  for (inference::ModelOutput& output : *config->mutable_output()) {
    const BackendTensorInfo* model = Find(outputs, output.name());
    if (model == nullptr) {
      problems.Invalid(
          absl::StrCat("output '", output.name(), "'"),
          absl::StrCat("not an output of the model (its outputs: ", DescribeAll(outputs), ")"));
      continue;
    }
    CompleteTensor("output", *model, batched, &output, &problems);
  }

  if (config->max_batch_size() > 1 &&
      config->scheduling_choice_case() == inference::ModelConfig::SCHEDULING_CHOICE_NOT_SET) {
    config->mutable_dynamic_batching();
  }
  if (config->instance_group().empty()) {
    auto* group = config->add_instance_group();
    group->set_count(1);
    group->set_kind(inference::ModelInstanceGroup::KIND_CPU);
  }
  for (int i = 0; i < config->instance_group_size(); ++i) {
    inference::ModelInstanceGroup* group = config->mutable_instance_group(i);
    if (group->name().empty()) group->set_name(absl::StrCat(config->name(), "_", i));
    if (group->count() == 0) group->set_count(1);
    if (group->kind() == inference::ModelInstanceGroup::KIND_AUTO) {
      group->set_kind(inference::ModelInstanceGroup::KIND_CPU);
    }
  }
  if (config->version_policy().policy_choice_case() ==
      inference::ModelVersionPolicy::POLICY_CHOICE_NOT_SET) {
    config->mutable_version_policy()->mutable_latest()->set_num_versions(1);
  }

  // What could only be checked once max_batch_size and the inputs were known.
  if (!batched) {
    if (config->has_dynamic_batching() &&
        !config->dynamic_batching().preferred_batch_size().empty()) {
      problems.Invalid("dynamic_batching.preferred_batch_size",
                       "set, but the model does not batch (max_batch_size is 0)");
    }
    for (const inference::ModelWarmup& warmup : config->model_warmup()) {
      if (warmup.batch_size() > 1) {
        problems.Invalid(absl::StrCat("model_warmup '", warmup.name(), "'.batch_size"),
                         absl::StrCat(warmup.batch_size(),
                                      ", but the model does not batch (max_batch_size is 0)"));
      }
    }
  }
  config_internal::CheckWarmupAgainstConfig(*config, &problems);
  return problems.ToStatus();
}

}  // namespace flywheel::serving
