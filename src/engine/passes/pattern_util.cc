#include "engine/passes/pattern_util.h"

#include <algorithm>
#include <cmath>

namespace flywheel::engine::passes {

std::optional<double> ScalarConstant(const Graph& graph, int v) {
  const Tensor* t = graph.ConstantOf(v);
  if (t == nullptr || t->NumElements() != 1 || t->raw_data() == nullptr) return std::nullopt;
  switch (t->dtype()) {
    case DataType::kFp32:
      return t->data<float>()[0];
    case DataType::kFp64:
      return t->data<double>()[0];
    case DataType::kInt64:
      return static_cast<double>(t->data<int64_t>()[0]);
    case DataType::kInt32:
      return t->data<int32_t>()[0];
    default:
      return std::nullopt;
  }
}

bool IsScalarNear(const Graph& graph, int v, double want, double rel) {
  std::optional<double> got = ScalarConstant(graph, v);
  return got && std::abs(*got - want) <= rel * std::abs(want) + 1e-12;
}

std::optional<std::vector<int64_t>> IntsConstant(const Graph& graph, int v) {
  const Tensor* t = graph.ConstantOf(v);
  if (t == nullptr || (t->NumElements() > 0 && t->raw_data() == nullptr)) return std::nullopt;
  std::vector<int64_t> out(t->NumElements());
  if (t->dtype() == DataType::kInt64) {
    std::copy_n(t->data<int64_t>(), out.size(), out.begin());
  } else if (t->dtype() == DataType::kInt32) {
    std::copy_n(t->data<int32_t>(), out.size(), out.begin());
  } else {
    return std::nullopt;
  }
  return out;
}

const Tensor* FloatConstant(const Graph& graph, int v) {
  const Tensor* t = graph.ConstantOf(v);
  if (t == nullptr || t->dtype() != DataType::kFp32) return nullptr;
  if (t->NumElements() > 0 && t->raw_data() == nullptr) return nullptr;
  return t;
}

int RankOf(const Graph& graph, int v) {
  if (v < 0) return -1;
  const Value& value = graph.values[v];
  if (value.constant) return value.constant->rank();
  return value.shape ? value.shape->rank() : -1;
}

std::optional<std::vector<int64_t>> AxesOf(const Graph& graph, const Node& node, int input) {
  if (node.HasAttr("axes")) return node.GetInts("axes");
  int v = node.input(input);
  if (v < 0) return std::vector<int64_t>{};
  return IntsConstant(graph, v);
}

int AddConstant(Graph& graph, absl::string_view prefix, Tensor t) {
  Value v{.name = graph.UniqueName(prefix)};
  v.dtype = t.dtype();
  v.shape = t.shape();
  v.constant = std::move(t);
  return graph.AddValue(std::move(v));
}

Consumers::Consumers(const Graph& graph)
    : graph_(graph), consumers_(graph.Consumers()), is_output_(graph.values.size(), false) {
  for (int v : graph.outputs) is_output_[v] = true;
}

std::vector<int> Consumers::Of(int v) const {
  std::vector<int> live;
  if (v < 0 || v >= static_cast<int>(consumers_.size())) return live;
  for (int n : consumers_[v]) {
    if (graph_.nodes[n].dead) continue;
    // Stale entries: an edit may have taken `v` out of the node's inputs.
    const auto& in = graph_.nodes[n].inputs;
    if (std::find(in.begin(), in.end(), v) == in.end()) continue;
    if (std::find(live.begin(), live.end(), n) == live.end()) live.push_back(n);
  }
  return live;
}

int Consumers::Sole(int v) const {
  if (v < 0 || IsOutput(v)) return -1;
  std::vector<int> live = Of(v);
  return live.size() == 1 ? live[0] : -1;
}

void Consumers::Add(int v, int n) {
  if (v < 0) return;
  if (v >= static_cast<int>(consumers_.size())) {
    consumers_.resize(v + 1);
    is_output_.resize(v + 1, false);
  }
  consumers_[v].push_back(n);
}

bool Consumers::UnusedExcept(int v, int except) const {
  if (IsOutput(v)) return false;
  for (int n : Of(v)) {
    if (n != except) return false;
  }
  return true;
}

void Consumers::ReplaceUses(Graph& graph, int from, int to) {
  for (int n : Of(from)) {
    for (int& in : graph.nodes[n].inputs) {
      if (in == from) in = to;
    }
    Add(to, n);
  }
}

void Consumers::ReleaseIfUnused(Graph& graph, int v, int except) {
  if (v >= 0 && graph.values[v].constant && UnusedExcept(v, except)) {
    graph.values[v].constant.reset();
  }
}

Node* ProducerOf(Graph& graph, int v) {
  if (v < 0) return nullptr;
  int p = graph.values[v].producer;
  if (p < 0 || p >= static_cast<int>(graph.nodes.size()) || graph.nodes[p].dead) return nullptr;
  Node& node = graph.nodes[p];
  // Guard against a stale producer index.
  if (std::find(node.outputs.begin(), node.outputs.end(), v) == node.outputs.end()) return nullptr;
  return &node;
}

void SetOutput(Graph& graph, int n, int slot, int v) {
  graph.nodes[n].outputs[slot] = v;
  if (v >= 0) graph.values[v].producer = n;
}

absl::Status RewriteEachNode(Graph& graph, int* changes,
                             absl::FunctionRef<bool(Graph&, int, Consumers&)> fuse_at) {
  Consumers consumers(graph);
  int fused = 0;
  for (int n = 0; n < static_cast<int>(graph.nodes.size()); ++n) {
    if (fuse_at(graph, n, consumers)) ++fused;
  }
  if (changes != nullptr) *changes += fused;
  return fused > 0 ? graph.Compact() : absl::OkStatus();
}

}  // namespace flywheel::engine::passes
