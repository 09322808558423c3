#include "engine/testing/op_test_util.h"

#include <cmath>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "engine/exec_plan.h"

namespace flywheel::engine::testing {

Tensor RandomTensor(Shape shape, uint32_t seed) {
  Tensor t = Tensor::Allocate(DataType::kFp32, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (int64_t i = 0; i < t.NumElements(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

Attribute IntAttr(int64_t v) { return Attribute{.kind = Attribute::Kind::kInt, .i = v}; }
Attribute FloatAttr(float v) { return Attribute{.kind = Attribute::Kind::kFloat, .f = v}; }
Attribute StringAttr(std::string v) {
  return Attribute{.kind = Attribute::Kind::kString, .s = std::move(v)};
}
Attribute IntsAttr(std::vector<int64_t> v) {
  return Attribute{.kind = Attribute::Kind::kInts, .ints = std::move(v)};
}
Attribute FloatsAttr(std::vector<float> v) {
  return Attribute{.kind = Attribute::Kind::kFloats, .floats = std::move(v)};
}
Attribute TensorAttr(Tensor t) { return Attribute{.kind = Attribute::Kind::kTensor, .t = t}; }

absl::StatusOr<std::vector<Tensor>> RunOp(const OpSpec& spec, const std::vector<Tensor>& inputs) {
  Graph g;
  g.opset = spec.opset;
  Node node{.name = "test_node", .op_type = spec.op_type, .domain = spec.domain};
  node.attributes = spec.attributes;
  std::vector<Tensor> run_inputs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].empty()) {
      node.inputs.push_back(-1);
      continue;
    }
    Value v{.name = absl::StrCat("in", i), .dtype = inputs[i].dtype()};
    bool constant = std::find(spec.constant_inputs.begin(), spec.constant_inputs.end(),
                              static_cast<int>(i)) != spec.constant_inputs.end();
    if (constant) {
      v.shape = inputs[i].shape();
      v.constant = inputs[i];
    }
    int id = g.AddValue(std::move(v));
    if (!constant) {
      g.inputs.push_back(id);
      run_inputs.push_back(inputs[i]);
    }
    node.inputs.push_back(id);
  }
  for (int i = 0; i < spec.num_outputs; ++i) {
    int id = g.AddValue(Value{.name = absl::StrCat("out", i)});
    node.outputs.push_back(id);
    g.outputs.push_back(id);
  }
  g.nodes.push_back(std::move(node));
  FW_RETURN_IF_ERROR(g.TopologicalSort());
  SessionOptions options;
  options.intra_op_threads = spec.threads;
  FW_ASSIGN_OR_RETURN(auto plan, ExecPlan::Create(std::move(g), options));
  std::vector<Tensor> first, second;
  FW_RETURN_IF_ERROR(plan->Run(run_inputs, &first));
  // Keep the first outputs for the comparison; the second run plans its memory.
  std::vector<Tensor> kept;
  for (const Tensor& t : first) kept.push_back(t.Clone());
  FW_RETURN_IF_ERROR(plan->Run(run_inputs, &second));
  for (size_t i = 0; i < kept.size(); ++i) ExpectTensorNear(second[i], kept[i], 0, 0);
  return second;
}

void ExpectTensorNear(const Tensor& actual, const Tensor& expected, double rtol, double atol) {
  ASSERT_EQ(actual.dtype(), expected.dtype())
      << DataTypeName(actual.dtype()) << " vs " << DataTypeName(expected.dtype());
  ASSERT_EQ(actual.shape(), expected.shape())
      << actual.shape().ToString() << " vs " << expected.shape().ToString();
  const int64_t n = expected.NumElements();
  int failures = 0;
  auto check = [&](double a, double e, int64_t i) {
    bool ok = (std::isnan(a) && std::isnan(e)) || std::abs(a - e) <= atol + rtol * std::abs(e) ||
              (std::isinf(a) && a == e);
    if (!ok && ++failures <= 10) {
      ADD_FAILURE() << "element " << i << ": got " << a << ", want " << e;
    }
  };
  switch (expected.dtype()) {
    case DataType::kFp32:
      for (int64_t i = 0; i < n; ++i) check(actual.data<float>()[i], expected.data<float>()[i], i);
      break;
    case DataType::kFp64:
      for (int64_t i = 0; i < n; ++i)
        check(actual.data<double>()[i], expected.data<double>()[i], i);
      break;
    case DataType::kBytes:
      EXPECT_EQ(actual.strings(), expected.strings());
      break;
    default:
      EXPECT_EQ(std::memcmp(actual.raw_data(), expected.raw_data(), expected.ByteSize()), 0)
          << "integer/bool tensors differ";
  }
  if (failures > 10) ADD_FAILURE() << failures << " elements differ in all";
}

}  // namespace flywheel::engine::testing
