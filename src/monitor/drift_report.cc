// DriftReport as JSON and as Prometheus gauges, and the registry of drift monitors.
#include <cmath>
#include <optional>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "monitor/drift.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace flywheel::monitor {
namespace {

namespace rj = rapidjson;
using Writer = rj::Writer<rj::StringBuffer>;

void Key(Writer& w, absl::string_view s) { w.Key(s.data(), static_cast<rj::SizeType>(s.size())); }
void Str(Writer& w, absl::string_view s) {
  w.String(s.data(), static_cast<rj::SizeType>(s.size()));
}
void Num(Writer& w, absl::string_view key, double v) {
  Key(w, key);
  if (std::isfinite(v)) {
    w.Double(v);
  } else {
    w.Null();
  }
}
void Opt(Writer& w, absl::string_view key, const std::optional<double>& v) {
  if (v.has_value()) {
    Num(w, key, *v);
  } else {
    Key(w, key);
    w.Null();
  }
}
void Time(Writer& w, absl::string_view key, int64_t ns) {
  Key(w, key);
  if (ns == 0) {
    w.Null();
    return;
  }
  Str(w, absl::FormatTime(absl::RFC3339_full, absl::FromUnixNanos(ns), absl::UTCTimeZone()));
}

void WriteFeature(Writer& w, const FeatureDrift& d) {
  w.StartObject();
  Key(w, "name");
  Str(w, d.name);
  Key(w, "role");
  Str(w, FeatureRoleName(d.role));
  Key(w, "kind");
  Str(w, FeatureKindName(d.kind));
  Key(w, "count");
  w.Int64(d.count);
  Key(w, "missing");
  w.Int64(d.missing);
  Num(w, "missing_rate", d.missing_rate);
  Num(w, "reference_missing_rate", d.reference_missing_rate);
  Key(w, "out_of_range");
  w.Int64(d.out_of_range);
  Num(w, "out_of_range_rate", d.out_of_range_rate);
  Opt(w, "psi", d.psi);
  Opt(w, "js_distance", d.js_distance);
  Opt(w, "ks_statistic", d.ks_statistic);
  Opt(w, "ks_pvalue", d.ks_pvalue);
  Opt(w, "chi_square", d.chi_square);
  Opt(w, "chi_square_pvalue", d.chi_square_pvalue);
  Key(w, "chi_square_df");
  w.Int(d.chi_square_df);
  Opt(w, "cardinality", d.cardinality);
  Key(w, "reference_cardinality");
  w.Int64(d.reference_cardinality);
  if (d.kind == FeatureKind::kNumeric) {
    Opt(w, "min", d.min);
    Opt(w, "max", d.max);
    Opt(w, "mean", d.mean);
    Num(w, "reference_mean", d.reference_mean);
  }
  Key(w, "drifted");
  w.Bool(d.drifted);
  w.EndObject();
}

}  // namespace

std::string DriftReportToJson(const DriftReport& r) {
  rj::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  Key(w, "model");
  Str(w, r.model);
  Key(w, "version");
  Str(w, r.version);
  Key(w, "has_profile");
  w.Bool(r.has_profile);
  Key(w, "profile");
  Str(w, r.profile_path);
  if (!r.has_profile) {
    Key(w, "reason");
    Str(w, r.reason);
  }
  Key(w, "window");
  w.StartObject();
  Key(w, "rows");
  w.Int64(r.window_rows);
  Key(w, "capacity");
  w.Int64(r.window_capacity);
  Time(w, "start", r.window_start_ns);
  Time(w, "end", r.window_end_ns);
  Key(w, "rows_seen");
  w.Int64(r.rows_seen);
  Key(w, "rows_sampled");
  w.Int64(r.rows_sampled);
  w.EndObject();
  Num(w, "psi_threshold", r.psi_threshold);
  Key(w, "min_rows");
  w.Int64(r.min_rows);
  Key(w, "drifted_features");
  w.Int(r.drifted_features);
  Key(w, "features");
  w.StartArray();
  for (const FeatureDrift& d : r.features) WriteFeature(w, d);
  w.EndArray();
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

void AppendDriftMetrics(const DriftReport& r, SampleWriter& writer) {
  const Labels model_labels = {{"model", r.model}, {"version", r.version}};
  writer.Add("flywheel_drift_profile_present",
             "1 when the model version has a reference profile to measure drift against", "gauge",
             model_labels, r.has_profile ? 1 : 0);
  if (!r.has_profile) return;
  writer.Add("flywheel_drift_window_rows", "Rows in the drift window", "gauge", model_labels,
             static_cast<double>(r.window_rows));
  writer.Add("flywheel_drift_features_drifted",
             "Features whose PSI is at or above the drift threshold", "gauge", model_labels,
             r.drifted_features);
  for (const FeatureDrift& d : r.features) {
    Labels labels = model_labels;
    labels["feature"] = d.name;
    auto gauge = [&](const char* name, const char* help, const std::optional<double>& v) {
      if (v.has_value() && std::isfinite(*v)) writer.Add(name, help, "gauge", labels, *v);
    };
    gauge("flywheel_feature_drift_psi", "Population stability index against the reference", d.psi);
    gauge("flywheel_feature_drift_js_distance",
          "Jensen-Shannon distance (base 2) against the reference", d.js_distance);
    gauge("flywheel_feature_drift_ks_statistic",
          "Kolmogorov-Smirnov statistic against the reference (numeric features)", d.ks_statistic);
    gauge("flywheel_feature_drift_ks_pvalue", "Kolmogorov-Smirnov p-value (numeric features)",
          d.ks_pvalue);
    gauge("flywheel_feature_drift_chi_square",
          "Chi-square statistic against the reference (categorical features)", d.chi_square);
    gauge("flywheel_feature_drift_chi_square_pvalue", "Chi-square p-value (categorical features)",
          d.chi_square_pvalue);
    gauge("flywheel_feature_missing_rate", "Share of missing values in the drift window",
          d.missing_rate);
    gauge("flywheel_feature_out_of_range_rate",
          "Share of present values outside the reference range or categories", d.out_of_range_rate);
    gauge("flywheel_feature_cardinality", "Estimated distinct values in the drift window",
          d.cardinality);
    gauge("flywheel_feature_window_count", "Values of the feature in the drift window",
          static_cast<double>(d.count));
  }
}

void DriftRegistry::Set(std::shared_ptr<DriftMonitor> monitor) {
  if (monitor == nullptr) return;
  absl::MutexLock lock(&mu_);
  monitors_[{monitor->model(), monitor->version()}] = std::move(monitor);
}

std::shared_ptr<DriftMonitor> DriftRegistry::Get(absl::string_view model,
                                                 absl::string_view version) const {
  absl::MutexLock lock(&mu_);
  auto it = monitors_.find({std::string(model), std::string(version)});
  return it == monitors_.end() ? nullptr : it->second;
}

void DriftRegistry::Remove(absl::string_view model, absl::string_view version) {
  absl::MutexLock lock(&mu_);
  monitors_.erase({std::string(model), std::string(version)});
}

std::vector<std::shared_ptr<DriftMonitor>> DriftRegistry::All() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<DriftMonitor>> all;
  for (const auto& [key, monitor] : monitors_) all.push_back(monitor);
  return all;
}

std::vector<std::shared_ptr<DriftMonitor>> DriftRegistry::ForModel(absl::string_view model) const {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<DriftMonitor>> out;
  for (auto it = monitors_.lower_bound({std::string(model), ""});
       it != monitors_.end() && it->first.first == model; ++it) {
    out.push_back(it->second);
  }
  return out;
}

void DriftRegistry::Collect(SampleWriter& writer) const {
  for (const auto& monitor : All()) AppendDriftMetrics(monitor->Compute(), writer);
}

}  // namespace flywheel::monitor
