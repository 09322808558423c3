// The feature_lookup backend: a model whose execution is an online feature lookup. Used as a step
// of an ensemble, it turns entity ids into feature tensors in process, so that a request carrying
// only ids is scored in one call. It reads the FeatureSource the server was started with.
//
//   backend: "feature_lookup"
//   max_batch_size: 0   # 0: key input [-1] (N keys) -> values [-1, F]
//                       # > 0: key input [1] per batch row -> values [F] per row; dynamic
//                       #      batching merges the keys of many requests into one lookup
//   input [ { name: "user_id" data_type: TYPE_STRING dims: [ -1 ] } ]          # default "key"
//   output [ { name: "user_features" data_type: TYPE_FP32 dims: [ -1, 2 ] },   # default "values"
//            { name: "user_present" data_type: TYPE_BOOL dims: [ -1, 2 ] } ]   # default "present"
//   parameters { key: "features"
//                value { string_value: "user_stats:clicks_1h,user_stats:spend_7d" } }
//   parameters { key: "missing_value" value { string_value: "0" } }  # optional; "nan" allowed
//
// Row i of the outputs belongs to key i; column j to the j-th feature. A value that is not found
// or outside its TTL is missing_value and its presence is false. Outputs may be left out (both
// are then declared) or declared by data type: TYPE_FP32 is the values, TYPE_BOOL the presence.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model_config.pb.h"
#include "serving/backend.h"
#include "serving/feature_source.h"

namespace flywheel::serving {

// "view:feature, view:feature" -> {"view:feature", "view:feature"}. Every entry has a non-empty
// view and feature; none is listed twice; at least one.
absl::StatusOr<std::vector<std::string>> ParseFeatureList(absl::string_view text);

// Completes `config` where it leaves the key input or the outputs (or their data types and dims)
// out, checks the features with `source`, and creates the backend. Without a source the error
// says to start the server with --features.
absl::StatusOr<std::unique_ptr<Backend>> CreateFeatureLookupBackend(inference::ModelConfig* config,
                                                                    const FeatureSource* source);

}  // namespace flywheel::serving
