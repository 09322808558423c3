// Shape-op folding: Shape of a statically shaped value becomes a constant, and so do Gather and
// Slice of a Shape when the dims they select are static, even if other dims are dynamic. torch
// exports many Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains; constant folding then
// finishes what this pass starts.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/status.h"
#include "engine/passes/optimizer.h"
#include "engine/passes/pattern_util.h"

namespace flywheel::engine {
namespace {

Tensor Int64Tensor(const std::vector<int64_t>& values, Shape shape) {
  Tensor t = Tensor::Allocate(DataType::kInt64, std::move(shape));
  std::copy(values.begin(), values.end(), t.data<int64_t>());
  return t;
}

// The dims Shape outputs (opset 15 start/end attributes applied); -1 entries are dynamic.
// nullopt when the input's rank is unknown.
std::optional<std::vector<int64_t>> ShapeDims(const Graph& graph, const Node& shape_node) {
  int x = shape_node.input(0);
  if (x < 0) return std::nullopt;
  const Value& value = graph.values[x];
  std::optional<Shape> shape = value.constant ? value.constant->shape() : value.shape;
  if (!shape) return std::nullopt;
  const int64_t rank = shape->rank();
  int64_t start = shape_node.GetInt("start", 0);
  int64_t end = shape_node.GetInt("end", rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, 0, rank);
  std::vector<int64_t> dims;
  for (int64_t i = start; i < end; ++i) dims.push_back(shape->dim(static_cast<int>(i)));
  return dims;
}

bool AllStatic(const std::vector<int64_t>& dims) {
  return std::all_of(dims.begin(), dims.end(), [](int64_t d) { return d >= 0; });
}

// Gather(dims, indices) along axis 0 when the indices are constant and the picked dims static.
std::optional<Tensor> FoldGather(const Graph& graph, const Node& gather,
                                 const std::vector<int64_t>& dims) {
  if (gather.GetInt("axis", 0) != 0) return std::nullopt;
  const Tensor* idx_tensor = graph.ConstantOf(gather.input(1));
  auto indices = passes::IntsConstant(graph, gather.input(1));
  if (idx_tensor == nullptr || !indices) return std::nullopt;
  const int64_t n = static_cast<int64_t>(dims.size());
  std::vector<int64_t> picked;
  for (int64_t i : *indices) {
    if (i < 0) i += n;
    if (i < 0 || i >= n || dims[i] < 0) return std::nullopt;
    picked.push_back(dims[i]);
  }
  return Int64Tensor(picked, idx_tensor->shape());
}

// Slice(dims, starts, ends[, axes, steps]) on the 1-D shape vector, from inputs (opset >= 10) or
// attributes (older), when every selected dim is static.
std::optional<Tensor> FoldSlice(const Graph& graph, const Node& slice,
                                const std::vector<int64_t>& dims) {
  std::vector<int64_t> starts, ends, axes, steps;
  if (slice.HasAttr("starts")) {
    starts = slice.GetInts("starts");
    ends = slice.GetInts("ends");
    axes = slice.GetInts("axes");
  } else {
    auto s = passes::IntsConstant(graph, slice.input(1));
    auto e = passes::IntsConstant(graph, slice.input(2));
    if (!s || !e) return std::nullopt;
    starts = *s;
    ends = *e;
    if (slice.input(3) >= 0) {
      auto a = passes::IntsConstant(graph, slice.input(3));
      if (!a) return std::nullopt;
      axes = *a;
    }
    if (slice.input(4) >= 0) {
      auto st = passes::IntsConstant(graph, slice.input(4));
      if (!st) return std::nullopt;
      steps = *st;
    }
  }
  if (starts.size() != 1 || ends.size() != 1) return std::nullopt;
  if (!axes.empty() && (axes.size() != 1 || (axes[0] != 0 && axes[0] != -1))) return std::nullopt;
  int64_t step = steps.empty() ? 1 : steps[0];
  if (steps.size() > 1 || step == 0) return std::nullopt;
  const int64_t n = static_cast<int64_t>(dims.size());
  if (n == 0) return std::nullopt;
  // A step past the end selects one element; clamping keeps the loops below from overflowing.
  step = std::clamp<int64_t>(step, -n, n);
  int64_t start = starts[0], end = ends[0];
  if (start < 0) start += n;
  if (end < 0) end += n;
  std::vector<int64_t> picked;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, n);
    end = std::clamp<int64_t>(end, 0, n);
    for (int64_t i = start; i < end; i += step) picked.push_back(dims[i]);
  } else {
    start = std::clamp<int64_t>(start, 0, n - 1);
    end = std::clamp<int64_t>(end, -1, n - 1);
    for (int64_t i = start; i > end; i += step) picked.push_back(dims[i]);
  }
  if (!AllStatic(picked)) return std::nullopt;
  return Int64Tensor(picked, Shape{static_cast<int64_t>(picked.size())});
}

void MakeConstant(Graph& graph, Node& node, Tensor t) {
  Value& value = graph.values[node.outputs[0]];
  value.dtype = t.dtype();
  value.shape = t.shape();
  value.constant = std::move(t);
  value.producer = -1;
  node.dead = true;
}

}  // namespace

absl::Status FoldShapeOps(Graph& graph, int* changes) {
  passes::Consumers consumers(graph);
  int folded = 0;
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    if (!passes::IsOp(graph.nodes[n], "Shape")) continue;
    const int out = graph.nodes[n].outputs.empty() ? -1 : graph.nodes[n].outputs[0];
    if (out < 0) continue;
    std::optional<std::vector<int64_t>> dims = ShapeDims(graph, graph.nodes[n]);
    if (!dims) continue;
    const bool is_output = consumers.IsOutput(out);
    if (AllStatic(*dims) && !is_output) {
      MakeConstant(graph, graph.nodes[n],
                   Int64Tensor(*dims, Shape{static_cast<int64_t>(dims->size())}));
      ++folded;
      continue;
    }
    for (int c : consumers.Of(out)) {
      Node& user = graph.nodes[c];
      if (user.input(0) != out || user.outputs.empty() || user.outputs[0] < 0 ||
          consumers.IsOutput(user.outputs[0])) {
        continue;
      }
      std::optional<Tensor> t;
      if (passes::IsOp(user, "Gather")) {
        t = FoldGather(graph, user, *dims);
      } else if (passes::IsOp(user, "Slice")) {
        t = FoldSlice(graph, user, *dims);
      }
      if (!t) continue;
      MakeConstant(graph, user, std::move(*t));
      ++folded;
    }
  }
  if (changes != nullptr) *changes += folded;
  return folded > 0 ? graph.Compact() : absl::OkStatus();
}

}  // namespace flywheel::engine
