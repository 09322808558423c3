// LayerNorm fusion: what torch exports for nn.LayerNorm before opset 17,
//   mean = ReduceMean(x, axes=[-1]); d = Sub(x, mean); var = ReduceMean(Pow(d, 2), axes=[-1])
//   y = Div(d, Sqrt(Add(var, eps))) [* gamma] [+ beta]
// becomes LayerNormalization(x, gamma, beta) with axis=-1 and epsilon=eps.
#include <algorithm>
#include <vector>

#include "core/status.h"
#include "engine/passes/optimizer.h"
#include "engine/passes/pattern_util.h"

namespace flywheel::engine {
namespace {

int Out(const Node& node) { return node.outputs.size() == 1 ? node.outputs[0] : -1; }

// The sole reader of `v` when it is op `op`, or -1.
int SoleOp(const Graph& graph, const passes::Consumers& consumers, int v, absl::string_view op) {
  int c = consumers.Sole(v);
  if (c < 0 || !passes::IsOp(graph.nodes[c], op) || Out(graph.nodes[c]) < 0) return -1;
  return c;
}

// ReduceMean over the last axis only, keeping dims.
bool IsLastAxisMean(const Graph& graph, const Node& node, int rank) {
  if (!passes::IsOp(node, "ReduceMean") || node.GetInt("keepdims", 1) != 1) return false;
  auto axes = passes::AxesOf(graph, node, 1);
  if (!axes || axes->size() != 1) return false;
  return (*axes)[0] == -1 || (rank > 0 && (*axes)[0] == rank - 1);
}

// The other operand of binary `node` whose input `pos` is `x`; -1 when `x` is not there.
int OtherAt(const Node& node, int x, int pos) {
  if (node.inputs.size() != 2 || node.inputs[pos] != x) return -1;
  return node.inputs[1 - pos];
}

int OtherAny(const Node& node, int x) {
  int o = OtherAt(node, x, 0);
  return o >= 0 ? o : OtherAt(node, x, 1);
}

// A 1-D FP32 constant with `n` elements (n < 0: any), or nullptr.
const Tensor* Vector(const Graph& graph, int v, int64_t n) {
  const Tensor* t = passes::FloatConstant(graph, v);
  if (t == nullptr || t->rank() != 1 || (n >= 0 && t->dim(0) != n)) return nullptr;
  return t;
}

bool FuseAt(Graph& graph, int mean_i, passes::Consumers& consumers) {
  Node& mean = graph.nodes[mean_i];
  if (mean.inputs.empty() || Out(mean) < 0) return false;
  const int x = mean.inputs[0];
  const int rank = passes::RankOf(graph, x);
  if (!IsLastAxisMean(graph, mean, rank) || graph.values[x].dtype != DataType::kFp32) return false;
  int64_t d_model = -1;
  if (graph.values[x].shape && rank > 0) d_model = graph.values[x].shape->dim(rank - 1);

  int sub_i = SoleOp(graph, consumers, Out(mean), "Sub");
  if (sub_i < 0 || graph.nodes[sub_i].inputs != std::vector<int>{x, Out(mean)}) return false;
  const int d = Out(graph.nodes[sub_i]);
  // d is read by the Pow and the Div, nothing else.
  std::vector<int> d_readers = consumers.Of(d);
  if (d_readers.size() != 2 || consumers.IsOutput(d)) return false;
  int pow_i = -1, div_i = -1;
  for (int r : d_readers) {
    if (passes::IsOp(graph.nodes[r], "Pow")) pow_i = r;
    if (passes::IsOp(graph.nodes[r], "Div")) div_i = r;
  }
  if (pow_i < 0 || div_i < 0 || Out(graph.nodes[pow_i]) < 0) return false;
  if (OtherAt(graph.nodes[pow_i], d, 0) < 0 ||
      !passes::IsScalarNear(graph, graph.nodes[pow_i].inputs[1], 2.0)) {
    return false;
  }
  int var_i = consumers.Sole(Out(graph.nodes[pow_i]));
  if (var_i < 0 || !IsLastAxisMean(graph, graph.nodes[var_i], rank) ||
      graph.nodes[var_i].input(0) != Out(graph.nodes[pow_i]) || Out(graph.nodes[var_i]) < 0) {
    return false;
  }
  int eps_i = SoleOp(graph, consumers, Out(graph.nodes[var_i]), "Add");
  if (eps_i < 0) return false;
  int eps_v = OtherAny(graph.nodes[eps_i], Out(graph.nodes[var_i]));
  std::optional<double> eps = passes::ScalarConstant(graph, eps_v);
  if (!eps || *eps < 0) return false;
  int sqrt_i = SoleOp(graph, consumers, Out(graph.nodes[eps_i]), "Sqrt");
  if (sqrt_i < 0 || consumers.Sole(Out(graph.nodes[sqrt_i])) != div_i) return false;
  const Node& div = graph.nodes[div_i];
  if (div.inputs != std::vector<int>{d, Out(graph.nodes[sqrt_i])} || Out(div) < 0) return false;

  std::vector<int> dead = {sub_i, pow_i, var_i, eps_i, sqrt_i, div_i};
  int result = Out(div);
  int gamma = -1, beta = -1;
  if (int mul_i = SoleOp(graph, consumers, result, "Mul"); mul_i >= 0) {
    int g = OtherAny(graph.nodes[mul_i], result);
    if (Vector(graph, g, d_model) != nullptr) {
      gamma = g;
      dead.push_back(mul_i);
      result = Out(graph.nodes[mul_i]);
    }
  }
  if (int add_i = SoleOp(graph, consumers, result, "Add"); add_i >= 0) {
    int b = OtherAny(graph.nodes[add_i], result);
    const Tensor* g = graph.ConstantOf(gamma);
    if (Vector(graph, b, g ? g->dim(0) : d_model) != nullptr) {
      beta = b;
      dead.push_back(add_i);
      result = Out(graph.nodes[add_i]);
    }
  }
  if (gamma < 0) {
    // LayerNormalization needs a scale: ones, when the normalised size is known.
    const Tensor* b = graph.ConstantOf(beta);
    int64_t n = b ? b->dim(0) : d_model;
    if (n < 0) return false;
    Tensor ones = Tensor::Allocate(DataType::kFp32, Shape{n});
    std::fill_n(ones.data<float>(), n, 1.0f);
    gamma = passes::AddConstant(graph, graph.values[x].name + "_ln_scale", std::move(ones));
  }

  for (int n : dead) graph.nodes[n].dead = true;
  Node& ln = graph.nodes[mean_i];
  ln.op_type = "LayerNormalization";
  ln.domain.clear();
  ln.attributes.clear();
  Attribute axis;
  axis.kind = Attribute::Kind::kInt;
  axis.i = -1;
  Attribute epsilon;
  epsilon.kind = Attribute::Kind::kFloat;
  epsilon.f = static_cast<float>(*eps);
  ln.attributes["axis"] = axis;
  ln.attributes["epsilon"] = epsilon;
  ln.inputs = {x, gamma};
  if (beta >= 0) ln.inputs.push_back(beta);
  consumers.Add(gamma, mean_i);
  consumers.Add(beta, mean_i);
  passes::SetOutput(graph, mean_i, 0, result);
  return true;
}

}  // namespace

absl::Status FuseLayerNorm(Graph& graph, int* changes) {
  return passes::RewriteEachNode(graph, changes, [](Graph& g, int n, passes::Consumers& consumers) {
    return passes::IsOp(g.nodes[n], "ReduceMean") && FuseAt(g, n, consumers);
  });
}

}  // namespace flywheel::engine
