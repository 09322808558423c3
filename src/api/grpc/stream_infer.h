// ModelStreamInfer: one bidirectional stream carrying many inference requests. Each request is
// scheduled as it arrives and answered on the stream when it completes (completion order, with
// its id); a failed request is answered with error_message and the stream goes on.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "grpc_service.grpc.pb.h"
#include "serving/server.h"

namespace flywheel::api {

class StreamInferReactor final
    : public grpc::ServerBidiReactor<inference::ModelInferRequest,
                                     inference::ModelStreamInferResponse> {
 public:
  // Requests in flight plus answers not yet written, past which the stream stops reading until
  // the client catches up: a client that never reads cannot make the server buffer without end.
  static constexpr size_t kMaxOutstanding = 256;

  explicit StreamInferReactor(serving::Server* server);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;

 private:
  using Response = inference::ModelStreamInferResponse;

  void ReadNext();
  // Queues the answer to one request in flight; called from any thread.
  void Complete(std::unique_ptr<Response> response);
  // Decides, under mu_, what to do next; the caller acts on it after unlocking, because gRPC may
  // run reactions inline from StartRead/StartWrite/Finish.
  struct Next {
    const Response* write = nullptr;
    bool read = false;
    bool finish = false;
  };
  Next NextStepLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Act(const Next& next);

  serving::Server* const server_;
  // The message the pending read fills; shared so decoded inputs can view it.
  std::shared_ptr<inference::ModelInferRequest> reading_;

  absl::Mutex mu_;
  std::deque<std::unique_ptr<Response>> unsent_ ABSL_GUARDED_BY(mu_);
  size_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace flywheel::api
