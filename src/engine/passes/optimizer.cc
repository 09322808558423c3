#include "engine/passes/optimizer.h"

#include <vector>

#include "core/status.h"

namespace flywheel::engine {

absl::Status EliminateDeadNodes(Graph& graph) {
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
  return graph.Compact();
}

absl::Status OptimizeGraph(Graph& graph) {
  FW_RETURN_IF_ERROR(EliminateDeadNodes(graph));
  return absl::OkStatus();
}

}  // namespace flywheel::engine
