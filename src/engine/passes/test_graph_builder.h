// Test-only helper for the pass tests: builds small graphs node by node, with the value types and
// shapes that ONNX shape inference would give, and runs them through the executor.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "engine/exec_plan.h"
#include "engine/graph.h"
#include "engine/testing/op_test_util.h"
#include "gtest/gtest.h"

namespace flywheel::engine::testing {

class GraphBuilder {
 public:
  GraphBuilder() { graph_.opset = 17; }

  int Input(const std::string& name, Shape shape, DataType dtype = DataType::kFp32) {
    Value v{.name = name, .dtype = dtype, .shape = shape};
    int id = graph_.AddValue(std::move(v));
    graph_.inputs.push_back(id);
    return id;
  }
  int Const(const std::string& name, Tensor t) {
    Value v{.name = name, .dtype = t.dtype(), .shape = t.shape()};
    v.constant = std::move(t);
    return graph_.AddValue(std::move(v));
  }
  int Scalar(float f) { return Const(Fresh("c"), MakeTensor<float>(Shape{}, {f})); }
  int Ints(std::vector<int64_t> v) {
    int64_t n = static_cast<int64_t>(v.size());
    return Const(Fresh("i"), MakeTensor<int64_t>(Shape{n}, std::move(v)));
  }
  // Adds a node with one output of the given shape (nullopt: unknown) and type.
  int Op(const std::string& op, std::vector<int> inputs,
         absl::flat_hash_map<std::string, Attribute> attrs = {},
         std::optional<Shape> shape = std::nullopt, DataType dtype = DataType::kFp32,
         const std::string& domain = "") {
    Node node;
    node.name = Fresh(op);
    node.op_type = op;
    node.domain = domain;
    node.inputs = std::move(inputs);
    node.attributes = std::move(attrs);
    Value out{.name = node.name + "_out", .dtype = dtype, .shape = shape};
    int id = graph_.AddValue(std::move(out));
    node.outputs = {id};
    graph_.nodes.push_back(std::move(node));
    return id;
  }
  void Output(int v) { graph_.outputs.push_back(v); }

  // The graph, sorted. REQUIRES: valid.
  Graph Build() {
    absl::Status s = graph_.TopologicalSort();
    EXPECT_TRUE(s.ok()) << s;
    return graph_;
  }

 private:
  std::string Fresh(const std::string& prefix) { return absl::StrCat(prefix, "_", next_++); }
  Graph graph_;
  int next_ = 0;
};

// Operator counts by op_type.
inline std::map<std::string, int> CountOps(const Graph& graph) {
  std::map<std::string, int> counts;
  for (const Node& n : graph.nodes) ++counts[n.op_type];
  return counts;
}

// The single node of type `op`, or nullptr.
inline const Node* FindOp(const Graph& graph, const std::string& op) {
  const Node* found = nullptr;
  for (const Node& n : graph.nodes) {
    if (n.op_type == op) {
      if (found != nullptr) return nullptr;
      found = &n;
    }
  }
  return found;
}

// Runs `graph` (a copy) with the executor.
inline absl::StatusOr<std::vector<Tensor>> RunGraph(Graph graph, std::vector<Tensor> inputs) {
  FW_ASSIGN_OR_RETURN(std::unique_ptr<ExecPlan> plan, ExecPlan::Create(std::move(graph), {}));
  std::vector<Tensor> outputs;
  FW_RETURN_IF_ERROR(plan->Run(inputs, &outputs));
  return outputs;
}

// Runs `before` and `after` on `inputs` and expects the same outputs: a pass must not change what
// a graph computes.
inline void ExpectSameResults(const Graph& before, const Graph& after,
                              const std::vector<Tensor>& inputs) {
  auto want = RunGraph(before, inputs);
  ASSERT_TRUE(want.ok()) << want.status();
  auto got = RunGraph(after, inputs);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), want->size());
  for (size_t i = 0; i < got->size(); ++i) ExpectTensorNear((*got)[i], (*want)[i]);
}

}  // namespace flywheel::engine::testing
