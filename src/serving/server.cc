// serving::Server: the model table (name -> serving versions and their states), request routing
// to each version's scheduler, and the repository, metadata and statistics extensions. Loading,
// reloading and polling live in model_manager.cc; metrics rendering in server_metrics.cc.
#include "serving/server.h"

#include <chrono>
#include <string>
#include <utility>
#include <variant>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "serving/server_impl.h"

namespace flywheel::serving {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

DurationFigure Figure(const DurationStat& s) {
  return {s.count.load(std::memory_order_relaxed), s.ns.load(std::memory_order_relaxed)};
}

ModelStatistics Collect(const ModelVersion& mv) {
  const ModelStats& s = *mv.stats;
  ModelStatistics out;
  out.name = mv.name;
  out.version = mv.version_string;
  out.last_inference_ms = static_cast<uint64_t>(s.last_inference_ms.load());
  out.inference_count = s.inference_count.load();
  out.execution_count = s.execution_count.load();
  out.success = Figure(s.success);
  out.fail = Figure(s.fail);
  out.queue = Figure(s.queue);
  out.compute_input = Figure(s.compute_input);
  out.compute_infer = Figure(s.compute_infer);
  out.compute_output = Figure(s.compute_output);
  std::lock_guard<std::mutex> lock(s.batch_mu);
  for (const auto& [size, b] : s.batches) {
    out.batch_stats.push_back(
        {size, Figure(b.compute_input), Figure(b.compute_infer), Figure(b.compute_output)});
  }
  return out;
}

}  // namespace

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { impl_->Stop(); }

absl::StatusOr<std::unique_ptr<Server>> Server::Create(ServerOptions options,
                                                       monitor::Registry* metrics) {
  auto impl = std::make_unique<Impl>(std::move(options), metrics);
  FW_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

bool Server::Live() const { return true; }

bool Server::Ready() const { return impl_->Ready(); }

ServerMetadata Server::Metadata() const {
  return {"flywheel",
          FLYWHEEL_VERSION,
          {"binary_tensor_data", "model_repository", "schedule_policy", "model_configuration",
           "statistics"}};
}

absl::StatusOr<ModelMetadata> Server::GetModelMetadata(const std::string& name,
                                                       const std::string& version) const {
  absl::ReaderMutexLock lock(&impl_->mu);
  FW_ASSIGN_OR_RETURN(const ModelVersion* mv, impl_->FindVersion(name, version));
  ModelMetadata meta = mv->metadata;
  meta.versions.clear();
  const ModelEntry& entry = impl_->models.at(name);
  for (const auto& [v, loaded] : entry.versions) meta.versions.push_back(loaded->version_string);
  return meta;
}

absl::StatusOr<bool> Server::ModelReady(const std::string& name, const std::string& version) const {
  absl::ReaderMutexLock lock(&impl_->mu);
  auto found = impl_->FindVersion(name, version);
  if (found.ok()) {
    std::string reason;
    return !impl_->draining.load() && impl_->StepsServing(**found, &reason);
  }
  if (absl::IsNotFound(found.status()) && impl_->models.count(name) == 0) return found.status();
  return false;
}

absl::Status Server::GetModelConfig(const std::string& name, const std::string& version,
                                    inference::ModelConfig* config) const {
  absl::ReaderMutexLock lock(&impl_->mu);
  FW_ASSIGN_OR_RETURN(const ModelVersion* mv, impl_->FindVersion(name, version));
  *config = mv->config;
  return absl::OkStatus();
}

void Server::Infer(std::unique_ptr<InferRequest> request, InferCallback done) {
  if (request->arrival_ns == 0) request->arrival_ns = NowNs();
  // A version (number or alias) may also come as the request parameter "model_version", for
  // clients that cannot put it in the path.
  if (request->model_version.empty()) {
    auto it = request->parameters.find("model_version");
    if (it != request->parameters.end()) {
      if (const std::string* label = std::get_if<std::string>(&it->second)) {
        request->model_version = *label;
      }
    }
  }
  if (impl_->draining.load(std::memory_order_acquire)) {
    done(absl::UnavailableError("the server is shutting down and accepts no new requests"));
    return;
  }
  // Count the request in flight until its callback runs, so that Drain can wait for it.
  impl_->in_flight.fetch_add(1, std::memory_order_acq_rel);
  Impl* impl = impl_.get();
  // Only requests that name no version are routed; a model without a split costs nothing more
  // here while no model has one, and one table lookup otherwise.
  if (request->model_version.empty() && impl->router.active()) {
    if (std::optional<RouteDecision> route = impl->router.Choose(*request)) {
      impl->InferRouted(std::move(request), std::move(*route), std::move(done));
      return;
    }
  }
  InferCallback finish = [impl, done = std::move(done)](absl::StatusOr<InferResponse> r) {
    done(std::move(r));
    impl->RequestFinished();
  };
  impl_->RouteStep(std::move(request), std::move(finish));
}

void Server::Impl::RouteStep(std::unique_ptr<InferRequest> request, InferCallback done) {
  std::shared_ptr<Ensemble> ensemble;
  {
    // The reader lock covers the scheduler lookup and the enqueue, so that a reload or unload
    // (which takes the lock exclusively) never retires a scheduler a request is being handed to.
    absl::ReaderMutexLock lock(&mu);
    auto found = FindVersion(request->model_name, request->model_version);
    if (!found.ok()) {
      done(found.status());
      return;
    }
    ModelVersion* mv = const_cast<ModelVersion*>(*found);
    absl::Status valid = ValidateRequest(mv->name, mv->config.max_batch_size(), mv->inputs,
                                         mv->outputs, request.get());
    if (!valid.ok()) {
      ModelStats& stats = *mv->stats;
      stats.fail.Add(static_cast<uint64_t>(NowNs() - request->arrival_ns));
      stats.fail_other.fetch_add(1, std::memory_order_relaxed);
      done(valid);
      return;
    }
    if (mv->ensemble == nullptr) {
      mv->scheduler->Enqueue(std::move(request), std::move(done));
      return;
    }
    // A retired ensemble keeps running what it was given: it holds its plan and routes each
    // step by name, so it needs no lock from here on.
    ensemble = mv->ensemble;
  }
  ensemble->Enqueue(std::move(request), std::move(done));
}

absl::StatusOr<StepModelInfo> Server::Impl::DescribeStep(const std::string& model,
                                                         int64_t version) const {
  absl::ReaderMutexLock lock(&mu);
  FW_ASSIGN_OR_RETURN(const ModelVersion* mv,
                      FindVersion(model, version > 0 ? absl::StrCat(version) : ""));
  return StepModelInfo{mv->version_string, mv->config};
}

bool Server::Impl::StepsServing(const ModelVersion& mv, std::string* reason, int depth) const {
  if (mv.ensemble == nullptr) return true;
  // Nesting deeper than this is a cycle made by reloads; the request path refuses it as well.
  constexpr int kMaxDepth = 16;
  if (depth > kMaxDepth) {
    *reason = absl::StrCat("ensembles nest more than ", kMaxDepth, " deep");
    return false;
  }
  for (const EnsemblePlan::Step& step : mv.ensemble->plan().steps) {
    auto found = FindVersion(step.model, step.version);
    if (!found.ok()) {
      *reason = absl::StrCat(step.label, ": ", found.status().message());
      return false;
    }
    if (!StepsServing(**found, reason, depth + 1)) {
      *reason = absl::StrCat(step.label, ": ", *reason);
      return false;
    }
  }
  return true;
}

bool Server::Impl::Serving(const std::string& name) const {
  absl::ReaderMutexLock lock(&mu);
  auto it = models.find(name);
  return it != models.end() && !it->second.versions.empty();
}

std::vector<ModelIndexEntry> Server::RepositoryIndex(bool ready_only) const {
  return impl_->Index(ready_only);
}

absl::Status Server::LoadModel(const std::string& name,
                               const std::optional<std::string>& config_json) {
  if (impl_->options.control_mode != ModelControlMode::kExplicit) {
    return absl::FailedPreconditionError(
        "explicit model load and unload are allowed only with --model-control-mode explicit");
  }
  return impl_->LoadByName(name, config_json);
}

absl::Status Server::ReloadModel(const std::string& name) {
  return impl_->LoadByName(name, std::nullopt);
}

absl::Status Server::UnloadModel(const std::string& name) {
  if (impl_->options.control_mode != ModelControlMode::kExplicit) {
    return absl::FailedPreconditionError(
        "explicit model load and unload are allowed only with --model-control-mode explicit");
  }
  return impl_->Unload(name, "unloaded by request");
}

absl::StatusOr<std::vector<ModelStatistics>> Server::Statistics(const std::string& name,
                                                                const std::string& version) const {
  absl::ReaderMutexLock lock(&impl_->mu);
  std::vector<ModelStatistics> out;
  if (name.empty()) {
    for (const auto& [model, entry] : impl_->models) {
      for (const auto& [v, mv] : entry.versions) out.push_back(Collect(*mv));
    }
    return out;
  }
  if (version.empty()) {
    auto it = impl_->models.find(name);
    if (it == impl_->models.end() || it->second.versions.empty()) {
      return absl::NotFoundError(absl::StrCat("model '", name, "' is not loaded"));
    }
    for (const auto& [v, mv] : it->second.versions) out.push_back(Collect(*mv));
    return out;
  }
  FW_ASSIGN_OR_RETURN(const ModelVersion* mv, impl_->FindVersion(name, version));
  out.push_back(Collect(*mv));
  return out;
}

absl::Status Server::SetTrafficSplit(const TrafficSplit& split) { return impl_->router.Set(split); }

absl::Status Server::ClearTrafficSplit(const std::string& model) {
  return impl_->router.Clear(model);
}

std::optional<TrafficSplit> Server::GetTrafficSplit(const std::string& model) const {
  return impl_->router.Get(model);
}

std::vector<RouteFigures> Server::RouteStatistics(const std::string& model) const {
  return impl_->router.Figures(model);
}

bool Server::Drain(int64_t timeout_ms) { return impl_->Drain(timeout_ms); }

}  // namespace flywheel::serving
