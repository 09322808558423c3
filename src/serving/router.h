// Traffic policies for requests that name no version: a split of one model's traffic between
// versions (canary weights, or A-B with sticky assignment by a request parameter) and an optional
// shadow copy of a share of requests to a candidate, whose answers are compared and never
// returned. serving owns the routing and the per-version figures; lifecycle/rollout decides the
// policies and rolls a candidate back (by setting its weight to zero) when its figures breach.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace flywheel::serving {

struct TrafficArm {
  int64_t version = 0;  // > 0
  double weight = 0;    // relative share, >= 0; the weights of a split sum to more than 0
};

// How one model's unversioned traffic is routed. A request that names a version (path, alias or
// the "model_version" parameter) is never routed: it goes to that version.
struct TrafficSplit {
  std::string model;
  // Live traffic: each unversioned request goes to one arm, chosen by weight. One arm with
  // weight 1 pins the default version (what a promotion or a rollback leaves).
  std::vector<TrafficArm> arms;
  // Empty: each request is assigned on its own (canary). Otherwise the name of a request
  // parameter (e.g. "user_id"): its value is hashed into one of 10,000 buckets, so the same value
  // always reaches the same arm while the weights stay the same (A-B). A request without the
  // parameter goes to the first arm (the control) and is counted as unkeyed.
  std::string sticky_parameter;
  // Shadow: 0 for none. The version that gets a copy of `shadow_fraction` of the routed
  // requests; its answer is compared with the served one and dropped.
  int64_t shadow_version = 0;
  double shadow_fraction = 0;  // [0, 1]
  // Two answers agree when every output element of the served answer has a counterpart with
  // |shadow - served| <= shadow_atol + shadow_rtol * |served| (same output names and shapes).
  double shadow_atol = 1e-5;
  double shadow_rtol = 1e-3;
};

// Latency buckets (upper bounds, seconds) of the arm histograms; cumulative counts per bucket,
// the last bucket is +Inf. Fixed, so that two snapshots subtract into the figures of a window.
inline constexpr double kRouteLatencyBuckets[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
inline constexpr int kRouteLatencyBucketCount =
    sizeof(kRouteLatencyBuckets) / sizeof(kRouteLatencyBuckets[0]) + 1;

// Cumulative since the split was set for this model (a new SetTrafficSplit for the same model
// keeps the counters of versions that stay in it).
struct LatencyHistogram {
  uint64_t buckets[kRouteLatencyBucketCount] = {};  // counts per bucket, NOT cumulative
  uint64_t count = 0;
  double sum_seconds = 0;
};

struct ArmFigures {
  int64_t version = 0;
  double weight = 0;    // current
  uint64_t routed = 0;  // live requests sent to this version by the split
  uint64_t succeeded = 0;
  // Failures that are the version's doing: UNAVAILABLE, INTERNAL, DEADLINE_EXCEEDED, UNKNOWN,
  // RESOURCE_EXHAUSTED, NOT_FOUND (the version is gone). Bad requests (INVALID_ARGUMENT) are
  // counted apart as client_errors and never count against a version.
  uint64_t failed = 0;
  uint64_t client_errors = 0;
  LatencyHistogram latency;  // end to end from arrival, successes and failures
};

struct ShadowFigures {
  int64_t version = 0;    // 0 when the split has no shadow
  uint64_t sent = 0;      // copies sent
  uint64_t compared = 0;  // both answers ok and compared
  uint64_t disagreed = 0;
  uint64_t failed = 0;   // the shadow's answer was an error (the served one was ok)
  uint64_t skipped = 0;  // not compared: the served answer failed, or the queue was full
  LatencyHistogram latency;
};

struct RouteFigures {
  std::string model;
  TrafficSplit split;
  std::vector<ArmFigures> arms;  // in split order
  ShadowFigures shadow;
  uint64_t unkeyed = 0;  // A-B requests without the sticky parameter
};

// The bucket of an A-B key: a stable 64-bit hash of (model, value) modulo 10,000. The same in
// every process and release, since assignments must survive restarts.
int64_t StickyBucket(const std::string& model, const std::string& value);

// Checks a split: a model name, at least one arm, positive distinct versions, finite weights >= 0
// summing to more than 0, shadow_fraction in [0, 1], a shadow version when the fraction is set,
// tolerances finite and >= 0. Errors name the field.
absl::Status ValidateTrafficSplit(const TrafficSplit& split);

}  // namespace flywheel::serving
