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
  std::string log_dir;            // the prediction log folder (labels in its .labels/ folder)
  std::string model;              // required
  std::vector<int64_t> versions;  // empty: every version
  absl::Time since = absl::InfinitePast();    // prediction time, inclusive
  absl::Time until = absl::InfiniteFuture();  // exclusive
  double holdout_fraction = 0.2;              // [0, 1)
  std::string train_path;                     // written (truncated)
  std::string holdout_path;                   // written; may be empty when holdout_fraction is 0
};

struct TrainingSetStats {
  int64_t train_rows = 0;
  int64_t holdout_rows = 0;
  int64_t predictions = 0;                   // log records of the model read
  int64_t labels = 0;                        // label records read
  int64_t unlabelled_rows = 0;               // rows of those predictions without a label
  int64_t bad_lines = 0;                     // unreadable lines skipped (log and label files)
  std::vector<std::string> feature_columns;  // "<input>:<j>"
};

// Reads the whole label log first (labels are small), then streams the predictions. A label
// given twice for one (id, row) keeps the first. Labels join by (request id, row) alone: the
// model and version a label log line may carry are not needed to match it.
//
// A record's rows: when every input and every output has a first dimension and they all equal B,
// the record is a batch of B rows and row r takes the r-th slice of each input; otherwise it is
// one row (row 0) holding every input whole. Inputs must be numeric or BOOL (a BYTES input is an
// error naming it), and every labelled record must have the first one's inputs with the same
// number of elements per row (else an error naming the record). Errors also for a missing label
// log folder, a holdout fraction outside [0, 1), a holdout without a holdout path, and files that
// cannot be written; the outputs are written beside their paths and renamed into place.
absl::StatusOr<TrainingSetStats> BuildTrainingSet(const TrainingSetOptions& options);

// Whether (id, row) falls in the holdout: a stable 64-bit hash, the same in every release
// (FNV-1a over the id's bytes and the row's 8 little-endian bytes, then the SplitMix64 finalizer;
// its top 53 bits as a fraction of 2^53 below holdout_fraction).
bool InHoldout(const std::string& request_id, int64_t row, double holdout_fraction);

}  // namespace flywheel::monitor
