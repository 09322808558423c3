// Channels-last (NHWC) execution of 2-D convolution chains. oneDNN's fast convolutions compute in
// NHWC or blocked layouts; fed NCHW tensors, every Conv pays a reorder on each side. This pass
// moves whole chains of Conv / FusedConv / MaxPool into NHWC so that only the chain's exit can
// need a Transpose:
//   Conv, FusedConv (2-D, constant W)  => FusedConv with channels_last_y = 1 (Y and Z NHWC), and
//                                         channels_last_x = 1 when X is NHWC (else oneDNN
//                                         reorders the NCHW X itself, as it would have anyway)
//   MaxPool (2-D, no Indices) reading an NHWC value => com.flywheel NhwcMaxPool
//   GlobalAveragePool reading an NHWC value         => com.flywheel NhwcGlobalAveragePool, whose
//                                                      [N,C,1,1] output is NCHW as before
// A value produced in NHWC that something else still reads (or a graph output) gets a Transpose
// back under its original name, so the rest of the graph is unchanged.
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "core/status.h"
#include "engine/passes/optimizer.h"

namespace flywheel::engine {
namespace {

constexpr int64_t kToNhwc[] = {0, 2, 3, 1};
constexpr int64_t kToNchw[] = {0, 3, 1, 2};

bool IsRank4(const Graph& graph, int v) {
  return v >= 0 && graph.values[v].shape && graph.values[v].shape->rank() == 4;
}

bool IsConv2D(const Graph& graph, const Node& n) {
  const bool conv = (n.domain.empty() && n.op_type == "Conv") ||
                    (n.domain == kFlywheelDomain && n.op_type == "FusedConv");
  if (!conv || n.GetInt("channels_last_y", 0) != 0) return false;
  if (n.outputs.size() != 1 || n.outputs[0] < 0 || !IsRank4(graph, n.input(0))) return false;
  const Tensor* w = graph.ConstantOf(n.input(1));
  if (w == nullptr || w->rank() != 4 || w->dtype() != DataType::kFp32) return false;
  return n.input(3) < 0 || IsRank4(graph, n.input(3));
}

bool IsMaxPool2D(const Graph& graph, const Node& n) {
  if (!n.domain.empty() || n.op_type != "MaxPool" || !IsRank4(graph, n.input(0))) return false;
  if (n.outputs.empty() || n.outputs[0] < 0) return false;
  for (size_t i = 1; i < n.outputs.size(); ++i) {
    if (n.outputs[i] >= 0) return false;  // Indices are NCHW offsets
  }
  return n.GetInts("kernel_shape").size() == 2;
}

bool IsGlobalAveragePool2D(const Graph& graph, const Node& n) {
  return n.domain.empty() && n.op_type == "GlobalAveragePool" && n.outputs.size() == 1 &&
         n.outputs[0] >= 0 && IsRank4(graph, n.input(0));
}

std::optional<Shape> Permuted(const std::optional<Shape>& s, const int64_t* perm) {
  if (!s || s->rank() != 4) return std::nullopt;
  Shape out;
  for (int i = 0; i < 4; ++i) out.push_back((*s)[perm[i]]);
  return out;
}

Node TransposeNode(Graph& graph, int from, int to, const int64_t* perm) {
  Node t;
  t.op_type = "Transpose";
  t.name = graph.UniqueName(graph.values[to].name + "_transpose");
  t.inputs = {from};
  t.outputs = {to};
  Attribute a;
  a.kind = Attribute::Kind::kInts;
  a.ints.assign(perm, perm + 4);
  t.attributes["perm"] = std::move(a);
  return t;
}

}  // namespace

absl::Status ConvertToChannelsLast(Graph& graph, int* changes) {
  const std::vector<std::vector<int>> consumers = graph.Consumers();
  const size_t original_nodes = graph.nodes.size();
  // NCHW value -> its NHWC twin, for values produced by a converted node and for entry Transposes.
  absl::flat_hash_map<int, int> nhwc;
  std::vector<int> produced;  // NCHW values whose producer now writes the NHWC twin instead
  std::vector<Node> added;
  int converted = 0;

  auto twin_value = [&](int v) {
    Value t;
    t.name = graph.UniqueName(graph.values[v].name + "_nhwc");
    t.dtype = graph.values[v].dtype;
    t.shape = Permuted(graph.values[v].shape, kToNhwc);
    return graph.AddValue(std::move(t));
  };
  // The NHWC form of `v`, adding an entry Transpose the first time an NCHW value is asked for.
  auto nhwc_input = [&](int v) {
    auto it = nhwc.find(v);
    if (it != nhwc.end()) return it->second;
    const int t = twin_value(v);
    added.push_back(TransposeNode(graph, v, t, kToNhwc));
    nhwc.emplace(v, t);
    return t;
  };
  // A conv whose input is NCHW is converted only when a reader of its output will be NHWC too:
  // otherwise the two Transposes would merely replace oneDNN's own reorders.
  auto feeds_chain = [&](int v) {
    for (int c : consumers[v]) {
      const Node& n = graph.nodes[c];
      if ((IsConv2D(graph, n) && n.input(0) == v) || IsMaxPool2D(graph, n) ||
          IsGlobalAveragePool2D(graph, n)) {
        return true;
      }
    }
    return false;
  };

  // graph.nodes does not grow in this loop (new nodes wait in `added`), so `n` stays valid.
  for (size_t i = 0; i < original_nodes; ++i) {
    Node& n = graph.nodes[i];
    if (n.dead) continue;
    const int x = n.input(0);
    const bool x_nhwc = x >= 0 && nhwc.contains(x);
    if (IsConv2D(graph, n) && (x_nhwc || feeds_chain(n.outputs[0]))) {
      if (n.domain.empty()) {
        n.domain = std::string(kFlywheelDomain);
        n.op_type = "FusedConv";
      }
      Attribute one;
      one.kind = Attribute::Kind::kInt;
      one.i = 1;
      n.attributes["channels_last_y"] = one;
      if (x_nhwc) {
        n.attributes["channels_last_x"] = one;
        n.inputs[0] = nhwc.at(x);
      }
      if (n.input(3) >= 0) n.inputs[3] = nhwc_input(n.input(3));
    } else if (x_nhwc && IsMaxPool2D(graph, n)) {
      n.domain = std::string(kFlywheelDomain);
      n.op_type = "NhwcMaxPool";
      n.inputs[0] = nhwc.at(x);
    } else if (x_nhwc && IsGlobalAveragePool2D(graph, n)) {
      n.domain = std::string(kFlywheelDomain);
      n.op_type = "NhwcGlobalAveragePool";
      n.inputs[0] = nhwc.at(x);
      ++converted;
      continue;  // its output keeps the NCHW value
    } else {
      continue;
    }
    ++converted;
    const int y = n.outputs[0];
    const int t = twin_value(y);
    n.outputs[0] = t;
    nhwc.emplace(y, t);
    produced.push_back(y);
  }
  if (converted == 0) return absl::OkStatus();
  for (Node& t : added) graph.nodes.push_back(std::move(t));
  // Exit Transposes for the NCHW values that something still reads.
  const std::vector<std::vector<int>> readers = graph.Consumers();
  for (int y : produced) {
    if (readers[y].empty() && !graph.IsGraphOutput(y)) continue;
    Node back = TransposeNode(graph, nhwc.at(y), y, kToNchw);
    graph.nodes.push_back(std::move(back));
  }
  if (changes != nullptr) *changes += converted;
  return graph.Compact();
}

}  // namespace flywheel::engine
