// The gRPC transport of `flywheel bench --url --protocol grpc`: KServe v2 GRPCInferenceService
// with raw_input_contents (the binary form of the protocol).
#include <chrono>
#include <utility>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "cli/load_bench_transport.h"
#include "grpc_service.grpc.pb.h"

namespace flywheel::cli {
namespace {

constexpr std::chrono::seconds kTimeout{60};
// How long the first connection may take before the server counts as down.
constexpr std::chrono::seconds kConnectTimeout{10};

absl::Status FromGrpc(const grpc::Status& status, absl::string_view what) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(what, ": ", status.error_message()));
}

void SetDeadline(grpc::ClientContext& context) {
  context.set_deadline(std::chrono::system_clock::now() + kTimeout);
}

// Each connection gets its own subchannel pool, hence its own TCP connection: N load threads
// then look like N clients, as they do over HTTP.
std::shared_ptr<grpc::Channel> NewChannel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

absl::StatusOr<TensorSpec> FromProto(const inference::ModelMetadataResponse::TensorMetadata& t) {
  TensorSpec spec;
  spec.name = t.name();
  auto dtype = DataTypeFromName(t.datatype());
  if (!dtype.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("model metadata: tensor '", t.name(),
                                                   "': unknown datatype '", t.datatype(), "'"));
  }
  spec.dtype = *dtype;
  spec.shape.assign(t.shape().begin(), t.shape().end());
  return spec;
}

void Add(const inference::StatisticDuration& from, StatDuration& into) {
  into.count += from.count();
  into.ns += from.ns();
}

// A ServerLive call: opens the channel's connection (so that it is not opened inside the
// measurement) and fails fast, with gRPC's reason, when nothing listens.
absl::Status Ping(inference::GRPCInferenceService::Stub& stub, const std::string& target) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kConnectTimeout);
  inference::ServerLiveRequest request;
  inference::ServerLiveResponse response;
  grpc::Status status = stub.ServerLive(&context, request, &response);
  if (!status.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to gRPC server ", target, ": ", status.error_message()));
  }
  return absl::OkStatus();
}

class GrpcInferConnection : public InferConnection {
 public:
  GrpcInferConnection(std::unique_ptr<inference::GRPCInferenceService::Stub> stub,
                      inference::ModelInferRequest request)
      : stub_(std::move(stub)), request_(std::move(request)) {}

  absl::Status Infer() override {
    grpc::ClientContext context;
    SetDeadline(context);
    response_.Clear();
    grpc::Status status = stub_->ModelInfer(&context, request_, &response_);
    if (!status.ok()) {
      return FromGrpc(status, absl::StrCat("model '", request_.model_name(), "' inference"));
    }
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
  const inference::ModelInferRequest request_;
  inference::ModelInferResponse response_;
};

class GrpcTransport : public Transport {
 public:
  GrpcTransport(std::string target, std::unique_ptr<inference::GRPCInferenceService::Stub> control)
      : target_(std::move(target)), control_(std::move(control)) {}

  absl::StatusOr<ModelMetadata> Metadata(const std::string& model) override {
    grpc::ClientContext context;
    SetDeadline(context);
    inference::ModelMetadataRequest request;
    request.set_name(model);
    inference::ModelMetadataResponse response;
    grpc::Status status = control_->ModelMetadata(&context, request, &response);
    if (!status.ok()) return FromGrpc(status, absl::StrCat("model '", model, "' metadata"));
    ModelMetadata metadata;
    metadata.name = response.name();
    for (const auto& t : response.inputs()) {
      auto spec = FromProto(t);
      if (!spec.ok()) return spec.status();
      metadata.inputs.push_back(*std::move(spec));
    }
    for (const auto& t : response.outputs()) {
      auto spec = FromProto(t);
      if (!spec.ok()) return spec.status();
      metadata.outputs.push_back(*std::move(spec));
    }
    return metadata;
  }

  absl::StatusOr<ServerStats> Stats(const std::string& model) override {
    grpc::ClientContext context;
    SetDeadline(context);
    inference::ModelStatisticsRequest request;
    request.set_name(model);
    inference::ModelStatisticsResponse response;
    grpc::Status status = control_->ModelStatistics(&context, request, &response);
    if (!status.ok()) return FromGrpc(status, absl::StrCat("model '", model, "' statistics"));
    ServerStats stats;
    for (const inference::ModelStatistics& m : response.model_stats()) {
      stats.inference_count += m.inference_count();
      stats.execution_count += m.execution_count();
      const inference::InferStatistics& s = m.inference_stats();
      Add(s.success(), stats.success);
      Add(s.fail(), stats.fail);
      Add(s.queue(), stats.queue);
      Add(s.compute_input(), stats.compute_input);
      Add(s.compute_infer(), stats.compute_infer);
      Add(s.compute_output(), stats.compute_output);
    }
    return stats;
  }

  // gRPC's synchronous stubs block: a thread per connection.
  absl::StatusOr<std::unique_ptr<LoadRun>> StartLoad(const LoadSpec& spec,
                                                     OnRequestDone done) override {
    return StartThreadPerConnectionLoad(
        spec.concurrency, [&] { return Connect(spec.model, spec.inputs, spec.outputs); },
        std::move(done));
  }

  std::string Describe() const override { return absl::StrCat("grpc://", target_); }

 private:
  // A connection with its own channel whose Infer() sends these inputs.
  absl::StatusOr<std::unique_ptr<InferConnection>> Connect(
      const std::string& model, const std::vector<InputTensor>& inputs,
      const std::vector<std::string>& outputs) {
    inference::ModelInferRequest request;
    request.set_model_name(model);
    for (const InputTensor& input : inputs) {
      auto* tensor = request.add_inputs();
      tensor->set_name(input.name);
      tensor->set_datatype(std::string(DataTypeName(input.dtype)));
      for (int64_t d : input.shape) tensor->add_shape(d);
      request.add_raw_input_contents(input.data);
    }
    for (const std::string& output : outputs) request.add_outputs()->set_name(output);
    auto stub = inference::GRPCInferenceService::NewStub(NewChannel(target_));
    absl::Status status = Ping(*stub, target_);
    if (!status.ok()) return status;
    return std::unique_ptr<InferConnection>(
        new GrpcInferConnection(std::move(stub), std::move(request)));
  }

  std::string target_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> control_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Transport>> MakeGrpcTransport(const std::string& host, int port) {
  // An IPv6 literal needs its brackets back in a gRPC target.
  const std::string target = absl::StrCat(
      host.find(':') != std::string::npos ? absl::StrCat("[", host, "]") : host, ":", port);
  auto stub = inference::GRPCInferenceService::NewStub(NewChannel(target));
  absl::Status status = Ping(*stub, target);
  if (!status.ok()) return status;
  return std::unique_ptr<Transport>(new GrpcTransport(target, std::move(stub)));
}

}  // namespace flywheel::cli
