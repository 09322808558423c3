#include "api/grpc/health_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace flywheel::api {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using ServingStatus = HealthCheckResponse::ServingStatus;

namespace {
constexpr char kInferenceServiceName[] = "inference.GRPCInferenceService";
}  // namespace

// One Watch stream. Owned jointly by gRPC (until OnDone) and the service's watcher list, so the
// poller may hold it while OnDone runs.
class HealthWatchReactor final : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  HealthWatchReactor(HealthService* service, std::string service_name)
      : service_(service), service_name_(std::move(service_name)) {}

  void set_self(std::shared_ptr<HealthWatchReactor> self) { self_ = std::move(self); }
  const std::string& service_name() const { return service_name_; }

  // Sends `status` if it differs from the last one sent.
  void Update(ServingStatus status) {
    {
      absl::MutexLock lock(&mu_);
      if (done_ || finishing_ || writing_ || status == last_) return;
      last_ = status;
      writing_ = true;
      response_.set_status(status);
    }
    StartWrite(&response_);
  }

  // Ends the stream after telling the client NOT_SERVING.
  void Close() {
    bool write = false;
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      if (done_ || finishing_) return;
      finishing_ = true;
      if (writing_) return;  // OnWriteDone finishes
      if (last_ != HealthCheckResponse::NOT_SERVING) {
        last_ = HealthCheckResponse::NOT_SERVING;
        response_.set_status(last_);
        writing_ = true;
        write = true;
      } else {
        finish = true;
      }
    }
    if (write) StartWrite(&response_);
    if (finish) Finish(grpc::Status::OK);
  }

  void OnWriteDone(bool ok) override {
    bool write = false;
    bool finish = false;
    grpc::Status status = grpc::Status::OK;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) {
        finishing_ = true;
        finish = true;
        status = grpc::Status(grpc::StatusCode::CANCELLED, "the Watch stream is closed");
      } else if (finishing_) {
        if (last_ != HealthCheckResponse::NOT_SERVING) {
          // Closed while a write was out: the close's NOT_SERVING goes next.
          last_ = HealthCheckResponse::NOT_SERVING;
          response_.set_status(last_);
          writing_ = true;
          write = true;
        } else {
          finish = true;
        }
      }
    }
    if (write) StartWrite(&response_);
    if (finish) Finish(status);
  }

  void OnCancel() override {
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      if (finishing_) return;
      finishing_ = true;
      // With a write out, OnWriteDone(false) finishes.
      finish = !writing_;
    }
    if (finish) Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the Watch call was cancelled"));
  }

  void OnDone() override {
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
    }
    service_->Forget(this);
    // May delete this: the last owner goes last.
    std::shared_ptr<HealthWatchReactor> self = std::move(self_);
  }

 private:
  HealthService* const service_;
  const std::string service_name_;
  std::shared_ptr<HealthWatchReactor> self_;

  absl::Mutex mu_;
  HealthCheckResponse response_;
  // UNKNOWN is never a state we report, so the first Update always sends.
  ServingStatus last_ ABSL_GUARDED_BY(mu_) = HealthCheckResponse::UNKNOWN;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

HealthService::HealthService(serving::Server* server) : server_(server) {
  poller_ = std::thread([this] { PollLoop(); });
}

HealthService::~HealthService() {
  Close();
  poller_.join();
}

ServingStatus HealthService::StatusOf(const std::string& service) const {
  if (!service.empty() && service != kInferenceServiceName) {
    return HealthCheckResponse::SERVICE_UNKNOWN;
  }
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return HealthCheckResponse::NOT_SERVING;
  }
  return server_->Ready() ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
}

grpc::ServerUnaryReactor* HealthService::Check(grpc::CallbackServerContext* ctx,
                                               const HealthCheckRequest* request,
                                               HealthCheckResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const ServingStatus status = StatusOf(request->service());
  if (status == HealthCheckResponse::SERVICE_UNKNOWN) {
    reactor->Finish(grpc::Status(
        grpc::StatusCode::NOT_FOUND,
        absl::StrCat("unknown service '", request->service(),
                     "'; this server health-checks '' and '", kInferenceServiceName, "'")));
    return reactor;
  }
  response->set_status(status);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<HealthCheckResponse>* HealthService::Watch(
    grpc::CallbackServerContext*, const HealthCheckRequest* request) {
  auto reactor = std::make_shared<HealthWatchReactor>(this, request->service());
  reactor->set_self(reactor);
  bool closed;
  {
    absl::MutexLock lock(&mu_);
    closed = closed_;
    if (!closed) watchers_.push_back(reactor);
  }
  if (closed) {
    reactor->Close();
  } else {
    reactor->Update(StatusOf(request->service()));
  }
  return reactor.get();
}

void HealthService::Forget(HealthWatchReactor* reactor) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(std::remove_if(watchers_.begin(), watchers_.end(),
                                 [reactor](const auto& w) { return w.get() == reactor; }),
                  watchers_.end());
}

void HealthService::Close() {
  std::vector<std::shared_ptr<HealthWatchReactor>> watchers;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
    watchers = watchers_;
  }
  for (const auto& w : watchers) w->Close();
}

void HealthService::PollLoop() {
  for (;;) {
    std::vector<std::shared_ptr<HealthWatchReactor>> watchers;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&closed_), absl::Milliseconds(kPollMs));
      if (closed_) return;
      watchers = watchers_;
    }
    if (watchers.empty()) continue;
    // One readiness query serves every watcher of the same service.
    const ServingStatus server_status = StatusOf("");
    for (const auto& w : watchers) {
      w->Update(w->service_name().empty() || w->service_name() == kInferenceServiceName
                    ? server_status
                    : HealthCheckResponse::SERVICE_UNKNOWN);
    }
  }
}

}  // namespace flywheel::api
