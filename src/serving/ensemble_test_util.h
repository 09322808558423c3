// Test-only helpers for the ensemble and feature_lookup tests (header-only, so that it stays out
// of the serving library): a fake feature store and request helpers, beside the repository and
// server helpers of serving/testing/server_fixture.h.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "serving/feature_source.h"
#include "serving/server.h"
#include "serving/testing/server_fixture.h"

namespace flywheel::serving::testing_util {

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

}  // namespace flywheel::serving::testing_util
