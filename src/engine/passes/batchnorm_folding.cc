// BatchNormalization folding: an inference BatchNormalization after a Conv, Gemm or 2-D MatMul
// with constant weights becomes a per-output-channel scale of the weights and a new bias:
//   s = gamma / sqrt(var + eps),  W' = W * s,  b' = (b - mean) * s + beta.
// The new weights replace the old ones at once, so the old constant is released immediately
// rather than living until the final dead-node elimination.
#include <cmath>
#include <vector>

#include "core/status.h"
#include "engine/passes/optimizer.h"
#include "engine/passes/pattern_util.h"

namespace flywheel::engine {
namespace {

struct BnParams {
  std::vector<float> scale;  // s per channel
  std::vector<float> shift;  // beta - mean * s per channel
};

// The folded per-channel scale and shift of an inference BatchNormalization with constant FP32
// parameters of `channels` elements each; nullopt when it does not qualify.
std::optional<BnParams> ReadBatchNorm(const Graph& graph, const Node& bn,
                                      const passes::Consumers& consumers, int64_t channels) {
  if (bn.inputs.size() < 5 || bn.GetInt("training_mode", 0) != 0) return std::nullopt;
  // Running-statistics outputs are training-only; they must be unused.
  for (size_t k = 1; k < bn.outputs.size(); ++k) {
    int v = bn.outputs[k];
    if (v >= 0 && (consumers.IsOutput(v) || !consumers.Of(v).empty())) return std::nullopt;
  }
  const Tensor* gamma = passes::FloatConstant(graph, bn.input(1));
  const Tensor* beta = passes::FloatConstant(graph, bn.input(2));
  const Tensor* mean = passes::FloatConstant(graph, bn.input(3));
  const Tensor* var = passes::FloatConstant(graph, bn.input(4));
  if (!gamma || !beta || !mean || !var) return std::nullopt;
  for (const Tensor* t : {gamma, beta, mean, var}) {
    if (t->NumElements() != channels) return std::nullopt;
  }
  const float eps = bn.GetFloat("epsilon", 1e-5f);
  BnParams p;
  p.scale.resize(channels);
  p.shift.resize(channels);
  for (int64_t c = 0; c < channels; ++c) {
    float s = gamma->data<float>()[c] / std::sqrt(var->data<float>()[c] + eps);
    p.scale[c] = s;
    p.shift[c] = beta->data<float>()[c] - mean->data<float>()[c] * s;
  }
  return p;
}

// Conv(X, W[, B]) -> BN.
bool FoldIntoConv(Graph& graph, int n, Node& bn, passes::Consumers& consumers) {
  Node& conv = graph.nodes[n];
  const Tensor* w = passes::FloatConstant(graph, conv.input(1));
  if (w == nullptr || w->rank() < 3) return false;
  const int64_t m = w->dim(0);
  const Tensor* b = nullptr;
  if (conv.input(2) >= 0) {
    b = passes::FloatConstant(graph, conv.input(2));
    if (b == nullptr || b->NumElements() != m) return false;
  }
  std::optional<BnParams> p = ReadBatchNorm(graph, bn, consumers, m);
  if (!p) return false;

  Tensor new_w = Tensor::Allocate(DataType::kFp32, w->shape());
  const int64_t per_channel = w->NumElements() / std::max<int64_t>(m, 1);
  for (int64_t c = 0; c < m; ++c) {
    const float* src = w->data<float>() + c * per_channel;
    float* dst = new_w.data<float>() + c * per_channel;
    for (int64_t i = 0; i < per_channel; ++i) dst[i] = src[i] * p->scale[c];
  }
  Tensor new_b = Tensor::Allocate(DataType::kFp32, Shape{m});
  for (int64_t c = 0; c < m; ++c) {
    float bias = b ? b->data<float>()[c] : 0.0f;
    new_b.data<float>()[c] = bias * p->scale[c] + p->shift[c];
  }
  const int old_w = conv.input(1), old_b = conv.input(2);
  const std::string w_name = graph.values[old_w].name;
  int w_id = passes::AddConstant(graph, w_name + "_bnfold", std::move(new_w));
  int b_id = passes::AddConstant(graph, w_name + "_bnfold_bias", std::move(new_b));
  if (conv.inputs.size() < 3) conv.inputs.resize(3, -1);
  conv.inputs[1] = w_id;
  conv.inputs[2] = b_id;
  consumers.Add(w_id, n);
  consumers.Add(b_id, n);
  consumers.ReleaseIfUnused(graph, old_w, -1);
  consumers.ReleaseIfUnused(graph, old_b, -1);
  return true;
}

// Gemm(A, B[, C]) -> BN over its N output columns; a 2-D MatMul becomes such a Gemm.
bool FoldIntoGemm(Graph& graph, int n, Node& bn, passes::Consumers& consumers) {
  Node& gemm = graph.nodes[n];
  const bool is_matmul = gemm.op_type == "MatMul";
  if (is_matmul && (passes::RankOf(graph, gemm.input(0)) != 2)) return false;
  const Tensor* w = passes::FloatConstant(graph, gemm.input(1));
  if (w == nullptr || w->rank() != 2) return false;
  const bool trans_b = !is_matmul && gemm.GetInt("transB", 0) != 0;
  const int64_t cols = trans_b ? w->dim(0) : w->dim(1);
  const float beta = is_matmul ? 0.0f : gemm.GetFloat("beta", 1.0f);
  std::vector<float> c(cols, 0.0f);
  if (!is_matmul && gemm.input(2) >= 0) {
    const Tensor* ct = passes::FloatConstant(graph, gemm.input(2));
    if (ct == nullptr) return false;
    // Only a bias that is the same for every row: scalar, [N] or [1, N].
    bool per_column =
        ct->NumElements() == cols && (ct->rank() == 1 || (ct->rank() == 2 && ct->dim(0) == 1));
    if (ct->NumElements() != 1 && !per_column) return false;
    for (int64_t j = 0; j < cols; ++j) {
      c[j] = beta * ct->data<float>()[ct->NumElements() == 1 ? 0 : j];
    }
  }
  std::optional<BnParams> p = ReadBatchNorm(graph, bn, consumers, cols);
  if (!p) return false;

  Tensor new_w = Tensor::Allocate(DataType::kFp32, w->shape());
  const float* src = w->data<float>();
  float* dst = new_w.data<float>();
  for (int64_t r = 0; r < w->dim(0); ++r) {
    for (int64_t j = 0; j < w->dim(1); ++j) {
      const int64_t col = trans_b ? r : j;
      dst[r * w->dim(1) + j] = src[r * w->dim(1) + j] * p->scale[col];
    }
  }
  Tensor new_c = Tensor::Allocate(DataType::kFp32, Shape{cols});
  for (int64_t j = 0; j < cols; ++j) new_c.data<float>()[j] = c[j] * p->scale[j] + p->shift[j];
  const int old_w = gemm.input(1), old_c = gemm.input(2);
  const std::string w_name = graph.values[old_w].name;
  int w_id = passes::AddConstant(graph, w_name + "_bnfold", std::move(new_w));
  int c_id = passes::AddConstant(graph, w_name + "_bnfold_bias", std::move(new_c));
  Node& g = graph.nodes[n];
  if (is_matmul) {
    g.op_type = "Gemm";
    g.attributes.clear();
  }
  g.inputs.resize(3, -1);
  g.inputs[1] = w_id;
  g.inputs[2] = c_id;
  Attribute one;
  one.kind = Attribute::Kind::kFloat;
  one.f = 1.0f;
  g.attributes["beta"] = one;
  consumers.Add(w_id, n);
  consumers.Add(c_id, n);
  consumers.ReleaseIfUnused(graph, old_w, -1);
  if (!is_matmul) consumers.ReleaseIfUnused(graph, old_c, -1);
  return true;
}

}  // namespace

absl::Status FoldBatchNorm(Graph& graph, int* changes) {
  passes::Consumers consumers(graph);
  int folded = 0;
  for (int n = 0; n < static_cast<int>(graph.nodes.size()); ++n) {
    Node& prod = graph.nodes[n];
    const bool conv = passes::IsOp(prod, "Conv");
    const bool gemm = passes::IsOp(prod, "Gemm") || passes::IsOp(prod, "MatMul");
    if (!conv && !gemm) continue;
    if (prod.outputs.size() != 1 || prod.outputs[0] < 0) continue;
    int y = prod.outputs[0];
    int c = consumers.Sole(y);
    if (c < 0 || !passes::IsOp(graph.nodes[c], "BatchNormalization")) continue;
    Node& bn = graph.nodes[c];
    if (bn.input(0) != y || bn.outputs.empty() || bn.outputs[0] < 0) continue;
    bool ok = conv ? FoldIntoConv(graph, n, bn, consumers) : FoldIntoGemm(graph, n, bn, consumers);
    if (!ok) continue;
    passes::SetOutput(graph, n, 0, graph.nodes[c].outputs[0]);
    graph.nodes[c].dead = true;
    ++folded;
  }
  if (changes != nullptr) *changes += folded;
  return folded > 0 ? graph.Compact() : absl::OkStatus();
}

}  // namespace flywheel::engine
