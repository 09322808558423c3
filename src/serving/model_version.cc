#include "serving/model_version.h"

#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"
#include "serving/feature_lookup_backend.h"
#include "serving/model_config.h"
#include "serving/onnx_backend.h"
#include "serving/trees_backend.h"

namespace flywheel::serving {
namespace {

std::vector<TensorMetadata> DescribeSpecs(const std::vector<IOSpec>& specs, bool batched) {
  std::vector<TensorMetadata> out;
  for (const IOSpec& spec : specs) {
    TensorMetadata t{spec.name, std::string(DataTypeName(spec.dtype)), {}};
    if (batched) t.shape.push_back(-1);
    t.shape.insert(t.shape.end(), spec.dims.begin(), spec.dims.end());
    out.push_back(std::move(t));
  }
  return out;
}

// Fills one warm-up input tensor as the ModelWarmup.Input says.
absl::StatusOr<Tensor> WarmupTensor(const std::string& model_dir, const std::string& input_name,
                                    const inference::ModelWarmup::Input& spec, int batch_size,
                                    bool batched, std::mt19937* rng) {
  FW_ASSIGN_OR_RETURN(DataType dtype, DataTypeFromConfig(spec.data_type()));
  std::vector<int64_t> dims;
  if (batched) dims.push_back(batch_size);
  for (int64_t d : spec.dims()) dims.push_back(d);
  FW_ASSIGN_OR_RETURN(Tensor t,
                      Tensor::SafeAllocate(dtype, Shape(dims), "warm-up input " + input_name));
  if (dtype == DataType::kBytes) {
    for (std::string& s : t.strings()) s.assign(spec.random_data() ? 4 : 0, 'a');
    return t;
  }
  auto* bytes = static_cast<uint8_t*>(t.raw_data());
  const size_t n = t.ByteSize();
  if (spec.has_input_data_file() || !spec.input_data_file().empty()) {
    // Triton reads warm-up data files from <model>/warmup/; one batch row's worth, repeated.
    namespace fs = std::filesystem;
    const fs::path dir = fs::path(model_dir) / "warmup";
    const fs::path file = fs::weakly_canonical(dir / spec.input_data_file());
    if (file.lexically_relative(fs::weakly_canonical(dir)).string().rfind("..", 0) == 0) {
      return absl::InvalidArgumentError(absl::StrCat("warm-up input '", input_name,
                                                     "': input_data_file '", spec.input_data_file(),
                                                     "' is outside the model's warmup folder"));
    }
    std::ifstream in(file, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t row = batched && batch_size > 0 ? n / batch_size : n;
    if (!in.good() && data.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("warm-up input '", input_name, "': cannot read ", file.string()));
    }
    if (data.size() != row) {
      return absl::InvalidArgumentError(absl::StrCat("warm-up input '", input_name,
                                                     "': ", file.string(), " has ", data.size(),
                                                     " bytes, expected ", row));
    }
    for (size_t off = 0; off + row <= n && row > 0; off += row) {
      std::copy(data.begin(), data.end(), bytes + off);
    }
    return t;
  }
  if (spec.random_data()) {
    // Random bytes are fine for integers; floats get values in [0, 1) to stay finite.
    if (dtype == DataType::kFp32) {
      std::uniform_real_distribution<float> dist(0.f, 1.f);
      for (int64_t i = 0; i < t.NumElements(); ++i) t.data<float>()[i] = dist(*rng);
    } else if (dtype == DataType::kFp64) {
      std::uniform_real_distribution<double> dist(0., 1.);
      for (int64_t i = 0; i < t.NumElements(); ++i) t.data<double>()[i] = dist(*rng);
    } else if (dtype == DataType::kBool) {
      for (size_t i = 0; i < n; ++i) bytes[i] = (*rng)() & 1;
    } else {
      // Small non-negative integers: integer inputs often index embedding tables.
      std::fill(bytes, bytes + n, 0);
    }
    return t;
  }
  std::fill(bytes, bytes + n, 0);
  return t;
}

// Runs the configured warm-up requests through the scheduler and waits for each.
absl::Status RunWarmup(const std::string& model_dir, ModelVersion& mv) {
  std::mt19937 rng(42);
  const bool batched = mv.config.max_batch_size() > 0;
  for (const inference::ModelWarmup& warmup : mv.config.model_warmup()) {
    const int count = std::max(1u, warmup.count());
    const int batch = std::max(1u, warmup.batch_size());
    for (int k = 0; k < count; ++k) {
      auto request = std::make_unique<InferRequest>();
      request->model_name = mv.name;
      request->id = "warmup:" + warmup.name();
      for (const auto& [input_name, spec] : warmup.inputs()) {
        FW_ASSIGN_OR_RETURN(Tensor t,
                            WarmupTensor(model_dir, input_name, spec, batch, batched, &rng));
        request->inputs.push_back({input_name, std::move(t), {}});
      }
      absl::Status st = ValidateRequest(mv.name, mv.config.max_batch_size(), mv.inputs, mv.outputs,
                                        request.get());
      if (st.ok()) {
        std::promise<absl::Status> done;
        auto future = done.get_future();
        mv.scheduler->Enqueue(std::move(request), [&done](absl::StatusOr<InferResponse> r) {
          done.set_value(r.status());
        });
        st = future.get();
      }
      if (!st.ok()) {
        return absl::Status(st.code(), absl::StrCat("warm-up '", warmup.name(), "' of model '",
                                                    mv.name, "' failed: ", st.message()));
      }
    }
  }
  return absl::OkStatus();
}

// The feature_lookup backend declares its tensors from the configuration, which it may complete
// first (hence the pointer).
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(inference::ModelConfig* config,
                                                       const std::string& model_file,
                                                       const LoadVersionOptions& options) {
  switch (PlatformOf(*config)) {
    case ModelPlatform::kOnnx:
      return CreateOnnxBackend(model_file, {options.intra_op_threads});
    case ModelPlatform::kFil:
      return CreateTreesBackend(model_file, *config, {options.intra_op_threads});
    case ModelPlatform::kFeatureLookup:
      return CreateFeatureLookupBackend(config, options.feature_source);
    case ModelPlatform::kEnsemble:  // loaded by LoadEnsembleVersion
    case ModelPlatform::kUnknown:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("model '", config->name(), "': platform '", config->platform(), "' / backend '",
                   config->backend(),
                   "' is not supported (supported: platform onnxruntime_onnx, backend "
                   "onnxruntime, backend fil, backend feature_lookup, platform ensemble)"));
}

absl::StatusOr<std::shared_ptr<ModelVersion>> LoadEnsembleVersion(
    std::shared_ptr<ModelVersion> mv, inference::ModelConfig config,
    const LoadVersionOptions& options) {
  if (options.step_models == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("ensemble '", mv->name, "': no step models to run (internal error)"));
  }
  FW_ASSIGN_OR_RETURN(
      std::shared_ptr<const EnsemblePlan> plan,
      BuildEnsemblePlan(config, mv->version_string,
                        options.config_source.empty() ? absl::StrCat("ensemble '", mv->name, "'")
                                                      : options.config_source,
                        *options.step_models));
  mv->config = std::move(config);
  mv->inputs = InputSpecs(mv->config);
  mv->outputs = OutputSpecs(mv->config);
  mv->ensemble = std::make_shared<Ensemble>(std::move(plan), options.step_models, mv->stats);
  const bool batched = mv->config.max_batch_size() > 0;
  mv->metadata.name = mv->name;
  mv->metadata.versions = {mv->version_string};
  mv->metadata.platform = PlatformName(mv->config);
  mv->metadata.inputs = DescribeSpecs(mv->inputs, batched);
  mv->metadata.outputs = DescribeSpecs(mv->outputs, batched);
  return mv;
}

}  // namespace

ModelVersion::~ModelVersion() {
  if (scheduler != nullptr) scheduler->Shutdown();
}

std::string PlatformName(const inference::ModelConfig& config) {
  if (!config.platform().empty()) return config.platform();
  if (config.backend() == "onnxruntime") return "onnxruntime_onnx";
  return config.backend();
}

absl::StatusOr<std::shared_ptr<ModelVersion>> LoadModelVersion(const std::string& name,
                                                               int64_t version,
                                                               const std::string& model_file,
                                                               inference::ModelConfig config,
                                                               const LoadVersionOptions& options) {
  auto mv = std::make_shared<ModelVersion>();
  mv->name = name;
  mv->version = version;
  mv->version_string = std::to_string(version);
  mv->stats = std::make_shared<ModelStats>();
  if (PlatformOf(config) == ModelPlatform::kEnsemble) {
    return LoadEnsembleVersion(std::move(mv), std::move(config), options);
  }
  FW_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend,
                      CreateBackend(&config, model_file, options));
  mv->backend = std::move(backend);
  FW_RETURN_IF_ERROR(CompleteModelConfig(mv->backend->inputs(), mv->backend->outputs(), &config));
  mv->config = std::move(config);
  mv->inputs = InputSpecs(mv->config);
  mv->outputs = OutputSpecs(mv->config);

  int instances = 0;
  for (const auto& group : mv->config.instance_group()) instances += std::max(1, group.count());
  instances = std::max(instances, 1);
  std::vector<std::unique_ptr<BackendInstance>> created;
  for (int i = 0; i < instances; ++i) {
    FW_ASSIGN_OR_RETURN(std::unique_ptr<BackendInstance> instance, mv->backend->CreateInstance());
    created.push_back(std::move(instance));
  }
  FW_ASSIGN_OR_RETURN(mv->scheduler,
                      Scheduler::Create(SchedulerOptionsFromConfig(mv->config, mv->version_string),
                                        mv->backend, std::move(created), mv->stats));

  const bool batched = mv->config.max_batch_size() > 0;
  mv->metadata.name = name;
  mv->metadata.versions = {mv->version_string};
  mv->metadata.platform = PlatformName(mv->config);
  mv->metadata.inputs = DescribeSpecs(mv->inputs, batched);
  mv->metadata.outputs = DescribeSpecs(mv->outputs, batched);

  const std::string model_dir =
      std::filesystem::path(model_file).parent_path().parent_path().string();
  FW_RETURN_IF_ERROR(RunWarmup(model_dir, *mv));
  // The statistics start with the first real request.
  if (mv->config.model_warmup_size() > 0) mv->stats->Reset();
  return mv;
}

}  // namespace flywheel::serving
