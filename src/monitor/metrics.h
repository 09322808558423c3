// Prometheus metrics: counters, gauges and histograms with labels, kept lock-free on the update
// path, and rendered in the Prometheus text exposition format (version 0.0.4) on a scrape.
//
//   monitor::Registry registry;
//   auto& requests = registry.AddCounter("nv_inference_request_success", "Successful requests");
//   requests.WithLabels({{"model", "rank"}, {"version", "1"}}).Increment();
//   std::string text = registry.Render();
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace flywheel::monitor {

// Label name -> value. Ordered, so that one label set has one rendering.
using Labels = std::map<std::string, std::string>;

class Counter {
 public:
  void Increment(double by = 1.0);
  double Value() const;

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void Set(double value);
  void Add(double by);
  double Value() const;

 private:
  std::atomic<double> value_{0.0};
};

// A histogram over fixed upper bounds (the +Inf bucket is implicit). Observe is lock-free.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value);
  // Cumulative counts per bound (the last entry is +Inf), the sum and the count.
  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<uint64_t> cumulative_counts;
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Snap() const;
  // Back to no observations. REQUIRES: no concurrent Observe (e.g. before the owner is shared).
  void Reset();
  // Bounds for request latencies in microseconds: 100us .. 10s, roughly x2.5 apart.
  static std::vector<double> LatencyBoundsUs();

 private:
  std::vector<double> bounds_;
  // Non-cumulative counts, bounds_.size() + 1 (the last is +Inf). The count is their total, so a
  // snapshot's _count always equals its +Inf bucket even while observations race with it.
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<double> sum_{0.0};
};

// One metric name with its help text and a child per label set. Children live as long as the
// family (or until Remove), so callers may keep references to them.
template <typename T>
class Family {
 public:
  Family(std::string name, std::string help, std::function<std::unique_ptr<T>()> make);
  T& WithLabels(const Labels& labels);
  void Remove(const Labels& labels);
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  // Calls fn(labels, child) for each child, under the family's lock.
  void ForEach(const std::function<void(const Labels&, const T&)>& fn) const;

 private:
  std::string name_;
  std::string help_;
  std::function<std::unique_ptr<T>()> make_;
  mutable absl::Mutex mu_;
  std::map<Labels, std::unique_ptr<T>> children_ ABSL_GUARDED_BY(mu_);
};

// Values computed at scrape time (process CPU, queue depth read from a scheduler...). A collector
// appends samples through this writer; it must not block.
class SampleWriter {
 public:
  virtual ~SampleWriter() = default;
  // type is "counter" or "gauge"; HELP/TYPE lines are written once per name.
  virtual void Add(const std::string& name, const std::string& help, const std::string& type,
                   const Labels& labels, double value) = 0;
  // A histogram sample set (_bucket/_sum/_count) under one HELP/TYPE histogram header.
  virtual void AddHistogram(const std::string& name, const std::string& help, const Labels& labels,
                            const Histogram::Snapshot& snapshot) = 0;
};

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Adding a name twice returns the existing family (its help must match).
  Family<Counter>& AddCounter(const std::string& name, const std::string& help);
  Family<Gauge>& AddGauge(const std::string& name, const std::string& help);
  Family<Histogram>& AddHistogram(const std::string& name, const std::string& help,
                                  std::vector<double> upper_bounds);

  // Registers a scrape-time collector; the returned id removes it.
  int AddCollector(std::function<void(SampleWriter&)> collector);
  void RemoveCollector(int id);

  // The whole registry in Prometheus text format: families sorted by name, label values escaped.
  std::string Render() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Adds the standard process metrics (process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds, process_start_time_seconds)
// read from /proc.
void AddProcessCollector(Registry& registry);

}  // namespace flywheel::monitor
