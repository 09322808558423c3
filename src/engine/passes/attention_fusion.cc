// Attention fusion: scaled dot-product attention as torch exports it from a hand-written module,
//   MatMul(Q, Kt) -> Div(sqrt d) | Mul(scale) -> [Add(mask)] -> Softmax(last axis) -> MatMul(., V)
// becomes com.flywheel Attention(Q, K, V[, mask]) with attributes `scale` and `k_transposed`
// (1: K is [B,H,D,Sk]; 0: [B,H,Sk,D]). When Kt comes from a Transpose read by nothing else, the
// Transpose is changed (or dropped) so that the kernel gets the untransposed K.
#include <numeric>
#include <vector>

#include "core/status.h"
#include "engine/passes/optimizer.h"
#include "engine/passes/pattern_util.h"

namespace flywheel::engine {
namespace {

int Out(const Node& node) { return node.outputs.size() == 1 ? node.outputs[0] : -1; }

int Index(const Graph& graph, const Node* node) {
  return static_cast<int>(node - graph.nodes.data());
}

// True when `v` is MatMul(...) or MatMul(...) scaled by a constant scalar: the attention scores.
bool IsScores(Graph& graph, int v) {
  Node* p = passes::ProducerOf(graph, v);
  if (p == nullptr) return false;
  if (passes::IsOp(*p, "MatMul")) return true;
  if (!(passes::IsOp(*p, "Div") || passes::IsOp(*p, "Mul")) || p->inputs.size() != 2) return false;
  for (int i = 0; i < 2; ++i) {
    Node* mm = passes::ProducerOf(graph, p->inputs[i]);
    if (mm != nullptr && passes::IsOp(*mm, "MatMul") &&
        passes::ScalarConstant(graph, p->inputs[1 - i]) && (i == 0 || p->op_type == "Mul")) {
      return true;
    }
  }
  return false;
}

bool FuseAt(Graph& graph, int softmax_i, passes::Consumers& consumers) {
  Node& softmax = graph.nodes[softmax_i];
  if (!passes::IsOp(softmax, "Softmax") || softmax.inputs.size() != 1 || Out(softmax) < 0) {
    return false;
  }
  const int scores = softmax.inputs[0];
  const int rank = passes::RankOf(graph, scores);
  const int64_t axis = softmax.GetInt("axis", graph.opset >= 13 ? -1 : 1);
  if (rank != 4 || (axis != -1 && axis != rank - 1)) return false;
  if (graph.values[scores].dtype != DataType::kFp32) return false;
  // Softmax(.) @ V
  int pv_i = consumers.Sole(Out(softmax));
  if (pv_i < 0 || !passes::IsOp(graph.nodes[pv_i], "MatMul") ||
      graph.nodes[pv_i].input(0) != Out(softmax) || graph.nodes[pv_i].inputs.size() != 2 ||
      Out(graph.nodes[pv_i]) < 0) {
    return false;
  }
  const int v = graph.nodes[pv_i].inputs[1];
  if (v == Out(softmax) || passes::RankOf(graph, v) != 4) return false;

  std::vector<int> dead = {softmax_i};
  // Walk back from the softmax input: [Add(mask)] <- [scale] <- MatMul(Q, Kt).
  int cur = scores;
  int mask = -1;
  float scale = 1.0f;
  Node* node = passes::ProducerOf(graph, cur);
  if (node == nullptr || consumers.Sole(cur) != softmax_i) return false;
  if (passes::IsOp(*node, "Add") && node->inputs.size() == 2) {
    // The scores side is the one produced by the scale or the MatMul.
    int pick = -1;
    for (int i = 0; i < 2 && pick < 0; ++i) {
      if (IsScores(graph, node->inputs[i])) pick = i;
    }
    if (pick < 0 || node->inputs[0] == node->inputs[1]) return false;
    mask = node->inputs[1 - pick];
    dead.push_back(Index(graph, node));
    cur = node->inputs[pick];
    node = passes::ProducerOf(graph, cur);
    if (node == nullptr || consumers.Sole(cur) != dead.back()) return false;
  }
  if ((passes::IsOp(*node, "Div") || passes::IsOp(*node, "Mul")) && node->inputs.size() == 2) {
    const bool div = node->op_type == "Div";
    int mm = -1;
    std::optional<double> c;
    if (div) {
      c = passes::ScalarConstant(graph, node->inputs[1]);
      mm = node->inputs[0];
    } else {
      for (int i = 0; i < 2 && !c; ++i) {
        c = passes::ScalarConstant(graph, node->inputs[1 - i]);
        mm = node->inputs[i];
      }
    }
    if (!c || *c == 0) return false;
    scale = static_cast<float>(div ? 1.0 / *c : *c);
    dead.push_back(Index(graph, node));
    cur = mm;
    node = passes::ProducerOf(graph, cur);
    if (node == nullptr || consumers.Sole(cur) != dead.back()) return false;
  }
  if (!passes::IsOp(*node, "MatMul") || node->inputs.size() != 2) return false;
  const int q = node->inputs[0];
  int k = node->inputs[1];
  if (passes::RankOf(graph, q) != 4 || passes::RankOf(graph, k) != 4) return false;
  if (graph.values[q].dtype != DataType::kFp32) return false;
  const int qk_i = Index(graph, node);
  dead.push_back(qk_i);

  // Prefer the untransposed K: fold the implicit last-two-dims swap into a Transpose producing Kt.
  int k_transposed = 1;
  Node* tr = passes::ProducerOf(graph, k);
  if (tr != nullptr && passes::IsOp(*tr, "Transpose") && consumers.Sole(k) == qk_i &&
      tr->inputs.size() == 1) {
    std::vector<int64_t> perm = tr->GetInts("perm");
    if (perm.size() == 4) {
      std::swap(perm[2], perm[3]);
      std::vector<int64_t> identity(4);
      std::iota(identity.begin(), identity.end(), 0);
      if (perm == identity) {
        dead.push_back(Index(graph, tr));
        k = tr->inputs[0];
      } else {
        tr->attributes["perm"].ints = perm;
        auto& shape = graph.values[k].shape;
        if (shape && shape->rank() == 4) {
          int64_t d2 = shape->dim(2);
          shape->set_dim(2, shape->dim(3));
          shape->set_dim(3, d2);
        }
      }
      k_transposed = 0;
    }
  }

  for (int n : dead) graph.nodes[n].dead = true;
  Node& att = graph.nodes[pv_i];
  att.op_type = "Attention";
  att.domain = std::string(kFlywheelDomain);
  att.attributes.clear();
  Attribute scale_attr;
  scale_attr.kind = Attribute::Kind::kFloat;
  scale_attr.f = scale;
  Attribute kt_attr;
  kt_attr.kind = Attribute::Kind::kInt;
  kt_attr.i = k_transposed;
  att.attributes["scale"] = scale_attr;
  att.attributes["k_transposed"] = kt_attr;
  att.inputs = {q, k, v};
  if (mask >= 0) att.inputs.push_back(mask);
  for (int in : att.inputs) consumers.Add(in, pv_i);
  return true;
}

}  // namespace

absl::Status FuseAttention(Graph& graph, int* changes) {
  return passes::RewriteEachNode(graph, changes, FuseAt);
}

}  // namespace flywheel::engine
