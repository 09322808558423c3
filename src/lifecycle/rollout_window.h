// The figures of a rollout over its sliding window: the router's cumulative per-arm counters are
// snapshotted every tick, and the window's figures are the difference between the newest snapshot
// and the baseline (the newest one at least `window` old, else the oldest). Private to lifecycle/.
#pragma once

#include <deque>
#include <optional>

#include "absl/time/time.h"
#include "lifecycle/rollout.h"
#include "serving/router.h"

namespace flywheel::lifecycle {

class RolloutWindow {
 public:
  // Forgets every snapshot (a new rollout, or the split was set again).
  void Reset() { snapshots_.clear(); }
  // Adds the figures seen at `now` and drops the snapshots the window no longer needs.
  void Add(absl::Time now, serving::RouteFigures figures, absl::Duration window);
  // The window's request figures of `spec`'s candidate and stable versions (quality is left
  // unset); all zero with fewer than two snapshots.
  RolloutFigures Figures(const RolloutSpec& spec) const;
  size_t size() const { return snapshots_.size(); }

 private:
  struct Snapshot {
    absl::Time time;
    serving::RouteFigures figures;
  };
  std::deque<Snapshot> snapshots_;
};

// The p-th quantile (0 < q <= 1) in milliseconds of the observations in `newer` that are not in
// `older` (histograms of the same arm), interpolated linearly inside the bucket that holds it, as
// Prometheus' histogram_quantile does; observations in the +Inf bucket report the largest finite
// bound. nullopt when the window has no observations.
std::optional<double> WindowQuantileMs(const serving::LatencyHistogram& newer,
                                       const serving::LatencyHistogram* older, double q);

}  // namespace flywheel::lifecycle
