// Ensemble configurations: the structural checks ValidateModelConfig runs on the file (steps,
// maps, one producer per tensor, no missing tensor, no cycle) and, at load, the checks against
// the step models serving then, which end in the ensemble's plan.
#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "serving/ensemble.h"
#include "serving/model_config.h"
#include "serving/model_config_checks.h"
#include "serving/repository.h"

namespace flywheel::serving {
namespace {

using config_internal::DimsString;
using config_internal::Problems;
using config_internal::TensorField;

// One entry of a step's input_map or output_map: the step model's tensor and the ensemble's.
struct MapEntry {
  std::string key;
  std::string tensor;
};

// Proto maps iterate in no fixed order; sorting keeps errors and plans the same on every load.
std::vector<MapEntry> Sorted(const google::protobuf::Map<std::string, std::string>& map) {
  std::vector<MapEntry> out;
  out.reserve(map.size());
  for (const auto& [key, tensor] : map) out.push_back({key, tensor});
  std::sort(out.begin(), out.end(),
            [](const MapEntry& a, const MapEntry& b) { return a.key < b.key; });
  return out;
}

std::string StepField(int step) { return absl::StrCat("ensemble_scheduling.step[", step, "]"); }

std::string MapField(int step, const char* map, const std::string& key) {
  return absl::StrCat(StepField(step), ".", map, "['", key, "']");
}

std::string Quoted(const std::set<std::string>& names) {
  if (names.empty()) return "none";
  return absl::StrJoin(names, ", ", [](std::string* out, const std::string& name) {
    absl::StrAppend(out, "'", name, "'");
  });
}

// The ensemble's tensors and steps as a graph: who produces each tensor and an order in which
// every step's inputs exist before it runs.
struct Wiring {
  std::vector<std::vector<MapEntry>> inputs;
  std::vector<std::vector<MapEntry>> outputs;
  std::set<std::string> ensemble_inputs;
  std::map<std::string, int> producer;
  // Steps in an order that runs each after the steps it reads from; complete when valid.
  std::vector<int> order;
};

// Builds the wiring and reports what makes it unusable: a tensor produced twice or produced as
// an ensemble input, a step input nothing produces, an ensemble output no step produces, cycles.
Wiring Analyze(const inference::ModelConfig& config, Problems* problems) {
  Wiring w;
  const auto& steps = config.ensemble_scheduling().step();
  for (const inference::ModelInput& input : config.input()) w.ensemble_inputs.insert(input.name());
  for (int i = 0; i < steps.size(); ++i) {
    w.inputs.push_back(Sorted(steps[i].input_map()));
    w.outputs.push_back(Sorted(steps[i].output_map()));
    for (const MapEntry& out : w.outputs.back()) {
      if (out.tensor.empty()) continue;
      if (w.ensemble_inputs.count(out.tensor) != 0) {
        problems->Invalid(
            MapField(i, "output_map", out.key),
            absl::StrCat("'", out.tensor, "' is an ensemble input; a step cannot produce it"));
        continue;
      }
      auto [it, inserted] = w.producer.emplace(out.tensor, i);
      if (!inserted) {
        problems->Invalid(MapField(i, "output_map", out.key),
                          absl::StrCat("tensor '", out.tensor, "' is also produced by step[",
                                       it->second, "] (each ensemble tensor has one producer)"));
      }
    }
  }
  std::set<std::string> read;
  for (int i = 0; i < steps.size(); ++i) {
    for (const MapEntry& in : w.inputs[i]) {
      if (in.tensor.empty()) continue;
      read.insert(in.tensor);
      if (w.ensemble_inputs.count(in.tensor) == 0 && w.producer.count(in.tensor) == 0) {
        problems->Invalid(MapField(i, "input_map", in.key),
                          absl::StrCat("tensor '", in.tensor,
                                       "' is neither an ensemble input nor mapped from any step's "
                                       "output (ensemble inputs: ",
                                       Quoted(w.ensemble_inputs), ")"));
      }
    }
  }
  std::set<std::string> outputs;
  for (int j = 0; j < config.output_size(); ++j) {
    const std::string& name = config.output(j).name();
    outputs.insert(name);
    if (!name.empty() && w.producer.count(name) == 0) {
      problems->Invalid(TensorField("output", j, name),
                        absl::StrCat("not produced by any step (no step's output_map maps a model "
                                     "output to '",
                                     name, "')"));
    }
  }
  for (int j = 0; j < config.input_size(); ++j) {
    const std::string& name = config.input(j).name();
    if (!name.empty() && read.count(name) == 0) {
      problems->Warn(TensorField("input", j, name), "not read by any step");
    }
  }
  for (const auto& [tensor, step] : w.producer) {
    if (read.count(tensor) == 0 && outputs.count(tensor) == 0) {
      problems->Warn(
          StepField(step) + ".output_map",
          absl::StrCat("tensor '", tensor, "' is neither read by a step nor an ensemble output"));
    }
  }

  // Kahn's order: a step is ready once every tensor it reads is an input or already produced.
  std::set<std::string> available = w.ensemble_inputs;
  std::vector<bool> done(steps.size(), false);
  for (bool progress = true; progress;) {
    progress = false;
    for (int i = 0; i < steps.size(); ++i) {
      if (done[i]) continue;
      const bool ready = std::all_of(w.inputs[i].begin(), w.inputs[i].end(), [&](const auto& in) {
        return available.count(in.tensor) != 0;
      });
      if (!ready) continue;
      done[i] = true;
      progress = true;
      w.order.push_back(i);
      for (const MapEntry& out : w.outputs[i]) available.insert(out.tensor);
    }
  }
  // Steps left over whose every input has a producer wait on each other: a cycle. (Steps reading
  // a tensor nothing produces were reported above.)
  std::vector<std::string> cyclic;
  std::set<std::string> through;
  for (int i = 0; i < steps.size(); ++i) {
    if (done[i]) continue;
    bool resolvable = true;
    for (const MapEntry& in : w.inputs[i]) {
      if (w.ensemble_inputs.count(in.tensor) != 0) continue;
      auto p = w.producer.find(in.tensor);
      if (p == w.producer.end()) {
        resolvable = false;
      } else if (!done[p->second]) {
        through.insert(in.tensor);
      }
    }
    if (resolvable) cyclic.push_back(absl::StrCat("step[", i, "]"));
  }
  if (!cyclic.empty()) {
    problems->Invalid("ensemble_scheduling.step",
                      absl::StrCat(absl::StrJoin(cyclic, ", "),
                                   " wait on each other's outputs (a cycle through tensors ",
                                   Quoted(through), ")"));
  }
  return w;
}

// Ensemble inputs and outputs are declared in full: nothing completes them from a model.
template <typename Tensors>
void CheckDeclared(const char* kind, const Tensors& tensors, Problems* problems) {
  if (tensors.empty()) {
    problems->Invalid(kind, absl::StrCat("none declared (an ensemble declares every ", kind,
                                         " with its data_type and dims)"));
  }
  for (int i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    const std::string field = TensorField(kind, i, t.name());
    if (t.data_type() == inference::TYPE_INVALID) {
      problems->Invalid(field + ".data_type",
                        "not set (an ensemble's inputs and outputs are not completed from a "
                        "model; declare them in full)");
    }
    if (t.dims().empty()) {
      problems->Invalid(field + ".dims",
                        "not set (an ensemble's inputs and outputs are not completed from a "
                        "model; declare them in full)");
    }
    if (t.has_reshape()) {
      problems->Unsupported(field + ".reshape",
                            "an ensemble passes tensors on as they are; put the reshape in the "
                            "step model's configuration");
    }
  }
}

void CheckStep(const inference::ModelConfig& config, int i, Problems* problems) {
  const inference::ModelEnsembling::Step& step = config.ensemble_scheduling().step(i);
  const std::string field = StepField(i);
  if (step.model_name().empty()) {
    problems->Invalid(field + ".model_name", "not set");
  } else if (absl::Status valid = ValidateModelName(step.model_name()); !valid.ok()) {
    problems->Invalid(field + ".model_name", std::string(valid.message()));
  } else if (step.model_name() == config.name()) {
    problems->Invalid(field + ".model_name", "names the ensemble itself");
  }
  if (step.model_version() < -1 || step.model_version() == 0) {
    problems->Invalid(field + ".model_version",
                      absl::StrCat(step.model_version(),
                                   " is not a version (a positive version, or -1 for the latest)"));
  }
  if (!step.model_namespace().empty()) {
    problems->Unsupported(field + ".model_namespace", "model namespaces");
  }
  if (step.input_map().empty()) {
    problems->Invalid(field + ".input_map", "empty (a step reads at least one ensemble tensor)");
  }
  if (step.output_map().empty()) {
    problems->Invalid(field + ".output_map",
                      "empty (a step maps at least one model output to an ensemble tensor)");
  }
  for (const auto* map : {&step.input_map(), &step.output_map()}) {
    const char* name = map == &step.input_map() ? "input_map" : "output_map";
    for (const MapEntry& e : Sorted(*map)) {
      if (e.key.empty()) {
        problems->Invalid(absl::StrCat(field, ".", name), "an entry has an empty key");
      } else if (e.tensor.empty()) {
        problems->Invalid(MapField(i, name, e.key), "the ensemble tensor name is empty");
      }
    }
  }
}

// The full shape of a declared tensor: with -1 for the batch dimension when its model batches.
std::vector<int64_t> FullDims(bool batched, absl::Span<const int64_t> dims) {
  std::vector<int64_t> out;
  out.reserve(dims.size() + 1);
  if (batched) out.push_back(-1);
  for (int64_t d : dims) out.push_back(d);
  return out;
}

bool DimsCompatible(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  if (a.size() != b.size()) return false;
  for (size_t k = 0; k < a.size(); ++k) {
    if (a[k] != b[k] && a[k] != -1 && b[k] != -1) return false;
  }
  return true;
}

// What is known of an ensemble tensor while the steps are checked in order.
struct TensorType {
  inference::DataType type = inference::TYPE_INVALID;
  std::vector<int64_t> dims;
  std::string what;
};

std::string TypeString(inference::DataType type, const std::vector<int64_t>& dims) {
  return absl::StrCat(ConfigDataTypeName(type), " ", DimsString(dims));
}

template <typename Tensors>
std::string Describe(const Tensors& tensors, bool batched) {
  if (tensors.empty()) return "none";
  return absl::StrJoin(tensors, ", ", [batched](std::string* out, const auto& t) {
    absl::StrAppend(out, "'", t.name(), "' ",
                    TypeString(t.data_type(), FullDims(batched, t.dims())));
  });
}

template <typename Tensors>
auto FindTensor(const Tensors& tensors, const std::string& name) -> decltype(&tensors[0]) {
  for (const auto& t : tensors) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

// The checks against one step model; records the types of the tensors the step produces.
void CheckStepAgainstModel(const inference::ModelConfig& ensemble, int i, const Wiring& w,
                           const StepModelInfo& info, std::map<std::string, TensorType>* known,
                           Problems* problems) {
  const inference::ModelEnsembling::Step& step = ensemble.ensemble_scheduling().step(i);
  const inference::ModelConfig& model = info.config;
  const std::string field = StepField(i);
  const std::string who = absl::StrCat("model '", step.model_name(), "' version ", info.version);
  const bool batched = model.max_batch_size() > 0;
  const int ensemble_batch = ensemble.max_batch_size();
  if (ensemble_batch > 0 && !batched) {
    problems->Invalid(field, absl::StrCat(who,
                                          " does not batch (max_batch_size 0) but the ensemble "
                                          "does (max_batch_size ",
                                          ensemble_batch,
                                          "); set the ensemble's max_batch_size "
                                          "to 0 and give full shapes"));
  } else if (ensemble_batch > model.max_batch_size() && batched) {
    problems->Invalid("max_batch_size",
                      absl::StrCat(ensemble_batch, " is larger than ", who, "'s max_batch_size ",
                                   model.max_batch_size(), " in ", field,
                                   " (an ensemble's max_batch_size is at most every step "
                                   "model's)"));
  }
  std::set<std::string> mapped;
  for (const MapEntry& in : w.inputs[i]) {
    mapped.insert(in.key);
    const inference::ModelInput* input = FindTensor(model.input(), in.key);
    if (input == nullptr) {
      problems->Invalid(MapField(i, "input_map", in.key),
                        absl::StrCat("not an input of ", who,
                                     " (its inputs: ", Describe(model.input(), batched), ")"));
      continue;
    }
    auto t = known->find(in.tensor);
    if (t == known->end()) continue;  // its producer failed a check already
    const std::vector<int64_t> wanted = FullDims(batched, input->dims());
    if (t->second.type != input->data_type() || !DimsCompatible(t->second.dims, wanted)) {
      problems->Invalid(
          MapField(i, "input_map", in.key),
          absl::StrCat("tensor '", in.tensor, "' (", t->second.what, ") is ",
                       TypeString(t->second.type, t->second.dims), ", but ", who, " input '",
                       in.key, "' takes ", TypeString(input->data_type(), wanted)));
    }
  }
  for (const inference::ModelInput& input : model.input()) {
    if (!input.optional() && mapped.count(input.name()) == 0) {
      problems->Invalid(field + ".input_map",
                        absl::StrCat(who, " input '", input.name(),
                                     "' is required but not mapped from an ensemble tensor"));
    }
  }
  for (const MapEntry& out : w.outputs[i]) {
    const inference::ModelOutput* output = FindTensor(model.output(), out.key);
    if (output == nullptr) {
      problems->Invalid(MapField(i, "output_map", out.key),
                        absl::StrCat("not an output of ", who,
                                     " (its outputs: ", Describe(model.output(), batched), ")"));
      continue;
    }
    (*known)[out.tensor] = {output->data_type(), FullDims(batched, output->dims()),
                            absl::StrCat("output '", out.key, "' of ", field, " ", who)};
  }
}

// The chain of steps through which ensemble `config` runs the ensemble `name` again, if it does:
// running it would never end, so such an ensemble does not load.
std::string CycleThrough(const std::string& name, const inference::ModelConfig& config,
                         const StepModels& models, int depth) {
  constexpr int kMaxDepth = 16;
  for (const auto& step : config.ensemble_scheduling().step()) {
    if (step.model_name() == name) return absl::StrCat("'", config.name(), "' -> '", name, "'");
    if (depth >= kMaxDepth)
      return absl::StrCat("'", config.name(), "' -> ... (over ", kMaxDepth, " ensembles deep)");
    absl::StatusOr<StepModelInfo> info =
        models.DescribeStep(step.model_name(), step.model_version());
    if (!info.ok() || PlatformOf(info->config) != ModelPlatform::kEnsemble) continue;
    std::string rest = CycleThrough(name, info->config, models, depth + 1);
    if (!rest.empty()) return absl::StrCat("'", config.name(), "' -> ", rest);
  }
  return "";
}

}  // namespace

namespace config_internal {

void CheckEnsembleConfig(const inference::ModelConfig& config, Problems* problems) {
  CheckDeclared("input", config.input(), problems);
  CheckDeclared("output", config.output(), problems);
  for (int i = 0; i < config.input_size(); ++i) {
    if (config.input(i).optional()) {
      problems->Unsupported(TensorField("input", i, config.input(i).name()) + ".optional",
                            "every ensemble input is required");
    }
  }
  for (const auto& [key, value] : config.parameters()) {
    problems->Warn(absl::StrCat("parameters.", key), "not used by ensembles");
  }
  if (!config.model_warmup().empty()) {
    problems->Unsupported("model_warmup",
                          "ensembles are not warmed up; warm up their step models instead");
  }
  if (!config.instance_group().empty()) {
    problems->Warn("instance_group",
                   "an ensemble runs each step on its step model's instances; ignored");
  }
  if (!config.has_ensemble_scheduling()) {
    problems->Invalid("ensemble_scheduling",
                      "not set (an ensemble lists its steps in ensemble_scheduling { step [ ... ] "
                      "})");
    return;
  }
  const inference::ModelEnsembling& ensembling = config.ensemble_scheduling();
  if (ensembling.max_inflight_responses() != 0) {
    problems->Warn("ensemble_scheduling.max_inflight_responses",
                   "limits responses of decoupled models, which flywheel does not serve; ignored");
  }
  if (ensembling.step().empty()) {
    problems->Invalid("ensemble_scheduling.step", "no step is listed");
    return;
  }
  for (int i = 0; i < ensembling.step_size(); ++i) CheckStep(config, i, problems);
  Analyze(config, problems);
}

}  // namespace config_internal

std::vector<std::string> EnsembleStepModels(const inference::ModelConfig& config) {
  std::set<std::string> names;
  for (const auto& step : config.ensemble_scheduling().step()) {
    if (!step.model_name().empty()) names.insert(step.model_name());
  }
  return {names.begin(), names.end()};
}

absl::StatusOr<std::shared_ptr<const EnsemblePlan>> BuildEnsemblePlan(
    const inference::ModelConfig& config, const std::string& version, const std::string& source,
    const StepModels& models) {
  Problems problems(source);
  const Wiring w = Analyze(config, &problems);
  if (!problems.empty()) return problems.ToStatus();
  const bool batched = config.max_batch_size() > 0;
  const auto& steps = config.ensemble_scheduling().step();

  std::map<std::string, TensorType> known;
  for (const inference::ModelInput& input : config.input()) {
    known[input.name()] = {input.data_type(), FullDims(batched, input.dims()),
                           absl::StrCat("ensemble input '", input.name(), "'")};
  }
  for (int i : w.order) {
    const inference::ModelEnsembling::Step& step = steps[i];
    absl::StatusOr<StepModelInfo> info =
        models.DescribeStep(step.model_name(), step.model_version());
    if (!info.ok()) {
      problems.Invalid(StepField(i) + ".model_name",
                       absl::StrCat(info.status().message(),
                                    " (step models must be loaded before the ensemble)"));
      continue;
    }
    if (PlatformOf(info->config) == ModelPlatform::kEnsemble) {
      const std::string cycle = CycleThrough(config.name(), info->config, models, 1);
      if (!cycle.empty()) {
        problems.Invalid(StepField(i) + ".model_name",
                         absl::StrCat("ensemble '", step.model_name(),
                                      "' runs this ensemble again (", cycle, "): a cycle"));
      }
    }
    CheckStepAgainstModel(config, i, w, *info, &known, &problems);
  }
  for (int j = 0; j < config.output_size(); ++j) {
    const inference::ModelOutput& output = config.output(j);
    auto t = known.find(output.name());
    if (t == known.end()) continue;
    const std::vector<int64_t> declared = FullDims(batched, output.dims());
    if (t->second.type != output.data_type() || !DimsCompatible(t->second.dims, declared)) {
      problems.Invalid(
          TensorField("output", j, output.name()),
          absl::StrCat("declared ", TypeString(output.data_type(), declared), ", but ",
                       t->second.what, " is ", TypeString(t->second.type, t->second.dims)));
    }
  }
  if (!problems.empty()) return problems.ToStatus();

  auto plan = std::make_shared<EnsemblePlan>();
  plan->name = config.name();
  plan->version = version;
  plan->max_batch_size = config.max_batch_size();
  std::map<std::string, int> slots;
  auto add_slot = [&](const std::string& name, int producer) {
    slots[name] = static_cast<int>(plan->slot_names.size());
    plan->slot_names.push_back(name);
    plan->producer.push_back(producer);
    return slots[name];
  };
  for (const inference::ModelInput& input : config.input()) {
    plan->input_slots.push_back(add_slot(input.name(), -1));
  }
  for (int i = 0; i < steps.size(); ++i) {
    for (const MapEntry& out : w.outputs[i]) add_slot(out.tensor, i);
  }
  plan->consumers.resize(plan->slot_names.size());
  for (int i = 0; i < steps.size(); ++i) {
    EnsemblePlan::Step step;
    step.model = steps[i].model_name();
    if (steps[i].model_version() > 0) step.version = absl::StrCat(steps[i].model_version());
    step.label = absl::StrCat("step[", i, "] (model '", step.model, "')");
    for (const MapEntry& in : w.inputs[i]) {
      const int slot = slots.at(in.tensor);
      step.inputs.push_back({in.key, slot});
      plan->consumers[slot].push_back(i);
    }
    for (const MapEntry& out : w.outputs[i])
      step.outputs.push_back({out.key, slots.at(out.tensor)});
    plan->steps.push_back(std::move(step));
  }
  for (const inference::ModelOutput& output : config.output()) {
    plan->output_slots.push_back(slots.at(output.name()));
  }
  plan->outputs = OutputSpecs(config);
  return std::shared_ptr<const EnsemblePlan>(std::move(plan));
}

}  // namespace flywheel::serving
