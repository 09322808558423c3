// Window figures from cumulative router counters (see rollout_window.h).
#include "lifecycle/rollout_window.h"

#include <cstdint>
#include <utility>

namespace flywheel::lifecycle {
namespace {

// A counter's growth; a counter that went down was reset (the split was set anew), so all of it
// is new.
uint64_t Grown(uint64_t newer, uint64_t older) { return newer >= older ? newer - older : newer; }

const serving::ArmFigures* FindArm(const serving::RouteFigures& figures, int64_t version) {
  for (const serving::ArmFigures& arm : figures.arms) {
    if (arm.version == version) return &arm;
  }
  return nullptr;
}

struct Counts {
  uint64_t ok = 0;
  uint64_t failed = 0;
};

Counts ArmCounts(const serving::ArmFigures& newer, const serving::ArmFigures* older) {
  if (older == nullptr || newer.succeeded < older->succeeded || newer.failed < older->failed) {
    return {newer.succeeded, newer.failed};
  }
  return {newer.succeeded - older->succeeded, newer.failed - older->failed};
}

std::optional<double> Rate(uint64_t part, uint64_t whole) {
  if (whole == 0) return std::nullopt;
  return static_cast<double>(part) / static_cast<double>(whole);
}

}  // namespace

std::optional<double> WindowQuantileMs(const serving::LatencyHistogram& newer,
                                       const serving::LatencyHistogram* older, double q) {
  if (older != nullptr && newer.count < older->count) older = nullptr;
  uint64_t counts[serving::kRouteLatencyBucketCount];
  uint64_t total = 0;
  for (int i = 0; i < serving::kRouteLatencyBucketCount; ++i) {
    const uint64_t before = older ? older->buckets[i] : 0;
    counts[i] = Grown(newer.buckets[i], before);
    total += counts[i];
  }
  if (total == 0) return std::nullopt;
  const double rank = q * static_cast<double>(total);
  constexpr int kFinite = serving::kRouteLatencyBucketCount - 1;
  double below = 0;
  for (int i = 0; i < serving::kRouteLatencyBucketCount; ++i) {
    const double in_bucket = static_cast<double>(counts[i]);
    if (in_bucket > 0 && below + in_bucket >= rank) {
      if (i == kFinite) return serving::kRouteLatencyBuckets[kFinite - 1] * 1e3;
      const double lower = i == 0 ? 0 : serving::kRouteLatencyBuckets[i - 1];
      const double upper = serving::kRouteLatencyBuckets[i];
      const double into = rank <= below ? 0 : (rank - below) / in_bucket;
      return (lower + (upper - lower) * into) * 1e3;
    }
    below += in_bucket;
  }
  return serving::kRouteLatencyBuckets[kFinite - 1] * 1e3;
}

void RolloutWindow::Add(absl::Time now, serving::RouteFigures figures, absl::Duration window) {
  // Snapshots arrive in time order; one from the past (a clock step) restarts the window.
  if (!snapshots_.empty() && now < snapshots_.back().time) snapshots_.clear();
  snapshots_.push_back({now, std::move(figures)});
  // Keep the newest snapshot that is at least `window` old as the baseline.
  while (snapshots_.size() >= 2 && snapshots_[1].time <= now - window) snapshots_.pop_front();
}

RolloutFigures RolloutWindow::Figures(const RolloutSpec& spec) const {
  RolloutFigures f;
  if (snapshots_.size() < 2) return f;
  const serving::RouteFigures& older = snapshots_.front().figures;
  const serving::RouteFigures& newer = snapshots_.back().figures;
  if (const serving::ArmFigures* stable = FindArm(newer, spec.stable); stable != nullptr) {
    const serving::ArmFigures* before = FindArm(older, spec.stable);
    const Counts c = ArmCounts(*stable, before);
    f.stable_requests = static_cast<int64_t>(c.ok + c.failed);
    f.stable_error_rate = Rate(c.failed, c.ok + c.failed);
    f.stable_p99_ms = WindowQuantileMs(stable->latency, before ? &before->latency : nullptr, 0.99);
  }
  if (spec.policy == RolloutPolicy::kShadow) {
    const serving::ShadowFigures& s = newer.shadow;
    if (s.version != spec.candidate) return f;
    const serving::ShadowFigures* before =
        older.shadow.version == spec.candidate && s.sent >= older.shadow.sent ? &older.shadow
                                                                              : nullptr;
    const uint64_t compared = Grown(s.compared, before ? before->compared : 0);
    const uint64_t disagreed = Grown(s.disagreed, before ? before->disagreed : 0);
    const uint64_t failed = Grown(s.failed, before ? before->failed : 0);
    f.shadow_compared = static_cast<int64_t>(compared);
    f.shadow_disagreement = Rate(disagreed, compared);
    f.candidate_requests = static_cast<int64_t>(compared + failed);
    f.candidate_failed = static_cast<int64_t>(failed);
    f.candidate_error_rate = Rate(failed, compared + failed);
    f.candidate_p99_ms = WindowQuantileMs(s.latency, before ? &before->latency : nullptr, 0.99);
    return f;
  }
  if (const serving::ArmFigures* candidate = FindArm(newer, spec.candidate); candidate != nullptr) {
    const serving::ArmFigures* before = FindArm(older, spec.candidate);
    const Counts c = ArmCounts(*candidate, before);
    f.candidate_requests = static_cast<int64_t>(c.ok + c.failed);
    f.candidate_failed = static_cast<int64_t>(c.failed);
    f.candidate_error_rate = Rate(c.failed, c.ok + c.failed);
    f.candidate_p99_ms =
        WindowQuantileMs(candidate->latency, before ? &before->latency : nullptr, 0.99);
  }
  return f;
}

}  // namespace flywheel::lifecycle
