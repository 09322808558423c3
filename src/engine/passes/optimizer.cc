#include "engine/passes/optimizer.h"

#include <vector>

#include "core/status.h"
#include "engine/passes/pattern_util.h"

namespace flywheel::engine {
namespace {

using passes::Consumers;

// Identity, and Dropout whose mask nobody reads and which is not in training mode: both copy
// their input in inference.
bool IsPassThrough(const Graph& graph, const Node& node, const Consumers& consumers) {
  if (node.dead || !node.domain.empty() || node.inputs.empty() || node.input(0) < 0) return false;
  if (node.outputs.empty() || node.outputs[0] < 0) return false;
  if (node.op_type == "Identity") return node.outputs.size() == 1;
  if (node.op_type != "Dropout") return false;
  for (size_t k = 1; k < node.outputs.size(); ++k) {
    int mask = node.outputs[k];
    if (mask >= 0 && (consumers.IsOutput(mask) || !consumers.Of(mask).empty())) return false;
  }
  int training = node.input(2);
  if (training >= 0) {
    std::optional<double> t = passes::ScalarConstant(graph, training);
    if (!t && graph.ConstantOf(training) != nullptr &&
        graph.ConstantOf(training)->dtype() == DataType::kBool &&
        graph.ConstantOf(training)->NumElements() == 1) {
      t = graph.ConstantOf(training)->data<bool>()[0] ? 1 : 0;
    }
    if (!t || *t != 0) return false;
  }
  return true;
}

// Removes pass-through nodes. A node whose output is a graph output keeps that name: its
// producer is made to write the output directly, or the node stays when that is not possible.
int RemovePassThrough(Graph& graph) {
  Consumers consumers(graph);
  int removed = 0;
  for (int n = 0; n < static_cast<int>(graph.nodes.size()); ++n) {
    Node& node = graph.nodes[n];
    if (!IsPassThrough(graph, node, consumers)) continue;
    int x = node.inputs[0];
    int y = node.outputs[0];
    if (!consumers.IsOutput(y)) {
      consumers.ReplaceUses(graph, y, x);
      node.dead = true;
      ++removed;
      continue;
    }
    Node* producer = passes::ProducerOf(graph, x);
    if (producer == nullptr || consumers.IsOutput(x)) continue;
    int p = static_cast<int>(producer - graph.nodes.data());
    for (size_t k = 0; k < producer->outputs.size(); ++k) {
      if (producer->outputs[k] == x) passes::SetOutput(graph, p, static_cast<int>(k), y);
    }
    consumers.ReplaceUses(graph, x, y);
    // The node itself read x; it no longer matters, it is dead.
    node.dead = true;
    ++removed;
  }
  return removed;
}

// Shape folding exposes constants, and folding them can make more Shape consumers foldable (an
// index computed from constants); a few rounds reach the fixed point on real models.
absl::Status FoldToFixedPoint(Graph& graph) {
  for (int round = 0; round < 4; ++round) {
    int changes = 0;
    FW_RETURN_IF_ERROR(FoldShapeOps(graph, &changes));
    FW_RETURN_IF_ERROR(FoldConstants(graph, &changes));
    if (changes == 0) break;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status EliminateDeadNodes(Graph& graph, int* changes) {
  int removed = RemovePassThrough(graph);
  // Walk backwards from the outputs, marking the nodes that contribute to them.
  std::vector<bool> needed(graph.values.size(), false);
  for (int v : graph.outputs) needed[v] = true;
  for (int k = static_cast<int>(graph.nodes.size()) - 1; k >= 0; --k) {
    Node& node = graph.nodes[k];
    if (node.dead) continue;
    bool used = false;
    for (int v : node.outputs) used = used || (v >= 0 && needed[v]);
    if (!used) {
      node.dead = true;
      ++removed;
      continue;
    }
    for (int v : node.inputs) {
      if (v >= 0) needed[v] = true;
    }
  }
  // Constants nothing reads any more are released.
  for (size_t v = 0; v < graph.values.size(); ++v) {
    if (!needed[v] && graph.values[v].constant) graph.values[v].constant.reset();
  }
  if (changes != nullptr) *changes += removed;
  return graph.Compact();
}

absl::Status OptimizeGraph(Graph& graph) {
  FW_RETURN_IF_ERROR(EliminateDeadNodes(graph));
  // Shapes are propagated once folding has made every Reshape target it can constant, so that
  // the propagated shapes are as precise as they can be; then folding gets another chance.
  FW_RETURN_IF_ERROR(FoldToFixedPoint(graph));
  FW_RETURN_IF_ERROR(PropagateShapes(graph));
  FW_RETURN_IF_ERROR(FoldToFixedPoint(graph));
  FW_RETURN_IF_ERROR(EliminateDeadNodes(graph));
  FW_RETURN_IF_ERROR(FoldBatchNorm(graph));
  FW_RETURN_IF_ERROR(FuseLayerNorm(graph));
  FW_RETURN_IF_ERROR(FuseGelu(graph));
  FW_RETURN_IF_ERROR(FuseAttention(graph));
  FW_RETURN_IF_ERROR(FuseActivations(graph));
  FW_RETURN_IF_ERROR(ConvertToChannelsLast(graph));
  // Fusions can leave constant-only subgraphs behind (and dead weights); finish them.
  FW_RETURN_IF_ERROR(FoldConstants(graph));
  return EliminateDeadNodes(graph);
}

}  // namespace flywheel::engine
