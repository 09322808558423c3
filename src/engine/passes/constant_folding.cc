// Constant folding: nodes whose inputs are all constants are run once at load with EvaluateNode
// and replaced by their outputs.
#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "core/status.h"
#include "engine/exec_plan.h"
#include "engine/passes/optimizer.h"
#include "engine/passes/pattern_util.h"

namespace flywheel::engine {
namespace {

// Outputs up to this many elements are always folded; larger ones only when they are no larger
// than the node's inputs (a Transpose of a weight), never when an op expands small inputs into a
// big tensor (ConstantOfShape, Expand, Tile, Range), which would only cost memory.
constexpr int64_t kMaxExpandedElements = int64_t{1} << 20;

bool IsNondeterministic(const Node& node) {
  static const absl::flat_hash_set<std::string>* ops =
      new absl::flat_hash_set<std::string>{"RandomNormal",      "RandomUniform", "RandomNormalLike",
                                           "RandomUniformLike", "Multinomial",   "Bernoulli"};
  return ops->contains(node.op_type);
}

// Saturating product of dims; -1 when a dim is negative.
int64_t Product(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return -1;
    if (d != 0 && n > (int64_t{1} << 62) / d) return int64_t{1} << 62;
    n *= d;
  }
  return n;
}

// The number of elements the node will produce, when it can be told without running it; -1 when
// it cannot.
int64_t EstimateOutputElements(const Graph& graph, const Node& node) {
  const std::string& op = node.op_type;
  if (node.domain.empty()) {
    if (op == "ConstantOfShape") {
      auto dims = passes::IntsConstant(graph, node.input(0));
      return dims ? Product(*dims) : -1;
    }
    if (op == "Expand") {
      const Tensor* x = graph.ConstantOf(node.input(0));
      auto dims = passes::IntsConstant(graph, node.input(1));
      if (x == nullptr || !dims) return -1;
      std::vector<int64_t> out = *dims;
      const auto& xd = x->shape().dims();
      if (xd.size() > out.size()) out.insert(out.begin(), xd.size() - out.size(), 1);
      for (size_t i = 0; i < xd.size(); ++i) {
        int64_t& o = out[out.size() - xd.size() + i];
        o = std::max(o, xd[i]);
      }
      return Product(out);
    }
    if (op == "Tile") {
      const Tensor* x = graph.ConstantOf(node.input(0));
      auto reps = passes::IntsConstant(graph, node.input(1));
      if (x == nullptr || !reps) return -1;
      int64_t r = Product(*reps);
      if (r < 0) return -1;
      int64_t n = x->NumElements();
      return (r != 0 && n > (int64_t{1} << 62) / r) ? int64_t{1} << 62 : n * r;
    }
    if (op == "Range") {
      auto start = passes::ScalarConstant(graph, node.input(0));
      auto limit = passes::ScalarConstant(graph, node.input(1));
      auto delta = passes::ScalarConstant(graph, node.input(2));
      if (!start || !limit || !delta || *delta == 0) return -1;
      double n = std::ceil((*limit - *start) / *delta);
      if (!(n < 4e18)) return int64_t{1} << 62;
      return n < 0 ? 0 : static_cast<int64_t>(n);
    }
  }
  // Otherwise trust a fully known output shape from shape inference.
  int64_t total = 0;
  for (int v : node.outputs) {
    if (v < 0) continue;
    const auto& shape = graph.values[v].shape;
    if (!shape || !shape->IsFullyDefined()) return -1;
    total += shape->NumElements();
  }
  return total;
}

bool Worthwhile(int64_t out_elements, int64_t in_elements) {
  return out_elements <= kMaxExpandedElements || out_elements <= in_elements;
}

}  // namespace

absl::Status FoldConstants(Graph& graph, int* changes) {
  passes::Consumers consumers(graph);
  // Readers left for each value, to drop an input constant as soon as its last reader folds.
  std::vector<int> readers(graph.values.size(), 0);
  for (size_t v = 0; v < graph.values.size(); ++v) {
    readers[v] = static_cast<int>(consumers.Of(static_cast<int>(v)).size());
  }
  int folded = 0;
  for (Node& node : graph.nodes) {
    if (node.dead || IsNondeterministic(node)) continue;
    bool all_constant = !node.inputs.empty();
    int64_t in_elements = 0;
    for (int v : node.inputs) {
      if (v < 0) continue;
      if (!graph.IsConstant(v)) {
        all_constant = false;
        break;
      }
      in_elements += graph.values[v].constant->NumElements();
    }
    if (!all_constant) continue;
    bool feeds_output = false;
    for (int v : node.outputs) feeds_output = feeds_output || consumers.IsOutput(v);
    if (feeds_output) continue;  // keep graph outputs computed by a node
    int64_t estimate = EstimateOutputElements(graph, node);
    if (estimate >= 0 && !Worthwhile(estimate, in_elements)) continue;

    std::vector<Tensor> inputs(node.inputs.size());
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      if (node.inputs[i] >= 0) inputs[i] = *graph.values[node.inputs[i]].constant;
    }
    absl::StatusOr<std::vector<Tensor>> outputs = EvaluateNode(node, graph, inputs);
    // A node that cannot run now (unsupported op, bad attributes) is left for the executor, which
    // reports the error with its context when the session builds its kernels.
    if (!outputs.ok()) continue;
    int64_t out_elements = 0;
    for (const Tensor& t : *outputs) out_elements += t.empty() ? 0 : t.NumElements();
    if (!Worthwhile(out_elements, in_elements)) continue;
    inputs.clear();
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      int v = node.outputs[i];
      if (v < 0) continue;
      Tensor& t = (*outputs)[i];
      Value& value = graph.values[v];
      value.dtype = t.dtype();
      value.shape = t.shape();
      value.constant = std::move(t);
      value.producer = -1;
    }
    node.dead = true;
    ++folded;
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      int v = node.inputs[i];
      if (v < 0 ||
          std::find(node.inputs.begin(), node.inputs.begin() + i, v) != node.inputs.begin() + i) {
        continue;  // omitted, or counted already
      }
      if (--readers[v] > 0 || consumers.IsOutput(v)) continue;
      graph.values[v].constant.reset();
    }
  }
  if (changes != nullptr) *changes += folded;
  return folded > 0 ? graph.Compact() : absl::OkStatus();
}

}  // namespace flywheel::engine
