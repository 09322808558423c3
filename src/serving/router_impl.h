// Private to serving/: the Router behind Server's traffic splits. It keeps one immutable snapshot
// per model (the split, its arms' cumulative weights and the shared counters) and swaps it whole
// under a mutex, so that a request pays one hash lookup and a few atomics and a change never
// tears a request's view of the split.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "serving/infer.h"
#include "serving/router.h"

namespace flywheel::serving {

// A latency histogram over kRouteLatencyBuckets, lock-free to update.
class RouteLatency {
 public:
  void Observe(int64_t ns);
  LatencyHistogram Snap() const;

 private:
  std::atomic<uint64_t> buckets_[kRouteLatencyBucketCount] = {};
  std::atomic<uint64_t> sum_ns_{0};
};

// What a request's outcome counts as for the version that answered it.
enum class RouteOutcome { kSuccess, kFailure, kClientError };
RouteOutcome ClassifyOutcome(const absl::Status& status);

// The counters of one version in one model's split; shared by the snapshots that keep the version,
// so that a new split keeps them.
struct ArmCounters {
  std::atomic<uint64_t> routed{0};
  std::atomic<uint64_t> succeeded{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> client_errors{0};
  RouteLatency latency;
};

struct ShadowCounters {
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> compared{0};
  std::atomic<uint64_t> disagreed{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> skipped{0};
  RouteLatency latency;
};

// Per model, from the first SetTrafficSplit to ClearTrafficSplit.
struct ModelRouteState {
  std::atomic<uint64_t> next_request{0};  // canary sequence
  std::atomic<uint64_t> next_shadow{0};   // shadow sequence, apart so that it is not correlated
  std::atomic<uint64_t> unkeyed{0};
  std::atomic<int64_t> shadows_in_flight{0};
};

struct RouteArm {
  int64_t version = 0;
  std::string version_string;
  double weight = 0;
  // Upper end of the arm's share of [0, 1) (canary) and of the 10,000 buckets (A-B); an arm of
  // weight 0 has the same end as the arm before it and is never chosen.
  double cumulative = 0;
  int64_t bucket_end = 0;
  std::shared_ptr<ArmCounters> counters;
};

// One model's split as requests see it; never changed once published.
struct SplitSnapshot {
  TrafficSplit split;
  std::vector<RouteArm> arms;
  std::string shadow_version_string;
  std::shared_ptr<ShadowCounters> shadow;  // null without a shadow
  std::shared_ptr<ModelRouteState> state;
};

// Where one request goes.
struct RouteDecision {
  std::shared_ptr<const SplitSnapshot> snapshot;
  size_t arm = 0;
  // Whether this request also goes to the shadow version.
  bool shadow = false;
};

// Shadow copies in flight per model beyond which further copies are skipped, so that a slow
// candidate cannot pile up work behind the versions that serve.
inline constexpr int64_t kMaxShadowsInFlight = 256;

class Router {
 public:
  absl::Status Set(const TrafficSplit& split);
  absl::Status Clear(const std::string& model);
  std::optional<TrafficSplit> Get(const std::string& model) const;
  // model "" means every model with a split, ordered by name.
  std::vector<RouteFigures> Figures(const std::string& model) const;

  // Whether any model has a split; false makes routing free for every request.
  bool active() const { return active_.load(std::memory_order_acquire) > 0; }
  // The arm (and the shadow decision) for an unversioned request of `request.model_name`;
  // nullopt when the model has no split. Counts the request as routed (and unkeyed).
  std::optional<RouteDecision> Choose(const InferRequest& request) const;

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const SplitSnapshot>> splits_
      ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> active_{0};
};

// Records a routed request's outcome and end-to-end latency for its arm.
void RecordArmOutcome(ArmCounters& arm, const absl::Status& status, int64_t latency_ns);

// The text an A-B key parameter hashes as: strings as they are, integers in decimal, doubles in
// their shortest round-trip form (an integral double as the integer, so 42.0 and 42 agree),
// bools as "true"/"false".
std::string StickyKeyText(const ParameterValue& value);

// Whether the shadow's answer agrees with the served one under the split's tolerances: every
// output of `served` has a counterpart of the same name and shape in `shadow` whose elements are
// within shadow_atol + shadow_rtol * |served| (numbers of any type) or equal (BYTES).
bool AnswersAgree(const std::vector<InferOutput>& served, const std::vector<InferOutput>& shadow,
                  double atol, double rtol);

}  // namespace flywheel::serving
