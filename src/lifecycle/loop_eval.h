// Private to lifecycle/: evaluation of model versions on a holdout CSV (monitor/training_set.h's
// layout) through the server, so that a candidate is judged by exactly the code that would serve
// it, and the metric the gate compares.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lifecycle/loop_config.h"
#include "monitor/quality.h"

namespace flywheel::serving {
class Server;
}  // namespace flywheel::serving

namespace flywheel::lifecycle {

// A holdout read into per-input column groups, row-major.
struct Holdout {
  struct Input {
    std::string name;
    std::vector<std::string> columns;  // "<input>:<j>", j = 0..width-1
    std::vector<double> values;        // rows x width
  };
  std::vector<Input> inputs;
  std::vector<double> labels;
  int64_t rows = 0;
};

absl::StatusOr<Holdout> ReadHoldout(const std::string& path);

struct Evaluation {
  int64_t version = 0;
  int64_t rows = 0;
  monitor::QualityReport report;
};

// Runs every holdout row through `version` of `model` (in batches the model accepts) and computes
// its quality against the labels, with the model's label_output / label_task parameters (as live
// monitoring does). Errors name the version and what failed.
absl::StatusOr<Evaluation> EvaluateVersion(serving::Server& server, const std::string& model,
                                           int64_t version, const Holdout& holdout);

// The gate's metric from a report; an error when the report does not have it (e.g. AUC of a
// holdout with one class).
absl::StatusOr<double> MetricValue(const monitor::QualityReport& report, GateMetric metric);

}  // namespace flywheel::lifecycle
