#include "serving/onnx_backend.h"

#include <mutex>
#include <utility>
#include <vector>

#include "core/status.h"
#include "engine/session.h"

namespace flywheel::serving {
namespace {

class OnnxInstance : public BackendInstance {
 public:
  explicit OnnxInstance(std::unique_ptr<engine::Session> session) : session_(std::move(session)) {}
  absl::Status Execute(absl::Span<const Tensor> inputs, std::vector<Tensor>* outputs) override {
    return session_->Run(inputs, outputs);
  }

 private:
  std::unique_ptr<engine::Session> session_;
};

std::vector<BackendTensorInfo> Describe(const std::vector<engine::TensorInfo>& infos) {
  std::vector<BackendTensorInfo> out;
  out.reserve(infos.size());
  for (const engine::TensorInfo& info : infos) out.push_back({info.name, info.dtype, info.dims});
  return out;
}

class OnnxBackend : public Backend {
 public:
  OnnxBackend(std::string path, engine::SessionOptions options,
              std::unique_ptr<engine::Session> first)
      : path_(std::move(path)), options_(options), first_(std::move(first)) {
    inputs_ = Describe(first_->inputs());
    outputs_ = Describe(first_->outputs());
  }

  const std::vector<BackendTensorInfo>& inputs() const override { return inputs_; }
  const std::vector<BackendTensorInfo>& outputs() const override { return outputs_; }

  // The session loaded to describe the model becomes the first instance; later instances load
  // their own copy.
  absl::StatusOr<std::unique_ptr<BackendInstance>> CreateInstance() override {
    std::unique_ptr<engine::Session> session;
    {
      std::lock_guard<std::mutex> lock(mu_);
      session = std::move(first_);
    }
    if (session == nullptr) {
      FW_ASSIGN_OR_RETURN(session, engine::Session::Load(path_, options_));
    }
    return std::make_unique<OnnxInstance>(std::move(session));
  }

 private:
  std::string path_;
  engine::SessionOptions options_;
  std::mutex mu_;
  std::unique_ptr<engine::Session> first_;
  std::vector<BackendTensorInfo> inputs_;
  std::vector<BackendTensorInfo> outputs_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> CreateOnnxBackend(const std::string& model_path,
                                                           const OnnxBackendOptions& options) {
  engine::SessionOptions session_options;
  session_options.intra_op_threads = options.intra_op_threads;
  FW_ASSIGN_OR_RETURN(std::unique_ptr<engine::Session> session,
                      engine::Session::Load(model_path, session_options));
  return std::make_unique<OnnxBackend>(model_path, session_options, std::move(session));
}

}  // namespace flywheel::serving
