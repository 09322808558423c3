// Triton's nv_* metrics, rendered at scrape time from each model version's statistics so that
// the request path pays only for its atomic counters.
#include <string>

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

}  // namespace

void Server::Impl::RegisterMetrics() {
  if (metrics == nullptr) return;
  collector_id = metrics->AddCollector([this](monitor::SampleWriter& w) {
    absl::ReaderMutexLock lock(&mu);
    for (const auto& [name, entry] : models) {
      for (const auto& [v, mv] : entry.versions) WriteVersion(*mv, w);
    }
  });
}

}  // namespace flywheel::serving
