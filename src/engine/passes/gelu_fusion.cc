// GELU fusion: the erf form torch exports, x * 0.5 * (1 + erf(x / sqrt 2)), in its three
// orderings of the two multiplications, and with erf(x * 1/sqrt 2):
//   Mul(Mul(x, 1 + erf), 0.5)     (torch's nn.GELU)
//   Mul(Mul(x, 0.5), 1 + erf)
//   Mul(x, Mul(1 + erf, 0.5))
// becomes com.flywheel Gelu(x).
#include <cmath>

#include "core/status.h"
#include "engine/passes/optimizer.h"
#include "engine/passes/pattern_util.h"

namespace flywheel::engine {
namespace {

constexpr double kSqrt2 = 1.4142135623730951;

// The other input of binary node `node` when one of its inputs is `x`; -1 otherwise.
int Other(const Node& node, int x) {
  if (node.inputs.size() != 2) return -1;
  if (node.inputs[0] == x) return node.inputs[1];
  if (node.inputs[1] == x) return node.inputs[0];
  return -1;
}

// True when `mul` multiplies `x` by the scalar 0.5.
bool IsHalfOf(const Graph& graph, const Node& mul, int x) {
  if (!passes::IsOp(mul, "Mul")) return false;
  int c = Other(mul, x);
  return c >= 0 && passes::IsScalarNear(graph, c, 0.5);
}

// Output of a single-output node, or -1.
int Out(const Node& node) { return node.outputs.size() == 1 ? node.outputs[0] : -1; }

bool FuseAt(Graph& graph, int erf_index, passes::Consumers& consumers) {
  Node& erf = graph.nodes[erf_index];
  if (!passes::IsOp(erf, "Erf") || erf.inputs.size() != 1 || Out(erf) < 0) return false;
  // erf's input: x / sqrt 2 or x * (1 / sqrt 2), read by nothing else.
  Node* scale = passes::ProducerOf(graph, erf.inputs[0]);
  if (scale == nullptr || consumers.Sole(erf.inputs[0]) != erf_index) return false;
  int x = -1;
  if (passes::IsOp(*scale, "Div") && scale->inputs.size() == 2 &&
      passes::IsScalarNear(graph, scale->inputs[1], kSqrt2)) {
    x = scale->inputs[0];
  } else if (passes::IsOp(*scale, "Mul")) {
    for (int i = 0; i < 2 && x < 0; ++i) {
      if (passes::IsScalarNear(graph, scale->input(1 - i), 1.0 / kSqrt2)) x = scale->input(i);
    }
  }
  if (x < 0 || graph.values[x].dtype != DataType::kFp32) return false;
  // 1 + erf
  int add_i = consumers.Sole(Out(erf));
  if (add_i < 0 || !passes::IsOp(graph.nodes[add_i], "Add")) return false;
  Node& add = graph.nodes[add_i];
  int one = Other(add, Out(erf));
  if (one < 0 || !passes::IsScalarNear(graph, one, 1.0) || Out(add) < 0) return false;
  int m1_i = consumers.Sole(Out(add));
  if (m1_i < 0 || !passes::IsOp(graph.nodes[m1_i], "Mul") || Out(graph.nodes[m1_i]) < 0) {
    return false;
  }
  Node& m1 = graph.nodes[m1_i];
  int m1_other = Other(m1, Out(add));
  std::vector<int> dead = {erf_index, static_cast<int>(scale - graph.nodes.data()), add_i, m1_i};
  int result = -1;
  if (m1_other == x) {
    // Mul(Mul(x, 1 + erf), 0.5)
    int m2_i = consumers.Sole(Out(m1));
    if (m2_i < 0 || !IsHalfOf(graph, graph.nodes[m2_i], Out(m1)) || Out(graph.nodes[m2_i]) < 0) {
      return false;
    }
    dead.push_back(m2_i);
    result = Out(graph.nodes[m2_i]);
  } else if (Node* half = passes::ProducerOf(graph, m1_other);
             half != nullptr && IsHalfOf(graph, *half, x) && consumers.Sole(m1_other) == m1_i) {
    // Mul(Mul(x, 0.5), 1 + erf)
    dead.push_back(static_cast<int>(half - graph.nodes.data()));
    result = Out(m1);
  } else if (IsHalfOf(graph, m1, Out(add))) {
    // Mul(x, Mul(1 + erf, 0.5))
    int m2_i = consumers.Sole(Out(m1));
    if (m2_i < 0 || !passes::IsOp(graph.nodes[m2_i], "Mul") || Out(graph.nodes[m2_i]) < 0 ||
        Other(graph.nodes[m2_i], Out(m1)) != x) {
      return false;
    }
    dead.push_back(m2_i);
    result = Out(graph.nodes[m2_i]);
  } else {
    return false;
  }
  for (int d : dead) graph.nodes[d].dead = true;
  Node& gelu = graph.nodes[erf_index];
  gelu.dead = false;
  gelu.op_type = "Gelu";
  gelu.domain = std::string(kFlywheelDomain);
  gelu.attributes.clear();
  gelu.inputs = {x};
  consumers.Add(x, erf_index);
  passes::SetOutput(graph, erf_index, 0, result);
  return true;
}

}  // namespace

absl::Status FuseGelu(Graph& graph, int* changes) {
  return passes::RewriteEachNode(graph, changes, FuseAt);
}

}  // namespace flywheel::engine
