// Delayed labels and live model quality. LabelJoiner keeps recent predictions by (request id,
// row) for a horizon, joins labels that arrive later, and feeds each model version's
// QualityWindow, which computes rolling metrics over its last joined pairs: accuracy, log-loss
// and AUC for classifiers, MAE and RMSE for regressors.
//
//   LabelJoiner joiner;
//   QualityWindow* w = joiner.Window("rank", "3");                // once per model version
//   joiner.RecordOutput(w, request.id, response_output_tensor);   // request path
//   joiner.AddLabel("req-42", /*row=*/0, /*label=*/1.0);           // POST /v1/monitor/labels
//   std::string json = QualityReportToJson(w->Compute());
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/tensor.h"
#include "monitor/metrics.h"

namespace flywheel::monitor {

// What a model predicts, which decides the metrics. kAuto decides from the window: two or more
// values per prediction make a classifier (two: binary, more: multiclass); one value makes a
// binary classifier when every label is 0 or 1 and every prediction lies in [0, 1], else a
// regressor.
enum class TaskKind { kAuto, kBinary, kMulticlass, kRegression };
absl::string_view TaskKindName(TaskKind task);  // "auto", "binary", ...

// A prediction row: a regression value, a binary score (P(class 1); logits when any score in the
// window lies outside [0, 1]) or one score per class (probabilities; softmax is applied to rows
// that are not).
using Prediction = absl::InlinedVector<float, 4>;

struct QualityReport {
  std::string model;
  std::string version;
  TaskKind task = TaskKind::kAuto;      // as configured
  TaskKind resolved = TaskKind::kAuto;  // as used for these figures; kAuto when no pairs
  int64_t pairs = 0;                    // in the window
  int64_t joined_total = 0;             // since the start
  int64_t invalid_labels = 0;           // labels refused for this version (wrong class, NaN)
  std::optional<double> accuracy;
  std::optional<double> log_loss;
  std::optional<double> auc;  // binary only; needs both classes in the window
  std::optional<double> mae;
  std::optional<double> rmse;
  std::optional<double> prediction_mean;  // binary: mean P(class 1)
  std::optional<double> label_mean;
};

// The last `capacity` joined (prediction, label) pairs of one model version. Thread-safe.
class QualityWindow {
 public:
  QualityWindow(std::string model, std::string version, TaskKind task, int64_t capacity);
  // Checks `label` against the task and the prediction (a class index for classifiers, 0/1 for
  // binary ones, finite always) and adds the pair; false (counted) when the label is invalid.
  bool Add(const Prediction& prediction, double label);
  QualityReport Compute() const;
  // Pairs joined since the start (QualityReport::joined_total) without computing the figures.
  int64_t joined() const;
  const std::string& model() const { return model_; }
  const std::string& version() const { return version_; }

 private:
  struct Pair {
    Prediction prediction;
    double label = 0;
  };
  const std::string model_;
  const std::string version_;
  const TaskKind task_;
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::vector<Pair> pairs_ ABSL_GUARDED_BY(mu_);
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t joined_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t invalid_ ABSL_GUARDED_BY(mu_) = 0;
};

struct QualityOptions {
  // Predictions wait this long for their label; older ones are dropped and counted as expired.
  absl::Duration horizon = absl::Hours(24);
  // The most recent predictions kept, over all models (about 100 bytes each); older ones are
  // dropped first.
  int64_t max_pending = int64_t{1} << 18;
  // Metrics cover each model version's last `window` joined pairs.
  int64_t window = 10000;
  // Predictions are spread over this many independently locked shards by request id.
  int shards = 16;
};

enum class LabelOutcome {
  kJoined,
  kUnknown,    // no prediction with that id was recorded (or it left memory long ago)
  kExpired,    // its prediction was dropped by the horizon or the memory bound
  kDuplicate,  // its prediction was already labelled
  kInvalid,    // the label does not fit the prediction (see QualityWindow::Add)
};
absl::string_view LabelOutcomeName(LabelOutcome outcome);  // "joined", "unknown", ...

struct LabelCounts {
  int64_t predictions = 0;  // recorded
  int64_t pending = 0;      // waiting for a label now
  int64_t dropped = 0;      // predictions dropped unlabelled (horizon or memory bound)
  int64_t joined = 0;
  int64_t unknown = 0;
  int64_t expired = 0;
  int64_t duplicate = 0;
  int64_t invalid = 0;
};

class LabelJoiner {
 public:
  explicit LabelJoiner(const QualityOptions& options = {});
  ~LabelJoiner();
  LabelJoiner(const LabelJoiner&) = delete;
  LabelJoiner& operator=(const LabelJoiner&) = delete;

  // The window of (model, version), made on first use with `task` (a later call's task is
  // ignored). The pointer stays valid as long as the joiner.
  QualityWindow* Window(absl::string_view model, absl::string_view version,
                        TaskKind task = TaskKind::kAuto);

  // Records the prediction for row `row` of request `request_id`; a second prediction with the
  // same id and row replaces the first. Empty ids are ignored (nothing could label them).
  void RecordPrediction(QualityWindow* window, absl::string_view request_id, int64_t row,
                        absl::Span<const float> prediction, absl::Time now = absl::Now());
  // Records each row of a numeric output tensor [batch], [batch, K] (or [K] with batch 1 when
  // `single_row`) as rows 0..batch-1 of the request.
  absl::Status RecordOutput(QualityWindow* window, absl::string_view request_id,
                            const Tensor& output, bool single_row = false,
                            absl::Time now = absl::Now());

  // `window`, when given, is set to the labelled prediction's window when the join found it
  // (joined, invalid), else to null.
  LabelOutcome AddLabel(absl::string_view request_id, int64_t row, double label,
                        absl::Time now = absl::Now(), const QualityWindow** window = nullptr);

  LabelCounts Counts(absl::Time now = absl::Now()) const;
  // Every window's report, ordered by model and version.
  std::vector<QualityReport> Compute() const;
  // The reports of `model`'s windows only, ordered by version.
  std::vector<QualityReport> Compute(absl::string_view model) const;
  // Version -> pairs joined since the start, for every window of `model` (cheap: no figures).
  std::map<std::string, int64_t> JoinedCounts(absl::string_view model) const;
  // Label counters and the reports of every window: the body of a scrape-time collector.
  void Collect(SampleWriter& writer) const;

 private:
  struct Shard;
  Shard& ShardOf(uint64_t key) const;
  // The windows of `model`, or of every model when it is null; ordered by model and version.
  std::vector<const QualityWindow*> Windows(const absl::string_view* model) const;

  QualityOptions options_;
  std::vector<std::unique_ptr<Shard>> shards_;
  mutable absl::Mutex windows_mu_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<QualityWindow>> windows_
      ABSL_GUARDED_BY(windows_mu_);
};

std::string QualityReportToJson(const QualityReport& report);
// {"predictions": .., "pending": .., "dropped": .., "labels": {"joined": .., ...}}
std::string LabelCountsToJson(const LabelCounts& counts);
// flywheel_model_accuracy, _log_loss, _auc, _mae, _rmse, flywheel_model_quality_pairs
// {model, version}; figures not computed are left out.
void AppendQualityMetrics(const QualityReport& report, SampleWriter& writer);

}  // namespace flywheel::monitor
