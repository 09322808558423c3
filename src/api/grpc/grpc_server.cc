#include "api/grpc/grpc_server.h"

#include <algorithm>
#include <chrono>
#include <climits>

#include "absl/strings/str_cat.h"
#include "api/grpc/health_service.h"
#include "api/grpc/inference_service.h"
#include "grpcpp/grpcpp.h"

namespace flywheel::api {
namespace {

std::string ListenAddress(const std::string& bind, int port) {
  // An IPv6 literal needs brackets before the port.
  if (bind.find(':') != std::string::npos && bind.front() != '[') {
    return absl::StrCat("[", bind, "]:", port);
  }
  return absl::StrCat(bind, ":", port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(const GrpcOptions& options,
                                                              serving::Server* server) {
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("gRPC port ", options.port, " is outside 0..65535"));
  }
  if (options.max_message_bytes == 0) {
    return absl::InvalidArgumentError("gRPC max_message_bytes must be positive");
  }
  std::unique_ptr<GrpcServer> self(new GrpcServer());
  self->inference_ = std::make_unique<InferenceService>(server, options.admin_token);
  self->health_ = std::make_unique<HealthService>(server);

  const std::string address = ListenAddress(options.bind, options.port);
  const int max_message = static_cast<int>(std::min<size_t>(options.max_message_bytes, INT_MAX));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &self->port_);
  builder.SetMaxReceiveMessageSize(max_message);
  builder.SetMaxSendMessageSize(max_message);
  // A second server on the same port must fail to start, not silently share the traffic.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Keepalive: ping an idle connection every 60 s and drop it when a ping goes unanswered for
  // 20 s (dead peers behind a load balancer); let clients ping every 10 s, even with no call
  // open, so that Triton clients configured with keepalive are not cut off for pinging.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  builder.RegisterService(self->inference_.get());
  builder.RegisterService(self->health_.get());
  self->server_ = builder.BuildAndStart();
  if (self->server_ == nullptr || self->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot serve gRPC on ", address,
                                               ": the address is invalid or the port is in use"));
  }
  return self;
}

void GrpcServer::Shutdown(int64_t deadline_ms) {
  if (shut_down_) return;
  shut_down_ = true;
  // Watch streams never end on their own; close them first so they do not hold the deadline.
  health_->Close();
  server_->Shutdown(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(std::max<int64_t>(deadline_ms, 0)));
  server_->Wait();
}

GrpcServer::~GrpcServer() {
  if (server_ != nullptr) Shutdown(0);
}

}  // namespace flywheel::api
