// Bias and activation fusion into the com.flywheel fused kernels:
//   Gemm(A, const B) [-> act]                     => FusedGemm (Gemm attributes + activation)
//   MatMul(A, const 2-D B) [-> Add(bias [N])] [-> act] => FusedMatMul(A, B[, bias])
//   Conv [-> Add(residual of the output's shape)] [-> act] => FusedConv(X, W, B, Z)
// The activation is named by the "activation", "activation_alpha" and "activation_beta"
// attributes that ActivationFromNode (kernels/activation.h) reads. A step is taken only when the
// intermediate value has a single reader and is not a graph output.
#include <limits>
#include <optional>
#include <string>

#include "core/status.h"
#include "engine/passes/optimizer.h"
#include "engine/passes/pattern_util.h"

namespace flywheel::engine {
namespace {

struct ActivationSpec {
  std::string name;
  float alpha = 0;
  float beta = 0;
};

Attribute FloatAttr(float f) {
  Attribute a;
  a.kind = Attribute::Kind::kFloat;
  a.f = f;
  return a;
}

Attribute StringAttr(std::string s) {
  Attribute a;
  a.kind = Attribute::Kind::kString;
  a.s = std::move(s);
  return a;
}

// The fused form of activation node `act` applied to `x`, or nullopt when it has none.
std::optional<ActivationSpec> MatchActivation(const Graph& graph, const Node& act, int x) {
  if (act.dead || act.input(0) != x || act.outputs.size() != 1 || act.outputs[0] < 0) {
    return std::nullopt;
  }
  const std::string& op = act.op_type;
  if (act.domain == kFlywheelDomain) {
    if (op == "Gelu" && act.inputs.size() == 1) return ActivationSpec{"Gelu"};
    return std::nullopt;
  }
  if (!act.domain.empty()) return std::nullopt;
  if (act.inputs.size() != 1 && op != "Clip") return std::nullopt;
  if (op == "Relu" || op == "Sigmoid" || op == "Tanh") return ActivationSpec{op};
  if (op == "LeakyRelu") return ActivationSpec{op, act.GetFloat("alpha", 0.01f)};
  if (op == "Elu") return ActivationSpec{op, act.GetFloat("alpha", 1.0f)};
  if (op == "HardSigmoid") {
    return ActivationSpec{op, act.GetFloat("alpha", 0.2f), act.GetFloat("beta", 0.5f)};
  }
  if (op == "Gelu") {  // ONNX opset 20: only the exact (erf) form
    if (act.GetString("approximate", "none") != "none") return std::nullopt;
    return ActivationSpec{"Gelu"};
  }
  if (op == "Clip") {
    float lo = act.GetFloat("min", std::numeric_limits<float>::lowest());
    float hi = act.GetFloat("max", std::numeric_limits<float>::max());
    for (int i = 1; i <= 2; ++i) {
      int v = act.input(i);
      if (v < 0) continue;
      std::optional<double> bound = passes::ScalarConstant(graph, v);
      if (!bound) return std::nullopt;  // bounds computed at run time
      (i == 1 ? lo : hi) = static_cast<float>(*bound);
    }
    return ActivationSpec{op, lo, hi};
  }
  return std::nullopt;
}

// A bias Add's constant operand as a [N] FP32 value for FusedMatMul; -1 when it is not one that
// broadcasts like a per-column bias onto an output of rank `out_rank` (-1: unknown).
int BiasValue(Graph& graph, int v, int64_t n, int out_rank) {
  const Tensor* t = passes::FloatConstant(graph, v);
  if (t == nullptr) return -1;
  // Broadcasting must not raise the output's rank.
  if (t->rank() > (out_rank < 0 ? 1 : out_rank)) return -1;
  for (int d = 0; d + 1 < t->rank(); ++d) {
    if (t->dim(d) != 1) return -1;
  }
  if (t->NumElements() == n && t->rank() == 1) return v;
  if (t->NumElements() == n) {
    return passes::AddConstant(graph, graph.values[v].name + "_bias", t->Reshaped(Shape{n}));
  }
  if (t->NumElements() == 1) {
    Tensor b = Tensor::Allocate(DataType::kFp32, Shape{n});
    for (int64_t j = 0; j < n; ++j) b.data<float>()[j] = t->data<float>()[0];
    return passes::AddConstant(graph, graph.values[v].name + "_bias", std::move(b));
  }
  return -1;
}

// True when value `z` certainly has the shape of value `y` (equal ranks and dims; unknown dims
// match only unknown dims, which the fused kernel checks at run time).
bool SameShape(const Graph& graph, int y, int z) {
  const auto& a = graph.values[y].shape;
  const auto& b = graph.values[z].constant ? std::optional<Shape>(graph.values[z].constant->shape())
                                           : graph.values[z].shape;
  return a && b && *a == *b;
}

// The other input of a binary node that reads `x`, or -1.
int OtherInput(const Node& node, int x) {
  if (node.inputs.size() != 2) return -1;
  if (node.inputs[0] == x && node.inputs[1] != x) return node.inputs[1];
  if (node.inputs[1] == x && node.inputs[0] != x) return node.inputs[0];
  return -1;
}

enum class Family { kNone, kGemm, kMatMul, kConv };

Family FamilyOf(const Node& node) {
  if (node.dead) return Family::kNone;
  const bool onnx = node.domain.empty();
  const bool ours = node.domain == kFlywheelDomain;
  if ((onnx && node.op_type == "Gemm") || (ours && node.op_type == "FusedGemm")) {
    return Family::kGemm;
  }
  if ((onnx && node.op_type == "MatMul") || (ours && node.op_type == "FusedMatMul")) {
    return Family::kMatMul;
  }
  if ((onnx && node.op_type == "Conv") || (ours && node.op_type == "FusedConv")) {
    return Family::kConv;
  }
  return Family::kNone;
}

bool FuseAt(Graph& graph, int n, passes::Consumers& consumers) {
  Node& node = graph.nodes[n];
  const Family family = FamilyOf(node);
  if (family == Family::kNone || node.outputs.size() != 1 || node.outputs[0] < 0) return false;
  if (!node.GetString("activation", "").empty()) return false;
  int y = node.outputs[0];
  DataType dtype = graph.values[y].dtype;
  if (dtype == DataType::kInvalid && node.input(0) >= 0) dtype = graph.values[node.input(0)].dtype;
  if (dtype != DataType::kFp32) return false;
  const Tensor* w = graph.ConstantOf(node.input(1));
  if (family != Family::kConv && (w == nullptr || w->rank() != 2)) return false;
  if (family == Family::kMatMul && passes::RankOf(graph, node.input(0)) == 1) return false;

  int extra = -1;       // bias (FusedMatMul) or residual Z (FusedConv)
  int extra_node = -1;  // the Add providing it
  if (family == Family::kMatMul && node.input(2) < 0) {
    int c = consumers.Sole(y);
    if (c >= 0 && passes::IsOp(graph.nodes[c], "Add")) {
      int other = OtherInput(graph.nodes[c], y);
      int out = graph.nodes[c].outputs.empty() ? -1 : graph.nodes[c].outputs[0];
      if (other >= 0 && out >= 0) {
        extra = BiasValue(graph, other, w->dim(1), passes::RankOf(graph, node.input(0)));
        if (extra >= 0) extra_node = c;
      }
    }
  } else if (family == Family::kConv && node.input(3) < 0) {
    int c = consumers.Sole(y);
    if (c >= 0 && passes::IsOp(graph.nodes[c], "Add")) {
      int other = OtherInput(graph.nodes[c], y);
      int out = graph.nodes[c].outputs.empty() ? -1 : graph.nodes[c].outputs[0];
      if (other >= 0 && out >= 0 && graph.values[other].dtype == DataType::kFp32 &&
          SameShape(graph, y, other) && (!graph.values[out].shape || SameShape(graph, y, out))) {
        extra = other;
        extra_node = c;
      }
    }
  }
  int last = extra_node >= 0 ? graph.nodes[extra_node].outputs[0] : y;
  std::optional<ActivationSpec> act;
  int act_node = consumers.Sole(last);
  if (act_node >= 0) act = MatchActivation(graph, graph.nodes[act_node], last);
  if (!act && extra_node < 0) return false;

  Node& fused = graph.nodes[n];  // AddValue above never moves nodes; re-bind for clarity
  fused.domain = std::string(kFlywheelDomain);
  switch (family) {
    case Family::kGemm:
      fused.op_type = "FusedGemm";
      break;
    case Family::kMatMul:
      fused.op_type = "FusedMatMul";
      if (extra >= 0) {
        fused.inputs.resize(3, -1);
        fused.inputs[2] = extra;
        consumers.Add(extra, n);
      }
      break;
    case Family::kConv:
      fused.op_type = "FusedConv";
      if (extra >= 0) {
        fused.inputs.resize(4, -1);
        fused.inputs[3] = extra;
        consumers.Add(extra, n);
      }
      break;
    case Family::kNone:
      return false;
  }
  if (extra_node >= 0) graph.nodes[extra_node].dead = true;
  if (act) {
    fused.attributes["activation"] = StringAttr(act->name);
    fused.attributes["activation_alpha"] = FloatAttr(act->alpha);
    fused.attributes["activation_beta"] = FloatAttr(act->beta);
    last = graph.nodes[act_node].outputs[0];
    graph.nodes[act_node].dead = true;
  }
  passes::SetOutput(graph, n, 0, last);
  return true;
}

}  // namespace

absl::Status FuseActivations(Graph& graph, int* changes) {
  return passes::RewriteEachNode(graph, changes, FuseAt);
}

}  // namespace flywheel::engine
