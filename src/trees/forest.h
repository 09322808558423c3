// Gradient-boosted tree ensembles (XGBoost JSON and UBJSON models) for serving: load a model
// once, then predict batches of rows from any number of threads. Outputs equal XGBoost's
// `predict()` / `predict(output_margin=True)`.
//
//   FW_ASSIGN_OR_RETURN(auto forest, trees::Forest::LoadFile("model.ubj"));
//   std::vector<float> out(n * forest->num_outputs(false));
//   FW_RETURN_IF_ERROR(forest->Predict(x, n, forest->num_features(), {}, out.data()));
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace flywheel::trees {

enum class ModelFormat {
  // LoadFile: by extension (.json, .ubj), else like LoadFromMemory: JSON when the content
  // starts with '{' and then '"' or '}', UBJSON otherwise.
  kAuto,
  kXgboostJson,    // XGBoost save_model("m.json")
  kXgboostUbjson,  // XGBoost save_model("m.ubj")
};

// "xgboost_json" / "xgboost_ubj" (the names Triton's FIL backend uses for model_type) or "auto".
absl::StatusOr<ModelFormat> ParseModelFormat(absl::string_view name);

struct LoadOptions {
  ModelFormat format = ModelFormat::kAuto;
};

struct PredictOptions {
  // Raw sums of the trees (one column per class/target) instead of the objective's output.
  bool output_margin = false;
  // Splits large batches by rows across the pool's threads; nullptr runs on the calling thread.
  // The pool may be shared by several callers and models.
  ThreadPool* pool = nullptr;
};

// What the model file says about itself.
struct ModelInfo {
  std::string booster;    // "gbtree" or "dart"
  std::string objective;  // e.g. "binary:logistic"
  int num_features = 0;
  int num_class = 0;   // as stored: 0 for regression and binary models
  int num_groups = 1;  // margin columns: classes (multi-class), targets, or 1
  int num_trees = 0;
  int max_depth = 0;
  float base_score = 0.0f;                 // as stored, in the objective's output space
  float base_margin = 0.0f;                // the margin every prediction starts from
  std::vector<std::string> feature_names;  // empty when the model has none
  std::vector<std::string> feature_types;  // "q" numeric, "c" categorical, ... (may be empty)
  std::string version;  // XGBoost version that wrote it, "1.7.4"; empty when not stated
};

class CompiledForest;

// Immutable after load; Predict is const and safe to call from many threads at once.
class Forest {
 public:
  ~Forest();
  Forest(const Forest&) = delete;
  Forest& operator=(const Forest&) = delete;

  static absl::StatusOr<std::unique_ptr<Forest>> LoadFile(const std::string& path,
                                                          const LoadOptions& options = {});
  // `what` names the model in errors (a path or a model name).
  static absl::StatusOr<std::unique_ptr<Forest>> LoadFromMemory(absl::string_view bytes,
                                                                const LoadOptions& options = {},
                                                                absl::string_view what = "model");

  const ModelInfo& info() const { return info_; }
  int num_features() const { return info_.num_features; }
  // Columns Predict writes per row: num_groups, or 1 for multi:softmax's class index.
  int num_outputs(bool output_margin) const;

  // Predicts n_rows rows of n_cols floats (row-major; NaN is a missing value) into `out`, which
  // must hold n_rows * num_outputs(options.output_margin) floats. n_cols must equal
  // num_features().
  absl::Status Predict(const float* rows, int64_t n_rows, int64_t n_cols,
                       const PredictOptions& options, float* out) const;
  // Tensor form: x is FP32 [n, num_features] (or [num_features] for one row); returns FP32
  // [n, num_outputs].
  absl::StatusOr<Tensor> Predict(const Tensor& x, const PredictOptions& options = {}) const;

 private:
  Forest(ModelInfo info, std::unique_ptr<CompiledForest> compiled, int transform);

  ModelInfo info_;
  std::unique_ptr<CompiledForest> compiled_;
  int transform_;  // OutputTransform, kept out of this header
};

}  // namespace flywheel::trees
