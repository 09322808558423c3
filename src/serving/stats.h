// Per model-version statistics: what the KServe statistics extension reports and what the
// nv_inference_* metrics are rendered from. Updated with atomics on the request path.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "monitor/metrics.h"

namespace flywheel::serving {

struct DurationStat {
  std::atomic<uint64_t> count{0};
  std::atomic<uint64_t> ns{0};
  void Add(uint64_t duration_ns) {
    count.fetch_add(1, std::memory_order_relaxed);
    ns.fetch_add(duration_ns, std::memory_order_relaxed);
  }
};

// Compute time of the executions of one batch size.
struct BatchStat {
  DurationStat compute_input;
  DurationStat compute_infer;
  DurationStat compute_output;
};

struct ModelStats {
  ModelStats() : latency_us(monitor::Histogram::LatencyBoundsUs()) {}

  // Per request (Triton's inference_stats): success and fail cover the whole request, queue the
  // time from enqueue to the start of its execution, compute_* the execution it was part of.
  DurationStat success;
  DurationStat fail;
  DurationStat queue;
  DurationStat compute_input;
  DurationStat compute_infer;
  DurationStat compute_output;
  // Inferences (batch elements) and executions (backend calls).
  std::atomic<uint64_t> inference_count{0};
  std::atomic<uint64_t> execution_count{0};
  std::atomic<int64_t> last_inference_ms{0};
  // Requests accepted and not yet answered.
  std::atomic<int64_t> pending{0};
  // Failures by reason, for nv_inference_request_failure{reason}: REJECTED (queue full),
  // CANCELED, BACKEND (execution failed), OTHER (invalid request, timeout...).
  std::atomic<uint64_t> fail_rejected{0};
  std::atomic<uint64_t> fail_backend{0};
  std::atomic<uint64_t> fail_other{0};
  // Request latency from arrival to response, in microseconds.
  monitor::Histogram latency_us;
  // Seconds the last load took.
  std::atomic<double> load_duration_secs{0};

  // Per batch size; the map is small (one entry per batch size seen).
  void RecordBatch(int64_t batch_size, uint64_t input_ns, uint64_t infer_ns, uint64_t output_ns) {
    std::lock_guard<std::mutex> lock(batch_mu);
    BatchStat& b = batches[batch_size];
    b.compute_input.Add(input_ns);
    b.compute_infer.Add(infer_ns);
    b.compute_output.Add(output_ns);
  }
  mutable std::mutex batch_mu;
  std::map<int64_t, BatchStat> batches;

  // Forgets every request counted so far (the warm-up requests a version ran before it was
  // ready; Triton leaves them out of the statistics too). Keeps load_duration_secs.
  // REQUIRES: no request in flight on this version.
  void Reset() {
    for (DurationStat* d :
         {&success, &fail, &queue, &compute_input, &compute_infer, &compute_output}) {
      d->count.store(0, std::memory_order_relaxed);
      d->ns.store(0, std::memory_order_relaxed);
    }
    for (std::atomic<uint64_t>* c :
         {&inference_count, &execution_count, &fail_rejected, &fail_backend, &fail_other}) {
      c->store(0, std::memory_order_relaxed);
    }
    last_inference_ms.store(0, std::memory_order_relaxed);
    latency_us.Reset();
    std::lock_guard<std::mutex> lock(batch_mu);
    batches.clear();
  }
};

}  // namespace flywheel::serving
