// Test-only helpers for the ensemble and feature_lookup tests (header-only, so that it stays out
// of the serving library): a model repository in a temporary folder built from the example
// models, a fake feature store, and request helpers.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "serving/feature_source.h"
#include "serving/server.h"

namespace flywheel::serving::testing_util {

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

// A repository in a temporary folder, removed with the object.
class ModelRepo {
 public:
  ModelRepo() {
    path_ = std::filesystem::temp_directory_path() /
            absl::StrCat("flywheel-ensemble-test-", ::getpid(), "-",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ModelRepo() { std::filesystem::remove_all(path_); }

  const std::filesystem::path& path() const { return path_; }

  // <repo>/<name>/config.pbtxt with `config` (its name: "..." replaced by `name`) and empty
  // version folders.
  void AddConfig(const std::string& name, const std::string& config,
                 const std::vector<int>& versions) {
    const std::filesystem::path dir = path_ / name;
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "config.pbtxt") << config;
    for (int v : versions) std::filesystem::create_directories(dir / std::to_string(v));
  }

  // The example `simple` model as `name`, with `extra` appended to its configuration.
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

 private:
  void CopyModel(const std::string& name, const std::vector<int>& versions,
                 const std::filesystem::path& model) {
    for (int v : versions) {
      const std::filesystem::path dir = path_ / name / std::to_string(v);
      std::filesystem::create_directories(dir);
      std::filesystem::copy_file(model, dir / "model.onnx",
                                 std::filesystem::copy_options::overwrite_existing);
    }
  }

  std::filesystem::path path_;
};

// An in-memory feature store: values set by the test; Validate knows the features set (or
// declared); a lookup of the key "boom" fails.
class FakeFeatureSource : public FeatureSource {
 public:
  void Set(const std::string& key, const std::string& feature, float value) {
    std::lock_guard<std::mutex> lock(mu_);
    known_.insert(feature);
    values_[{key, feature}] = value;
  }
  void Declare(const std::string& feature) {
    std::lock_guard<std::mutex> lock(mu_);
    known_.insert(feature);
  }
  int lookups() const { return lookups_.load(); }

  absl::Status Validate(absl::Span<const std::string> features) const override {
    std::lock_guard<std::mutex> lock(mu_);
    std::string unknown;
    for (const std::string& f : features) {
      if (known_.count(f) == 0) absl::StrAppend(&unknown, unknown.empty() ? "" : ", ", "'", f, "'");
    }
    if (unknown.empty()) return absl::OkStatus();
    return absl::NotFoundError(absl::StrCat("unknown features ", unknown));
  }

  absl::Status Lookup(absl::Span<const std::string> keys, absl::Span<const std::string> features,
                      float missing_value, float* values, uint8_t* present) const override {
    lookups_.fetch_add(1);
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (keys[i] == "boom") return absl::UnavailableError("the fake store is down");
      for (size_t j = 0; j < features.size(); ++j) {
        auto it = values_.find({keys[i], features[j]});
        const bool found = it != values_.end();
        values[i * features.size() + j] = found ? it->second : missing_value;
        present[i * features.size() + j] = found ? 1 : 0;
      }
    }
    return absl::OkStatus();
  }

 private:
  mutable std::mutex mu_;
  std::set<std::string> known_;
  std::map<std::pair<std::string, std::string>, float> values_;
  mutable std::atomic<int> lookups_{0};
};

// INT32 tensor of `shape` holding base, base+1, ...
inline Tensor Ints(Shape shape, int base) {
  Tensor t = Tensor::Allocate(DataType::kInt32, std::move(shape));
  for (int64_t i = 0; i < t.NumElements(); ++i) t.data<int32_t>()[i] = base + static_cast<int>(i);
  return t;
}

inline Tensor Bytes(Shape shape, const std::vector<std::string>& values) {
  Tensor t = Tensor::Allocate(DataType::kBytes, std::move(shape));
  t.strings() = values;
  return t;
}

inline std::unique_ptr<InferRequest> Request(
    const std::string& model, const std::vector<std::pair<std::string, Tensor>>& inputs) {
  auto req = std::make_unique<InferRequest>();
  req->model_name = model;
  for (const auto& [name, t] : inputs) req->inputs.push_back({name, t, {}});
  return req;
}

inline absl::StatusOr<InferResponse> InferSync(Server& server,
                                               std::unique_ptr<InferRequest> request) {
  std::promise<absl::StatusOr<InferResponse>> p;
  auto f = p.get_future();
  server.Infer(std::move(request), [&p](absl::StatusOr<InferResponse> r) { p.set_value(r); });
  return f.get();
}

}  // namespace flywheel::serving::testing_util
