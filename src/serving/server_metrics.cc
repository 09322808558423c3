// Triton's nv_* metrics and the traffic splits' flywheel_route_* / flywheel_shadow_* figures,
// rendered at scrape time from each model version's statistics and the router's counters so that
// the request path pays only for its atomic counters.
#include <string>
#include <utility>
#include <vector>

#include "monitor/metrics.h"
#include "serving/server_impl.h"

namespace flywheel::serving {
namespace {

void WriteVersion(const ModelVersion& mv, monitor::SampleWriter& w) {
  const ModelStats& s = *mv.stats;
  const monitor::Labels labels = {{"model", mv.name}, {"version", mv.version_string}};
  auto counter = [&](const char* name, const char* help, double value) {
    w.Add(name, help, "counter", labels, value);
  };
  auto us = [](const DurationStat& d) { return static_cast<double>(d.ns.load()) / 1000.0; };
  counter("nv_inference_request_success",
          "Number of successful inference requests, all batch sizes",
          static_cast<double>(s.success.count.load()));
  const char* fail_help = "Number of failed inference requests, all batch sizes";
  monitor::Labels with_reason = labels;
  with_reason["reason"] = "REJECTED";
  w.Add("nv_inference_request_failure", fail_help, "counter", with_reason,
        static_cast<double>(s.fail_rejected.load()));
  with_reason["reason"] = "BACKEND";
  w.Add("nv_inference_request_failure", fail_help, "counter", with_reason,
        static_cast<double>(s.fail_backend.load()));
  with_reason["reason"] = "OTHER";
  w.Add("nv_inference_request_failure", fail_help, "counter", with_reason,
        static_cast<double>(s.fail_other.load()));
  counter("nv_inference_count", "Number of inferences performed (batch elements)",
          static_cast<double>(s.inference_count.load()));
  counter("nv_inference_exec_count", "Number of model executions performed",
          static_cast<double>(s.execution_count.load()));
  counter("nv_inference_request_duration_us",
          "Cumulative inference request duration in microseconds (queue and compute)",
          us(s.success) + us(s.fail));
  counter("nv_inference_queue_duration_us", "Cumulative inference queuing duration in microseconds",
          us(s.queue));
  counter("nv_inference_compute_input_duration_us",
          "Cumulative compute input duration in microseconds", us(s.compute_input));
  counter("nv_inference_compute_infer_duration_us",
          "Cumulative compute inference duration in microseconds", us(s.compute_infer));
  counter("nv_inference_compute_output_duration_us",
          "Cumulative inference compute output duration in microseconds", us(s.compute_output));
  w.Add("nv_inference_pending_request_count",
        "Instantaneous number of pending requests awaiting execution per-model", "gauge", labels,
        static_cast<double>(s.pending.load()));
  w.Add("nv_model_load_duration_secs", "Model load time in seconds", "gauge", labels,
        s.load_duration_secs.load());
  w.AddHistogram("flywheel_inference_request_latency_us",
                 "Inference request latency from arrival to response, in microseconds", labels,
                 s.latency_us.Snap());
}

monitor::Histogram::Snapshot SecondsSnapshot(const LatencyHistogram& h) {
  monitor::Histogram::Snapshot snap;
  uint64_t running = 0;
  for (int i = 0; i < kRouteLatencyBucketCount; ++i) {
    if (i + 1 < kRouteLatencyBucketCount) snap.upper_bounds.push_back(kRouteLatencyBuckets[i]);
    running += h.buckets[i];
    snap.cumulative_counts.push_back(running);
  }
  snap.sum = h.sum_seconds;
  snap.count = h.count;
  return snap;
}

// The traffic splits' figures (serving/router.h), one series per arm and outcome.
void WriteRoutes(const std::vector<RouteFigures>& routes, monitor::SampleWriter& w) {
  for (const RouteFigures& route : routes) {
    double total_weight = 0;
    for (const ArmFigures& arm : route.arms) total_weight += arm.weight;
    for (const ArmFigures& arm : route.arms) {
      const monitor::Labels labels = {{"model", route.model},
                                      {"version", std::to_string(arm.version)}};
      const char* help = "Requests routed to a version by its model's traffic split, by outcome";
      for (const auto& [outcome, count] :
           {std::pair<const char*, uint64_t>{"success", arm.succeeded},
            {"failure", arm.failed},
            {"client_error", arm.client_errors}}) {
        monitor::Labels with_outcome = labels;
        with_outcome["outcome"] = outcome;
        w.Add("flywheel_route_requests_total", help, "counter", with_outcome,
              static_cast<double>(count));
      }
      w.Add("flywheel_route_weight", "A version's share of its model's unversioned traffic (0..1)",
            "gauge", labels, total_weight > 0 ? arm.weight / total_weight : 0.0);
      w.AddHistogram("flywheel_route_latency_seconds",
                     "Latency of routed requests from arrival to answer (successes and failures)",
                     labels, SecondsSnapshot(arm.latency));
    }
    w.Add("flywheel_route_unkeyed_total",
          "A-B requests without the sticky parameter (sent to the first arm)", "counter",
          {{"model", route.model}}, static_cast<double>(route.unkeyed));
    if (route.shadow.version == 0) continue;
    const ShadowFigures& s = route.shadow;
    const monitor::Labels labels = {{"model", route.model}, {"version", std::to_string(s.version)}};
    const uint64_t agreed = s.compared >= s.disagreed ? s.compared - s.disagreed : 0;
    for (const auto& [outcome, count] : {std::pair<const char*, uint64_t>{"agreed", agreed},
                                         {"disagreed", s.disagreed},
                                         {"failed", s.failed},
                                         {"skipped", s.skipped}}) {
      monitor::Labels with_outcome = labels;
      with_outcome["outcome"] = outcome;
      w.Add("flywheel_shadow_requests_total",
            "Shadow copies by outcome: answers agreed or disagreed with the served one, the "
            "shadow failed, or no comparison was made",
            "counter", with_outcome, static_cast<double>(count));
    }
    w.AddHistogram("flywheel_shadow_latency_seconds",
                   "Latency of shadow copies from dispatch to answer", labels,
                   SecondsSnapshot(s.latency));
  }
}

}  // namespace

void Server::Impl::RegisterMetrics() {
  if (metrics == nullptr) return;
  collector_id = metrics->AddCollector([this](monitor::SampleWriter& w) {
    absl::ReaderMutexLock lock(&mu);
    for (const auto& [name, entry] : models) {
      for (const auto& [v, mv] : entry.versions) WriteVersion(*mv, w);
    }
    WriteRoutes(router.Figures(""), w);
  });
}

}  // namespace flywheel::serving
