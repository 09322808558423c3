// Test helpers for kernels and passes: build tensors from literals, run one operator through the
// real executor, and compare tensors with a tolerance. Linked into engine tests only.
#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "engine/graph.h"
#include "gtest/gtest.h"

namespace flywheel::engine::testing {

template <typename T>
Tensor MakeTensor(Shape shape, std::vector<T> values) {
  Tensor t = Tensor::Allocate(DataTypeOf<T>(), std::move(shape));
  EXPECT_EQ(static_cast<int64_t>(values.size()), t.NumElements());
  for (size_t i = 0; i < values.size() && static_cast<int64_t>(i) < t.NumElements(); ++i) {
    t.data<T>()[i] = values[i];
  }
  return t;
}

// An FP32 tensor of values uniform in [-1, 1), the same for the same seed.
Tensor RandomTensor(Shape shape, uint32_t seed);

// Attribute builders.
Attribute IntAttr(int64_t v);
Attribute FloatAttr(float v);
Attribute StringAttr(std::string v);
Attribute IntsAttr(std::vector<int64_t> v);
Attribute FloatsAttr(std::vector<float> v);
Attribute TensorAttr(Tensor t);

struct OpSpec {
  std::string op_type;
  std::string domain;  // "" for ONNX ops
  absl::flat_hash_map<std::string, Attribute> attributes;
  int num_outputs = 1;
  int64_t opset = 17;
  // Inputs at these positions become graph constants (so kernels may pre-pack them).
  std::vector<int> constant_inputs;
  int threads = 1;
};

// Runs one node through ExecPlan. Inputs that are empty Tensors are passed as omitted optional
// inputs. Runs twice (unplanned, then planned) and checks both runs agree.
absl::StatusOr<std::vector<Tensor>> RunOp(const OpSpec& spec, const std::vector<Tensor>& inputs);

// Elementwise |a - e| <= atol + rtol * |e| for float types, exact equality otherwise; shapes and
// types must match.
void ExpectTensorNear(const Tensor& actual, const Tensor& expected, double rtol = 1e-4,
                      double atol = 1e-5);

}  // namespace flywheel::engine::testing
