#include "api/grpc/inference_service.h"

#include <chrono>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "api/grpc/grpc_codec.h"
#include "api/grpc/stream_infer.h"
#include "model_config.pb.h"

namespace flywheel::api {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Holds ModelInfer's messages. The request lives in a shared_ptr so that the InferRequest decoded
// from it (whose inputs view its bytes) can keep it alive past the end of the call.
class InferMessages final : public grpc::MessageHolder<ModelInferRequest, ModelInferResponse> {
 public:
  InferMessages() : request_(std::make_shared<ModelInferRequest>()) {
    set_request(request_.get());
    set_response(&response_);
  }
  void Release() override { delete this; }
  std::shared_ptr<const ModelInferRequest> shared_request() const { return request_; }

 private:
  std::shared_ptr<ModelInferRequest> request_;
  ModelInferResponse response_;
};

class InferMessageAllocator final
    : public grpc::MessageAllocator<ModelInferRequest, ModelInferResponse> {
 public:
  grpc::MessageHolder<ModelInferRequest, ModelInferResponse>* AllocateMessages() override {
    return new InferMessages();
  }
};

InferMessageAllocator& Allocator() {
  static auto* allocator = new InferMessageAllocator();
  return *allocator;
}

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx, const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

void FillStatistic(const serving::DurationFigure& in, inference::StatisticDuration* out) {
  out->set_count(in.count);
  out->set_ns(in.ns);
}

void FillTensorMetadata(const serving::TensorMetadata& in,
                        inference::ModelMetadataResponse::TensorMetadata* out) {
  out->set_name(in.name);
  out->set_datatype(in.datatype);
  for (int64_t d : in.shape) out->add_shape(d);
}

// Compares without an early exit, so the time taken says nothing about the token.
bool SameSecret(grpc::string_ref given, const std::string& expected) {
  if (given.size() != expected.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    diff |= static_cast<unsigned char>(given.data()[i] ^ expected[i]);
  }
  return diff == 0;
}

}  // namespace

InferenceService::InferenceService(serving::Server* server, std::string admin_token)
    : server_(server), admin_token_(std::move(admin_token)) {
  SetMessageAllocatorFor_ModelInfer(&Allocator());
}

InferenceService::~InferenceService() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* calls) { return *calls == 0; }, &blocking_calls_));
}

void InferenceService::RunBlocking(std::function<void()> fn) {
  {
    absl::MutexLock lock(&mu_);
    ++blocking_calls_;
  }
  std::thread([this, fn = std::move(fn)] {
    fn();
    absl::MutexLock lock(&mu_);
    --blocking_calls_;
  }).detach();
}

grpc::Status InferenceService::CheckAdmin(grpc::CallbackServerContext* ctx) const {
  if (admin_token_.empty()) return grpc::Status::OK;
  const auto& metadata = ctx->client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "the model repository calls need the admin token: send metadata "
                        "'authorization: Bearer <token>'");
  }
  if (!SameSecret(it->second, "Bearer " + admin_token_)) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "the admin token in metadata 'authorization' does not match");
  }
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* InferenceService::ServerLive(grpc::CallbackServerContext* ctx,
                                                       const inference::ServerLiveRequest*,
                                                       inference::ServerLiveResponse* response) {
  response->set_live(server_->Live());
  return Done(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::ServerReady(grpc::CallbackServerContext* ctx,
                                                        const inference::ServerReadyRequest*,
                                                        inference::ServerReadyResponse* response) {
  response->set_ready(server_->Ready());
  return Done(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::ModelReady(grpc::CallbackServerContext* ctx,
                                                       const inference::ModelReadyRequest* request,
                                                       inference::ModelReadyResponse* response) {
  absl::StatusOr<bool> ready = server_->ModelReady(request->name(), request->version());
  // As Triton does: a model or version that does not exist is simply not ready.
  if (!ready.ok() && ready.status().code() != absl::StatusCode::kNotFound) {
    return Done(ctx, ToGrpcStatus(ready.status()));
  }
  response->set_ready(ready.ok() && *ready);
  return Done(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::ServerMetadata(
    grpc::CallbackServerContext* ctx, const inference::ServerMetadataRequest*,
    inference::ServerMetadataResponse* response) {
  serving::ServerMetadata metadata = server_->Metadata();
  response->set_name(metadata.name);
  response->set_version(metadata.version);
  for (std::string& e : metadata.extensions) response->add_extensions(std::move(e));
  return Done(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::ModelMetadata(
    grpc::CallbackServerContext* ctx, const inference::ModelMetadataRequest* request,
    inference::ModelMetadataResponse* response) {
  absl::StatusOr<serving::ModelMetadata> metadata =
      server_->GetModelMetadata(request->name(), request->version());
  if (!metadata.ok()) return Done(ctx, ToGrpcStatus(metadata.status()));
  response->set_name(metadata->name);
  for (const std::string& v : metadata->versions) response->add_versions(v);
  response->set_platform(metadata->platform);
  for (const auto& t : metadata->inputs) FillTensorMetadata(t, response->add_inputs());
  for (const auto& t : metadata->outputs) FillTensorMetadata(t, response->add_outputs());
  return Done(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::ModelInfer(grpc::CallbackServerContext* ctx,
                                                       const ModelInferRequest* request,
                                                       ModelInferResponse* response) {
  const int64_t arrival_ns = NowNs();
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto* messages = dynamic_cast<InferMessages*>(ctx->GetRpcAllocatorState());
  std::shared_ptr<const ModelInferRequest> message;
  if (messages != nullptr) {
    message = messages->shared_request();
  } else {
    // Only if the allocator were not installed: a copy keeps the views valid all the same.
    message = std::make_shared<ModelInferRequest>(*request);
  }
  absl::StatusOr<std::unique_ptr<serving::InferRequest>> decoded =
      DecodeInferRequest(std::move(message));
  if (!decoded.ok()) {
    reactor->Finish(ToGrpcStatus(decoded.status()));
    return reactor;
  }
  (*decoded)->arrival_ns = arrival_ns;
  server_->Infer(std::move(*decoded),
                 [reactor, response](absl::StatusOr<serving::InferResponse> result) {
                   if (!result.ok()) {
                     reactor->Finish(ToGrpcStatus(result.status()));
                     return;
                   }
                   reactor->Finish(ToGrpcStatus(EncodeInferResponse(*result, response)));
                 });
  return reactor;
}

grpc::ServerBidiReactor<ModelInferRequest, inference::ModelStreamInferResponse>*
InferenceService::ModelStreamInfer(grpc::CallbackServerContext*) {
  return new StreamInferReactor(server_);
}

grpc::ServerUnaryReactor* InferenceService::ModelConfig(
    grpc::CallbackServerContext* ctx, const inference::ModelConfigRequest* request,
    inference::ModelConfigResponse* response) {
  return Done(ctx, ToGrpcStatus(server_->GetModelConfig(request->name(), request->version(),
                                                        response->mutable_config())));
}

grpc::ServerUnaryReactor* InferenceService::ModelStatistics(
    grpc::CallbackServerContext* ctx, const inference::ModelStatisticsRequest* request,
    inference::ModelStatisticsResponse* response) {
  absl::StatusOr<std::vector<serving::ModelStatistics>> stats =
      server_->Statistics(request->name(), request->version());
  if (!stats.ok()) return Done(ctx, ToGrpcStatus(stats.status()));
  for (const serving::ModelStatistics& s : *stats) {
    inference::ModelStatistics* out = response->add_model_stats();
    out->set_name(s.name);
    out->set_version(s.version);
    out->set_last_inference(s.last_inference_ms);
    out->set_inference_count(s.inference_count);
    out->set_execution_count(s.execution_count);
    inference::InferStatistics* infer = out->mutable_inference_stats();
    FillStatistic(s.success, infer->mutable_success());
    FillStatistic(s.fail, infer->mutable_fail());
    FillStatistic(s.queue, infer->mutable_queue());
    FillStatistic(s.compute_input, infer->mutable_compute_input());
    FillStatistic(s.compute_infer, infer->mutable_compute_infer());
    FillStatistic(s.compute_output, infer->mutable_compute_output());
    for (const serving::BatchFigures& b : s.batch_stats) {
      inference::InferBatchStatistics* batch = out->add_batch_stats();
      batch->set_batch_size(static_cast<uint64_t>(b.batch_size));
      FillStatistic(b.compute_input, batch->mutable_compute_input());
      FillStatistic(b.compute_infer, batch->mutable_compute_infer());
      FillStatistic(b.compute_output, batch->mutable_compute_output());
    }
  }
  return Done(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::RepositoryIndex(
    grpc::CallbackServerContext* ctx, const inference::RepositoryIndexRequest* request,
    inference::RepositoryIndexResponse* response) {
  if (grpc::Status auth = CheckAdmin(ctx); !auth.ok()) return Done(ctx, auth);
  for (const serving::ModelIndexEntry& e : server_->RepositoryIndex(request->ready())) {
    inference::RepositoryIndexResponse::ModelIndex* out = response->add_models();
    out->set_name(e.name);
    out->set_version(e.version);
    out->set_state(e.state);
    out->set_reason(e.reason);
  }
  return Done(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::RepositoryModelLoad(
    grpc::CallbackServerContext* ctx, const inference::RepositoryModelLoadRequest* request,
    inference::RepositoryModelLoadResponse*) {
  if (grpc::Status auth = CheckAdmin(ctx); !auth.ok()) return Done(ctx, auth);
  if (request->model_name().empty()) {
    return Done(ctx, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "model_name is empty"));
  }
  std::optional<std::string> config_json;
  for (const auto& [key, value] : request->parameters()) {
    if (key == "config") {
      if (value.parameter_choice_case() != inference::ModelRepositoryParameter::kStringParam) {
        return Done(ctx, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                      "parameter 'config' must be a string_param holding the "
                                      "model configuration as JSON"));
      }
      config_json = value.string_param();
    } else if (key.rfind("file:", 0) == 0) {
      return Done(ctx, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                    absl::StrCat("parameter '", key,
                                                 "': model file overrides are not supported; put "
                                                 "the file in the model repository")));
    } else {
      return Done(ctx, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                    absl::StrCat("unknown load parameter '", key,
                                                 "'; the supported one is 'config'")));
    }
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  RunBlocking([server = server_, reactor, name = request->model_name(),
               config_json = std::move(config_json)] {
    reactor->Finish(ToGrpcStatus(server->LoadModel(name, config_json)));
  });
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::RepositoryModelUnload(
    grpc::CallbackServerContext* ctx, const inference::RepositoryModelUnloadRequest* request,
    inference::RepositoryModelUnloadResponse*) {
  if (grpc::Status auth = CheckAdmin(ctx); !auth.ok()) return Done(ctx, auth);
  if (request->model_name().empty()) {
    return Done(ctx, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "model_name is empty"));
  }
  for (const auto& [key, value] : request->parameters()) {
    // Accepted so that Triton clients work; only the named model is unloaded.
    if (key == "unload_dependents") continue;
    return Done(ctx, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                  absl::StrCat("unknown unload parameter '", key,
                                               "'; the supported one is 'unload_dependents'")));
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  RunBlocking([server = server_, reactor, name = request->model_name()] {
    reactor->Finish(ToGrpcStatus(server->UnloadModel(name)));
  });
  return reactor;
}

}  // namespace flywheel::api
