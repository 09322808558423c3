#include "lifecycle/loop_eval.h"

#include <algorithm>
#include <cmath>
#include <future>
#include <map>
#include <memory>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/status.h"
#include "core/tensor_values.h"
#include "model_config.pb.h"
#include "monitor/csv_table.h"
#include "monitor/monitoring.h"
#include "serving/model_config.h"
#include "serving/server.h"

namespace flywheel::lifecycle {
namespace {

// The training set's leading columns (monitor/training_set.h); every other column is an input
// element "<input>:<j>".
constexpr const char* kLabelColumn = "label";
bool IsMetaColumn(const std::string& name) {
  return name == "id" || name == "row" || name == "time" || name == "version";
}

// Writes `value` as element i of a tensor of `dtype`.
bool StoreElement(Tensor& t, int64_t i, double value) {
  switch (t.dtype()) {
    case DataType::kFp32:
      t.data<float>()[i] = static_cast<float>(value);
      return true;
    case DataType::kFp64:
      t.data<double>()[i] = value;
      return true;
    case DataType::kInt64:
      t.data<int64_t>()[i] = std::isfinite(value) ? static_cast<int64_t>(value) : 0;
      return true;
    case DataType::kInt32:
      t.data<int32_t>()[i] = std::isfinite(value) ? static_cast<int32_t>(value) : 0;
      return true;
    case DataType::kInt16:
      t.data<int16_t>()[i] = std::isfinite(value) ? static_cast<int16_t>(value) : 0;
      return true;
    case DataType::kInt8:
      t.data<int8_t>()[i] = std::isfinite(value) ? static_cast<int8_t>(value) : 0;
      return true;
    case DataType::kUint8:
    case DataType::kBool:
      t.data<uint8_t>()[i] = std::isfinite(value) ? static_cast<uint8_t>(value) : 0;
      return true;
    case DataType::kUint32:
      t.data<uint32_t>()[i] = std::isfinite(value) ? static_cast<uint32_t>(value) : 0;
      return true;
    case DataType::kUint64:
      t.data<uint64_t>()[i] = std::isfinite(value) ? static_cast<uint64_t>(value) : 0;
      return true;
    default:
      return false;
  }
}

// Runs one request and waits for its answer (the callback comes on a scheduler thread).
absl::StatusOr<serving::InferResponse> InferAndWait(
    serving::Server& server, std::unique_ptr<serving::InferRequest> request) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<serving::InferResponse>>>();
  std::future<absl::StatusOr<serving::InferResponse>> answer = promise->get_future();
  server.Infer(std::move(request), [promise](absl::StatusOr<serving::InferResponse> response) {
    promise->set_value(std::move(response));
  });
  return answer.get();
}

}  // namespace

absl::StatusOr<Holdout> ReadHoldout(const std::string& path) {
  FW_ASSIGN_OR_RETURN(monitor::CsvTable table, monitor::ReadCsv(path));
  Holdout holdout;
  holdout.rows = static_cast<int64_t>(table.rows);
  const monitor::CsvColumn* label = nullptr;
  std::map<std::string, size_t> input_index;
  std::vector<std::pair<size_t, const monitor::CsvColumn*>> placed;  // (input, column)
  for (const monitor::CsvColumn& column : table.columns) {
    if (column.name == kLabelColumn) {
      label = &column;
      continue;
    }
    if (IsMetaColumn(column.name)) continue;
    const size_t colon = column.name.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": column '", column.name,
                       "' is neither a label nor an input element <input>:<j>"));
    }
    const std::string name = column.name.substr(0, colon);
    auto [it, added] = input_index.emplace(name, holdout.inputs.size());
    if (added) holdout.inputs.push_back({name, {}, {}});
    holdout.inputs[it->second].columns.push_back(column.name);
    placed.emplace_back(it->second, &column);
  }
  if (label == nullptr)
    return absl::InvalidArgumentError(absl::StrCat(path, ": no 'label' column"));
  if (holdout.inputs.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no input columns"));
  }
  if (!label->numeric) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": the labels are not all numbers"));
  }
  holdout.labels = label->Numbers();
  for (Holdout::Input& input : holdout.inputs) {
    input.values.resize(static_cast<size_t>(holdout.rows) * input.columns.size());
  }
  std::vector<size_t> next(holdout.inputs.size(), 0);
  for (const auto& [index, column] : placed) {
    if (!column->numeric) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": column '", column->name, "' is not numeric"));
    }
    Holdout::Input& input = holdout.inputs[index];
    const size_t width = input.columns.size();
    const size_t j = next[index]++;
    const std::vector<double> numbers = column->Numbers();
    for (size_t r = 0; r < numbers.size(); ++r) input.values[r * width + j] = numbers[r];
  }
  return holdout;
}

absl::StatusOr<Evaluation> EvaluateVersion(serving::Server& server, const std::string& model,
                                           int64_t version, const Holdout& holdout) {
  const std::string label = absl::StrCat("model '", model, "' version ", version);
  const std::string v = absl::StrCat(version);
  FW_ASSIGN_OR_RETURN(serving::ModelMetadata metadata, server.GetModelMetadata(model, v));
  inference::ModelConfig config;
  FW_RETURN_IF_ERROR(server.GetModelConfig(model, v, &config));
  if (config.max_batch_size() <= 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(label, ": evaluation needs a model that batches (max_batch_size > 0)"));
  }
  // Which output labels are joined with, and the task, as live monitoring reads them.
  std::string output_name = metadata.outputs.empty() ? "" : metadata.outputs.front().name;
  if (const std::string* p = serving::ConfigParameter(config, monitor::kParamLabelOutput))
    output_name = *p;
  monitor::TaskKind task = monitor::TaskKind::kAuto;
  if (const std::string* p = serving::ConfigParameter(config, monitor::kParamLabelTask)) {
    FW_ASSIGN_OR_RETURN(task, monitor::ParseTaskKind(*p, monitor::kParamLabelTask));
  }
  // Each model input must come from the holdout, with as many columns as its row has elements.
  struct Feed {
    const Holdout::Input* source;
    DataType dtype;
    std::vector<int64_t> row_dims;
    int64_t width;
  };
  std::vector<Feed> feeds;
  for (const serving::TensorMetadata& input : metadata.inputs) {
    auto found = std::find_if(holdout.inputs.begin(), holdout.inputs.end(),
                              [&](const Holdout::Input& h) { return h.name == input.name; });
    if (found == holdout.inputs.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, ": the holdout has no columns for input '", input.name, "'"));
    }
    FW_ASSIGN_OR_RETURN(DataType dtype, DataTypeFromName(input.datatype));
    std::vector<int64_t> dims(input.shape.begin() + 1, input.shape.end());
    int64_t width = 1;
    for (int64_t d : dims) width *= d;
    if (width != static_cast<int64_t>(found->columns.size()) || width <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(label, ": input '", input.name, "' takes ",
                                                     width, " values a row; the holdout has ",
                                                     found->columns.size()));
    }
    feeds.push_back({&*found, dtype, std::move(dims), width});
  }

  Evaluation evaluation;
  evaluation.version = version;
  evaluation.rows = holdout.rows;
  monitor::QualityWindow window(model, v, task, std::max<int64_t>(holdout.rows, 1));
  const int64_t batch = std::min<int64_t>(config.max_batch_size(), 256);
  monitor::Prediction prediction;
  for (int64_t start = 0; start < holdout.rows; start += batch) {
    const int64_t n = std::min(batch, holdout.rows - start);
    auto request = std::make_unique<serving::InferRequest>();
    request->model_name = model;
    request->model_version = v;
    for (const Feed& feed : feeds) {
      std::vector<int64_t> shape{n};
      shape.insert(shape.end(), feed.row_dims.begin(), feed.row_dims.end());
      FW_ASSIGN_OR_RETURN(Tensor t,
                          Tensor::SafeAllocate(feed.dtype, Shape(shape), feed.source->name));
      const double* values = feed.source->values.data() + start * feed.width;
      for (int64_t i = 0; i < n * feed.width; ++i) {
        if (!StoreElement(t, i, values[i])) {
          return absl::InvalidArgumentError(absl::StrCat(label, ": input '", feed.source->name,
                                                         "' has a type evaluation cannot fill (",
                                                         DataTypeName(feed.dtype), ")"));
        }
      }
      request->inputs.push_back({feed.source->name, std::move(t), {}});
    }
    request->outputs.push_back({output_name, false, {}});
    absl::StatusOr<serving::InferResponse> response = InferAndWait(server, std::move(request));
    if (!response.ok()) {
      return absl::Status(response.status().code(),
                          absl::StrCat(label, ": holdout rows ", start, "..", start + n - 1, ": ",
                                       response.status().message()));
    }
    if (response->outputs.empty()) {
      return absl::InternalError(absl::StrCat(label, ": no output '", output_name, "'"));
    }
    const Tensor& out = response->outputs.front().data;
    const int64_t out_width = out.NumElements() / std::max<int64_t>(n, 1);
    const bool numeric = VisitNumeric(out, [&](auto get) {
      for (int64_t r = 0; r < n; ++r) {
        prediction.clear();
        for (int64_t k = 0; k < out_width; ++k) {
          prediction.push_back(static_cast<float>(get(r * out_width + k)));
        }
        window.Add(prediction, holdout.labels[static_cast<size_t>(start + r)]);
      }
    });
    if (!numeric) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, ": output '", output_name, "' is not numeric"));
    }
  }
  evaluation.report = window.Compute();
  return evaluation;
}

absl::StatusOr<double> MetricValue(const monitor::QualityReport& report, GateMetric metric) {
  std::optional<double> value;
  switch (metric) {
    case GateMetric::kAuc:
      value = report.auc;
      break;
    case GateMetric::kAccuracy:
      value = report.accuracy;
      break;
    case GateMetric::kLogLoss:
      value = report.log_loss;
      break;
    case GateMetric::kMae:
      value = report.mae;
      break;
    case GateMetric::kRmse:
      value = report.rmse;
      break;
  }
  if (!value.has_value() || !std::isfinite(*value)) {
    return absl::FailedPreconditionError(absl::StrCat(
        GateMetricName(metric), " is not defined for version ", report.version,
        " on this holdout (", report.pairs, " labelled rows, task ",
        monitor::TaskKindName(report.resolved),
        "; AUC needs both classes, accuracy and log-loss a classifier, MAE and RMSE a regressor)"));
  }
  return *value;
}

}  // namespace flywheel::lifecycle
