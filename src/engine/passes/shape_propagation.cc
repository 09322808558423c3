// Rank and shape propagation for values ONNX shape inference left unknown: torch's dynamic
// Reshape (target shape computed from Shape ops) stops ONNX inference, yet the target's length is
// known, and so the rank of everything after it. The pattern passes need those ranks (attention
// is matched on 4-D tensors). Only values with no shape at all are filled in; dims that cannot be
// told are -1.
#include <algorithm>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "core/status.h"
#include "engine/passes/optimizer.h"
#include "engine/passes/pattern_util.h"

namespace flywheel::engine {
namespace {

std::optional<Shape> ShapeOf(const Graph& graph, int v) {
  if (v < 0) return std::nullopt;
  const Value& value = graph.values[v];
  if (value.constant) return value.constant->shape();
  return value.shape;
}

// Same-shape ops: output 0 has the shape of input 0.
bool KeepsShape(const Node& node) {
  static const absl::flat_hash_set<std::string>* ops =
      new absl::flat_hash_set<std::string>{"Relu",
                                           "Sigmoid",
                                           "Tanh",
                                           "Erf",
                                           "Sqrt",
                                           "Softmax",
                                           "LogSoftmax",
                                           "Neg",
                                           "Exp",
                                           "Log",
                                           "Abs",
                                           "Cast",
                                           "Gelu",
                                           "LeakyRelu",
                                           "Elu",
                                           "Clip",
                                           "Identity",
                                           "Dropout",
                                           "HardSigmoid",
                                           "Softplus",
                                           "Reciprocal",
                                           "Floor",
                                           "Ceil",
                                           "Round",
                                           "Sign",
                                           "Not",
                                           "Sin",
                                           "Cos",
                                           "LayerNormalization",
                                           "BatchNormalization"};
  return ops->contains(node.op_type);
}

bool IsBroadcastBinary(const Node& node) {
  static const absl::flat_hash_set<std::string>* ops = new absl::flat_hash_set<std::string>{
      "Add", "Sub", "Mul", "Div", "Pow", "Equal", "Less", "Greater", "And", "Or", "Where"};
  return ops->contains(node.op_type);
}

// numpy broadcasting with unknown dims (-1): a dim is known when both are, or one is 1 and the
// other known.
std::optional<Shape> Broadcast(const std::vector<Shape>& shapes) {
  int rank = 0;
  for (const Shape& s : shapes) rank = std::max(rank, s.rank());
  Shape out;
  for (int i = 0; i < rank; ++i) out.push_back(1);
  for (const Shape& s : shapes) {
    for (int i = 0; i < s.rank(); ++i) {
      int o = rank - s.rank() + i;
      int64_t a = out[o], b = s[i];
      int64_t r;
      if (a == 1) {
        r = b;
      } else if (b == 1) {
        r = a;
      } else if (a == b) {
        r = a;
      } else {
        r = -1;
      }
      out.set_dim(o, r);
    }
  }
  return out;
}

std::optional<Shape> Infer(const Graph& graph, const Node& node) {
  if (!node.domain.empty()) {
    if (node.op_type == "Gelu") return ShapeOf(graph, node.input(0));
    return std::nullopt;
  }
  const std::string& op = node.op_type;
  if (KeepsShape(node)) return ShapeOf(graph, node.input(0));
  if (IsBroadcastBinary(node)) {
    std::vector<Shape> shapes;
    for (int v : node.inputs) {
      auto s = ShapeOf(graph, v);
      if (!s) return std::nullopt;
      shapes.push_back(*s);
    }
    return Broadcast(shapes);
  }
  if (op == "Transpose") {
    auto in = ShapeOf(graph, node.input(0));
    if (!in) return std::nullopt;
    std::vector<int64_t> perm = node.GetInts("perm");
    if (perm.empty()) {
      for (int i = in->rank() - 1; i >= 0; --i) perm.push_back(i);
    }
    if (static_cast<int>(perm.size()) != in->rank()) return std::nullopt;
    Shape out;
    for (int64_t p : perm) {
      if (p < 0 || p >= in->rank()) return std::nullopt;
      out.push_back(in->dim(static_cast<int>(p)));
    }
    return out;
  }
  if (op == "Reshape") {
    auto target = ShapeOf(graph, node.input(1));
    if (!target || target->rank() != 1 || target->dim(0) < 0) return std::nullopt;
    Shape out;
    auto values = passes::IntsConstant(graph, node.input(1));
    auto in = ShapeOf(graph, node.input(0));
    for (int64_t i = 0; i < target->dim(0); ++i) {
      int64_t d = -1;
      if (values) {
        d = (*values)[i];
        if (d == 0 && node.GetInt("allowzero", 0) == 0) {
          d = (in && i < in->rank()) ? in->dim(static_cast<int>(i)) : -1;
        }
        if (d < -1) return std::nullopt;
      }
      out.push_back(d);
    }
    return out;
  }
  if (op == "MatMul") {
    auto a = ShapeOf(graph, node.input(0));
    auto b = ShapeOf(graph, node.input(1));
    if (!a || !b || a->rank() < 2 || b->rank() < 2) return std::nullopt;
    Shape a_batch, b_batch;
    for (int i = 0; i + 2 < a->rank(); ++i) a_batch.push_back(a->dim(i));
    for (int i = 0; i + 2 < b->rank(); ++i) b_batch.push_back(b->dim(i));
    auto out = Broadcast({a_batch, b_batch});
    out->push_back(a->dim(a->rank() - 2));
    out->push_back(b->dim(b->rank() - 1));
    return out;
  }
  return std::nullopt;
}

DataType InferType(const Graph& graph, const Node& node) {
  const std::string& op = node.op_type;
  if (op == "Cast" || !node.domain.empty()) return DataType::kInvalid;
  if (op == "Equal" || op == "Less" || op == "Greater" || op == "And" || op == "Or" ||
      op == "Not") {
    return DataType::kBool;
  }
  int from = op == "Where" ? node.input(1) : node.input(0);
  return from >= 0 ? graph.values[from].dtype : DataType::kInvalid;
}

}  // namespace

absl::Status PropagateShapes(Graph& graph, int* changes) {
  int filled = 0;
  for (const Node& node : graph.nodes) {
    if (node.dead || node.outputs.empty() || node.outputs[0] < 0) continue;
    Value& out = graph.values[node.outputs[0]];
    if (out.shape || out.constant) continue;
    std::optional<Shape> shape = Infer(graph, node);
    if (!shape) continue;
    out.shape = std::move(shape);
    if (out.dtype == DataType::kInvalid) out.dtype = InferType(graph, node);
    ++filled;
  }
  if (changes != nullptr) *changes += filled;
  return absl::OkStatus();
}

}  // namespace flywheel::engine
