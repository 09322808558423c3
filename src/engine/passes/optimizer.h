// Graph optimisation passes, run by Session::Load between loading and execution: constant
// folding, shape-op folding, dead-node elimination, and fusions into single kernels.
#pragma once

#include "absl/status/status.h"
#include "engine/graph.h"

namespace flywheel::engine {

// Rewrites `graph` in place into an equivalent, faster graph. The result is topologically sorted.
absl::Status OptimizeGraph(Graph& graph);

// Individual passes, exposed for tests. Each leaves the graph valid and sorted.
absl::Status EliminateDeadNodes(Graph& graph);

}  // namespace flywheel::engine
