// Private to the features module: the feature store's Prometheus metrics. Counters the pipeline
// and the stream consumers already keep are read at scrape time; what only the service sees
// (refused pushes, event log failures, lookup latency) is counted here.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/strings/string_view.h"
#include "monitor/metrics.h"

namespace flywheel::features {

class FeatureService;

struct ServiceMetrics {
  // REQUIRES: `registry` outlives this object, which must be destroyed before `service`'s
  // pipeline and consumers.
  ServiceMetrics(monitor::Registry& registry, const FeatureService* service, size_t sources);
  ~ServiceMetrics();
  ServiceMetrics(const ServiceMetrics&) = delete;
  ServiceMetrics& operator=(const ServiceMetrics&) = delete;

  // Events of a push batch refused as malformed.
  void AddRejected(int source, uint64_t events) { rejected_[source].fetch_add(events); }
  // `path`: "http" (/v1/features/online) or "inference" (a feature_lookup step).
  void ObserveLookup(absl::string_view path, double micros);

  std::atomic<uint64_t> event_log_errors{0};

 private:
  monitor::Registry& registry_;
  int collector_ = -1;
  monitor::Histogram* http_lookup_ = nullptr;
  monitor::Histogram* inference_lookup_ = nullptr;
  std::unique_ptr<std::atomic<uint64_t>[]> rejected_;
};

}  // namespace flywheel::features
