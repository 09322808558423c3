// Training sets from production: the prediction log's inputs joined with the labels that
// arrived for them (the label log, label_log.h), one CSV row per labelled batch row, split into
// a training and a holdout file by a stable hash of (request id, row).
//
// CSV header: id,row,time,version,label, then one column per input element of a row,
// "<input>:<j>" (j the flat index within the row, row-major), inputs in the order the log has
// them. Values as AppendElementText writes them (NaN for a missing float).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace flywheel::monitor {

struct TrainingSetOptions {
  std::string log_dir;  // the prediction log folder (labels in its labels/ folder)
  std::string model;    // required
  std::vector<int64_t> versions;  // empty: every version
  absl::Time since = absl::InfinitePast();   // prediction time, inclusive
  absl::Time until = absl::InfiniteFuture();  // exclusive
  double holdout_fraction = 0.2;             // [0, 1)
  std::string train_path;                    // written (truncated)
  std::string holdout_path;                  // written; may be empty when holdout_fraction is 0
};

struct TrainingSetStats {
  int64_t train_rows = 0;
  int64_t holdout_rows = 0;
  int64_t predictions = 0;       // log records of the model read
  int64_t labels = 0;            // label records read
  int64_t unlabelled_rows = 0;   // rows of those predictions without a label
  int64_t bad_lines = 0;         // unreadable lines skipped (log and label files)
  std::vector<std::string> feature_columns;  // "<input>:<j>"
};

// Reads the whole label log first (labels are small), then streams the predictions. A label
// given twice for one (id, row) keeps the first.
absl::StatusOr<TrainingSetStats> BuildTrainingSet(const TrainingSetOptions& options);

// Whether (id, row) falls in the holdout: a stable 64-bit hash, the same in every release.
bool InHoldout(const std::string& request_id, int64_t row, double holdout_fraction);

}  // namespace flywheel::monitor
