// Live drift of one model version: DriftMonitor observes each request's input and output
// tensors into sliding-window sketches (monitor/sketch.h) and, when read, compares them with the
// version's reference profile (monitor/profile.h): PSI, Kolmogorov-Smirnov, Jensen-Shannon,
// chi-square, missing and out-of-range rates and cardinality, per feature.
//
//   auto monitor = DriftMonitor::ForVersionDir("rank", "3", "/models/rank/3", DriftOptions{});
//   monitor->ObserveNamed(request.inputs, response.outputs);  // request path: cheap
//   DriftReport report = monitor->Compute();                  // GET .../drift, a scrape
//   std::string json = DriftReportToJson(report);
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "core/tensor.h"
#include "monitor/metrics.h"
#include "monitor/profile.h"
#include "monitor/sketch.h"

namespace flywheel::monitor {

struct DriftOptions {
  WindowOptions window;
  // Observe() sorts threads over this many independently locked window shards, so that
  // concurrent requests rarely wait for each other; statistics merge the newest buckets of all.
  int shards = 4;
  // Rows sampled into the window per second at most, over the whole monitor; rows beyond it are
  // skipped at the cost of one clock read and one atomic load per request. Sampling is uniform
  // over time and over the rows of a batch, so it does not bias the distributions. 0 samples
  // every row. A value costs about 10 ns, so 2000 rows/s of a 256-feature input take about 0.5%
  // of one core, where every row of a saturated MLP ranker would take as much as the model.
  double max_rows_per_second = 2000;
  // PSI at or above this marks a feature as drifted (the customary "significant shift" level).
  double psi_threshold = 0.2;
  // Statistics are reported once the window holds this many present values of a feature: with
  // 20 bins PSI's sampling noise is about 19/n, 0.04 at 500 rows.
  int64_t min_rows = 500;
};

// A named tensor of a request or response, as Observe reads it.
struct TensorRef {
  absl::string_view name;
  const Tensor* tensor = nullptr;
};

struct FeatureDrift {
  std::string name;
  FeatureRole role = FeatureRole::kInput;
  FeatureKind kind = FeatureKind::kNumeric;
  // Values looked at in the window (present or missing), and of them missing.
  int64_t count = 0;
  int64_t missing = 0;
  // Numeric: present values below the reference minimum or above its maximum. Categorical: values
  // not among the profile's listed categories (new ones, or ones pooled as "other").
  int64_t out_of_range = 0;
  double missing_rate = 0;
  double out_of_range_rate = 0;
  double reference_missing_rate = 0;
  // Set once the window holds DriftOptions::min_rows present values (and the reference has some).
  std::optional<double> psi;
  std::optional<double> js_distance;
  std::optional<double> ks_statistic;  // numeric only
  std::optional<double> ks_pvalue;
  std::optional<double> chi_square;  // categorical only
  std::optional<double> chi_square_pvalue;
  int chi_square_df = 0;
  // HyperLogLog estimate of distinct present values in the window, when the feature has a sketch.
  std::optional<double> cardinality;
  int64_t reference_cardinality = 0;
  // Numeric live figures over present values (set when there are some).
  std::optional<double> min;
  std::optional<double> max;
  std::optional<double> mean;
  double reference_mean = 0;
  bool drifted = false;
};

struct DriftReport {
  std::string model;
  std::string version;
  bool has_profile = false;
  // Why there are no figures (no profile, or a profile that could not be read).
  std::string reason;
  std::string profile_path;
  // Rows the merged window holds, its nominal size, and rows seen / sampled since the start.
  int64_t window_rows = 0;
  int64_t window_capacity = 0;
  int64_t rows_seen = 0;
  int64_t rows_sampled = 0;
  // Wall-clock time (Unix nanoseconds) of the window's oldest and newest rows; 0 when empty.
  int64_t window_start_ns = 0;
  int64_t window_end_ns = 0;
  double psi_threshold = 0;
  int64_t min_rows = 0;
  int drifted_features = 0;
  std::vector<FeatureDrift> features;
};

class DriftMonitor {
 public:
  // A monitor measuring against `profile` (read from `profile_path`, which reports name).
  DriftMonitor(std::string model, std::string version, ReferenceProfile profile,
               std::string profile_path, const DriftOptions& options);
  // A monitor without a profile: Observe does nothing and reports carry `reason`.
  static std::unique_ptr<DriftMonitor> WithoutProfile(std::string model, std::string version,
                                                      std::string reason,
                                                      std::string profile_path = "");
  // Reads <version_dir>/profile.json. A missing or unreadable profile is not an error - the model
  // is served all the same - but gives a monitor whose reports say why there are no figures.
  static std::unique_ptr<DriftMonitor> ForVersionDir(std::string model, std::string version,
                                                     const std::string& version_dir,
                                                     const DriftOptions& options);
  ~DriftMonitor();
  DriftMonitor(const DriftMonitor&) = delete;
  DriftMonitor& operator=(const DriftMonitor&) = delete;

  bool has_profile() const { return layout_ != nullptr; }
  const std::string& reason() const { return reason_; }
  const std::string& model() const { return model_; }
  const std::string& version() const { return version_; }

  // Counts each row of a batch: tensors [batch, F] (or [batch], [batch, 1]; more dimensions are
  // flattened) matched by name with the profile's tensors. Numeric tensors of any element type
  // and BYTES tensors are read; a profiled tensor absent from the call, or too narrow, counts as
  // missing. Thread-safe; allocates nothing in steady state.
  void Observe(absl::Span<const TensorRef> inputs, absl::Span<const TensorRef> outputs);
  // The same with the wall-clock time (Unix nanoseconds) given, for tests.
  void Observe(absl::Span<const TensorRef> inputs, absl::Span<const TensorRef> outputs,
               int64_t now_ns);
  // For containers of anything with `name` and `data` (a Tensor) members, such as the serving
  // layer's request inputs and response outputs.
  template <typename Inputs, typename Outputs>
  void ObserveNamed(const Inputs& inputs, const Outputs& outputs) {
    if (!has_profile()) return;
    absl::InlinedVector<TensorRef, 8> in;
    absl::InlinedVector<TensorRef, 8> out;
    for (const auto& t : inputs) in.push_back({t.name, &t.data});
    for (const auto& t : outputs) out.push_back({t.name, &t.data});
    Observe(in, out);
  }

  // Merges the window and computes every statistic (milliseconds at most; call it when drift is
  // read, not per request).
  DriftReport Compute() const;
  DriftReport Compute(int64_t now_ns) const;

 private:
  struct Shard;
  struct Slot;
  DriftMonitor(std::string model, std::string version, std::string reason,
               std::string profile_path);
  // How many rows of a `batch` to sample now (0..batch), under the rate limit.
  int64_t SampleCount(int64_t batch, int64_t now_ns);
  void AddRows(Bucket& bucket, absl::Span<const Tensor* const> found, int64_t batch,
               int64_t sampled, int64_t phase, int64_t first, int64_t count) const;
  Shard& ShardForThisThread() const;

  std::string model_;
  std::string version_;
  std::string reason_;
  std::string profile_path_;
  DriftOptions options_;
  ReferenceProfile profile_;
  std::unique_ptr<WindowLayout> layout_;
  // Profiled tensors and the features read from each.
  std::vector<Slot> slots_;
  absl::flat_hash_map<std::string, uint32_t> input_slots_;
  absl::flat_hash_map<std::string, uint32_t> output_slots_;
  std::vector<std::unique_ptr<Shard>> shards_;
  mutable std::atomic<uint64_t> sequence_{1};
  // Rate limit: the time before which no row is sampled.
  std::atomic<int64_t> next_sample_ns_{0};
  double sample_interval_ns_ = 0;
  int64_t burst_rows_ = 1;
};

// The report as the JSON of GET /v1/monitor/models/{model}/drift: figures that are not set are
// null, and a report without profile carries "reason".
std::string DriftReportToJson(const DriftReport& report);

// The report as Prometheus gauges, for a scrape-time collector (Registry::AddCollector):
// flywheel_feature_drift_psi, _js_distance, _ks_statistic, _ks_pvalue, _chi_square,
// _chi_square_pvalue, flywheel_feature_missing_rate, flywheel_feature_out_of_range_rate,
// flywheel_feature_cardinality, flywheel_feature_window_count with labels {model, version,
// feature}, and per model version flywheel_drift_profile_present (0/1), flywheel_drift_window_rows
// and flywheel_drift_features_drifted. Statistics not computed yet are left out.
void AppendDriftMetrics(const DriftReport& report, SampleWriter& writer);

// The drift monitors of the loaded model versions, by (model, version). Keep the monitor a
// request uses with the request's model version rather than looking it up per request.
class DriftRegistry {
 public:
  // Adds or replaces the monitor of (monitor->model(), monitor->version()).
  void Set(std::shared_ptr<DriftMonitor> monitor);
  std::shared_ptr<DriftMonitor> Get(absl::string_view model, absl::string_view version) const;
  void Remove(absl::string_view model, absl::string_view version);
  // Every monitor, ordered by model and version.
  std::vector<std::shared_ptr<DriftMonitor>> All() const;
  // The monitors of one model, ordered by version.
  std::vector<std::shared_ptr<DriftMonitor>> ForModel(absl::string_view model) const;
  // AppendDriftMetrics of every monitor: the body of a scrape-time collector.
  void Collect(SampleWriter& writer) const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<DriftMonitor>> monitors_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace flywheel::monitor
