// A retraining loop definition: what triggers a run, how the training set is made, the training
// command, how the candidate is evaluated and gated, and how it is rolled out. Read from YAML
// (one loop per file, a folder of them for `flywheel serve --loops DIR`):
//
//   name: fraud-retrain
//   model: fraud_trees
//   trigger:                     # any of these starts a run (at least one)
//     new_labels: 500            # joined labels since the last run
//     every: 24h                 # a schedule
//     drift_psi: 0.2             # any feature's PSI above this (live drift)
//     min_interval: 10m          # never two runs closer than this (default 1m)
//   data:
//     window: 7d                 # predictions this recent (by prediction time)
//     holdout: 0.2               # share of labelled rows kept for evaluation
//     min_rows: 200              # fewer labelled rows: the run stops, production untouched
//   train:
//     command: ["/usr/bin/python3", "train.py", "--train", "{train}", "--out", "{output}"]
//     timeout: 10m
//     model_file: xgboost.json   # the file the command writes into {output}
//     env: {OMP_NUM_THREADS: "1"}
//   evaluate:
//     metric: auc                # auc, accuracy, log_loss, mae, rmse
//     margin: 0.01               # the candidate must beat the champion by this much
//   rollout:
//     policy: canary             # canary | ab | shadow
//     weight: 0.1                # candidate share (canary, ab)
//     sticky_parameter: user_id  # ab
//     shadow_fraction: 0.2       # shadow
//     healthy_for: 5m            # promote after this long without a breach ...
//     min_requests: 200          # ... and at least this many candidate requests
//     max_error_rate: 0.01
//     max_p99_ms: 50             # optional
//     max_disagreement: 0.05     # optional (shadow)
//     max_quality_drop: 0.05     # optional: live label quality (evaluate.metric) vs champion
//     alias: production          # the alias promotion moves
//
// Placeholders in train.command and env values: {train} {holdout} (CSV paths), {output} (an
// empty folder for the model), {champion} (the champion's version folder), {model}, {run}.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace flywheel::lifecycle {

struct LoopTrigger {
  std::optional<int64_t> new_labels;    // > 0
  std::optional<absl::Duration> every;  // > 0
  std::optional<double> drift_psi;      // > 0
  absl::Duration min_interval = absl::Minutes(1);
};

struct LoopData {
  absl::Duration window = absl::Hours(24 * 7);  // > 0
  double holdout = 0.2;                         // (0, 1)
  int64_t min_rows = 100;                       // > 0
};

struct LoopTrain {
  std::vector<std::string> command;  // command[0]: an executable (absolute, or found on PATH)
  absl::Duration timeout = absl::Minutes(30);
  std::string model_file;  // a plain file name (no '/'); the model version's file
  std::map<std::string, std::string> env;
};

enum class GateMetric { kAuc, kAccuracy, kLogLoss, kMae, kRmse };

struct LoopEvaluate {
  GateMetric metric = GateMetric::kAuc;
  double margin = 0;  // >= 0, in the metric's units
};

enum class LoopRolloutPolicy { kCanary, kAbTest, kShadow };

struct LoopRollout {
  LoopRolloutPolicy policy = LoopRolloutPolicy::kCanary;
  double weight = 0.1;  // (0, 1)
  std::string sticky_parameter;
  double shadow_fraction = 0;  // (0, 1] for shadow
  absl::Duration healthy_for = absl::Minutes(5);
  int64_t min_requests = 100;
  double max_error_rate = 0.01;  // [0, 1]
  std::optional<double> max_p99_ms;
  std::optional<double> max_disagreement;
  std::optional<double> max_quality_drop;
  std::string alias = "production";
};

struct LoopDefinition {
  std::string name;  // [a-z0-9_-]+
  std::string model;
  std::string source_file;  // where it was read from (for messages)
  LoopTrigger trigger;
  LoopData data;
  LoopTrain train;
  LoopEvaluate evaluate;
  LoopRollout rollout;
};

// Higher is better for auc and accuracy, lower for the others.
bool HigherIsBetter(GateMetric metric);
const char* GateMetricName(GateMetric metric);
const char* LoopRolloutPolicyName(LoopRolloutPolicy policy);

// Parses one definition. Errors read `<file>:<line>: <field>: <problem>` (e.g.
// `loops/fraud.yaml:7: train.timeout: '10x' is not a duration (use 30s, 10m, 2h, 7d)`); unknown
// fields are errors too, naming the field.
absl::StatusOr<LoopDefinition> ParseLoopDefinition(const std::string& yaml_text,
                                                   const std::string& source_file);
absl::StatusOr<LoopDefinition> ReadLoopDefinition(const std::string& path);
// Every *.yaml / *.yml file of a folder, sorted by name; names must be unique.
absl::StatusOr<std::vector<LoopDefinition>> ReadLoopDefinitions(const std::string& dir);

}  // namespace flywheel::lifecycle
