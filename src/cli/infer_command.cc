// `flywheel infer MODEL.onnx|MODEL.json|MODEL.ubj --input NAME=FILE.npy ...`: runs a model once on
// inputs read from .npy files, prints every output and optionally writes them as .npy files.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "absl/status/status.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/model_file.h"
#include "core/npy.h"
#include "core/status.h"

namespace flywheel::cli {
namespace {

struct InferOptions {
  std::string model;
  std::vector<std::string> inputs;
  std::string input_dir;
  std::string output_dir;
  int threads = 1;
};

// How many leading elements of each output to print.
constexpr int kPrintValues = 8;

absl::Status RunInfer(const InferOptions& opt) {
  FW_ASSIGN_OR_RETURN(std::unique_ptr<ModelFile> session, ModelFile::Load(opt.model, opt.threads));
  std::vector<std::string> specs = opt.inputs;
  if (!opt.input_dir.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(opt.input_dir, ec)) {
      return absl::NotFoundError(fmt::format("--input-dir '{}': not a folder", opt.input_dir));
    }
    specs = InputDirSpecs(session->inputs(), specs, opt.input_dir);
  }
  FW_ASSIGN_OR_RETURN(std::vector<Tensor> inputs,
                      ReadNamedInputs(session->inputs(), specs, /*allow_missing=*/false));
  std::vector<Tensor> outputs;
  FW_RETURN_IF_ERROR(session->Run(inputs, &outputs));

  const std::vector<engine::TensorInfo>& infos = session->outputs();
  const std::vector<std::string> files = OutputFileNames(infos);
  if (!opt.output_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(opt.output_dir, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          fmt::format("--output-dir '{}': cannot create: {}", opt.output_dir, ec.message()));
    }
  }
  for (size_t k = 0; k < outputs.size() && k < infos.size(); ++k) {
    const Tensor& out = outputs[k];
    fmt::print("{}: {} {} = {}\n", infos[k].name, std::string(DataTypeName(out.dtype())),
               out.shape().ToString(), FormatValues(out, kPrintValues));
    if (opt.output_dir.empty()) continue;
    const std::string path = (std::filesystem::path(opt.output_dir) / (files[k] + ".npy")).string();
    FW_RETURN_IF_ERROR(WriteNpy(path, out));
    fmt::print("  wrote {}\n", path);
  }
  return absl::OkStatus();
}

}  // namespace

Command AddInferCommand(CLI::App& app) {
  auto opt = std::make_shared<InferOptions>();
  CLI::App* sub = app.add_subcommand("infer", "Run a model once on inputs read from .npy files");
  sub->footer(
      "Example: flywheel infer model.onnx --input x=x.npy --input ids=ids.npy --output-dir out\n"
      "         flywheel infer tests/fixtures/models/mlp_ranker/model.onnx \\\n"
      "             --input-dir tests/fixtures/models/mlp_ranker/batch4\n"
      "Outputs are printed (dtype, shape, first values) and, with --output-dir, written as\n"
      "<dir>/<output name>.npy (characters outside [A-Za-z0-9._-] become '_').");
  sub->add_option("model", opt->model, "model file: ONNX (.onnx) or XGBoost (.json, .ubj)")
      ->required();
  sub->add_option("-i,--input", opt->inputs, "NAME=FILE.npy, once per model input")
      ->allow_extra_args(false);
  sub->add_option("-d,--input-dir", opt->input_dir,
                  "read inputs not given by --input from DIR/<name>.npy or DIR/input_<k>.npy");
  sub->add_option("-o,--output-dir", opt->output_dir, "write each output as DIR/<name>.npy");
  sub->add_option("-t,--threads", opt->threads, "intra-op threads")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  return {sub, [opt]() {
            absl::Status status = RunInfer(*opt);
            if (status.ok()) return 0;
            fmt::print(stderr, "flywheel infer: error: {}\n", OneLine(status));
            return 1;
          }};
}

}  // namespace flywheel::cli
