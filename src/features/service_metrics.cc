#include "features/service_metrics.h"

#include <string>
#include <vector>

#include "features/pipeline.h"
#include "features/service.h"

namespace flywheel::features {
namespace {

// Lookups are served from memory in microseconds; the upper bounds reach a slow store read.
std::vector<double> LookupBoundsUs() {
  return {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000, 1000000};
}

void WriteStats(const FeatureService& service, const std::atomic<uint64_t>* rejected,
                uint64_t event_log_errors, monitor::SampleWriter& w) {
  const PipelineStats stats = service.pipeline().Stats();
  const char* events_help =
      "Feature events by source and outcome: accepted (applied), late (older than the "
      "watermark, dropped), invalid (malformed stream entries, skipped), rejected (in refused "
      "push batches)";
  for (size_t s = 0; s < stats.sources.size(); ++s) {
    const SourceStats& source = stats.sources[s];
    monitor::Labels labels = {{"source", source.name}};
    auto events = [&](const char* outcome, uint64_t n) {
      labels["outcome"] = outcome;
      w.Add("flywheel_feature_events_total", events_help, "counter", labels,
            static_cast<double>(n));
    };
    events("accepted", source.accepted);
    events("late", source.late);
    events("invalid", source.invalid);
    events("rejected", rejected[s].load());
    if (source.watermark) {
      w.Add("flywheel_feature_watermark_seconds",
            "Event time (Unix seconds) before which events of the source are late", "gauge",
            {{"source", source.name}},
            absl::ToDoubleSeconds(*source.watermark - absl::UnixEpoch()));
    }
  }
  for (const ViewStats& view : stats.views) {
    w.Add("flywheel_feature_entities", "Entities held in memory by feature view", "gauge",
          {{"view", view.name}}, static_cast<double>(view.entities));
    w.Add("flywheel_feature_tiles", "Aggregation tiles held in memory by feature view", "gauge",
          {{"view", view.name}}, static_cast<double>(view.tiles));
  }
  w.Add("flywheel_feature_flushes_total", "Commits of feature state to the online store", "counter",
        {}, static_cast<double>(stats.flushes));
  w.Add("flywheel_feature_flush_errors_total",
        "Failed commits to the online store (their changes go out with the next one)", "counter",
        {}, static_cast<double>(stats.flush_failures));
  w.Add("flywheel_feature_evicted_total", "Entity states dropped because they expired", "counter",
        {}, static_cast<double>(stats.evicted));
  w.Add("flywheel_feature_restored_entities", "Entity states loaded from the online store at start",
        "gauge", {}, static_cast<double>(stats.restored));
  w.Add("flywheel_feature_event_log_errors_total",
        "Failed appends to the event log (the batch was refused)", "counter", {},
        static_cast<double>(event_log_errors));
  for (const StreamConsumerStats& stream : service.StreamStats()) {
    const monitor::Labels labels = {{"source", stream.source}, {"stream", stream.stream}};
    w.Add("flywheel_feature_stream_entries_total", "Redis Stream entries read and applied",
          "counter", labels, static_cast<double>(stream.entries));
    w.Add("flywheel_feature_stream_errors_total",
          "Failed Redis Stream reads and refused stream batches", "counter", labels,
          static_cast<double>(stream.errors));
    w.Add("flywheel_feature_stream_up", "1 while the last read of the Redis Stream succeeded",
          "gauge", labels, stream.connected ? 1 : 0);
    w.Add("flywheel_feature_stream_lag_seconds",
          "Age of the last applied Redis Stream entry while behind the stream's head (0 when "
          "caught up)",
          "gauge", labels, stream.lag_seconds);
  }
}

}  // namespace

ServiceMetrics::ServiceMetrics(monitor::Registry& registry, const FeatureService* service,
                               size_t sources)
    : registry_(registry), rejected_(new std::atomic<uint64_t>[sources]) {
  for (size_t s = 0; s < sources; ++s) rejected_[s].store(0);
  auto& lookups = registry.AddHistogram(
      "flywheel_feature_lookup_latency_us",
      "Online feature lookup latency in microseconds, by path (http: /v1/features/online, "
      "inference: a feature_lookup step)",
      LookupBoundsUs());
  http_lookup_ = &lookups.WithLabels({{"path", "http"}});
  inference_lookup_ = &lookups.WithLabels({{"path", "inference"}});
  collector_ = registry.AddCollector([this, service](monitor::SampleWriter& w) {
    WriteStats(*service, rejected_.get(), event_log_errors.load(), w);
  });
}

ServiceMetrics::~ServiceMetrics() { registry_.RemoveCollector(collector_); }

void ServiceMetrics::ObserveLookup(absl::string_view path, double micros) {
  (path == "http" ? http_lookup_ : inference_lookup_)->Observe(micros);
}

}  // namespace flywheel::features
