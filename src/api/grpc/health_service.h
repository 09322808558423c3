// grpc.health.v1.Health for load balancers and Kubernetes gRPC probes: the server ("") and
// inference.GRPCInferenceService are SERVING while serving::Server is ready. Watch streams are fed
// by one poller thread that sends a status whenever it changes.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "health.grpc.pb.h"
#include "serving/server.h"

namespace flywheel::api {

class HealthWatchReactor;

class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  // How often Watch streams look for a change.
  static constexpr int kPollMs = 250;

  explicit HealthService(serving::Server* server);
  ~HealthService() override;

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* ctx,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* ctx,
      const grpc::health::v1::HealthCheckRequest* request) override;

  // Before the gRPC server shuts down: every Watch stream gets NOT_SERVING and ends, so that
  // shutdown does not wait for them; later Watch calls end at once.
  void Close();

  // The status of `service` now.
  grpc::health::v1::HealthCheckResponse::ServingStatus StatusOf(const std::string& service) const;

  // Called by a reactor when gRPC is done with it.
  void Forget(HealthWatchReactor* reactor);

 private:
  void PollLoop();

  serving::Server* const server_;
  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<HealthWatchReactor>> watchers_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::thread poller_;
};

}  // namespace flywheel::api
