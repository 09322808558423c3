// Judging an active rollout on each tick: its window's figures against the thresholds (a breach
// rolls it back), its health (a healthy window long enough promotes it), and the metrics that
// show all of it.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lifecycle/rollout_controller.h"
#include "monitor/monitoring.h"
#include "monitor/quality.h"

namespace flywheel::lifecycle {
namespace {

constexpr char kControllerName[] = "rollout-controller";

std::optional<double> Metric(const monitor::QualityReport& report, absl::string_view name) {
  if (name == "auc") return report.auc;
  if (name == "accuracy") return report.accuracy;
  if (name == "log_loss") return report.log_loss;
  if (name == "mae") return report.mae;
  if (name == "rmse") return report.rmse;
  return std::nullopt;
}

bool LowerIsBetter(absl::string_view metric) {
  return metric == "log_loss" || metric == "mae" || metric == "rmse";
}

struct Breach {
  std::string reason;  // the metric's label
  std::string detail;
};

std::vector<Breach> FindBreaches(const RolloutSpec& spec, const RolloutFigures& f) {
  const RolloutThresholds& t = spec.thresholds;
  const std::string window = absl::FormatDuration(t.window);
  std::vector<Breach> breaches;
  if (f.candidate_requests >= t.min_requests) {
    if (f.candidate_error_rate.has_value() && *f.candidate_error_rate > t.max_error_rate) {
      breaches.push_back({"error_rate", absl::StrFormat("error rate %.4g > %.4g over %d requests "
                                                        "in %s",
                                                        *f.candidate_error_rate, t.max_error_rate,
                                                        f.candidate_requests, window)});
    }
    if (t.max_p99_ms.has_value() && f.candidate_p99_ms.has_value() &&
        *f.candidate_p99_ms > *t.max_p99_ms) {
      breaches.push_back({"p99", absl::StrFormat("p99 latency %.4g ms > %.4g ms over %d requests "
                                                 "in %s",
                                                 *f.candidate_p99_ms, *t.max_p99_ms,
                                                 f.candidate_requests, window)});
    }
    if (spec.policy == RolloutPolicy::kShadow && t.max_disagreement.has_value() &&
        f.shadow_disagreement.has_value() && *f.shadow_disagreement > *t.max_disagreement) {
      breaches.push_back(
          {"disagreement",
           absl::StrFormat("shadow disagreement %.4g > %.4g over %d comparisons in %s",
                           *f.shadow_disagreement, *t.max_disagreement, f.shadow_compared,
                           window)});
    }
  }
  if (t.max_quality_drop.has_value() && f.candidate_quality.has_value() &&
      f.stable_quality.has_value()) {
    const double drop = LowerIsBetter(t.quality_metric) ? *f.candidate_quality - *f.stable_quality
                                                        : *f.stable_quality - *f.candidate_quality;
    if (drop > *t.max_quality_drop) {
      breaches.push_back(
          {"quality",
           absl::StrFormat("%s worse by %.4g > %.4g (candidate %.4g over %d labels, stable %.4g "
                           "over %d)",
                           t.quality_metric, drop, *t.max_quality_drop, *f.candidate_quality,
                           f.candidate_labels, *f.stable_quality, f.stable_labels)});
    }
  }
  return breaches;
}

// Healthy: judged on every threshold it has, with no breach. Quality counts once it is set.
bool Judged(const RolloutSpec& spec, const RolloutFigures& f) {
  if (f.candidate_requests < spec.thresholds.min_requests) return false;
  if (spec.thresholds.max_quality_drop.has_value()) {
    return f.candidate_quality.has_value() && f.stable_quality.has_value();
  }
  return true;
}

}  // namespace

void RolloutController::Impl::AddQuality(const RolloutSpec& spec, RolloutFigures& f) const {
  if (monitoring == nullptr) return;
  absl::StatusOr<std::vector<monitor::VersionQuality>> quality = monitoring->Quality(spec.model);
  if (!quality.ok()) return;
  const RolloutThresholds& t = spec.thresholds;
  for (const monitor::VersionQuality& q : *quality) {
    const bool candidate = q.version == absl::StrCat(spec.candidate);
    const bool stable = q.version == absl::StrCat(spec.stable);
    if (!candidate && !stable) continue;
    std::optional<double> value = Metric(q.report, t.quality_metric);
    if (q.report.pairs < t.min_labels) value.reset();
    if (candidate) {
      f.candidate_labels = q.report.pairs;
      f.candidate_quality = value;
    } else {
      f.stable_labels = q.report.pairs;
      f.stable_quality = value;
    }
  }
}

void RolloutController::Impl::Judge(Entry& entry, absl::Time now) {
  RolloutStatus& s = entry.status;
  Snapshot(entry, now);
  s.figures = entry.window.Figures(s.spec);
  AddQuality(s.spec, s.figures);
  const std::vector<Breach> breaches = FindBreaches(s.spec, s.figures);
  if (!breaches.empty()) {
    for (const Breach& b : breaches) AddEvent(s, now, "breach", b.detail, kControllerName);
    absl::Status done =
        EndRollback(entry, now, kControllerName, breaches.front().detail, breaches.front().reason);
    if (!done.ok()) {
      AddEvent(s, now, "error", absl::StrCat("rollback failed: ", done.message()), kControllerName);
    }
    return;
  }
  if (!Judged(s.spec, s.figures)) {
    // Too few requests (or labels) in the window to call it healthy: the healthy stretch breaks.
    if (s.healthy_since != absl::InfinitePast()) {
      s.healthy_since = absl::InfinitePast();
      Save(entry).IgnoreError();
    }
    return;
  }
  if (s.healthy_since == absl::InfinitePast()) {
    s.healthy_since = now;
    Save(entry).IgnoreError();
  }
  if (s.spec.promote_after.has_value() && now - s.healthy_since >= *s.spec.promote_after) {
    const std::string detail = absl::StrFormat(
        "healthy for %s (%d requests in the last %s, error rate %.4g)",
        absl::FormatDuration(now - s.healthy_since), s.figures.candidate_requests,
        absl::FormatDuration(s.spec.thresholds.window), s.figures.candidate_error_rate.value_or(0));
    absl::Status done = EndPromote(entry, now, {kControllerName, "healthy rollout"}, detail);
    if (!done.ok()) {
      AddEvent(s, now, "error", absl::StrCat("promotion failed: ", done.message()),
               kControllerName);
    }
  }
}

void RolloutController::Impl::Collect(monitor::SampleWriter& writer) const {
  absl::MutexLock lock(&mu);
  for (const auto& item : rollouts) {
    // Named, not a structured binding: the lambdas below capture it.
    const std::string& model = item.first;
    const RolloutStatus& s = item.second.status;
    for (RolloutState state : {RolloutState::kActive, RolloutState::kPromoted,
                               RolloutState::kRolledBack, RolloutState::kStopped}) {
      writer.Add("flywheel_rollout_state", "1 for the state each model's rollout is in", "gauge",
                 {{"model", model}, {"state", RolloutStateName(state)}}, s.state == state ? 1 : 0);
    }
    if (s.spec.candidate <= 0) continue;
    const std::string candidate = absl::StrCat(s.spec.candidate);
    double weight = 0;
    if (s.state == RolloutState::kPromoted) {
      weight = 1;
    } else if (s.state == RolloutState::kActive && s.spec.policy != RolloutPolicy::kShadow) {
      weight = s.spec.weight;
    }
    writer.Add("flywheel_rollout_candidate_weight",
               "The candidate's share of the model's unversioned traffic", "gauge",
               {{"model", model}, {"version", candidate}}, weight);
    if (s.state != RolloutState::kActive) continue;
    const RolloutFigures& f = s.figures;
    const std::string stable = absl::StrCat(s.spec.stable);
    auto rate = [&](const std::optional<double>& v, const std::string& version, const char* role) {
      if (!v.has_value()) return;
      writer.Add("flywheel_rollout_error_rate", "Failed / answered requests in the rollout window",
                 "gauge", {{"model", model}, {"version", version}, {"role", role}}, *v);
    };
    rate(f.candidate_error_rate, candidate, "candidate");
    rate(f.stable_error_rate, stable, "stable");
    auto p99 = [&](const std::optional<double>& ms, const std::string& version, const char* role) {
      if (!ms.has_value()) return;
      writer.Add("flywheel_rollout_p99_seconds", "p99 latency in the rollout window", "gauge",
                 {{"model", model}, {"version", version}, {"role", role}}, *ms / 1e3);
    };
    p99(f.candidate_p99_ms, candidate, "candidate");
    p99(f.stable_p99_ms, stable, "stable");
    if (f.shadow_disagreement.has_value()) {
      writer.Add("flywheel_rollout_disagreement",
                 "Shadow answers that disagree with the served ones, in the rollout window",
                 "gauge", {{"model", model}, {"version", candidate}}, *f.shadow_disagreement);
    }
  }
}

}  // namespace flywheel::lifecycle
