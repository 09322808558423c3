// Server::Impl::InferRouted: a request the traffic split chose an arm for goes to that version,
// its outcome counts for the arm, and a chosen share is copied to the shadow version, whose
// answer is compared with the served one and dropped.
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "serving/server_impl.h"

namespace flywheel::serving {
namespace {

int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A shadow version that refused the copy because its queue was full says nothing about its
// answers: the copy counts as skipped, not failed.
bool QueueFull(const absl::Status& status) {
  return absl::IsUnavailable(status) && absl::StrContains(status.message(), "queue is full");
}

// The two answers of a shadowed request; whichever arrives second settles the comparison, so that
// the served answer never waits for the shadow.
class ShadowPair {
 public:
  explicit ShadowPair(std::shared_ptr<const SplitSnapshot> snapshot)
      : snapshot_(std::move(snapshot)) {}

  // `outputs` share their buffers with the answer the client got (tensor copies are shallow).
  void Served(const absl::Status& status, std::vector<InferOutput> outputs) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      served_status_ = status;
      served_outputs_ = std::move(outputs);
      served_in_ = true;
      if (!shadow_in_) return;
    }
    Settle();
  }

  void Shadow(absl::StatusOr<InferResponse> answer, int64_t latency_ns) {
    ShadowCounters& counters = *snapshot_->shadow;
    snapshot_->state->shadows_in_flight.fetch_sub(1, std::memory_order_acq_rel);
    if (!QueueFull(answer.status())) counters.latency.Observe(latency_ns);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (answer.ok()) {
        shadow_outputs_ = std::move(answer->outputs);
      } else {
        shadow_status_ = answer.status();
      }
      shadow_in_ = true;
      if (!served_in_) return;
    }
    Settle();
  }

 private:
  // REQUIRES: both answers in (no further writes to them).
  void Settle() {
    ShadowCounters& counters = *snapshot_->shadow;
    if (!served_status_.ok() || QueueFull(shadow_status_)) {
      counters.skipped.fetch_add(1, std::memory_order_relaxed);
    } else if (!shadow_status_.ok()) {
      counters.failed.fetch_add(1, std::memory_order_relaxed);
    } else {
      const TrafficSplit& split = snapshot_->split;
      if (!AnswersAgree(served_outputs_, shadow_outputs_, split.shadow_atol, split.shadow_rtol)) {
        counters.disagreed.fetch_add(1, std::memory_order_relaxed);
      }
      // Counted after `disagreed`, so that a reader never sees more disagreements than
      // comparisons.
      counters.compared.fetch_add(1, std::memory_order_release);
    }
    served_outputs_.clear();
    shadow_outputs_.clear();
  }

  const std::shared_ptr<const SplitSnapshot> snapshot_;
  std::mutex mu_;
  bool served_in_ = false;
  bool shadow_in_ = false;
  absl::Status served_status_;
  absl::Status shadow_status_;
  std::vector<InferOutput> served_outputs_;
  std::vector<InferOutput> shadow_outputs_;
};

}  // namespace

void Server::Impl::InferRouted(std::unique_ptr<InferRequest> request, RouteDecision route,
                               InferCallback done) {
  const SplitSnapshot& snapshot = *route.snapshot;
  request->model_version = snapshot.arms[route.arm].version_string;

  std::unique_ptr<InferRequest> copy;
  std::shared_ptr<ShadowPair> pair;
  if (route.shadow) {
    // Inputs share their tensors and `body` keeps the memory views point into alive. The copy
    // gets its own id: the label joiner keys predictions by request id, so a shadow prediction
    // under the served id would replace the served one and take its label. "<id>#shadow" keeps
    // the shadow's drift and prediction log (useful to judge the candidate) while labels join
    // only the answer the client got.
    copy = std::make_unique<InferRequest>(*request);
    copy->model_version = snapshot.shadow_version_string;
    if (!copy->id.empty()) copy->id += "#shadow";
    pair = std::make_shared<ShadowPair>(route.snapshot);
    // Shadow copies count in flight, so that Drain waits for their comparison too; counted
    // before the served request is sent, since that may finish at once.
    in_flight.fetch_add(1, std::memory_order_acq_rel);
  }

  const int64_t arrival_ns = request->arrival_ns;
  std::shared_ptr<ArmCounters> arm = snapshot.arms[route.arm].counters;
  InferCallback finish = [this, done = std::move(done), arm = std::move(arm), arrival_ns,
                          pair](absl::StatusOr<InferResponse> answer) {
    RecordArmOutcome(*arm, answer.status(), SteadyNs() - arrival_ns);
    std::vector<InferOutput> kept;
    if (pair != nullptr && answer.ok()) kept = answer->outputs;
    const absl::Status status = answer.status();
    done(std::move(answer));
    if (pair != nullptr) pair->Served(status, std::move(kept));
    RequestFinished();
  };
  RouteStep(std::move(request), std::move(finish));
  if (copy == nullptr) return;

  route.snapshot->shadow->sent.fetch_add(1, std::memory_order_relaxed);
  const int64_t start_ns = SteadyNs();
  copy->arrival_ns = start_ns;
  RouteStep(std::move(copy),
            [this, pair = std::move(pair), start_ns](absl::StatusOr<InferResponse> answer) {
              pair->Shadow(std::move(answer), SteadyNs() - start_ns);
              RequestFinished();
            });
}

}  // namespace flywheel::serving
