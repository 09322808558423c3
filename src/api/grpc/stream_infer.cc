#include "api/grpc/stream_infer.h"

#include <chrono>
#include <string>
#include <utility>

#include "api/grpc/grpc_codec.h"

namespace flywheel::api {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A failed request's answer still names the request, so the client can tell which one failed.
std::unique_ptr<inference::ModelStreamInferResponse> ErrorResponse(const absl::Status& status,
                                                                   const std::string& model_name,
                                                                   const std::string& model_version,
                                                                   const std::string& id) {
  auto response = std::make_unique<inference::ModelStreamInferResponse>();
  response->set_error_message(std::string(status.message()));
  inference::ModelInferResponse* r = response->mutable_infer_response();
  r->set_model_name(model_name);
  r->set_model_version(model_version);
  r->set_id(id);
  return response;
}

}  // namespace

StreamInferReactor::StreamInferReactor(serving::Server* server) : server_(server) { ReadNext(); }

void StreamInferReactor::ReadNext() {
  reading_ = std::make_shared<inference::ModelInferRequest>();
  StartRead(reading_.get());
}

void StreamInferReactor::OnReadDone(bool ok) {
  if (!ok) {
    Next next;
    {
      absl::MutexLock lock(&mu_);
      reads_done_ = true;
      next = NextStepLocked();
    }
    Act(next);
    return;
  }
  const int64_t arrival_ns = NowNs();
  std::shared_ptr<const inference::ModelInferRequest> message = std::move(reading_);
  {
    absl::MutexLock lock(&mu_);
    ++in_flight_;
  }
  std::string model_name = message->model_name();
  std::string model_version = message->model_version();
  std::string id = message->id();
  absl::StatusOr<std::unique_ptr<serving::InferRequest>> decoded =
      DecodeInferRequest(std::move(message));
  if (!decoded.ok()) {
    Complete(ErrorResponse(decoded.status(), model_name, model_version, id));
  } else {
    (*decoded)->arrival_ns = arrival_ns;
    server_->Infer(
        std::move(*decoded),
        [this, model_name = std::move(model_name), model_version = std::move(model_version),
         id = std::move(id)](absl::StatusOr<serving::InferResponse> result) {
          if (!result.ok()) {
            Complete(ErrorResponse(result.status(), model_name, model_version, id));
            return;
          }
          auto response = std::make_unique<Response>();
          absl::Status encoded = EncodeInferResponse(*result, response->mutable_infer_response());
          if (!encoded.ok()) {
            response = ErrorResponse(encoded, model_name, model_version, id);
          }
          Complete(std::move(response));
        });
  }

  bool read = false;
  {
    absl::MutexLock lock(&mu_);
    if (reads_done_) {
      // Cancelled meanwhile: no more reads.
    } else if (in_flight_ + unsent_.size() < kMaxOutstanding) {
      read = true;
    } else {
      reading_paused_ = true;
    }
  }
  if (read) ReadNext();
}

void StreamInferReactor::Complete(std::unique_ptr<Response> response) {
  Next next;
  {
    absl::MutexLock lock(&mu_);
    --in_flight_;
    if (!write_failed_) unsent_.push_back(std::move(response));
    next = NextStepLocked();
  }
  Act(next);
}

void StreamInferReactor::OnWriteDone(bool ok) {
  Next next;
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!unsent_.empty()) unsent_.pop_front();
    if (!ok) {
      // The client is gone: drop what is queued; requests in flight still run to completion
      // (their callbacks reference this reactor), then the stream finishes.
      write_failed_ = true;
      unsent_.clear();
      if (reading_paused_) {
        // No read is outstanding to report the end of the stream; record it here.
        reading_paused_ = false;
        reads_done_ = true;
      }
    }
    next = NextStepLocked();
  }
  Act(next);
}

void StreamInferReactor::OnDone() { delete this; }

StreamInferReactor::Next StreamInferReactor::NextStepLocked() {
  Next next;
  if (!writing_ && !write_failed_ && !unsent_.empty()) {
    writing_ = true;
    next.write = unsent_.front().get();
  }
  if (reading_paused_ && !reads_done_ && in_flight_ + unsent_.size() < kMaxOutstanding) {
    reading_paused_ = false;
    next.read = true;
  }
  if (reads_done_ && in_flight_ == 0 && !writing_ && unsent_.empty() && !finished_) {
    finished_ = true;
    next.finish = true;
  }
  return next;
}

void StreamInferReactor::Act(const Next& next) {
  if (next.read) ReadNext();
  if (next.write != nullptr) StartWrite(next.write);
  if (next.finish) {
    bool failed;
    {
      absl::MutexLock lock(&mu_);
      failed = write_failed_;
    }
    Finish(failed ? grpc::Status(grpc::StatusCode::CANCELLED, "the client stopped reading")
                  : grpc::Status::OK);
  }
}

}  // namespace flywheel::api
