#include "serving/trees_backend.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "serving/model_config.h"
#include "trees/forest.h"

namespace flywheel::serving {
namespace {

// Triton FIL's tensor names, used when the configuration does not name the tensors.
constexpr char kInputName[] = "input__0";
constexpr char kOutputName[] = "output__0";

// What FIL's parameters ask the output to be.
struct FilOutput {
  bool output_class = false;  // classifier: classes or probabilities rather than raw values
  bool predict_proba = false;
  float threshold = 0.5f;
};

absl::StatusOr<bool> BoolParameter(const inference::ModelConfig& config, const std::string& key,
                                   bool fallback) {
  const std::string* text = ConfigParameter(config, key);
  if (text == nullptr) return fallback;
  std::string v = absl::AsciiStrToLower(*text);
  if (v == "true" || v == "1") return true;
  if (v == "false" || v == "0") return false;
  return absl::InvalidArgumentError(absl::StrCat("model '", config.name(), "': parameter '", key,
                                                 "' must be true or false, got '", *text, "'"));
}

bool IsClassifier(const std::string& objective) {
  return objective.rfind("binary:", 0) == 0 || objective.rfind("multi:", 0) == 0;
}

class TreesInstance : public BackendInstance {
 public:
  TreesInstance(std::shared_ptr<const trees::Forest> forest, FilOutput fil, int columns,
                int threads)
      : forest_(std::move(forest)), fil_(fil), columns_(columns) {
    if (threads > 1) pool_ = std::make_unique<ThreadPool>(threads);
  }

  absl::Status Execute(absl::Span<const Tensor> inputs, std::vector<Tensor>* outputs) override {
    const Tensor& x = inputs[0];
    if (x.dtype() != DataType::kFp32 || x.rank() != 2 || x.dim(1) != forest_->num_features()) {
      return absl::InvalidArgumentError(
          absl::StrCat("expected FP32 [n, ", forest_->num_features(), "], got ", x.DebugString()));
    }
    const int64_t n = x.dim(0);
    trees::PredictOptions options;
    options.pool = pool_.get();
    options.output_margin = false;
    const int natural = forest_->num_outputs(false);
    scratch_.resize(static_cast<size_t>(n * natural));
    FW_RETURN_IF_ERROR(forest_->Predict(x.data<float>(), n, x.dim(1), options, scratch_.data()));
    outputs->resize(1);
    Tensor& out = (*outputs)[0];
    if (out.empty() || out.dtype() != DataType::kFp32 || out.shape() != Shape{n, columns_} ||
        !out.unique()) {
      out = Tensor::Allocate(DataType::kFp32, Shape{n, columns_});
    }
    float* dst = out.data<float>();
    const std::string& objective = forest_->info().objective;
    const bool binary = objective.rfind("binary:", 0) == 0;
    for (int64_t r = 0; r < n; ++r) {
      const float* p = scratch_.data() + r * natural;
      float* o = dst + r * columns_;
      if (!fil_.output_class || objective == "multi:softmax") {
        std::copy(p, p + natural, o);
      } else if (fil_.predict_proba) {
        if (binary) {
          o[0] = 1.0f - p[0];
          o[1] = p[0];
        } else {
          std::copy(p, p + natural, o);
        }
      } else if (binary) {
        o[0] = p[0] > fil_.threshold ? 1.0f : 0.0f;
      } else {
        o[0] = static_cast<float>(std::max_element(p, p + natural) - p);
      }
    }
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<const trees::Forest> forest_;
  FilOutput fil_;
  int columns_;
  std::unique_ptr<ThreadPool> pool_;
  std::vector<float> scratch_;
};

class TreesBackend : public Backend {
 public:
  TreesBackend(std::shared_ptr<const trees::Forest> forest, FilOutput fil, int columns,
               std::string input_name, std::string output_name, int threads)
      : forest_(std::move(forest)), fil_(fil), columns_(columns), threads_(threads) {
    inputs_.push_back({std::move(input_name), DataType::kFp32, {-1, forest_->num_features()}});
    outputs_.push_back({std::move(output_name), DataType::kFp32, {-1, columns}});
  }
  const std::vector<BackendTensorInfo>& inputs() const override { return inputs_; }
  const std::vector<BackendTensorInfo>& outputs() const override { return outputs_; }
  absl::StatusOr<std::unique_ptr<BackendInstance>> CreateInstance() override {
    return std::make_unique<TreesInstance>(forest_, fil_, columns_, threads_);
  }

 private:
  std::shared_ptr<const trees::Forest> forest_;
  FilOutput fil_;
  int columns_;
  int threads_;
  std::vector<BackendTensorInfo> inputs_;
  std::vector<BackendTensorInfo> outputs_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> CreateTreesBackend(const std::string& model_path,
                                                            const inference::ModelConfig& config,
                                                            const TreesBackendOptions& options) {
  trees::LoadOptions load;
  if (const std::string* type = ConfigParameter(config, "model_type")) {
    FW_ASSIGN_OR_RETURN(load.format, trees::ParseModelFormat(*type));
  }
  FW_ASSIGN_OR_RETURN(std::unique_ptr<trees::Forest> loaded,
                      trees::Forest::LoadFile(model_path, load));
  std::shared_ptr<const trees::Forest> forest = std::move(loaded);
  FilOutput fil;
  const std::string& objective = forest->info().objective;
  FW_ASSIGN_OR_RETURN(fil.output_class,
                      BoolParameter(config, "output_class", IsClassifier(objective)));
  FW_ASSIGN_OR_RETURN(fil.predict_proba, BoolParameter(config, "predict_proba", false));
  if (const std::string* threshold = ConfigParameter(config, "threshold")) {
    if (!absl::SimpleAtof(*threshold, &fil.threshold)) {
      return absl::InvalidArgumentError(absl::StrCat("model '", config.name(),
                                                     "': parameter 'threshold' must be a number, "
                                                     "got '",
                                                     *threshold, "'"));
    }
  }
  if (fil.output_class && !IsClassifier(objective)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", config.name(), "': output_class is true but the model's objective '", objective,
        "' is not a classifier"));
  }
  // Output columns: probabilities per class (2 for a binary model with predict_proba), one
  // class index, or the model's natural outputs (one per group) when output_class is false.
  int columns = forest->num_outputs(false);
  if (fil.output_class && objective != "multi:softmax") {
    const bool binary = objective.rfind("binary:", 0) == 0;
    columns = fil.predict_proba ? (binary ? 2 : forest->num_outputs(false)) : 1;
  }
  std::string input_name = config.input_size() == 1 ? config.input(0).name() : kInputName;
  std::string output_name = config.output_size() == 1 ? config.output(0).name() : kOutputName;
  return std::make_unique<TreesBackend>(std::move(forest), fil, columns, std::move(input_name),
                                        std::move(output_name), options.threads);
}

}  // namespace flywheel::serving
