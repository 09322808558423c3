#include "cli/profile_data.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include <fmt/core.h>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "core/npy.h"
#include "core/status.h"
#include "monitor/csv_table.h"

namespace flywheel::cli {
namespace {

using monitor::FeatureProfile;
using monitor::FeatureRole;

// Converts a numeric tensor to `dtype` (FP32, FP64, INT32 or INT64), element by element.
absl::StatusOr<Tensor> Convert(const Tensor& t, DataType dtype, absl::string_view what) {
  if (t.dtype() == dtype) return t;
  const bool bytes = t.dtype() == DataType::kBytes || dtype == DataType::kBytes;
  auto read = [&t](int64_t i) -> double {
    switch (t.dtype()) {
      case DataType::kFp32:
        return t.data<float>()[i];
      case DataType::kFp64:
        return t.data<double>()[i];
      case DataType::kInt64:
        return static_cast<double>(t.data<int64_t>()[i]);
      case DataType::kInt32:
        return t.data<int32_t>()[i];
      case DataType::kInt16:
        return t.data<int16_t>()[i];
      case DataType::kInt8:
        return t.data<int8_t>()[i];
      case DataType::kUint8:
        return t.data<uint8_t>()[i];
      case DataType::kBool:
        return t.data<bool>()[i] ? 1 : 0;
      default:
        return 0;
    }
  };
  const std::vector<DataType> sources = {DataType::kFp32,  DataType::kFp64,  DataType::kInt64,
                                         DataType::kInt32, DataType::kInt16, DataType::kInt8,
                                         DataType::kUint8, DataType::kBool};
  const std::vector<DataType> targets = {DataType::kFp32, DataType::kFp64, DataType::kInt64,
                                         DataType::kInt32};
  if (bytes || std::find(sources.begin(), sources.end(), t.dtype()) == sources.end() ||
      std::find(targets.begin(), targets.end(), dtype) == targets.end()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: the model takes {}, the data is {}", std::string(what),
                    std::string(DataTypeName(dtype)), t.DebugString()));
  }
  Tensor out = Tensor::Allocate(dtype, t.shape());
  const int64_t n = t.NumElements();
  for (int64_t i = 0; i < n; ++i) {
    const double v = read(i);
    switch (dtype) {
      case DataType::kFp32:
        out.data<float>()[i] = static_cast<float>(v);
        break;
      case DataType::kFp64:
        out.data<double>()[i] = v;
        break;
      case DataType::kInt64:
        out.data<int64_t>()[i] = static_cast<int64_t>(v);
        break;
      default:
        out.data<int32_t>()[i] = static_cast<int32_t>(v);
        break;
    }
  }
  return out;
}

std::vector<std::string> InputNames(const inference::ModelConfig& config) {
  std::vector<std::string> names;
  for (const auto& input : config.input()) names.push_back(input.name());
  return names;
}

absl::StatusOr<std::string> InputFor(const ReferenceDataOptions& opt,
                                     const std::vector<std::string>& inputs) {
  if (!opt.input.empty()) {
    if (!inputs.empty() && std::find(inputs.begin(), inputs.end(), opt.input) == inputs.end()) {
      return absl::InvalidArgumentError(fmt::format("--input '{}': model '{}' has inputs {}",
                                                    opt.input, opt.model, QuotedNames(inputs)));
    }
    return opt.input;
  }
  if (inputs.size() == 1) return inputs[0];
  return absl::InvalidArgumentError(
      fmt::format("model '{}' has inputs {}: say which one the data is with --input NAME",
                  opt.model, QuotedNames(inputs)));
}

absl::StatusOr<ReferenceData> ReadNpyData(const ReferenceDataOptions& opt,
                                          const std::vector<std::string>& inputs) {
  FW_ASSIGN_OR_RETURN(Tensor tensor, ReadNpy(opt.path));
  FW_ASSIGN_OR_RETURN(std::string input, InputFor(opt, inputs));
  ReferenceData data;
  if (tensor.rank() == 0 || tensor.dim(0) == 0) {
    return absl::InvalidArgumentError(
        fmt::format("{}: expected rows [N] or [N, F], got {}", opt.path, tensor.DebugString()));
  }
  data.rows = tensor.dim(0);
  FW_ASSIGN_OR_RETURN(data.features,
                      monitor::ProfileTensor(tensor, input, FeatureRole::kInput, opt.feature_names,
                                             opt.categorical, opt.profile));
  data.tensors.push_back({input, std::move(tensor)});
  return data;
}

// One CSV column profiled as feature `column` of `tensor` (-1: the tensor is the column).
absl::StatusOr<FeatureProfile> ProfileColumn(const monitor::CsvColumn& c, const std::string& tensor,
                                             int64_t column, const ReferenceDataOptions& opt) {
  FeatureProfile f;
  const bool as_category =
      std::find(opt.categorical.begin(), opt.categorical.end(), c.name) != opt.categorical.end();
  if (!c.numeric) {
    f = monitor::ProfileStrings(c.name, c.cells, opt.profile);
  } else if (!as_category) {
    f = monitor::ProfileNumbers(c.name, c.Numbers(), opt.profile);
  } else {
    // Categories of numbers are spelled as live numeric tensors will be ("3", not "3.0").
    const std::vector<double> numbers = c.Numbers();
    Tensor t = Tensor::Allocate(DataType::kFp64, Shape{static_cast<int64_t>(numbers.size())});
    std::copy(numbers.begin(), numbers.end(), t.data<double>());
    FW_ASSIGN_OR_RETURN(
        std::vector<FeatureProfile> one,
        monitor::ProfileTensor(t, c.name, FeatureRole::kInput, {c.name}, {c.name}, opt.profile));
    f = std::move(one[0]);
  }
  f.role = FeatureRole::kInput;
  f.tensor = tensor;
  f.column = column;
  return f;
}

// Columns [first, first + count) as one tensor [rows, count] (or [rows] when `flat`): FP64 when
// all are numeric, else BYTES.
Tensor ColumnsTensor(const monitor::CsvTable& table, size_t first, size_t count, bool flat) {
  const int64_t rows = static_cast<int64_t>(table.rows);
  const int64_t width = static_cast<int64_t>(count);
  bool numeric = true;
  for (size_t j = first; j < first + count; ++j) numeric = numeric && table.columns[j].numeric;
  const Shape shape = flat ? Shape{rows} : Shape{rows, width};
  Tensor t = Tensor::Allocate(numeric ? DataType::kFp64 : DataType::kBytes, shape);
  for (size_t j = 0; j < count; ++j) {
    const monitor::CsvColumn& c = table.columns[first + j];
    const std::vector<double> numbers = numeric ? c.Numbers() : std::vector<double>{};
    for (int64_t r = 0; r < rows; ++r) {
      if (numeric) {
        t.data<double>()[r * width + j] = numbers[r];
      } else {
        t.strings()[r * width + j] = c.cells[r];
      }
    }
  }
  return t;
}

absl::StatusOr<ReferenceData> ReadCsvData(const ReferenceDataOptions& opt,
                                          const std::vector<std::string>& inputs) {
  if (!opt.feature_names.empty()) {
    return absl::InvalidArgumentError("--feature-names is for .npy data; a CSV header names them");
  }
  FW_ASSIGN_OR_RETURN(monitor::CsvTable table, monitor::ReadCsv(opt.path));
  if (table.rows == 0) return absl::InvalidArgumentError(opt.path + ": no data rows");
  ReferenceData data;
  data.rows = static_cast<int64_t>(table.rows);
  std::vector<std::string> header;
  for (const auto& c : table.columns) header.push_back(c.name);
  const bool per_input = opt.input.empty() && !inputs.empty() &&
                         std::all_of(header.begin(), header.end(), [&](const std::string& h) {
                           return std::find(inputs.begin(), inputs.end(), h) != inputs.end();
                         });
  if (per_input) {
    // Every column is a model input of its own, one value per row.
    for (size_t j = 0; j < table.columns.size(); ++j) {
      FW_ASSIGN_OR_RETURN(FeatureProfile f,
                          ProfileColumn(table.columns[j], table.columns[j].name, -1, opt));
      data.features.push_back(std::move(f));
      data.tensors.push_back({table.columns[j].name, ColumnsTensor(table, j, 1, true)});
    }
    return data;
  }
  auto input = InputFor(opt, inputs);
  if (!input.ok()) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: the columns ({}) are neither model '{}''s inputs ({}) nor the columns of one input; "
        "say which input they are with --input NAME",
        opt.path, absl::StrJoin(header, ", "), opt.model, QuotedNames(inputs)));
  }
  const size_t width = table.columns.size();
  for (size_t j = 0; j < width; ++j) {
    FW_ASSIGN_OR_RETURN(
        FeatureProfile f,
        ProfileColumn(table.columns[j], *input, width == 1 ? -1 : static_cast<int64_t>(j), opt));
    data.features.push_back(std::move(f));
  }
  data.tensors.push_back({*input, ColumnsTensor(table, 0, width, false)});
  return data;
}

// Each data tensor must have as many values per row as the configured input, or the profile would
// describe columns that requests never have.
absl::Status CheckWidths(const inference::ModelConfig& config, const ReferenceData& data) {
  if (config.max_batch_size() <= 0) return absl::OkStatus();  // dims have no batch dimension
  for (const NamedTensor& t : data.tensors) {
    for (const auto& input : config.input()) {
      if (input.name() != t.name || input.dims().empty()) continue;
      int64_t per_row = 1;
      for (int64_t d : input.dims()) per_row = d > 0 ? per_row * d : -1;
      if (per_row < 0) continue;  // a variable dimension: any width may be right
      const int64_t width = t.tensor.NumElements() / data.rows;
      if (width != per_row) {
        return absl::InvalidArgumentError(fmt::format(
            "model input '{}' has {} values per row (dims [{}]), the data has {} ({})", t.name,
            per_row, absl::StrJoin(input.dims(), ","), width, t.tensor.DebugString()));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string QuotedNames(const std::vector<std::string>& names) {
  if (names.empty()) return "none";
  std::vector<std::string> quoted;
  for (const std::string& n : names) quoted.push_back("'" + n + "'");
  return absl::StrJoin(quoted, ", ");
}

absl::StatusOr<ReferenceData> ReadReferenceData(const ReferenceDataOptions& opt,
                                                const inference::ModelConfig& config) {
  const std::vector<std::string> inputs = InputNames(config);
  ReferenceData data;
  if (absl::EndsWithIgnoreCase(opt.path, ".csv")) {
    FW_ASSIGN_OR_RETURN(data, ReadCsvData(opt, inputs));
  } else if (absl::EndsWithIgnoreCase(opt.path, ".npy")) {
    FW_ASSIGN_OR_RETURN(data, ReadNpyData(opt, inputs));
  } else {
    return absl::InvalidArgumentError(
        fmt::format("--data '{}': expected a .npy or .csv file", opt.path));
  }
  FW_RETURN_IF_ERROR(CheckWidths(config, data));
  return data;
}

// Runs the model over the reference rows in batches, as the server would, and returns every
// output with all rows.
absl::StatusOr<std::vector<NamedTensor>> RunOnReferenceData(const inference::ModelConfig& config,
                                                            serving::Backend& backend,
                                                            const ReferenceData& data) {
  const int64_t max_batch = config.max_batch_size();
  if (max_batch <= 0) {
    return absl::InvalidArgumentError(fmt::format(
        "model '{}' does not batch (max_batch_size 0), so its rows cannot be run as a batch",
        config.name()));
  }
  FW_ASSIGN_OR_RETURN(std::unique_ptr<serving::BackendInstance> instance, backend.CreateInstance());
  std::vector<Tensor> inputs;
  std::vector<std::string> given;
  for (const NamedTensor& t : data.tensors) given.push_back(t.name);
  for (const serving::BackendTensorInfo& info : backend.inputs()) {
    auto it = std::find_if(data.tensors.begin(), data.tensors.end(),
                           [&](const NamedTensor& t) { return t.name == info.name; });
    if (it == data.tensors.end()) {
      return absl::InvalidArgumentError(
          fmt::format("the data gives no values for model input '{}' (it gives {})", info.name,
                      QuotedNames(given)));
    }
    const std::string what = fmt::format("model input '{}'", info.name);
    FW_ASSIGN_OR_RETURN(Tensor t, Convert(it->tensor, info.dtype, what));
    // The model's shape of one row, e.g. [256] or [1]; the data's must have as many elements.
    std::vector<int64_t> dims = {data.rows};
    int64_t per_row = 1;
    for (size_t k = 1; k < info.dims.size(); ++k) {
      dims.push_back(info.dims[k] < 0 && k < static_cast<size_t>(t.rank()) ? t.dim(k)
                                                                           : info.dims[k]);
      per_row *= dims.back();
    }
    if (per_row <= 0 || t.NumElements() != data.rows * per_row) {
      return absl::InvalidArgumentError(fmt::format("{}: the model takes {} {}, the data is {}",
                                                    what, std::string(DataTypeName(info.dtype)),
                                                    Shape(info.dims).ToString(), t.DebugString()));
    }
    inputs.push_back(t.Reshaped(Shape(dims)));
  }
  const int64_t chunk = std::min<int64_t>(max_batch, 1024);
  std::vector<NamedTensor> outputs;
  std::vector<Tensor> batch_inputs(inputs.size());
  std::vector<Tensor> batch_outputs;
  for (int64_t start = 0; start < data.rows; start += chunk) {
    const int64_t n = std::min(chunk, data.rows - start);
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Tensor& full = inputs[i];
      Shape shape = full.shape();
      shape.mutable_dims()[0] = n;
      const int64_t per_row = full.NumElements() / data.rows;
      if (full.dtype() == DataType::kBytes) {
        batch_inputs[i] = Tensor::Allocate(DataType::kBytes, shape);
        std::copy_n(full.strings().begin() + start * per_row, n * per_row,
                    batch_inputs[i].strings().begin());
      } else {
        const size_t row_bytes = per_row * DataTypeSize(full.dtype());
        batch_inputs[i] = Tensor::View(
            full.dtype(), shape,
            const_cast<char*>(static_cast<const char*>(full.raw_data())) + start * row_bytes);
      }
    }
    FW_RETURN_IF_ERROR(instance->Execute(batch_inputs, &batch_outputs));
    if (outputs.empty()) {
      for (size_t k = 0; k < batch_outputs.size() && k < backend.outputs().size(); ++k) {
        Shape shape = batch_outputs[k].shape();
        if (shape.rank() == 0) {
          return absl::InternalError(
              fmt::format("output '{}' has no batch dimension", backend.outputs()[k].name));
        }
        shape.mutable_dims()[0] = data.rows;
        outputs.push_back(
            {backend.outputs()[k].name, Tensor::Allocate(batch_outputs[k].dtype(), shape)});
      }
    }
    for (size_t k = 0; k < outputs.size(); ++k) {
      Tensor& full = outputs[k].tensor;
      const Tensor& part = batch_outputs[k];
      const int64_t per_row = full.NumElements() / data.rows;
      if (part.dtype() != full.dtype() || part.NumElements() != n * per_row) {
        return absl::InternalError(fmt::format("output '{}': batch of {} rows gave {}",
                                               outputs[k].name, n, part.DebugString()));
      }
      if (full.dtype() == DataType::kBytes) {
        std::copy(part.strings().begin(), part.strings().end(),
                  full.strings().begin() + start * per_row);
      } else {
        const size_t row_bytes = per_row * DataTypeSize(full.dtype());
        std::memcpy(static_cast<char*>(full.raw_data()) + start * row_bytes, part.raw_data(),
                    n * row_bytes);
      }
    }
  }
  return outputs;
}

}  // namespace flywheel::cli
