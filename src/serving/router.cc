// Traffic splits: validation, the A-B bucket hash, the split table and the choice of an arm per
// request (serving/router.h, serving/router_impl.h).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "serving/router_impl.h"

namespace flywheel::serving {
namespace {

constexpr int64_t kStickyBuckets = 10000;

// The fractional part of n times the golden ratio, in [0, 1): consecutive n spread over [0, 1) as
// evenly as any sequence can (a Weyl sequence), so that N requests split within O(log N / N) of
// the weights instead of the O(1 / sqrt(N)) of independent random draws.
double LowDiscrepancy(uint64_t n) {
  const uint64_t x = n * 0x9E3779B97F4A7C15ULL;  // 2^64 / golden ratio, odd
  return static_cast<double>(x >> 11) * 0x1.0p-53;
}

std::string Field(const TrafficSplit& split, absl::string_view what) {
  return absl::StrCat("traffic split for model '", split.model, "': ", what);
}

bool Finite(double v) { return std::isfinite(v); }

}  // namespace

int64_t StickyBucket(const std::string& model, const std::string& value) {
  // FNV-1a 64 over model, one zero byte, value; then MurmurHash3's 64-bit finaliser, so that the
  // low digits a modulo keeps depend on every input bit. Both are fixed by their published
  // constants: assignments survive restarts, releases and machines.
  uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&h](unsigned char c) {
    h ^= c;
    h *= 0x100000001b3ULL;
  };
  for (unsigned char c : model) mix(c);
  mix(0);
  for (unsigned char c : value) mix(c);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return static_cast<int64_t>(h % kStickyBuckets);
}

absl::Status ValidateTrafficSplit(const TrafficSplit& split) {
  if (split.model.empty()) {
    return absl::InvalidArgumentError("traffic split: model must name a model, got \"\"");
  }
  if (split.arms.empty()) {
    return absl::InvalidArgumentError(Field(split, "arms must have at least one version"));
  }
  std::set<int64_t> seen;
  double total = 0;
  for (size_t i = 0; i < split.arms.size(); ++i) {
    const TrafficArm& arm = split.arms[i];
    if (arm.version <= 0) {
      return absl::InvalidArgumentError(
          Field(split, absl::StrCat("arms[", i, "].version must be > 0, got ", arm.version)));
    }
    if (!seen.insert(arm.version).second) {
      return absl::InvalidArgumentError(
          Field(split, absl::StrCat("arms[", i, "].version ", arm.version, " appears twice")));
    }
    if (!Finite(arm.weight) || arm.weight < 0) {
      return absl::InvalidArgumentError(Field(
          split, absl::StrCat("arms[", i, "].weight must be finite and >= 0, got ", arm.weight)));
    }
    total += arm.weight;
  }
  if (!(total > 0) || !Finite(total)) {
    return absl::InvalidArgumentError(Field(
        split, absl::StrCat("the arms' weights must sum to a finite value > 0, got ", total)));
  }
  if (split.sticky_parameter == "model_version") {
    return absl::InvalidArgumentError(
        Field(split,
              "sticky_parameter cannot be \"model_version\": requests that name a version are "
              "never routed"));
  }
  if (!Finite(split.shadow_fraction) || split.shadow_fraction < 0 || split.shadow_fraction > 1) {
    return absl::InvalidArgumentError(Field(
        split, absl::StrCat("shadow_fraction must be in [0, 1], got ", split.shadow_fraction)));
  }
  if (split.shadow_version < 0) {
    return absl::InvalidArgumentError(
        Field(split,
              absl::StrCat("shadow_version must be > 0 (0 for none), got ", split.shadow_version)));
  }
  if (split.shadow_fraction > 0 && split.shadow_version == 0) {
    return absl::InvalidArgumentError(Field(
        split, absl::StrCat("shadow_fraction is ", split.shadow_fraction,
                            " but shadow_version is not set: name the version that gets copies")));
  }
  if (!Finite(split.shadow_atol) || split.shadow_atol < 0) {
    return absl::InvalidArgumentError(
        Field(split, absl::StrCat("shadow_atol must be finite and >= 0, got ", split.shadow_atol)));
  }
  if (!Finite(split.shadow_rtol) || split.shadow_rtol < 0) {
    return absl::InvalidArgumentError(
        Field(split, absl::StrCat("shadow_rtol must be finite and >= 0, got ", split.shadow_rtol)));
  }
  return absl::OkStatus();
}

void RouteLatency::Observe(int64_t ns) {
  if (ns < 0) ns = 0;
  const double seconds = static_cast<double>(ns) * 1e-9;
  int bucket = 0;
  while (bucket < kRouteLatencyBucketCount - 1 && seconds > kRouteLatencyBuckets[bucket]) ++bucket;
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
}

LatencyHistogram RouteLatency::Snap() const {
  LatencyHistogram out;
  for (int i = 0; i < kRouteLatencyBucketCount; ++i) {
    out.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
    out.count += out.buckets[i];
  }
  out.sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) * 1e-9;
  return out;
}

RouteOutcome ClassifyOutcome(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return RouteOutcome::kSuccess;
    // What the request (or its client) got wrong, whichever version it reached.
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kAlreadyExists:
      return RouteOutcome::kClientError;
    default:
      return RouteOutcome::kFailure;
  }
}

void RecordArmOutcome(ArmCounters& arm, const absl::Status& status, int64_t latency_ns) {
  switch (ClassifyOutcome(status)) {
    case RouteOutcome::kSuccess:
      arm.succeeded.fetch_add(1, std::memory_order_relaxed);
      break;
    case RouteOutcome::kFailure:
      arm.failed.fetch_add(1, std::memory_order_relaxed);
      break;
    case RouteOutcome::kClientError:
      // A bad request says nothing about the version's speed either.
      arm.client_errors.fetch_add(1, std::memory_order_relaxed);
      return;
  }
  arm.latency.Observe(latency_ns);
}

std::string StickyKeyText(const ParameterValue& value) {
  if (const std::string* s = std::get_if<std::string>(&value)) return *s;
  if (const int64_t* i = std::get_if<int64_t>(&value)) return absl::StrCat(*i);
  if (const bool* b = std::get_if<bool>(&value)) return *b ? "true" : "false";
  const double d = std::get<double>(value);
  // Integral doubles below 2^53 read as the integer: a JSON client sending 42.0 and a gRPC client
  // sending 42 are the same user.
  if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9007199254740992.0) {
    return absl::StrCat(static_cast<int64_t>(d));
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), d);
  if (ec != std::errc()) return absl::StrCat(d);
  return std::string(buf, end);
}

absl::Status Router::Set(const TrafficSplit& split) {
  if (absl::Status valid = ValidateTrafficSplit(split); !valid.ok()) return valid;
  auto snapshot = std::make_shared<SplitSnapshot>();
  snapshot->split = split;
  double total = 0;
  for (const TrafficArm& arm : split.arms) total += arm.weight;
  double running = 0;
  size_t last_positive = 0;
  for (size_t i = 0; i < split.arms.size(); ++i) {
    const TrafficArm& arm = split.arms[i];
    running += arm.weight;
    RouteArm routed;
    routed.version = arm.version;
    routed.version_string = absl::StrCat(arm.version);
    routed.weight = arm.weight;
    routed.cumulative = running / total;
    routed.bucket_end = std::llround(routed.cumulative * kStickyBuckets);
    if (arm.weight > 0) last_positive = i;
    snapshot->arms.push_back(std::move(routed));
  }
  // Rounding must not leave the top of the range to no arm.
  snapshot->arms[last_positive].cumulative = 1.0;
  snapshot->arms[last_positive].bucket_end = kStickyBuckets;
  if (split.shadow_version > 0)
    snapshot->shadow_version_string = absl::StrCat(split.shadow_version);

  absl::MutexLock lock(&mu_);
  auto it = splits_.find(split.model);
  const SplitSnapshot* previous = it == splits_.end() ? nullptr : it->second.get();
  snapshot->state = previous != nullptr ? previous->state : std::make_shared<ModelRouteState>();
  for (RouteArm& arm : snapshot->arms) {
    if (previous != nullptr) {
      for (const RouteArm& old : previous->arms) {
        if (old.version == arm.version) arm.counters = old.counters;
      }
    }
    if (arm.counters == nullptr) arm.counters = std::make_shared<ArmCounters>();
  }
  if (split.shadow_version > 0) {
    if (previous != nullptr && previous->split.shadow_version == split.shadow_version) {
      snapshot->shadow = previous->shadow;
    }
    if (snapshot->shadow == nullptr) snapshot->shadow = std::make_shared<ShadowCounters>();
  }
  if (previous == nullptr) {
    splits_.emplace(split.model, std::move(snapshot));
    active_.fetch_add(1, std::memory_order_release);
  } else {
    it->second = std::move(snapshot);
  }
  return absl::OkStatus();
}

absl::Status Router::Clear(const std::string& model) {
  absl::MutexLock lock(&mu_);
  auto it = splits_.find(model);
  if (it == splits_.end()) {
    return absl::NotFoundError(absl::StrCat("model '", model, "' has no traffic split"));
  }
  splits_.erase(it);
  active_.fetch_sub(1, std::memory_order_release);
  return absl::OkStatus();
}

std::optional<TrafficSplit> Router::Get(const std::string& model) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = splits_.find(model);
  if (it == splits_.end()) return std::nullopt;
  return it->second->split;
}

std::vector<RouteFigures> Router::Figures(const std::string& model) const {
  std::vector<std::shared_ptr<const SplitSnapshot>> snapshots;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [name, snapshot] : splits_) {
      if (model.empty() || name == model) snapshots.push_back(snapshot);
    }
  }
  std::sort(snapshots.begin(), snapshots.end(),
            [](const auto& a, const auto& b) { return a->split.model < b->split.model; });
  std::vector<RouteFigures> out;
  out.reserve(snapshots.size());
  for (const auto& snapshot : snapshots) {
    RouteFigures figures;
    figures.model = snapshot->split.model;
    figures.split = snapshot->split;
    for (const RouteArm& arm : snapshot->arms) {
      const ArmCounters& c = *arm.counters;
      ArmFigures a;
      a.version = arm.version;
      a.weight = arm.weight;
      a.routed = c.routed.load(std::memory_order_relaxed);
      a.succeeded = c.succeeded.load(std::memory_order_relaxed);
      a.failed = c.failed.load(std::memory_order_relaxed);
      a.client_errors = c.client_errors.load(std::memory_order_relaxed);
      a.latency = c.latency.Snap();
      figures.arms.push_back(a);
    }
    if (snapshot->shadow != nullptr) {
      const ShadowCounters& s = *snapshot->shadow;
      figures.shadow.version = snapshot->split.shadow_version;
      figures.shadow.sent = s.sent.load(std::memory_order_relaxed);
      figures.shadow.compared = s.compared.load(std::memory_order_relaxed);
      figures.shadow.disagreed = s.disagreed.load(std::memory_order_relaxed);
      figures.shadow.failed = s.failed.load(std::memory_order_relaxed);
      figures.shadow.skipped = s.skipped.load(std::memory_order_relaxed);
      figures.shadow.latency = s.latency.Snap();
    }
    figures.unkeyed = snapshot->state->unkeyed.load(std::memory_order_relaxed);
    out.push_back(std::move(figures));
  }
  return out;
}

std::optional<RouteDecision> Router::Choose(const InferRequest& request) const {
  RouteDecision decision;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = splits_.find(request.model_name);
    if (it == splits_.end()) return std::nullopt;
    decision.snapshot = it->second;
  }
  const SplitSnapshot& snap = *decision.snapshot;
  ModelRouteState& state = *snap.state;
  const std::string& key = snap.split.sticky_parameter;
  if (key.empty()) {
    const double u = LowDiscrepancy(state.next_request.fetch_add(1, std::memory_order_relaxed));
    while (decision.arm + 1 < snap.arms.size() && u >= snap.arms[decision.arm].cumulative) {
      ++decision.arm;
    }
  } else {
    auto param = request.parameters.find(key);
    if (param == request.parameters.end()) {
      state.unkeyed.fetch_add(1, std::memory_order_relaxed);
    } else {
      const int64_t bucket = StickyBucket(request.model_name, StickyKeyText(param->second));
      while (decision.arm + 1 < snap.arms.size() && bucket >= snap.arms[decision.arm].bucket_end) {
        ++decision.arm;
      }
    }
  }
  const RouteArm& arm = snap.arms[decision.arm];
  arm.counters->routed.fetch_add(1, std::memory_order_relaxed);

  // A copy to the version that already answers would compare a version with itself.
  if (snap.shadow != nullptr && snap.split.shadow_fraction > 0 &&
      arm.version != snap.split.shadow_version) {
    const double u = LowDiscrepancy(state.next_shadow.fetch_add(1, std::memory_order_relaxed));
    if (u < snap.split.shadow_fraction) {
      if (state.shadows_in_flight.fetch_add(1, std::memory_order_acq_rel) >= kMaxShadowsInFlight) {
        state.shadows_in_flight.fetch_sub(1, std::memory_order_acq_rel);
        snap.shadow->skipped.fetch_add(1, std::memory_order_relaxed);
      } else {
        decision.shadow = true;
      }
    }
  }
  return decision;
}

}  // namespace flywheel::serving
