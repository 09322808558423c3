// The feature_lookup backend and the checks of its configuration.
#include "serving/feature_lookup_backend.h"

#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/status.h"
#include "serving/model_config.h"
#include "serving/model_config_checks.h"

namespace flywheel::serving {
namespace {

using config_internal::Problems;
using config_internal::TensorField;

constexpr char kFeatures[] = "features";
constexpr char kMissingValue[] = "missing_value";
constexpr char kDefaultKey[] = "key";
constexpr char kDefaultValues[] = "values";
constexpr char kDefaultPresent[] = "present";

absl::StatusOr<float> ParseMissingValue(const std::string& text) {
  float value = 0;
  if (!absl::SimpleAtof(absl::StripAsciiWhitespace(text), &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not a number (a float, or nan)"));
  }
  return value;
}

// Reuses the instance's previous output buffer when nothing else holds it any more.
Tensor OutputBuffer(Tensor& previous, DataType dtype, const Shape& shape) {
  if (previous.unique() && previous.dtype() == dtype && previous.shape() == shape) {
    return previous;
  }
  return Tensor::Allocate(dtype, shape);
}

class FeatureLookupInstance : public BackendInstance {
 public:
  FeatureLookupInstance(const FeatureSource* source,
                        std::shared_ptr<const std::vector<std::string>> features,
                        float missing_value, int values_index, int present_index)
      : source_(source),
        features_(std::move(features)),
        missing_value_(missing_value),
        values_index_(values_index),
        present_index_(present_index) {}

  absl::Status Execute(absl::Span<const Tensor> inputs, std::vector<Tensor>* outputs) override {
    if (inputs.size() != 1 || inputs[0].dtype() != DataType::kBytes) {
      return absl::InvalidArgumentError("feature_lookup takes one BYTES tensor of entity keys");
    }
    const std::vector<std::string>& keys = inputs[0].strings();
    const int64_t n = static_cast<int64_t>(keys.size());
    const Shape shape{n, static_cast<int64_t>(features_->size())};
    outputs->resize(present_index_ >= 0 ? 2 : 1);
    Tensor& values = (*outputs)[values_index_];
    values = OutputBuffer(values, DataType::kFp32, shape);
    uint8_t* present = nullptr;
    if (present_index_ >= 0) {
      Tensor& flags = (*outputs)[present_index_];
      flags = OutputBuffer(flags, DataType::kBool, shape);
      present = static_cast<uint8_t*>(flags.raw_data());
    } else {
      scratch_.resize(static_cast<size_t>(shape.NumElements()));
      present = scratch_.data();
    }
    if (n == 0) return absl::OkStatus();
    return source_->Lookup(keys, *features_, missing_value_, values.data<float>(), present);
  }

 private:
  const FeatureSource* source_;
  std::shared_ptr<const std::vector<std::string>> features_;
  float missing_value_;
  int values_index_;
  int present_index_;
  std::vector<uint8_t> scratch_;
};

class FeatureLookupBackend : public Backend {
 public:
  FeatureLookupBackend(const FeatureSource* source, std::vector<std::string> features,
                       float missing_value, std::vector<BackendTensorInfo> inputs,
                       std::vector<BackendTensorInfo> outputs)
      : source_(source),
        features_(std::make_shared<const std::vector<std::string>>(std::move(features))),
        missing_value_(missing_value),
        inputs_(std::move(inputs)),
        outputs_(std::move(outputs)) {
    for (size_t i = 0; i < outputs_.size(); ++i) {
      (outputs_[i].dtype == DataType::kFp32 ? values_index_ : present_index_) = static_cast<int>(i);
    }
  }

  const std::vector<BackendTensorInfo>& inputs() const override { return inputs_; }
  const std::vector<BackendTensorInfo>& outputs() const override { return outputs_; }

  absl::StatusOr<std::unique_ptr<BackendInstance>> CreateInstance() override {
    return std::make_unique<FeatureLookupInstance>(source_, features_, missing_value_,
                                                   values_index_, present_index_);
  }

 private:
  const FeatureSource* source_;
  std::shared_ptr<const std::vector<std::string>> features_;
  float missing_value_;
  std::vector<BackendTensorInfo> inputs_;
  std::vector<BackendTensorInfo> outputs_;
  int values_index_ = -1;
  int present_index_ = -1;
};

// Fills what the configuration leaves out: the key input, the outputs, their types and dims.
void CompleteTensors(int64_t num_features, inference::ModelConfig* config) {
  const bool batched = config->max_batch_size() > 0;
  if (config->input().empty()) config->add_input()->set_name(kDefaultKey);
  inference::ModelInput* key = config->mutable_input(0);
  if (key->data_type() == inference::TYPE_INVALID) key->set_data_type(inference::TYPE_STRING);
  if (key->dims().empty() && !key->has_reshape()) key->add_dims(batched ? 1 : -1);
  if (config->output().empty()) {
    auto* values = config->add_output();
    values->set_name(kDefaultValues);
    values->set_data_type(inference::TYPE_FP32);
    auto* present = config->add_output();
    present->set_name(kDefaultPresent);
    present->set_data_type(inference::TYPE_BOOL);
  }
  for (inference::ModelOutput& output : *config->mutable_output()) {
    if (!output.dims().empty() || output.has_reshape()) continue;
    if (!batched) output.add_dims(-1);
    output.add_dims(num_features);
  }
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseFeatureList(absl::string_view text) {
  std::vector<std::string> features;
  std::set<std::string> seen;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    part = absl::StripAsciiWhitespace(part);
    const std::vector<absl::string_view> pieces = absl::StrSplit(part, ':');
    if (pieces.size() != 2 || pieces[0].empty() || pieces[1].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", part,
                       "' is not view:feature (features are listed as "
                       "\"view:feature,view:feature\")"));
    }
    if (!seen.insert(std::string(part)).second) {
      return absl::InvalidArgumentError(absl::StrCat("'", part, "' is listed twice"));
    }
    features.emplace_back(part);
  }
  return features;
}

namespace config_internal {

void CheckFeatureLookupConfig(const inference::ModelConfig& config, Problems* problems) {
  const std::string parameter = absl::StrCat("parameters.", kFeatures);
  if (const std::string* features = ConfigParameter(config, kFeatures); features == nullptr) {
    problems->Invalid(parameter,
                      "not set (name the features to look up: \"view:feature,view:feature\")");
  } else if (auto list = ParseFeatureList(*features); !list.ok()) {
    problems->Invalid(parameter, std::string(list.status().message()));
  }
  if (const std::string* missing = ConfigParameter(config, kMissingValue); missing != nullptr) {
    if (auto value = ParseMissingValue(*missing); !value.ok()) {
      problems->Invalid(absl::StrCat("parameters.", kMissingValue),
                        std::string(value.status().message()));
    }
  }
  for (const auto& [key, value] : config.parameters()) {
    if (key != kFeatures && key != kMissingValue) {
      problems->Warn(absl::StrCat("parameters.", key), "not used by the feature_lookup backend");
    }
  }
  if (!config.default_model_filename().empty()) {
    problems->Warn("default_model_filename", "a feature_lookup model has no model file; ignored");
  }
  if (config.input_size() > 1) {
    problems->Invalid("input", absl::StrCat(config.input_size(),
                                            " inputs are declared; a feature_lookup model has "
                                            "one, the TYPE_STRING entity keys"));
  }
  for (int i = 0; i < config.input_size(); ++i) {
    const inference::ModelInput& input = config.input(i);
    if (input.data_type() != inference::TYPE_INVALID &&
        input.data_type() != inference::TYPE_STRING) {
      problems->Invalid(
          TensorField("input", i, input.name()) + ".data_type",
          absl::StrCat(ConfigDataTypeName(input.data_type()), ", but entity keys are TYPE_STRING"));
    }
  }
  if (config.output_size() > 2) {
    problems->Invalid("output", absl::StrCat(config.output_size(),
                                             " outputs are declared; a feature_lookup model has "
                                             "the TYPE_FP32 values and the TYPE_BOOL presence"));
  }
  int values = 0, present = 0;
  for (int i = 0; i < config.output_size(); ++i) {
    const inference::ModelOutput& output = config.output(i);
    const std::string field = TensorField("output", i, output.name()) + ".data_type";
    switch (output.data_type()) {
      case inference::TYPE_FP32:
        if (++values > 1) problems->Invalid(field, "a second TYPE_FP32 output (the values)");
        break;
      case inference::TYPE_BOOL:
        if (++present > 1) problems->Invalid(field, "a second TYPE_BOOL output (the presence)");
        break;
      case inference::TYPE_INVALID:
        problems->Invalid(field,
                          "not set (TYPE_FP32 for the feature values, TYPE_BOOL for whether "
                          "each was present)");
        break;
      default:
        problems->Invalid(field, absl::StrCat(ConfigDataTypeName(output.data_type()),
                                              ", but a feature_lookup output is TYPE_FP32 (the "
                                              "values) or TYPE_BOOL (the presence)"));
    }
  }
  if (config.output_size() > 0 && values == 0) {
    problems->Invalid("output", "no TYPE_FP32 output for the feature values is declared");
  }
}

}  // namespace config_internal

absl::StatusOr<std::unique_ptr<Backend>> CreateFeatureLookupBackend(inference::ModelConfig* config,
                                                                    const FeatureSource* source) {
  const std::string model = absl::StrCat("model '", config->name(), "'");
  if (source == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(model,
                     ": backend feature_lookup reads the online feature store, and this server "
                     "has none (start flywheel serve with --features DIR)"));
  }
  const std::string* text = ConfigParameter(*config, kFeatures);
  if (text == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(model, ": parameters.features is not set"));
  }
  FW_ASSIGN_OR_RETURN(std::vector<std::string> features, ParseFeatureList(*text));
  float missing_value = 0;
  if (const std::string* missing = ConfigParameter(*config, kMissingValue); missing != nullptr) {
    FW_ASSIGN_OR_RETURN(missing_value, ParseMissingValue(*missing));
  }
  if (absl::Status valid = source->Validate(features); !valid.ok()) {
    return absl::Status(valid.code(),
                        absl::StrCat(model, ": parameters.features: ", valid.message()));
  }
  CompleteTensors(static_cast<int64_t>(features.size()), config);

  const bool batched = config->max_batch_size() > 0;
  const int64_t num_features = static_cast<int64_t>(features.size());
  std::vector<BackendTensorInfo> inputs = {
      {config->input(0).name(), DataType::kBytes,
       batched ? std::vector<int64_t>{-1, 1} : std::vector<int64_t>{-1}}};
  std::vector<BackendTensorInfo> outputs;
  for (const inference::ModelOutput& output : config->output()) {
    outputs.push_back(
        {output.name(),
         output.data_type() == inference::TYPE_BOOL ? DataType::kBool : DataType::kFp32,
         {-1, num_features}});
  }
  return std::make_unique<FeatureLookupBackend>(source, std::move(features), missing_value,
                                                std::move(inputs), std::move(outputs));
}

}  // namespace flywheel::serving
