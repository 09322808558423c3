// Helpers shared by the graph passes: reading small constants, tracking the consumers of values
// while a pass rewrites the graph, and the common edits (rewire uses, replace a constant).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/tensor.h"
#include "engine/graph.h"

namespace flywheel::engine::passes {

// The single element of a numeric constant (any float or integer type), as a double.
std::optional<double> ScalarConstant(const Graph& graph, int v);
// True when `v` is a constant scalar (one element) within 1e-6 relative of `want`.
bool IsScalarNear(const Graph& graph, int v, double want, double rel = 1e-5);
// The elements of an INT64/INT32 constant.
std::optional<std::vector<int64_t>> IntsConstant(const Graph& graph, int v);
// A FP32 constant, or nullptr.
const Tensor* FloatConstant(const Graph& graph, int v);
// The known rank of `v`, or -1.
int RankOf(const Graph& graph, int v);

// A node's "axes": the attribute, or (opset 13/18 forms) the constant second input. nullopt when
// given by a non-constant input; empty when absent.
std::optional<std::vector<int64_t>> AxesOf(const Graph& graph, const Node& node, int input);

// Adds a constant value named after `prefix` and returns its id.
int AddConstant(Graph& graph, absl::string_view prefix, Tensor t);

// Live consumers of each value, kept up to date by the edits below while a pass rewrites the
// graph in place (node indices stay stable until Graph::Compact).
class Consumers {
 public:
  explicit Consumers(const Graph& graph);

  // Live nodes reading `v` (each once).
  std::vector<int> Of(int v) const;
  // The only live node reading `v`, or -1 when it has none or several, or is a graph output.
  int Sole(int v) const;
  bool IsOutput(int v) const { return v >= 0 && is_output_[v]; }
  // Records that node `n` now reads `v`.
  void Add(int v, int n);
  // True when no live node other than `except` reads `v` and it is not a graph output.
  bool UnusedExcept(int v, int except) const;

  // Makes every live reader of `from` read `to` instead (graph outputs are left alone).
  void ReplaceUses(Graph& graph, int from, int to);
  // Drops the constant tensor of `v` when nothing other than `except` reads it: used after a
  // pass replaced a weight, so that the old one does not stay alive until the final DCE.
  void ReleaseIfUnused(Graph& graph, int v, int except);

 private:
  const Graph& graph_;
  std::vector<std::vector<int>> consumers_;
  std::vector<bool> is_output_;
};

// The live node writing `v`, or nullptr (graph inputs, constants, dead producers).
// REQUIRES: producers are up to date, or were kept so by SetOutput.
Node* ProducerOf(Graph& graph, int v);
// Makes node `n` write `v` as its output `slot`, keeping Value::producer in step.
void SetOutput(Graph& graph, int n, int slot, int v);

// The driver of the fusion passes: tries `fuse_at(graph, n, consumers)` at every node in order,
// adds the number of rewrites it reports to *changes (when not null), and compacts the graph
// when anything changed.
absl::Status RewriteEachNode(Graph& graph, int* changes,
                             absl::FunctionRef<bool(Graph&, int, Consumers&)> fuse_at);

// True when `node` is op `op` in the ONNX domain.
inline bool IsOp(const Node& node, absl::string_view op) {
  return !node.dead && node.op_type == op && node.domain.empty();
}

}  // namespace flywheel::engine::passes
