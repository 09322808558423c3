#include "cli/model_file.h"

#include <filesystem>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "trees/forest.h"

namespace flywheel::cli {
namespace {

class OnnxModelFile : public ModelFile {
 public:
  explicit OnnxModelFile(std::unique_ptr<engine::Session> session) : session_(std::move(session)) {}
  const std::vector<engine::TensorInfo>& inputs() const override { return session_->inputs(); }
  const std::vector<engine::TensorInfo>& outputs() const override { return session_->outputs(); }
  absl::Status Run(absl::Span<const Tensor> inputs, std::vector<Tensor>* outputs) const override {
    return session_->Run(inputs, outputs);
  }
  size_t WeightBytes() const override { return session_->WeightBytes(); }
  std::map<std::string, int> OpCounts() const override { return session_->OpCounts(); }

 private:
  std::unique_ptr<engine::Session> session_;
};

// An XGBoost model seen as one FP32 input [-1, features] named "input__0" and one FP32 output
// [-1, outputs] named "output__0" (Triton FIL's names): the transformed prediction, as XGBoost's
// predict() gives it.
class TreeModelFile : public ModelFile {
 public:
  TreeModelFile(std::unique_ptr<trees::Forest> forest, int threads, size_t file_bytes)
      : forest_(std::move(forest)), file_bytes_(file_bytes) {
    if (threads > 1) pool_ = std::make_unique<ThreadPool>(threads);
    inputs_.push_back({"input__0", DataType::kFp32, {-1, forest_->num_features()}, 0});
    outputs_.push_back({"output__0", DataType::kFp32, {-1, forest_->num_outputs(false)}, 0});
  }
  const std::vector<engine::TensorInfo>& inputs() const override { return inputs_; }
  const std::vector<engine::TensorInfo>& outputs() const override { return outputs_; }
  absl::Status Run(absl::Span<const Tensor> inputs, std::vector<Tensor>* outputs) const override {
    if (inputs.size() != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("a tree model takes one input, got ", inputs.size()));
    }
    const Tensor& x = inputs[0];
    if (x.dtype() != DataType::kFp32 || x.rank() != 2 || x.dim(1) != forest_->num_features()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input__0: expected FP32 [n, ", forest_->num_features(), "], got ", x.DebugString()));
    }
    const int cols = forest_->num_outputs(false);
    outputs->resize(1);
    Tensor& out = (*outputs)[0];
    if (out.empty() || out.shape() != Shape{x.dim(0), cols} || !out.unique()) {
      out = Tensor::Allocate(DataType::kFp32, Shape{x.dim(0), cols});
    }
    trees::PredictOptions options;
    options.pool = pool_.get();
    return forest_->Predict(x.data<float>(), x.dim(0), x.dim(1), options, out.data<float>());
  }
  size_t WeightBytes() const override { return file_bytes_; }
  std::map<std::string, int> OpCounts() const override {
    return {{"trees", forest_->info().num_trees}};
  }

 private:
  std::unique_ptr<trees::Forest> forest_;
  std::unique_ptr<ThreadPool> pool_;
  size_t file_bytes_;
  std::vector<engine::TensorInfo> inputs_;
  std::vector<engine::TensorInfo> outputs_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ModelFile>> ModelFile::Load(const std::string& path, int threads) {
  if (absl::EndsWith(path, ".json") || absl::EndsWith(path, ".ubj")) {
    FW_ASSIGN_OR_RETURN(std::unique_ptr<trees::Forest> forest, trees::Forest::LoadFile(path));
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(path, ec);
    return std::make_unique<TreeModelFile>(std::move(forest), threads, ec ? 0 : bytes);
  }
  engine::SessionOptions options;
  options.intra_op_threads = threads;
  FW_ASSIGN_OR_RETURN(std::unique_ptr<engine::Session> session,
                      engine::Session::Load(path, options));
  return std::make_unique<OnnxModelFile>(std::move(session));
}

}  // namespace flywheel::cli
