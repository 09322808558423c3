// Test-only helpers for tests that run a real serving::Server (header-only, so that it stays out
// of every library): a model repository in a temporary folder built from the example models, the
// example `simple` model's requests, and a blocking Infer.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "serving/infer.h"
#include "serving/server.h"

namespace flywheel::serving::testing_util {

// The source tree (FLYWHEEL_SOURCE_DIR, as CTest sets it; else the working directory).
inline std::filesystem::path SourceDir() {
  const char* src = std::getenv("FLYWHEEL_SOURCE_DIR");
  return std::filesystem::path(src != nullptr ? src : ".");
}

// The example `simple` model (INT32 [16] add/sub) as Triton's classic config declares it.
inline constexpr char kSimpleConfig[] = R"cfg(
  name: "simple"
  platform: "onnxruntime_onnx"
  max_batch_size: 8
  input [
    { name: "INPUT0" data_type: TYPE_INT32 dims: [ 16 ] },
    { name: "INPUT1" data_type: TYPE_INT32 dims: [ 16 ] }
  ]
  output [
    { name: "OUTPUT0" data_type: TYPE_INT32 dims: [ 16 ] },
    { name: "OUTPUT1" data_type: TYPE_INT32 dims: [ 16 ] }
  ]
)cfg";

// A repository in a temporary folder named after the running test, removed with the object.
class ModelRepo {
 public:
  ModelRepo() {
    path_ = std::filesystem::temp_directory_path() /
            absl::StrCat("flywheel-test-", ::getpid(), "-",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ModelRepo() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ModelRepo(const ModelRepo&) = delete;
  ModelRepo& operator=(const ModelRepo&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string string() const { return path_.string(); }

  // <repo>/<name>/config.pbtxt with `config` and empty version folders.
  void AddConfig(const std::string& name, const std::string& config,
                 const std::vector<int>& versions) {
    const std::filesystem::path dir = path_ / name;
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "config.pbtxt") << config;
    for (int v : versions) std::filesystem::create_directories(dir / std::to_string(v));
  }

  // The example `simple` model as `name`, with `extra` appended to its configuration (a version
  // policy, warm-up, batching).
  void AddSimple(const std::string& name, const std::vector<int>& versions,
                 const std::string& extra = "") {
    AddConfig(name,
              absl::StrReplaceAll(kSimpleConfig, {{"\"simple\"", absl::StrCat("\"", name, "\"")}}) +
                  extra,
              {});
    CopyModel(name, versions, SourceDir() / "examples/models/simple/1/model.onnx");
  }

  // The feature example's ranker: user FP32 [1,3], items FP32 [-1,3] -> score FP32 [-1].
  void AddRanker(const std::string& name) {
    AddConfig(name, absl::StrCat("name: \"", name, "\"\nbackend: \"onnxruntime\"\n"), {});
    CopyModel(name, {1}, SourceDir() / "examples/feature_models/ranker/1/model.onnx");
  }

  // `model` (a file) as <repo>/<name>/<version>/<its file name> for every version.
  void CopyModel(const std::string& name, const std::vector<int>& versions,
                 const std::filesystem::path& model) {
    for (int v : versions) {
      const std::filesystem::path dir = path_ / name / std::to_string(v);
      std::filesystem::create_directories(dir);
      std::filesystem::copy_file(model, dir / model.filename(),
                                 std::filesystem::copy_options::overwrite_existing);
    }
  }

 private:
  std::filesystem::path path_;
};

// A request to the `simple` model: `rows` rows, INPUT0 = base, base+1, ..., INPUT1 = 1, so
// OUTPUT0 = INPUT0 + 1 and OUTPUT1 = INPUT0 - 1; its id is "r<base>".
inline std::unique_ptr<InferRequest> AddSubRequest(const std::string& model, int rows,
                                                   int base = 1) {
  auto req = std::make_unique<InferRequest>();
  req->model_name = model;
  req->id = "r" + std::to_string(base);
  for (const char* name : {"INPUT0", "INPUT1"}) {
    Tensor t = Tensor::Allocate(DataType::kInt32, Shape{rows, 16});
    for (int i = 0; i < rows * 16; ++i) t.data<int32_t>()[i] = name[5] == '0' ? base + i : 1;
    req->inputs.push_back({name, t, {}});
  }
  return req;
}

// Infer, waiting for the answer.
inline absl::StatusOr<InferResponse> InferSync(Server& server,
                                               std::unique_ptr<InferRequest> request) {
  std::promise<absl::StatusOr<InferResponse>> p;
  auto f = p.get_future();
  server.Infer(std::move(request), [&p](absl::StatusOr<InferResponse> r) { p.set_value(r); });
  return f.get();
}

}  // namespace flywheel::serving::testing_util
