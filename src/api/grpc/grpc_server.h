// The gRPC front end: KServe v2 `inference.GRPCInferenceService` (Triton's protocol, so Triton
// gRPC clients work unchanged) and `grpc.health.v1.Health`, over serving::Server. Callback API
// throughout: no gRPC thread ever waits on model compute.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "serving/server.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace flywheel::api {

class InferenceService;
class HealthService;

struct GrpcOptions {
  std::string bind = "0.0.0.0";
  // 0 binds an ephemeral port; GrpcServer::port() tells which.
  int port = 8001;
  // Largest request or response message.
  size_t max_message_bytes = 64 << 20;
  // When set, the repository RPCs need metadata `authorization: Bearer <token>`.
  std::string admin_token;
};

class GrpcServer {
 public:
  // Binds and starts serving. `server` must outlive the GrpcServer.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(const GrpcOptions& options,
                                                           serving::Server* server);
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // The bound port.
  int port() const { return port_; }

  // Stops accepting calls, lets the calls in flight finish for up to `deadline_ms`, then cancels
  // the rest. Returns once every call is over. Safe to call more than once.
  void Shutdown(int64_t deadline_ms);

 private:
  GrpcServer() = default;

  std::unique_ptr<InferenceService> inference_;
  std::unique_ptr<HealthService> health_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace flywheel::api
