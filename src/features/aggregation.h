// Reading features out of tiles, and the per-source watermark that decides which events still
// count. The value of a windowed feature at time `now` is the fold of the events whose time
// lies in [end - window, end), where end = floor(now / every) * every: the newest window that
// has ended at or before `now`. Lookups and the offline export share this definition.
#pragma once

#include <cstdint>

#include "features/feature_value.h"
#include "features/tiles.h"

namespace flywheel::features {

// The value of feature `feature` (an index into layout.features()) of one entity at `now_ns`.
//   - raw fields: the field's newest value; OUTSIDE_TTL when older than the view's ttl.
//   - aggregations: OUTSIDE_TTL when the entity's newest event is older than the view's
//     (effective) ttl; count, sum, distinct and last_n of an empty window are 0 / []; mean,
//     min, max and last of an empty window are NOT_FOUND.
// REQUIRES: now_ns is at or after the source's watermark, or the ring may no longer hold the
// window (the offline export answers questions about the past).
FeatureValue EvaluateFeature(const ViewLayout& layout, const ViewState& state, int feature,
                             int64_t now_ns);

// Event time progress of one source. An event is late when it is older than the newest event
// time seen minus the allowed lateness: the windows it belongs to may already have been read as
// final, so it is dropped (and counted) instead of changing them.
class Watermark {
 public:
  explicit Watermark(int64_t lateness_ns = 0) : lateness_ns_(lateness_ns) {}

  // False when `ts` is late; otherwise records it and returns true.
  bool Admit(int64_t ts) {
    if (max_ts_ != kNoTime && ts < max_ts_ - lateness_ns_) return false;
    if (ts > max_ts_) max_ts_ = ts;
    return true;
  }
  // Moves the newest event time forward (restoring state) without admitting an event.
  void Observe(int64_t ts) {
    if (ts > max_ts_) max_ts_ = ts;
  }
  int64_t max_event_time() const { return max_ts_; }
  // Events older than this are late; kNoTime before the first event.
  int64_t value() const { return max_ts_ == kNoTime ? kNoTime : max_ts_ - lateness_ns_; }
  int64_t lateness_ns() const { return lateness_ns_; }

 private:
  int64_t lateness_ns_;
  int64_t max_ts_ = kNoTime;
};

}  // namespace flywheel::features
