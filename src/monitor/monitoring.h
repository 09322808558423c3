// The server's model monitoring as one service: the drift monitors, the delayed-label joiner and
// the prediction log, with per-model settings from server flags and config.pbtxt parameters.
// Serving calls it through this narrow interface: a VersionMonitor per loaded model version,
// observed after each successful inference.
//
//   auto monitoring = Monitoring::Create({.log_dir = "/var/log/flywheel"});
//   auto vm = (*monitoring)->OnVersionLoaded({"rank", "3", "/models/rank/3", params, {"score"}});
//   (*vm)->Observe(request_id, inputs, outputs, request_body, &request_parameters);  // per request
//   (*monitoring)->Drift("rank");  (*monitoring)->Quality("rank");  // GET /v1/monitor/...
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "monitor/drift.h"
#include "monitor/label_log.h"
#include "monitor/log_record.h"
#include "monitor/log_sampler.h"
#include "monitor/metrics.h"
#include "monitor/prediction_log.h"
#include "monitor/quality.h"

namespace flywheel::monitor {

// config.pbtxt parameters that override the server-wide settings for one model:
//   parameters { key: "log_sample_rate" value { string_value: "0.1" } }   // [0, 1]
//   parameters { key: "drift" value { string_value: "off" } }             // on | off
//   parameters { key: "labels" value { string_value: "off" } }            // on | off
//   parameters { key: "label_output" value { string_value: "score" } }    // default: 1st output
//   parameters { key: "label_task" value { string_value: "binary" } }     // auto | binary |
//                                                                         // multiclass |
//                                                                         regression
inline constexpr char kParamLogSampleRate[] = "log_sample_rate";
inline constexpr char kParamDrift[] = "drift";
inline constexpr char kParamLabels[] = "labels";
inline constexpr char kParamLabelOutput[] = "label_output";
inline constexpr char kParamLabelTask[] = "label_task";

struct MonitoringOptions {
  // The prediction log's folder; empty turns the log off (and every model's sampling with it).
  // Posted labels are logged in its .labels folder (label_log.h) whenever it is set.
  std::string log_dir;
  // The share of requests logged, for models that do not set log_sample_rate.
  double log_sample_rate = 1.0;
  // Drift for models that do not set `drift`.
  bool drift = true;
  // Label recording for models that do not set `labels`. Only requests with an id are recorded.
  bool labels = true;
  DriftOptions drift_options;
  // horizon: how long a prediction waits for its label (--label-horizon-secs).
  QualityOptions quality;
  // Everything but `dir`, which is log_dir.
  PredictionLogOptions log_options;
  // Everything but `dir`, which is <log_dir>/.labels.
  LabelLogOptions label_log_options;
};

// The settings one model version runs with, after the overrides; reported by the endpoints.
struct VersionSettings {
  double log_sample_rate = 0;  // 0 when the log is off
  bool drift = false;
  bool labels = false;
  std::string label_output;  // empty when labels are off or the model has no output
  TaskKind label_task = TaskKind::kAuto;
};

// What serving knows about a version when it loads.
struct VersionInfo {
  std::string model;
  std::string version;
  // The version folder, where profile.json lives.
  std::string version_dir;
  // config.pbtxt's `parameters` (string values); keys other than the ones above are ignored.
  std::map<std::string, std::string> parameters;
  // The model's outputs in configuration order (the first feeds labels by default).
  std::vector<std::string> outputs;
};

class Monitoring;
struct MonitoringState;

// The monitoring of one loaded model version. Observe is the request path: drift (rate-limited,
// allocation-free), label recording for requests with an id, and the sampled prediction log
// (a record is built only for sampled requests, and queued without blocking).
class VersionMonitor {
 public:
  ~VersionMonitor();
  VersionMonitor(const VersionMonitor&) = delete;
  VersionMonitor& operator=(const VersionMonitor&) = delete;

  // `keep_alive` holds the memory view tensors point into (the request body), so that logged
  // inputs are not copied; `parameters` (optional) are the request's, logged with it. Thread-safe.
  void Observe(absl::string_view request_id, absl::Span<const TensorRef> inputs,
               absl::Span<const TensorRef> outputs, const std::shared_ptr<const void>& keep_alive,
               const std::map<std::string, LogParameterValue>* parameters = nullptr);

  // For containers of anything with `name` and `data` (a Tensor) members, such as the serving
  // layer's request inputs and response outputs.
  template <typename Inputs, typename Outputs>
  void ObserveNamed(absl::string_view request_id, const Inputs& inputs, const Outputs& outputs,
                    const std::shared_ptr<const void>& keep_alive,
                    const std::map<std::string, LogParameterValue>* parameters = nullptr) {
    absl::InlinedVector<TensorRef, 8> in;
    absl::InlinedVector<TensorRef, 8> out;
    for (const auto& t : inputs) in.push_back({t.name, &t.data});
    for (const auto& t : outputs) out.push_back({t.name, &t.data});
    Observe(request_id, in, out, keep_alive, parameters);
  }

  const std::string& model() const { return model_; }
  const std::string& version() const { return version_; }
  const VersionSettings& settings() const { return settings_; }
  // Null when drift is off for this version.
  const std::shared_ptr<DriftMonitor>& drift() const { return drift_; }

 private:
  friend class Monitoring;
  VersionMonitor(std::shared_ptr<MonitoringState> state, std::string model, std::string version,
                 int64_t version_number, VersionSettings settings);

  // Shared with the Monitoring, so that a version monitor may outlive it (an instance thread
  // finishing its last requests after the server is gone): it then only stops logging.
  const std::shared_ptr<MonitoringState> state_;
  const std::string model_;
  const std::string version_;
  const int64_t version_number_;
  const VersionSettings settings_;
  std::shared_ptr<DriftMonitor> drift_;
  QualityWindow* window_ = nullptr;      // null when labels are off
  std::unique_ptr<LogSampler> sampler_;  // null when the log is off or the rate is 0
};

// Per version of a model: its drift report (a report without figures says why), or its quality.
struct VersionDrift {
  std::string version;
  VersionSettings settings;
  DriftReport report;
};
struct VersionQuality {
  std::string version;
  VersionSettings settings;
  QualityReport report;
};

class Monitoring {
 public:
  // Fails when an option is out of range or the log folder cannot be created.
  static absl::StatusOr<std::unique_ptr<Monitoring>> Create(MonitoringOptions options);
  // Closes the prediction log (writing what it accepted) and removes the metrics collector.
  ~Monitoring();
  Monitoring(const Monitoring&) = delete;
  Monitoring& operator=(const Monitoring&) = delete;

  // The monitor of a version that just loaded, set up as its parameters say (its drift monitor
  // reads <version_dir>/profile.json; a missing profile is not an error). Replaces the drift
  // monitor of a previous load of the same version. Errors name the model and the parameter
  // whose value is wrong.
  absl::StatusOr<std::shared_ptr<VersionMonitor>> OnVersionLoaded(const VersionInfo& info);

  // The loaded versions of `model`, in version order; NOT_FOUND when none is loaded.
  absl::StatusOr<std::vector<VersionDrift>> Drift(absl::string_view model) const;
  absl::StatusOr<std::vector<VersionQuality>> Quality(absl::string_view model) const;

  // A posted label: joined with its prediction (quality metrics) and, when the log is on,
  // written to the label log with the model and version the join found. Thread-safe.
  LabelOutcome AddLabel(absl::string_view request_id, int64_t row, double label,
                        absl::Time now = absl::Now());

  LabelJoiner& labels();
  DriftRegistry& drift_registry();
  // Null when the log is off.
  PredictionLog* prediction_log();
  LabelLog* label_log();
  const MonitoringOptions& options() const { return options_; }

  // Drift, quality, label and prediction-log metrics into `writer` (a scrape-time collector).
  void Collect(SampleWriter& writer) const;
  // Adds Collect as a collector of `registry`, which must outlive this object.
  void RegisterMetrics(Registry* registry);

 private:
  explicit Monitoring(MonitoringOptions options);
  absl::StatusOr<VersionSettings> SettingsFor(const VersionInfo& info) const;

  const MonitoringOptions options_;
  // The drift registry, label joiner, prediction and label logs and the live version monitors.
  std::shared_ptr<MonitoringState> state_;
  Registry* registry_ = nullptr;
  int collector_id_ = -1;
};

// "on"/"true"/"1" and "off"/"false"/"0" (any case); `what` names the setting in the error.
absl::StatusOr<bool> ParseOnOff(absl::string_view value, absl::string_view what);
// "auto", "binary", "multiclass", "regression".
absl::StatusOr<TaskKind> ParseTaskKind(absl::string_view value, absl::string_view what);

}  // namespace flywheel::monitor
