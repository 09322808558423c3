// Ensemble execution: one EnsembleRun per request holds the ensemble tensors (shared, never
// copied), how many inputs each step still waits for, and the steps not yet finished. Whoever
// completes a step (a step model's scheduler thread) stores its outputs and dispatches the steps
// that became ready; the last one answers the request.
#include "serving/ensemble.h"

#include <chrono>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace flywheel::serving {
namespace {

int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int FindOutput(const EnsemblePlan& plan, const std::string& name) {
  for (size_t j = 0; j < plan.outputs.size(); ++j) {
    if (plan.outputs[j].name == name) return static_cast<int>(j);
  }
  return -1;
}

bool ShapeFits(const IOSpec& spec, const Tensor& t, bool batched) {
  const int offset = batched ? 1 : 0;
  if (t.dtype() != spec.dtype || t.rank() != static_cast<int>(spec.dims.size()) + offset) {
    return false;
  }
  for (size_t k = 0; k < spec.dims.size(); ++k) {
    if (spec.dims[k] >= 0 && spec.dims[k] != t.dim(static_cast<int>(k) + offset)) return false;
  }
  return true;
}

struct EnsembleRun {
  std::shared_ptr<const EnsemblePlan> plan;
  std::shared_ptr<ModelStats> stats;
  StepModels* models = nullptr;
  std::unique_ptr<InferRequest> request;
  InferCallback done;
  int64_t start_ns = 0;
  int64_t rows = 1;
  // The ensemble outputs to return (indices into plan->outputs) and their binary_data flags.
  std::vector<std::pair<int, bool>> wanted;
  // Steps and slots this request needs: the producers of the wanted outputs, transitively.
  std::vector<char> step_needed;
  std::vector<char> slot_needed;

  std::mutex mu;
  std::vector<Tensor> slots;
  // Per needed step, the input bindings whose tensor does not exist yet.
  std::vector<int> missing;
  int outstanding = 0;
  bool finished = false;
};

void Dispatch(const std::shared_ptr<EnsembleRun>& run, int s);

// Answers the request once; later calls (branches still running after a failure) do nothing.
void Finish(const std::shared_ptr<EnsembleRun>& run, absl::StatusOr<InferResponse> result) {
  {
    std::lock_guard<std::mutex> lock(run->mu);
    if (run->finished) return;
    run->finished = true;
    // Tensors no response refers to are released now, not when the last branch returns.
    run->slots.clear();
  }
  ModelStats& stats = *run->stats;
  const uint64_t duration_ns = static_cast<uint64_t>(SteadyNowNs() - run->start_ns);
  if (result.ok()) {
    stats.success.Add(duration_ns);
    stats.latency_us.Observe(static_cast<double>(duration_ns) / 1000.0);
    stats.inference_count.fetch_add(static_cast<uint64_t>(run->rows), std::memory_order_relaxed);
    stats.execution_count.fetch_add(1, std::memory_order_relaxed);
    stats.last_inference_ms.store(WallClockMs(), std::memory_order_relaxed);
  } else {
    stats.fail.Add(duration_ns);
    if (result.status().code() == absl::StatusCode::kInternal) {
      stats.fail_backend.fetch_add(1, std::memory_order_relaxed);
    } else {
      stats.fail_other.fetch_add(1, std::memory_order_relaxed);
    }
  }
  stats.pending.fetch_sub(1, std::memory_order_relaxed);
  run->request.reset();
  InferCallback done = std::move(run->done);
  done(std::move(result));
}

void FailStep(const std::shared_ptr<EnsembleRun>& run, int s, const absl::Status& status) {
  const EnsemblePlan& plan = *run->plan;
  Finish(run,
         absl::Status(status.code(), absl::StrCat("ensemble '", plan.name, "' ",
                                                  plan.steps[s].label, ": ", status.message())));
}

void Complete(const std::shared_ptr<EnsembleRun>& run) {
  const EnsemblePlan& plan = *run->plan;
  const bool batched = plan.max_batch_size > 0;
  InferResponse response;
  response.model_name = plan.name;
  response.model_version = plan.version;
  absl::Status error;
  {
    std::lock_guard<std::mutex> lock(run->mu);
    if (run->finished) return;
    response.id = run->request->id;
    response.outputs.reserve(run->wanted.size());
    for (const auto& [j, binary_data] : run->wanted) {
      const IOSpec& spec = plan.outputs[j];
      const Tensor& t = run->slots[plan.output_slots[j]];
      // A step model reloaded with other shapes since the ensemble loaded is caught here.
      if (!ShapeFits(spec, t, batched)) {
        std::vector<int64_t> dims = spec.dims;
        if (batched) dims.insert(dims.begin(), -1);
        error = absl::InternalError(absl::StrCat(
            "ensemble '", plan.name, "' output '", spec.name,
            "': ", plan.steps[plan.producer[plan.output_slots[j]]].label, " produced ",
            t.empty() ? std::string("nothing") : t.DebugString(), ", the ensemble declares ",
            DataTypeName(spec.dtype), " [", absl::StrJoin(dims, ","), "]"));
        break;
      }
      response.outputs.push_back({spec.name, t, binary_data});
    }
  }
  if (!error.ok()) {
    Finish(run, error);
    return;
  }
  Finish(run, std::move(response));
}

void OnStepDone(const std::shared_ptr<EnsembleRun>& run, int s,
                absl::StatusOr<InferResponse> result) {
  if (!result.ok()) {
    FailStep(run, s, result.status());
    return;
  }
  const EnsemblePlan& plan = *run->plan;
  const EnsemblePlan::Step& step = plan.steps[s];
  std::vector<int> ready;
  bool complete = false;
  {
    std::lock_guard<std::mutex> lock(run->mu);
    if (run->finished) return;
    for (InferOutput& out : result->outputs) {
      for (const EnsemblePlan::Binding& b : step.outputs) {
        if (b.name != out.name || !run->slot_needed[b.slot]) continue;
        run->slots[b.slot] = std::move(out.data);
        for (int c : plan.consumers[b.slot]) {
          if (run->missing[c] > 0 && --run->missing[c] == 0) ready.push_back(c);
        }
        break;
      }
    }
    complete = --run->outstanding == 0;
  }
  if (complete) {
    Complete(run);
    return;
  }
  for (int c : ready) Dispatch(run, c);
}

void Dispatch(const std::shared_ptr<EnsembleRun>& run, int s) {
  const EnsemblePlan::Step& step = run->plan->steps[s];
  auto request = std::make_unique<InferRequest>();
  request->model_name = step.model;
  request->model_version = step.version;
  {
    std::lock_guard<std::mutex> lock(run->mu);
    if (run->finished) return;
    const InferRequest& parent = *run->request;
    request->id = parent.id;
    request->priority = parent.priority;
    request->timeout_us = parent.timeout_us;
    // Request inputs may be views on the request body: the step keeps it alive too.
    request->body = parent.body;
    request->inputs.reserve(step.inputs.size());
    for (const EnsemblePlan::Binding& b : step.inputs) {
      request->inputs.push_back({b.name, run->slots[b.slot], {}});
    }
  }
  for (const EnsemblePlan::Binding& b : step.outputs) {
    if (run->slot_needed[b.slot]) request->outputs.push_back({b.name, false, {}});
  }
  request->arrival_ns = SteadyNowNs();
  run->models->RouteStep(std::move(request), [run, s](absl::StatusOr<InferResponse> result) {
    OnStepDone(run, s, std::move(result));
  });
}

}  // namespace

Ensemble::Ensemble(std::shared_ptr<const EnsemblePlan> plan, StepModels* models,
                   std::shared_ptr<ModelStats> stats)
    : plan_(std::move(plan)), models_(models), stats_(std::move(stats)) {}

void Ensemble::Enqueue(std::unique_ptr<InferRequest> request, InferCallback done) {
  const EnsemblePlan& plan = *plan_;
  const int64_t now = SteadyNowNs();
  auto run = std::make_shared<EnsembleRun>();
  run->plan = plan_;
  run->stats = stats_;
  run->models = models_;
  run->start_ns = request->arrival_ns > 0 && request->arrival_ns <= now ? request->arrival_ns : now;
  run->done = std::move(done);
  stats_->pending.fetch_add(1, std::memory_order_relaxed);

  if (request->outputs.empty()) {
    for (size_t j = 0; j < plan.outputs.size(); ++j) {
      run->wanted.push_back({static_cast<int>(j), false});
    }
  } else {
    for (const RequestedOutput& out : request->outputs) {
      const int j = FindOutput(plan, out.name);
      if (j < 0) {
        Finish(run, absl::InvalidArgumentError(absl::StrCat(
                        "ensemble '", plan.name, "': unknown output '", out.name, "' requested")));
        return;
      }
      run->wanted.push_back({j, out.binary_data});
    }
  }
  const size_t num_slots = plan.slot_names.size();
  run->slots.resize(num_slots);
  for (InferInput& input : request->inputs) {
    for (int slot : plan.input_slots) {
      if (plan.slot_names[slot] == input.name) run->slots[slot] = input.data;
    }
  }
  if (plan.max_batch_size > 0 && !request->inputs.empty()) {
    run->rows = request->inputs[0].data.dim(0);
  }
  run->request = std::move(request);

  // Walk back from the wanted outputs: only the steps they depend on run.
  run->step_needed.assign(plan.steps.size(), 0);
  run->slot_needed.assign(num_slots, 0);
  std::vector<int> pending_slots;
  for (const auto& [j, binary] : run->wanted) pending_slots.push_back(plan.output_slots[j]);
  while (!pending_slots.empty()) {
    const int slot = pending_slots.back();
    pending_slots.pop_back();
    if (run->slot_needed[slot]) continue;
    run->slot_needed[slot] = 1;
    const int producer = plan.producer[slot];
    if (producer < 0 || run->step_needed[producer]) continue;
    run->step_needed[producer] = 1;
    for (const EnsemblePlan::Binding& b : plan.steps[producer].inputs) {
      pending_slots.push_back(b.slot);
    }
  }
  run->missing.assign(plan.steps.size(), -1);
  std::vector<int> ready;
  for (size_t s = 0; s < plan.steps.size(); ++s) {
    if (!run->step_needed[s]) continue;
    ++run->outstanding;
    int missing = 0;
    for (const EnsemblePlan::Binding& b : plan.steps[s].inputs) {
      if (plan.producer[b.slot] >= 0) ++missing;
    }
    run->missing[s] = missing;
    if (missing == 0) ready.push_back(static_cast<int>(s));
  }
  if (run->outstanding == 0) {
    Complete(run);
    return;
  }
  for (int s : ready) Dispatch(run, s);
}

}  // namespace flywheel::serving
