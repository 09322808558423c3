#include "trees/forest.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"
#include "trees/compiled_forest.h"
#include "trees/json_reader.h"
#include "trees/objective.h"
#include "trees/predictor.h"
#include "trees/ubjson_reader.h"
#include "trees/xgboost_loader.h"

namespace flywheel::trees {
namespace {

ModelFormat SniffFormat(absl::string_view bytes) {
  size_t i = 0;
  auto skip_space = [&] {
    while (i < bytes.size() &&
           (bytes[i] == ' ' || bytes[i] == '\t' || bytes[i] == '\n' || bytes[i] == '\r')) {
      ++i;
    }
  };
  skip_space();
  if (i < bytes.size() && bytes[i] == '{') {
    ++i;
    skip_space();
    if (i < bytes.size() && (bytes[i] == '"' || bytes[i] == '}')) return ModelFormat::kXgboostJson;
  }
  return ModelFormat::kXgboostUbjson;
}

// kAuto for a file: its extension when it is one XGBoost uses, else the content decides.
ModelFormat FormatFromPath(const std::string& path) {
  auto ends_with = [&](absl::string_view ext) { return absl::EndsWith(path, ext); };
  if (ends_with(".json")) return ModelFormat::kXgboostJson;
  if (ends_with(".ubj") || ends_with(".ubjson")) return ModelFormat::kXgboostUbjson;
  return ModelFormat::kAuto;
}

absl::Status WithContext(const absl::Status& s, absl::string_view what) {
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

}  // namespace

absl::StatusOr<ModelFormat> ParseModelFormat(absl::string_view name) {
  if (name == "auto") return ModelFormat::kAuto;
  if (name == "xgboost_json") return ModelFormat::kXgboostJson;
  if (name == "xgboost_ubj") return ModelFormat::kXgboostUbjson;
  return absl::InvalidArgumentError(absl::StrCat("unknown tree model format '", name,
                                                 "' (supported: xgboost_json, xgboost_ubj, auto)"));
}

Forest::Forest(ModelInfo info, std::unique_ptr<CompiledForest> compiled, int transform)
    : info_(std::move(info)), compiled_(std::move(compiled)), transform_(transform) {}

Forest::~Forest() = default;

absl::StatusOr<std::unique_ptr<Forest>> Forest::LoadFile(const std::string& path,
                                                         const LoadOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("model '", path, "': cannot open the file"));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("model '", path, "': read failed"));
  LoadOptions o = options;
  if (o.format == ModelFormat::kAuto) o.format = FormatFromPath(path);
  return LoadFromMemory(ss.str(), o, absl::StrCat("model '", path, "'"));
}

absl::StatusOr<std::unique_ptr<Forest>> Forest::LoadFromMemory(absl::string_view bytes,
                                                               const LoadOptions& options,
                                                               absl::string_view what) {
  if (bytes.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": the file is empty"));
  const ModelFormat format =
      options.format == ModelFormat::kAuto ? SniffFormat(bytes) : options.format;
  auto doc = format == ModelFormat::kXgboostJson ? ParseJsonDoc(std::string(bytes))
                                                 : ParseUbjsonDoc(std::string(bytes));
  if (!doc.ok()) return WithContext(doc.status(), what);
  auto ensemble = BuildXgboostEnsemble(doc->root());
  if (!ensemble.ok()) return WithContext(ensemble.status(), what);
  auto compiled = CompiledForest::Build(*ensemble);
  if (!compiled.ok()) return WithContext(compiled.status(), what);

  ModelInfo info;
  info.booster = ensemble->booster;
  info.objective = ensemble->objective.name;
  info.num_features = ensemble->num_feature;
  info.num_class = ensemble->num_class;
  info.num_groups = ensemble->num_groups;
  info.num_trees = static_cast<int>(ensemble->trees.size());
  info.max_depth = compiled->max_depth();
  info.base_score = ensemble->base_score;
  info.base_margin = ensemble->base_margin;
  info.feature_names = std::move(ensemble->feature_names);
  info.feature_types = std::move(ensemble->feature_types);
  info.version = absl::StrJoin(ensemble->version, ".");
  return std::unique_ptr<Forest>(new Forest(std::move(info),
                                            std::make_unique<CompiledForest>(std::move(*compiled)),
                                            static_cast<int>(ensemble->objective.transform)));
}

int Forest::num_outputs(bool output_margin) const {
  if (output_margin) return info_.num_groups;
  return TransformedColumns(static_cast<OutputTransform>(transform_), info_.num_groups);
}

absl::Status Forest::Predict(const float* rows, int64_t n_rows, int64_t n_cols,
                             const PredictOptions& options, float* out) const {
  if (n_cols != info_.num_features) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input has ", n_cols, " columns but the model has ", info_.num_features, " features"));
  }
  if (n_rows < 0) return absl::InvalidArgumentError(absl::StrCat("negative row count ", n_rows));
  if (n_rows > 0 && (rows == nullptr || out == nullptr)) {
    return absl::InvalidArgumentError("null input or output buffer");
  }
  const auto transform =
      options.output_margin ? OutputTransform::kIdentity : static_cast<OutputTransform>(transform_);
  PredictRows(*compiled_, transform, rows, n_rows, out, options.pool);
  return absl::OkStatus();
}

absl::StatusOr<Tensor> Forest::Predict(const Tensor& x, const PredictOptions& options) const {
  const bool ok_rank = x.rank() == 2 || x.rank() == 1;
  const int64_t n_cols = ok_rank ? x.dim(x.rank() - 1) : -1;
  if (x.dtype() != DataType::kFp32 || !ok_rank || n_cols != info_.num_features) {
    return absl::InvalidArgumentError(
        absl::StrCat("input: expected FP32 [-1,", info_.num_features, "], got ", x.DebugString()));
  }
  const int64_t n_rows = x.rank() == 2 ? x.dim(0) : 1;
  const int cols = num_outputs(options.output_margin);
  FW_ASSIGN_OR_RETURN(Tensor out,
                      Tensor::SafeAllocate(DataType::kFp32, Shape({n_rows, cols}), "prediction"));
  FW_RETURN_IF_ERROR(Predict(x.data<float>(), n_rows, n_cols, options, out.data<float>()));
  return out;
}

}  // namespace flywheel::trees
