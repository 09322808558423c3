// Ensembles (Triton's platform "ensemble"): a model whose execution is a graph of steps, each a
// request to another loaded model. The wiring is checked against the step models once, at load;
// at run time each step goes to its model's own scheduler as soon as its inputs exist, so
// independent steps run in parallel, dynamic batching applies to steps, and tensors pass from
// step to step without copies.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model_config.pb.h"
#include "serving/infer.h"
#include "serving/scheduler.h"
#include "serving/stats.h"

namespace flywheel::serving {

// A serving step model as an ensemble sees it when it loads.
struct StepModelInfo {
  std::string version;
  // Completed (what GET .../config returns).
  inference::ModelConfig config;
};

// How an ensemble reaches the models its steps name; serving::Server provides it. Step models are
// resolved by name at run time, so a step model's reload is picked up without reloading the
// ensemble.
class StepModels {
 public:
  virtual ~StepModels() = default;
  // The version of `model` that serves `version` (-1: the highest serving version).
  virtual absl::StatusOr<StepModelInfo> DescribeStep(const std::string& model,
                                                     int64_t version) const = 0;
  // Validates and schedules a request on the model version it names, as Server::Infer does;
  // `done` is called exactly once.
  virtual void RouteStep(std::unique_ptr<InferRequest> request, InferCallback done) = 0;
};

// An ensemble's wiring, resolved to indices. Ensemble tensors (its inputs and every step output
// it maps) are numbered slots.
struct EnsemblePlan {
  // A step tensor name and the slot it reads or writes.
  struct Binding {
    std::string name;
    int slot = -1;
  };
  struct Step {
    std::string model;
    // "" for the latest version (model_version -1).
    std::string version;
    std::vector<Binding> inputs;
    std::vector<Binding> outputs;
    // "step[1] (model 'rank')", for errors.
    std::string label;
  };

  std::string name;
  std::string version;
  int max_batch_size = 0;
  std::vector<Step> steps;
  std::vector<std::string> slot_names;
  // The slot of each ensemble input and output, in declaration order.
  std::vector<int> input_slots;
  std::vector<int> output_slots;
  std::vector<IOSpec> outputs;
  // The step that writes each slot (-1: an ensemble input).
  std::vector<int> producer;
  // Per slot, the steps that read it, once per binding.
  std::vector<std::vector<int>> consumers;
};

// The distinct model names `config`'s steps use, sorted.
std::vector<std::string> EnsembleStepModels(const inference::ModelConfig& config);

// Checks an ensemble's wiring against the step models serving now (each exists; input_map and
// output_map name real step inputs and outputs; every required step input is mapped; data types
// and shapes agree along every edge and with the declared outputs; max_batch_size is at most
// every step model's) and builds its plan. REQUIRES: `config` passed ValidateModelConfig. Errors
// read "<source>: ensemble_scheduling.step[i].<field>: <problem>; ...".
absl::StatusOr<std::shared_ptr<const EnsemblePlan>> BuildEnsemblePlan(
    const inference::ModelConfig& config, const std::string& version, const std::string& source,
    const StepModels& models);

// Runs requests through a plan. Thread-safe; holds no thread of its own (steps complete on the
// step models' scheduler threads, which dispatch the steps that become ready).
class Ensemble {
 public:
  // `models` must outlive every request enqueued here.
  Ensemble(std::shared_ptr<const EnsemblePlan> plan, StepModels* models,
           std::shared_ptr<ModelStats> stats);

  // REQUIRES: `request` passed ValidateRequest against the ensemble's inputs and outputs. `done`
  // is called exactly once: with the ensemble's outputs, or with the first step error (naming
  // the step and its model).
  void Enqueue(std::unique_ptr<InferRequest> request, InferCallback done);

  const EnsemblePlan& plan() const { return *plan_; }

 private:
  std::shared_ptr<const EnsemblePlan> plan_;
  StepModels* models_;
  std::shared_ptr<ModelStats> stats_;
};

}  // namespace flywheel::serving
