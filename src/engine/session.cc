#include "engine/session.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "engine/exec_plan.h"
#include "engine/heap.h"
#include "engine/onnx_loader.h"
#include "engine/passes/optimizer.h"

namespace flywheel::engine {
namespace {

// The smallest embedding table that integer input `v` indexes through Gather, following the
// shape-only ops that torch exports put between an id input and its lookup. 0 when none.
int64_t IndexBound(const Graph& graph, int v, const std::vector<std::vector<int>>& consumers) {
  int64_t bound = std::numeric_limits<int64_t>::max();
  std::vector<int> todo = {v};
  std::vector<bool> seen(graph.values.size(), false);
  while (!todo.empty()) {
    int cur = todo.back();
    todo.pop_back();
    if (seen[cur]) continue;
    seen[cur] = true;
    for (int n : consumers[cur]) {
      const Node& node = graph.nodes[n];
      const std::string& op = node.op_type;
      if (op == "Gather" && node.input(1) == cur && graph.IsConstant(node.input(0))) {
        const Tensor& table = *graph.ConstantOf(node.input(0));
        int64_t axis = node.GetInt("axis", 0);
        if (axis < 0) axis += table.rank();
        if (axis >= 0 && axis < table.rank()) bound = std::min(bound, table.dim(axis));
      } else if (op == "Cast" || op == "Reshape" || op == "Flatten" || op == "Unsqueeze" ||
                 op == "Squeeze" || op == "Identity" || op == "Transpose" || op == "Concat") {
        for (int out : node.outputs) {
          if (out >= 0) todo.push_back(out);
        }
      }
    }
  }
  return bound == std::numeric_limits<int64_t>::max() ? 0 : bound;
}

TensorInfo InfoOf(const Graph& graph, int v) {
  const Value& value = graph.values[v];
  TensorInfo info{.name = value.name, .dtype = value.dtype};
  if (value.shape) info.dims.assign(value.shape->dims().begin(), value.shape->dims().end());
  return info;
}

}  // namespace

Session::Session() = default;
Session::~Session() = default;

absl::Status Session::Init(Graph graph, const SessionOptions& options) {
  FW_RETURN_IF_ERROR(CheckOperatorsSupported(graph));
  auto consumers = graph.Consumers();
  for (int v : graph.inputs) {
    TensorInfo info = InfoOf(graph, v);
    if (IsInteger(info.dtype)) info.index_bound = IndexBound(graph, v, consumers);
    inputs_.push_back(std::move(info));
  }
  for (int v : graph.outputs) outputs_.push_back(InfoOf(graph, v));
  for (const Value& v : graph.values) {
    if (v.constant) weight_bytes_ += v.constant->ByteSize();
  }
  if (options.optimize) FW_RETURN_IF_ERROR(OptimizeGraph(graph));
  FW_ASSIGN_OR_RETURN(plan_, ExecPlan::Create(std::move(graph), options));
  // Loading frees the parsed model and every weight that kernels re-packed; hand the freed heap
  // back to the system so that a loaded model costs its weights once, not twice.
  ReturnFreedHeap();
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Session>> Session::Load(const std::string& path,
                                                       const SessionOptions& options) {
  UseMmapForLargeBuffers();
  FW_ASSIGN_OR_RETURN(Graph graph, LoadOnnxFile(path));
  std::unique_ptr<Session> session(new Session());
  absl::Status status = session->Init(std::move(graph), options);
  if (!status.ok()) {
    // Name the model: the loader's own errors do, the later stages' do not.
    return absl::Status(status.code(), absl::StrCat("'", path, "': ", status.message()));
  }
  return session;
}

absl::StatusOr<std::unique_ptr<Session>> Session::LoadFromMemory(absl::string_view bytes,
                                                                 const std::string& model_dir,
                                                                 const SessionOptions& options) {
  UseMmapForLargeBuffers();
  FW_ASSIGN_OR_RETURN(Graph graph, LoadOnnxBytes(bytes, model_dir, "model"));
  std::unique_ptr<Session> session(new Session());
  FW_RETURN_IF_ERROR(session->Init(std::move(graph), options));
  return session;
}

absl::Status Session::Run(absl::Span<const Tensor> inputs, std::vector<Tensor>* outputs) const {
  return plan_->Run(inputs, outputs);
}

absl::StatusOr<std::vector<Tensor>> Session::Run(absl::Span<const Tensor> inputs) const {
  std::vector<Tensor> outputs;
  FW_RETURN_IF_ERROR(plan_->Run(inputs, &outputs));
  return outputs;
}

std::map<std::string, int> Session::OpCounts() const {
  std::map<std::string, int> counts;
  for (const Node& node : plan_->graph().nodes) ++counts[node.op_type];
  return counts;
}

size_t Session::WeightBytes() const { return weight_bytes_; }

}  // namespace flywheel::engine
