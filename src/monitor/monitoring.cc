#include "monitor/monitoring.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace flywheel::monitor {
namespace {

// Versions are decimal numbers: "10" after "9".
bool VersionLess(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return a.size() < b.size();
  return a < b;
}

std::string ParamError(const VersionInfo& info, absl::string_view key, absl::string_view value,
                       absl::string_view expected) {
  return absl::StrCat("model '", info.model, "' config parameter '", key, "': expected ", expected,
                      ", got '", value, "'");
}

}  // namespace

struct MonitoringState {
  explicit MonitoringState(const QualityOptions& quality) : joiner(quality) {}

  // Called by ~VersionMonitor: forgets it unless a newer load of its version replaced it.
  void Release(const VersionMonitor* monitor) {
    absl::MutexLock lock(&mu);
    auto it = versions.find({monitor->model(), monitor->version()});
    if (it == versions.end() || it->second != monitor) return;  // a newer load took its place
    versions.erase(it);
    drift_registry.Remove(monitor->model(), monitor->version());
  }

  // The live monitors of `model`, in version order.
  std::vector<const VersionMonitor*> VersionsOf(absl::string_view model) const
      ABSL_SHARED_LOCKS_REQUIRED(mu) {
    std::vector<const VersionMonitor*> out;
    for (auto it = versions.lower_bound({std::string(model), std::string()});
         it != versions.end() && it->first.first == model; ++it) {
      out.push_back(it->second);
    }
    std::sort(out.begin(), out.end(), [](const VersionMonitor* a, const VersionMonitor* b) {
      return VersionLess(a->version(), b->version());
    });
    return out;
  }

  DriftRegistry drift_registry;
  LabelJoiner joiner;
  // Set by Create, closed by ~Monitoring; Submit after Close drops (and counts) the record.
  std::unique_ptr<PredictionLog> log;
  // Set by Create when the log is on, closed by ~Monitoring.
  std::unique_ptr<LabelLog> label_log;
  mutable absl::Mutex mu;
  std::map<std::pair<std::string, std::string>, const VersionMonitor*> versions ABSL_GUARDED_BY(mu);
};

absl::StatusOr<bool> ParseOnOff(absl::string_view value, absl::string_view what) {
  const std::string v = absl::AsciiStrToLower(absl::StripAsciiWhitespace(value));
  if (v == "on" || v == "true" || v == "1") return true;
  if (v == "off" || v == "false" || v == "0") return false;
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": expected on or off (true/false, 1/0), got '", value, "'"));
}

absl::StatusOr<TaskKind> ParseTaskKind(absl::string_view value, absl::string_view what) {
  const std::string v = absl::AsciiStrToLower(absl::StripAsciiWhitespace(value));
  for (TaskKind t :
       {TaskKind::kAuto, TaskKind::kBinary, TaskKind::kMulticlass, TaskKind::kRegression}) {
    if (v == TaskKindName(t)) return t;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": expected auto, binary, multiclass or regression, got '", value, "'"));
}

// --- VersionMonitor ------------------------------------------------------------------------

VersionMonitor::VersionMonitor(std::shared_ptr<MonitoringState> state, std::string model,
                               std::string version, int64_t version_number,
                               VersionSettings settings)
    : state_(std::move(state)),
      model_(std::move(model)),
      version_(std::move(version)),
      version_number_(version_number),
      settings_(std::move(settings)) {}

VersionMonitor::~VersionMonitor() { state_->Release(this); }

void VersionMonitor::Observe(absl::string_view request_id, absl::Span<const TensorRef> inputs,
                             absl::Span<const TensorRef> outputs,
                             const std::shared_ptr<const void>& keep_alive,
                             const std::map<std::string, LogParameterValue>* parameters) {
  if (drift_ != nullptr) drift_->Observe(inputs, outputs);
  if (window_ != nullptr && !request_id.empty()) {
    for (const TensorRef& t : outputs) {
      if (t.name != settings_.label_output) continue;
      // A BYTES output cannot be a prediction; RecordOutput refuses it, and there is no one to
      // tell on the request path.
      (void)state_->joiner.RecordOutput(window_, request_id, *t.tensor);
      break;
    }
  }
  if (sampler_ == nullptr || !sampler_->Sample(request_id)) return;
  PredictionRecord record;
  record.request_id = std::string(request_id);
  record.model = model_;
  record.version = version_number_;
  record.inputs.reserve(inputs.size());
  for (const TensorRef& t : inputs) record.inputs.emplace_back(std::string(t.name), *t.tensor);
  record.outputs.reserve(outputs.size());
  for (const TensorRef& t : outputs) record.outputs.emplace_back(std::string(t.name), *t.tensor);
  if (parameters != nullptr) record.parameters = *parameters;
  record.keep_alive = keep_alive;
  // False: the queue is full or the log closed; PredictionLog counts the drop.
  (void)state_->log->Submit(std::move(record));
}

// --- Monitoring ----------------------------------------------------------------------------

Monitoring::Monitoring(MonitoringOptions options)
    : options_(std::move(options)), state_(std::make_shared<MonitoringState>(options_.quality)) {}

absl::StatusOr<std::unique_ptr<Monitoring>> Monitoring::Create(MonitoringOptions options) {
  if (!(options.log_sample_rate >= 0 && options.log_sample_rate <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "log sample rate: expected a number in [0, 1], got ", options.log_sample_rate));
  }
  if (options.quality.horizon <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("label horizon: expected a positive duration, got ",
                     absl::FormatDuration(options.quality.horizon)));
  }
  if (!(options.drift_options.max_rows_per_second >= 0)) {
    return absl::InvalidArgumentError("drift: max_rows_per_second must be >= 0");
  }
  auto monitoring = std::unique_ptr<Monitoring>(new Monitoring(std::move(options)));
  if (!monitoring->options_.log_dir.empty()) {
    PredictionLogOptions log_options = monitoring->options_.log_options;
    log_options.dir = monitoring->options_.log_dir;
    absl::StatusOr<std::unique_ptr<PredictionLog>> log = PredictionLog::Create(log_options);
    if (!log.ok()) return log.status();
    monitoring->state_->log = std::move(*log);
    LabelLogOptions label_options = monitoring->options_.label_log_options;
    label_options.dir =
        (std::filesystem::path(monitoring->options_.log_dir) / kLabelLogDirName).string();
    absl::StatusOr<std::unique_ptr<LabelLog>> label_log = LabelLog::Create(label_options);
    if (!label_log.ok()) return label_log.status();
    monitoring->state_->label_log = std::move(*label_log);
  }
  return monitoring;
}

Monitoring::~Monitoring() {
  if (registry_ != nullptr && collector_id_ >= 0) registry_->RemoveCollector(collector_id_);
  if (state_->log != nullptr) state_->log->Close();
  if (state_->label_log != nullptr) state_->label_log->Close();
}

absl::StatusOr<VersionSettings> Monitoring::SettingsFor(const VersionInfo& info) const {
  VersionSettings s;
  s.drift = options_.drift;
  s.labels = options_.labels;
  double rate = options_.log_sample_rate;
  auto param = [&](const char* key) -> const std::string* {
    auto it = info.parameters.find(key);
    return it == info.parameters.end() ? nullptr : &it->second;
  };
  if (const std::string* v = param(kParamLogSampleRate)) {
    double r = 0;
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(*v), &r) || !(r >= 0 && r <= 1)) {
      return absl::InvalidArgumentError(
          ParamError(info, kParamLogSampleRate, *v, "a number in [0, 1]"));
    }
    rate = r;
  }
  s.log_sample_rate = state_->log != nullptr ? rate : 0.0;
  if (const std::string* v = param(kParamDrift)) {
    absl::StatusOr<bool> on = ParseOnOff(*v, "");
    if (!on.ok()) return absl::InvalidArgumentError(ParamError(info, kParamDrift, *v, "on or off"));
    s.drift = *on;
  }
  if (const std::string* v = param(kParamLabels)) {
    absl::StatusOr<bool> on = ParseOnOff(*v, "");
    if (!on.ok()) {
      return absl::InvalidArgumentError(ParamError(info, kParamLabels, *v, "on or off"));
    }
    s.labels = *on;
  }
  if (const std::string* v = param(kParamLabelTask)) {
    absl::StatusOr<TaskKind> task = ParseTaskKind(*v, "");
    if (!task.ok()) {
      return absl::InvalidArgumentError(
          ParamError(info, kParamLabelTask, *v, "auto, binary, multiclass or regression"));
    }
    s.label_task = *task;
  }
  if (const std::string* v = param(kParamLabelOutput)) {
    if (std::find(info.outputs.begin(), info.outputs.end(), *v) == info.outputs.end()) {
      std::string known;
      for (const std::string& o : info.outputs)
        absl::StrAppend(&known, known.empty() ? "" : ", ", o);
      return absl::InvalidArgumentError(ParamError(
          info, kParamLabelOutput, *v, absl::StrCat("one of its outputs (", known, ")")));
    }
    s.label_output = *v;
  } else if (!info.outputs.empty()) {
    s.label_output = info.outputs.front();
  }
  if (s.label_output.empty()) s.labels = false;
  if (!s.labels) s.label_output.clear();
  return s;
}

absl::StatusOr<std::shared_ptr<VersionMonitor>> Monitoring::OnVersionLoaded(
    const VersionInfo& info) {
  absl::StatusOr<VersionSettings> settings = SettingsFor(info);
  if (!settings.ok()) return settings.status();
  int64_t number = 0;
  if (!absl::SimpleAtoi(info.version, &number)) number = 0;
  auto monitor = std::shared_ptr<VersionMonitor>(
      new VersionMonitor(state_, info.model, info.version, number, *settings));
  if (settings->drift) {
    monitor->drift_ = DriftMonitor::ForVersionDir(info.model, info.version, info.version_dir,
                                                  options_.drift_options);
  }
  if (settings->labels) {
    monitor->window_ = state_->joiner.Window(info.model, info.version, settings->label_task);
  }
  if (settings->log_sample_rate > 0) {
    monitor->sampler_ = std::make_unique<LogSampler>(settings->log_sample_rate);
  }
  absl::MutexLock lock(&state_->mu);
  state_->versions[{info.model, info.version}] = monitor.get();
  if (monitor->drift_ != nullptr) {
    state_->drift_registry.Set(monitor->drift_);
  } else {
    state_->drift_registry.Remove(info.model, info.version);
  }
  return monitor;
}

absl::StatusOr<std::vector<VersionDrift>> Monitoring::Drift(absl::string_view model) const {
  // Copied under the lock, computed outside it: Compute merges whole windows.
  std::vector<std::pair<VersionDrift, std::shared_ptr<DriftMonitor>>> found;
  {
    absl::ReaderMutexLock lock(&state_->mu);
    for (const VersionMonitor* vm : state_->VersionsOf(model)) {
      VersionDrift d;
      d.version = vm->version();
      d.settings = vm->settings();
      found.emplace_back(std::move(d), vm->drift());
    }
  }
  if (found.empty()) {
    return absl::NotFoundError(absl::StrCat("model '", model, "' has no loaded version"));
  }
  std::vector<VersionDrift> out;
  out.reserve(found.size());
  for (auto& [d, drift] : found) {
    if (drift != nullptr) {
      d.report = drift->Compute();
    } else {
      d.report = DriftMonitor::WithoutProfile(
                     std::string(model), d.version,
                     "drift monitoring is off for this model (server flag --drift off or config "
                     "parameter drift: off)")
                     ->Compute();
    }
    out.push_back(std::move(d));
  }
  return out;
}

absl::StatusOr<std::vector<VersionQuality>> Monitoring::Quality(absl::string_view model) const {
  std::vector<std::pair<VersionQuality, bool>> found;
  {
    absl::ReaderMutexLock lock(&state_->mu);
    for (const VersionMonitor* vm : state_->VersionsOf(model)) {
      VersionQuality q;
      q.version = vm->version();
      q.settings = vm->settings();
      found.emplace_back(std::move(q), vm->window_ != nullptr);
    }
  }
  if (found.empty()) {
    return absl::NotFoundError(absl::StrCat("model '", model, "' has no loaded version"));
  }
  // The joiner's reports are the source of truth for windows (they outlive reloads).
  std::vector<QualityReport> reports = state_->joiner.Compute(model);
  std::vector<VersionQuality> out;
  out.reserve(found.size());
  for (auto& [q, has_window] : found) {
    q.report.model = std::string(model);
    q.report.version = q.version;
    q.report.task = q.settings.label_task;
    if (has_window) {
      for (QualityReport& r : reports) {
        if (r.model == model && r.version == q.version) q.report = std::move(r);
      }
    }
    out.push_back(std::move(q));
  }
  return out;
}

void Monitoring::Collect(SampleWriter& writer) const {
  state_->drift_registry.Collect(writer);
  state_->joiner.Collect(writer);
  if (const LabelLog* labels = state_->label_log.get()) {
    const LabelLogStats s = labels->Stats();
    for (auto [outcome, value] : {std::pair{"written", s.written}, std::pair{"dropped", s.dropped},
                                  std::pair{"failed", s.failed}}) {
      writer.Add("flywheel_label_log_records_total",
                 "Posted labels by what became of them in the label log: written (in frames the "
                 "OS accepted), dropped (queue full) or failed (lost to a write error)",
                 "counter", {{"outcome", outcome}}, static_cast<double>(value));
    }
    writer.Add("flywheel_label_log_queued", "Labels accepted and not yet written to the label log",
               "gauge", {}, static_cast<double>(s.queued));
  }
  const PredictionLog* log = state_->log.get();
  if (log == nullptr) return;
  const PredictionLogStats s = log->Stats();
  auto counter = [&](const char* name, const char* help, int64_t v) {
    writer.Add(name, help, "counter", {}, static_cast<double>(v));
  };
  counter("flywheel_prediction_log_written_total",
          "Prediction log records written (in frames the OS accepted)", s.written);
  counter("flywheel_prediction_log_dropped_total",
          "Prediction log records refused because the queue was full (or the log closed)",
          s.dropped);
  counter("flywheel_prediction_log_failed_total",
          "Prediction log records accepted and then lost to a write error", s.failed);
  counter("flywheel_prediction_log_write_errors_total", "Prediction log write errors",
          s.write_errors);
  counter("flywheel_prediction_log_bytes_total", "Compressed bytes written to the prediction log",
          s.bytes_written);
  counter("flywheel_prediction_log_files_total", "Prediction log files opened", s.files_opened);
  writer.Add("flywheel_prediction_log_queued",
             "Prediction log records accepted and not yet written", "gauge", {},
             static_cast<double>(s.queued));
  writer.Add("flywheel_prediction_log_queue_capacity",
             "The most prediction log records accepted and not yet written", "gauge", {},
             static_cast<double>(log->options().queue_capacity));
}

LabelOutcome Monitoring::AddLabel(absl::string_view request_id, int64_t row, double label,
                                  absl::Time now) {
  const QualityWindow* window = nullptr;
  const LabelOutcome outcome = state_->joiner.AddLabel(request_id, row, label, now, &window);
  if (state_->label_log != nullptr) {
    LabelRecord record;
    record.request_id = std::string(request_id);
    record.row = row;
    record.label = label;
    record.time = now;
    if (window != nullptr) {
      record.model = window->model();
      record.version = window->version();
    }
    // False: the queue is full; the label log counts the drop.
    (void)state_->label_log->Submit(std::move(record));
  }
  return outcome;
}

LabelJoiner& Monitoring::labels() { return state_->joiner; }
LabelLog* Monitoring::label_log() { return state_->label_log.get(); }
DriftRegistry& Monitoring::drift_registry() { return state_->drift_registry; }
PredictionLog* Monitoring::prediction_log() { return state_->log.get(); }

void Monitoring::RegisterMetrics(Registry* registry) {
  if (registry == nullptr || registry_ != nullptr) return;
  registry_ = registry;
  collector_id_ = registry->AddCollector([this](SampleWriter& writer) { Collect(writer); });
}

}  // namespace flywheel::monitor
