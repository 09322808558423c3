// `flywheel monitor profile --model-repository DIR --model M --data train.npy|train.csv`: profiles
// reference data (and the model's outputs on it) into <DIR>/<M>/<version>/profile.json, which the
// server's drift monitor compares live traffic with.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/profile_data.h"
#include "core/npy.h"
#include "core/status.h"
#include "monitor/profile.h"
#include "serving/model_config.h"
#include "serving/onnx_backend.h"
#include "serving/repository.h"
#include "serving/trees_backend.h"

namespace flywheel::cli {
namespace {

using monitor::FeatureProfile;
using monitor::FeatureRole;

struct ProfileOptions {
  std::string repository;
  std::string model;
  int64_t version = 0;
  std::string data;
  std::string outputs;
  std::string input;
  std::vector<std::string> feature_names;
  std::vector<std::string> categorical;
  bool skip_outputs = false;
  int bins = 20;
  int max_categories = 64;
  int threads = 1;
};

// A model version found in the repository, with its configuration.
struct ModelSpec {
  serving::ModelLocation location;
  inference::ModelConfig config;
  serving::ModelVersionDir version;
};

absl::StatusOr<ModelSpec> FindModel(const ProfileOptions& opt) {
  FW_ASSIGN_OR_RETURN(auto models, serving::ScanRepositories({opt.repository}));
  auto it = models.find(opt.model);
  if (it == models.end()) {
    std::vector<std::string> names;
    for (const auto& [name, location] : models) names.push_back(name);
    return absl::NotFoundError(
        fmt::format("model '{}' is not in repository '{}' (it has: {})", opt.model, opt.repository,
                    names.empty() ? "no models" : absl::StrJoin(names, ", ")));
  }
  if (!it->second.error.empty()) return absl::InvalidArgumentError(it->second.error);
  ModelSpec spec;
  spec.location = it->second;
  FW_ASSIGN_OR_RETURN(spec.config, serving::ReadModelConfig(spec.location));
  inference::ModelConfig select = spec.config;
  if (opt.version > 0) {
    select.mutable_version_policy()->mutable_specific()->clear_versions();
    select.mutable_version_policy()->mutable_specific()->add_versions(opt.version);
  } else {
    select.mutable_version_policy()->mutable_latest()->set_num_versions(1);
  }
  FW_ASSIGN_OR_RETURN(std::vector<serving::ModelVersionDir> versions,
                      serving::SelectVersions(spec.location, select));
  spec.version = versions.back();
  return spec;
}

absl::StatusOr<std::unique_ptr<serving::Backend>> LoadBackend(ModelSpec& spec, int threads) {
  std::unique_ptr<serving::Backend> backend;
  switch (serving::PlatformOf(spec.config)) {
    case serving::ModelPlatform::kOnnx: {
      FW_ASSIGN_OR_RETURN(backend, serving::CreateOnnxBackend(spec.version.model_file, {threads}));
      break;
    }
    case serving::ModelPlatform::kFil: {
      FW_ASSIGN_OR_RETURN(
          backend, serving::CreateTreesBackend(spec.version.model_file, spec.config, {threads}));
      break;
    }
    default:
      return absl::UnimplementedError(
          fmt::format("model '{}': cannot run platform '{}' / backend '{}' here",
                      spec.location.name, spec.config.platform(), spec.config.backend()));
  }
  FW_RETURN_IF_ERROR(
      serving::CompleteModelConfig(backend->inputs(), backend->outputs(), &spec.config));
  return backend;
}

monitor::ProfileOptions ProfileSettings(const ProfileOptions& opt) {
  monitor::ProfileOptions p;
  p.histogram_bins = opt.bins;
  p.max_categories = opt.max_categories;
  return p;
}

// --outputs [NAME=]FILE.npy: the model's predictions on the reference rows.
absl::StatusOr<NamedTensor> ReadOutputsFile(const ProfileOptions& opt,
                                            const inference::ModelConfig& config, int64_t rows) {
  std::vector<std::string> names;
  for (const auto& output : config.output()) names.push_back(output.name());
  NamedTensor out;
  std::string path = opt.outputs;
  const size_t eq = path.find('=');
  if (eq != std::string::npos && eq > 0 && !std::filesystem::exists(path)) {
    out.name = path.substr(0, eq);
    path = path.substr(eq + 1);
    if (!names.empty() && std::find(names.begin(), names.end(), out.name) == names.end()) {
      return absl::InvalidArgumentError(fmt::format("--outputs {}: model '{}' has outputs {}",
                                                    opt.outputs, opt.model, QuotedNames(names)));
    }
  } else if (names.size() == 1) {
    out.name = names[0];
  } else {
    return absl::InvalidArgumentError(
        fmt::format("model '{}' has outputs {}: say which one the file holds with --outputs "
                    "NAME=FILE.npy",
                    opt.model, QuotedNames(names)));
  }
  FW_ASSIGN_OR_RETURN(out.tensor, ReadNpy(path));
  if (out.tensor.rank() == 0 || out.tensor.dim(0) != rows) {
    return absl::InvalidArgumentError(
        fmt::format("{}: {} gives {} rows, the data has {}", path, out.tensor.DebugString(),
                    out.tensor.rank() == 0 ? 0 : out.tensor.dim(0), rows));
  }
  return out;
}

absl::Status RunProfile(const ProfileOptions& opt) {
  FW_ASSIGN_OR_RETURN(ModelSpec spec, FindModel(opt));
  const bool run_model = opt.outputs.empty() && !opt.skip_outputs;
  const std::string hint =
      "pass the model's predictions on the data with --outputs [NAME=]FILE.npy, or profile the "
      "inputs alone with --skip-outputs";
  std::unique_ptr<serving::Backend> backend;
  if (run_model || spec.config.input_size() == 0 ||
      (!opt.outputs.empty() && spec.config.output_size() == 0)) {
    auto loaded = LoadBackend(spec, opt.threads);
    if (!loaded.ok()) {
      if (!run_model) return loaded.status();
      return absl::Status(loaded.status().code(),
                          fmt::format("cannot run the model to profile its outputs: {}; {}",
                                      std::string(loaded.status().message()), hint));
    }
    backend = *std::move(loaded);
  }
  ReferenceDataOptions data_options;
  data_options.model = opt.model;
  data_options.path = opt.data;
  data_options.input = opt.input;
  data_options.feature_names = opt.feature_names;
  data_options.categorical = opt.categorical;
  data_options.profile = ProfileSettings(opt);
  FW_ASSIGN_OR_RETURN(ReferenceData data, ReadReferenceData(data_options, spec.config));
  for (const std::string& name : opt.categorical) {
    if (std::none_of(data.features.begin(), data.features.end(),
                     [&](const FeatureProfile& f) { return f.name == name; })) {
      std::vector<std::string> names;
      for (const FeatureProfile& f : data.features) names.push_back(f.name);
      if (names.size() > 12) names.resize(12), names.push_back("...");
      return absl::InvalidArgumentError(fmt::format(
          "--categorical '{}': no such feature (features: {})", name, absl::StrJoin(names, ", ")));
    }
  }

  std::vector<NamedTensor> outputs;
  if (!opt.outputs.empty()) {
    FW_ASSIGN_OR_RETURN(NamedTensor out, ReadOutputsFile(opt, spec.config, data.rows));
    outputs.push_back(std::move(out));
  } else if (run_model) {
    auto ran = RunOnReferenceData(spec.config, *backend, data);
    if (!ran.ok()) {
      return absl::Status(ran.status().code(),
                          fmt::format("cannot run the model to profile its outputs: {}; {}",
                                      std::string(ran.status().message()), hint));
    }
    outputs = *std::move(ran);
  }

  monitor::ReferenceProfile profile;
  profile.model = spec.location.name;
  profile.version = spec.version.version;
  profile.source = opt.data;
  profile.created = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
  profile.rows = data.rows;
  profile.features = std::move(data.features);
  const size_t input_features = profile.features.size();
  for (const NamedTensor& out : outputs) {
    FW_ASSIGN_OR_RETURN(std::vector<FeatureProfile> features,
                        monitor::ProfileTensor(out.tensor, out.name, FeatureRole::kOutput, {}, {},
                                               ProfileSettings(opt)));
    for (FeatureProfile& f : features) profile.features.push_back(std::move(f));
  }
  const std::string path = monitor::ProfilePath(spec.version.path);
  FW_RETURN_IF_ERROR(monitor::SaveProfile(profile, path));
  fmt::print("wrote {}: {} input feature{} and {} output feature{} from {} rows of {}\n", path,
             input_features, input_features == 1 ? "" : "s",
             profile.features.size() - input_features,
             profile.features.size() - input_features == 1 ? "" : "s", data.rows, opt.data);
  return absl::OkStatus();
}

}  // namespace

Command AddMonitorCommand(CLI::App& app) {
  auto opt = std::make_shared<ProfileOptions>();
  CLI::App* monitor = app.add_subcommand("monitor", "Model monitoring: reference profiles");
  monitor->require_subcommand(1);
  CLI::App* profile = monitor->add_subcommand(
      "profile", "Profile reference data into <repository>/<model>/<version>/profile.json");
  profile->add_option("--model-repository", opt->repository, "model repository folder")->required();
  profile->add_option("--model", opt->model, "model name")->required();
  profile->add_option("--version", opt->version, "model version (default: the latest)")
      ->check(CLI::PositiveNumber);
  profile
      ->add_option("--data", opt->data,
                   "reference (training) rows: a .npy [N] or [N, F] of one model input, or a "
                   ".csv with a header row")
      ->required();
  profile->add_option("--input", opt->input,
                      "the model input the data is (default: the model's only input; CSV columns "
                      "named as inputs are each their own input)");
  profile->add_option("--outputs", opt->outputs,
                      "[NAME=]FILE.npy: the model's outputs on the data (default: run the model)");
  profile->add_flag("--skip-outputs", opt->skip_outputs, "profile the inputs only");
  profile
      ->add_option("--feature-names", opt->feature_names,
                   "names of the columns of a .npy input (default: <input>[<j>])")
      ->delimiter(',');
  profile
      ->add_option("--categorical", opt->categorical,
                   "features to profile as categories although numeric (e.g. ids)")
      ->delimiter(',');
  profile->add_option("--bins", opt->bins, "equal-mass histogram bins per numeric feature")
      ->check(CLI::Range(2, 1000))
      ->capture_default_str();
  profile
      ->add_option("--max-categories", opt->max_categories,
                   "categories kept by name per categorical feature; the rest pool as other")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  profile->add_option("--threads", opt->threads, "intra-op threads when running the model")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  profile->footer(
      "Example: flywheel monitor profile --model-repository examples/models --model mlp_ranker \\\n"
      "             --data train.npy\n"
      "The server compares live traffic with this profile (GET /v1/monitor/models/<m>/drift).\n"
      "Strings and empty CSV cells: categories and missing values; NaN and inf are missing.");
  return {monitor, [opt]() {
            absl::Status status = RunProfile(*opt);
            if (status.ok()) return 0;
            fmt::print(stderr, "flywheel monitor profile: error: {}\n", OneLine(status));
            return 1;
          }};
}

}  // namespace flywheel::cli
