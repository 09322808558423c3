// Reference data for `flywheel monitor profile` (monitor_command.cc): a .npy or .csv file read as
// a model's input tensors and profiled feature by feature, and the model run over it in batches,
// as the server would, to profile its outputs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "model_config.pb.h"
#include "monitor/profile.h"
#include "serving/backend.h"

namespace flywheel::cli {

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

// The reference rows as tensors named after the model's inputs, and the input features profiled
// from them.
struct ReferenceData {
  std::vector<NamedTensor> tensors;
  std::vector<monitor::FeatureProfile> features;
  int64_t rows = 0;
};

struct ReferenceDataOptions {
  std::string model;  // for messages
  std::string path;   // .npy or .csv
  // The model input the data is; empty: the model's only input.
  std::string input;
  // .npy only: the names of its columns.
  std::vector<std::string> feature_names;
  // Numeric features to profile as categories.
  std::vector<std::string> categorical;
  monitor::ProfileOptions profile;
};

// A .npy file is one input, [N] or [N, F]. A .csv file's columns are each an input when every
// header names one of the model's inputs, else the columns of one input [N, F] (numeric columns
// give FP64 values, any string column makes the tensor BYTES). Widths are checked against the
// configuration's dims.
absl::StatusOr<ReferenceData> ReadReferenceData(const ReferenceDataOptions& options,
                                                const inference::ModelConfig& config);

// Runs `backend` (whose configuration, completed, is `config`) over every row in batches of at
// most max_batch_size rows and returns each output with all rows. Data is converted to the
// model's element types (FP32, FP64, INT32, INT64) and reshaped to its per-row dims.
absl::StatusOr<std::vector<NamedTensor>> RunOnReferenceData(const inference::ModelConfig& config,
                                                            serving::Backend& backend,
                                                            const ReferenceData& data);

// "'a', 'b'", or "none".
std::string QuotedNames(const std::vector<std::string>& names);

}  // namespace flywheel::cli
