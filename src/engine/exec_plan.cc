#include "engine/exec_plan.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/heap.h"
#include "engine/kernels/registry.h"

namespace flywheel::engine {
namespace {

constexpr size_t kAlign = kTensorAlignment;
size_t AlignUp(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// A block of the arena: live from node `first` to node `last` (inclusive).
struct Block {
  size_t size;
  int first, last;
  size_t* offset;  // where to store the placement
};

// Places blocks so that two blocks whose lifetimes overlap never share bytes: largest first, each
// at the lowest offset that fits between the blocks already placed. Returns the arena size.
size_t PlaceBlocks(std::vector<Block>& blocks) {
  std::sort(blocks.begin(), blocks.end(), [](const Block& a, const Block& b) {
    return a.size != b.size ? a.size > b.size : a.first < b.first;
  });
  std::vector<const Block*> placed;
  std::vector<std::pair<size_t, size_t>> busy;  // [begin, end) of overlapping placed blocks
  size_t total = 0;
  for (Block& b : blocks) {
    busy.clear();
    for (const Block* p : placed) {
      if (p->first <= b.last && b.first <= p->last)
        busy.emplace_back(*p->offset, *p->offset + p->size);
    }
    std::sort(busy.begin(), busy.end());
    size_t offset = 0;
    for (const auto& [begin, end] : busy) {
      if (offset + b.size <= begin) break;
      offset = std::max(offset, end);
    }
    *b.offset = offset;
    total = std::max(total, offset + b.size);
    placed.push_back(&b);
  }
  return total;
}

}  // namespace

// Per-run state: the value table, the arena and its plan. A state serves one Run at a time and is
// reused by later runs, so a run with the shapes of the previous one allocates nothing.
class ExecState {
 public:
  explicit ExecState(const ExecPlan& plan)
      : plan_(plan),
        values_(plan.graph_.values.size()),
        value_offset_(values_.size(), 0),
        value_size_(values_.size(), 0),
        alias_root_(values_.size(), -1),
        scratch_offset_(plan.graph_.nodes.size(), 0),
        scratch_size_(plan.graph_.nodes.size(), 0),
        scratch_used_(plan.graph_.nodes.size(), 0) {
    for (size_t v = 0; v < values_.size(); ++v) {
      if (plan.graph_.values[v].constant) values_[v] = *plan.graph_.values[v].constant;
    }
    size_t max_outputs = 0;
    for (const Node& node : plan.graph_.nodes)
      max_outputs = std::max(max_outputs, node.outputs.size());
    omitted_outputs_.resize(max_outputs);
  }
  ~ExecState() {
    if (arena_ != nullptr) AlignedFree(arena_);
  }

  absl::Status Run(absl::Span<const Tensor> inputs, std::vector<Tensor>* outputs);

 private:
  friend class KernelContext;
  absl::StatusOr<Tensor*> Allocate(int value, DataType dtype, const Shape& shape);
  void* Scratch(int node, size_t bytes);
  void MakePlan();

  const ExecPlan& plan_;
  std::vector<Tensor> values_;
  std::vector<Tensor>* outputs_ = nullptr;
  int current_node_ = -1;

  // The memory plan, keyed by the input shapes it was made for.
  bool planned_ = false;
  bool stale_ = false;  // a run needed more than the plan gave; re-plan after it
  std::vector<Shape> plan_key_;
  std::vector<size_t> value_offset_, value_size_;
  std::vector<int> alias_root_;  // value whose arena block this value's buffer lies in
  std::vector<size_t> scratch_offset_, scratch_size_, scratch_used_;
  char* arena_ = nullptr;
  size_t arena_bytes_ = 0;
  // Scratch buffers of the running node when it is unplanned or outgrew its plan.
  std::vector<Tensor> heap_;
  // Outputs a kernel wrote although the model omitted them (views on scratch), by output index.
  std::vector<Tensor> omitted_outputs_;
};

const Tensor* KernelContext::input(int i) const {
  int v = node_->input(i);
  if (v < 0) return nullptr;
  const Tensor& t = state_->values_[v];
  return t.empty() ? nullptr : &t;
}

absl::StatusOr<const Tensor*> KernelContext::RequiredInput(int i) const {
  const Tensor* t = input(i);
  if (t == nullptr) return Error("required input ", i, " is missing");
  return t;
}

absl::StatusOr<Tensor*> KernelContext::AllocateOutput(int i, DataType dtype, const Shape& shape) {
  int v = i < num_outputs() ? node_->outputs[i] : -1;
  if (v < 0) {
    // An omitted optional output still needs somewhere to go; give it a scratch tensor.
    size_t bytes = static_cast<size_t>(shape.NumElements()) * DataTypeSize(dtype);
    Tensor& slot = state_->omitted_outputs_[i];
    slot = Tensor::View(dtype, shape, Scratch(bytes));
    return &slot;
  }
  return state_->Allocate(v, dtype, shape);
}

absl::Status KernelContext::ForwardInput(int i, int j, const Shape& shape) {
  const Tensor* in = input(j);
  if (in == nullptr) return Error("input ", j, " is missing");
  if (shape.NumElements() != in->NumElements()) {
    return Error("cannot view ", in->shape().ToString(), " as ", shape.ToString());
  }
  int v = node_->outputs[i];
  if (v < 0) return absl::OkStatus();
  if (state_->plan_.output_slot_[v] >= 0 || in->dtype() == DataType::kBytes) {
    // A graph output must own its buffer: copy.
    FW_ASSIGN_OR_RETURN(Tensor * out, AllocateOutput(i, in->dtype(), shape));
    if (in->dtype() == DataType::kBytes) {
      out->strings() = in->strings();
    } else if (in->ByteSize() > 0) {
      std::memcpy(out->raw_data(), in->raw_data(), in->ByteSize());
    }
    return absl::OkStatus();
  }
  int u = node_->inputs[j];
  state_->values_[v] = in->Reshaped(shape);
  state_->alias_root_[v] = state_->alias_root_[u];
  return absl::OkStatus();
}

void* KernelContext::Scratch(size_t bytes) { return state_->Scratch(state_->current_node_, bytes); }

ThreadPool& KernelContext::pool() const { return state_->plan_.pool(); }

absl::StatusOr<Tensor*> ExecState::Allocate(int v, DataType dtype, const Shape& shape) {
  const std::string& name = plan_.graph_.values[v].name;
  if (!shape.IsFullyDefined()) {
    return absl::InternalError(
        absl::StrCat("output '", name, "' allocated with undefined shape ", shape.ToString()));
  }
  if (dtype != DataType::kBytes) {
    // Element count with overflow detection; messages are built only on failure (no allocation).
    size_t raw = DataTypeSize(dtype);
    bool overflow = false;
    for (int64_t d : shape.dims()) {
      overflow = overflow || (d != 0 && raw > plan_.max_tensor_bytes_ / static_cast<size_t>(d));
      raw *= static_cast<size_t>(d);
    }
    if (overflow || raw > plan_.max_tensor_bytes_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          plan_.graph_.nodes[current_node_].Describe(), ": tensor '", name, "' (",
          DataTypeName(dtype), " ", shape.ToString(), ") is above the session's limit of ",
          plan_.max_tensor_bytes_, " bytes per tensor"));
    }
  }
  Tensor& slot = values_[v];
  int out = plan_.output_slot_[v];
  if (out >= 0) {
    // Graph outputs go straight into the caller's tensors, reused when they still fit.
    Tensor& o = (*outputs_)[out];
    if (!(o.dtype() == dtype && o.shape() == shape && o.unique())) {
      FW_ASSIGN_OR_RETURN(o,
                          Tensor::SafeAllocate(dtype, shape, absl::StrCat("output '", name, "'")));
    }
    slot = o;
    alias_root_[v] = -1;
    return &slot;
  }
  if (dtype == DataType::kBytes) {
    slot = Tensor::Allocate(dtype, shape);
    alias_root_[v] = -1;
    return &slot;
  }
  size_t bytes = AlignUp(static_cast<size_t>(shape.NumElements()) * DataTypeSize(dtype));
  alias_root_[v] = v;
  if (planned_ && bytes <= value_size_[v] && value_offset_[v] + bytes <= arena_bytes_) {
    slot = Tensor::View(dtype, shape, arena_ + value_offset_[v]);
    return &slot;
  }
  if (planned_) stale_ = true;
  // Unplanned: a buffer of its own, freed when the value's last reader is done (values_ holds the
  // only reference), so a recording run peaks at the live set, not the sum of all tensors.
  FW_ASSIGN_OR_RETURN(slot,
                      Tensor::SafeAllocate(dtype, shape, absl::StrCat("tensor '", name, "'")));
  value_size_[v] = std::max(value_size_[v], bytes);
  return &slot;
}

void* ExecState::Scratch(int node, size_t bytes) {
  bytes = AlignUp(std::max<size_t>(bytes, 1));
  size_t used = scratch_used_[node];
  scratch_used_[node] = used + bytes;
  if (planned_ && used + bytes <= scratch_size_[node]) return arena_ + scratch_offset_[node] + used;
  if (planned_) stale_ = true;
  Tensor t = Tensor::Allocate(DataType::kUint8, Shape{static_cast<int64_t>(bytes)});
  heap_.push_back(t);
  return t.raw_data();
}

void ExecState::MakePlan() {
  const Graph& g = plan_.graph_;
  const int n = static_cast<int>(g.nodes.size());
  // The last node that reads any alias of a block keeps the block alive.
  std::vector<int> block_last(values_.size(), -1);
  for (size_t v = 0; v < values_.size(); ++v) {
    int root = alias_root_[v];
    if (root < 0) continue;
    block_last[root] = std::max({block_last[root], plan_.last_use_[v], g.values[v].producer});
  }
  std::vector<Block> blocks;
  for (size_t v = 0; v < values_.size(); ++v) {
    if (alias_root_[v] != static_cast<int>(v) || value_size_[v] == 0) continue;
    blocks.push_back({value_size_[v], g.values[v].producer, block_last[v], &value_offset_[v]});
  }
  for (int k = 0; k < n; ++k) {
    scratch_size_[k] = std::max(scratch_size_[k], scratch_used_[k]);
    if (scratch_size_[k] > 0) blocks.push_back({scratch_size_[k], k, k, &scratch_offset_[k]});
  }
  size_t total = PlaceBlocks(blocks);
  if (total > arena_bytes_) {
    if (arena_ != nullptr) AlignedFree(arena_);
    arena_ = static_cast<char*>(AlignedAlloc(total));
    arena_bytes_ = total;
  }
  planned_ = true;
  stale_ = false;
}

absl::Status ExecState::Run(absl::Span<const Tensor> inputs, std::vector<Tensor>* outputs) {
  const Graph& g = plan_.graph_;
  const bool same_shapes =
      planned_ && plan_key_.size() == inputs.size() &&
      std::equal(inputs.begin(), inputs.end(), plan_key_.begin(),
                 [](const Tensor& t, const Shape& s) { return t.shape() == s; });
  if (!same_shapes) {
    // New shapes: run unplanned, recording sizes, and plan afterwards.
    planned_ = false;
    std::fill(value_size_.begin(), value_size_.end(), 0);
    std::fill(scratch_size_.begin(), scratch_size_.end(), 0);
    plan_key_.resize(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) plan_key_[i] = inputs[i].shape();
  }
  outputs_ = outputs;
  outputs->resize(g.outputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) values_[g.inputs[i]] = inputs[i];
  std::fill(scratch_used_.begin(), scratch_used_.end(), 0);

  absl::Status status;
  for (int k = 0; k < static_cast<int>(g.nodes.size()); ++k) {
    current_node_ = k;
    KernelContext ctx(this, &g.nodes[k]);
    status = plan_.kernels_[k]->Run(ctx);
    if (!status.ok()) break;
    for (int v : g.nodes[k].outputs) {
      if (v >= 0 && values_[v].empty()) {
        status = absl::InternalError(absl::StrCat(
            g.nodes[k].Describe(), " did not produce output '", g.values[v].name, "'"));
      }
    }
    if (!status.ok()) break;
    for (int v : plan_.release_after_[k]) values_[v] = Tensor();
    heap_.clear();  // scratch of an unplanned node lives only while the node runs
  }
  if (status.ok()) {
    // Outputs that are graph inputs, constants or views are copied into the caller's tensors.
    for (size_t i = 0; i < g.outputs.size(); ++i) {
      const Tensor& t = values_[g.outputs[i]];
      Tensor& o = (*outputs)[i];
      if (o.raw_data() == t.raw_data() && o.dtype() == t.dtype() && !t.empty()) continue;
      o = t.Clone();
    }
  }
  // Drop every reference this run took, so the caller's outputs are unique again.
  for (size_t v = 0; v < values_.size(); ++v) {
    if (!g.values[v].constant) values_[v] = Tensor();
  }
  if (status.ok() && (!planned_ || stale_)) MakePlan();
  heap_.clear();
  outputs_ = nullptr;
  return status;
}

ExecPlan::~ExecPlan() = default;

absl::StatusOr<std::unique_ptr<ExecPlan>> ExecPlan::Create(Graph graph,
                                                           const SessionOptions& options) {
  std::unique_ptr<ExecPlan> plan(new ExecPlan());
  plan->graph_ = std::move(graph);
  const Graph& g = plan->graph_;
  const KernelRegistry& registry = KernelRegistry::Global();
  const int n = static_cast<int>(g.nodes.size());
  // A constant that every reader has copied into its own (pre-packed) form is freed as soon as
  // its last reader is built, so that weights are never held twice, not even during the load.
  std::vector<int> readers_left(g.values.size(), 0);
  std::vector<bool> still_read(g.values.size(), false);
  for (const Node& node : g.nodes) {
    for (int v : node.inputs) {
      if (v >= 0) ++readers_left[v];
    }
  }
  // Freed weights below the mmap threshold stay resident in the heap while their packed copies
  // grow it: returned to the system every kTrimBytes, they do not add up over the load.
  constexpr size_t kMmapThreshold = 128 * 1024, kTrimBytes = 256 * 1024;
  size_t freed_in_heap = 0;
  for (int k = 0; k < n; ++k) {
    const Node& node = g.nodes[k];
    KernelFactory factory = registry.Find(node.domain, node.op_type);
    if (factory == nullptr) {
      return absl::UnimplementedError(absl::StrCat(node.Describe(), ": operator not supported"));
    }
    FW_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> kernel, factory(node, g));
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      int v = node.inputs[i];
      if (v < 0) continue;
      if (kernel->ReadsConstantInput(static_cast<int>(i))) still_read[v] = true;
      if (--readers_left[v] == 0 && !still_read[v] && g.values[v].constant && !g.IsGraphOutput(v)) {
        const size_t bytes = g.values[v].constant->ByteSize();
        plan->graph_.values[v].constant.reset();
        if (bytes < kMmapThreshold) freed_in_heap += bytes;
        if (freed_in_heap >= kTrimBytes) {
          ReturnFreedHeap();
          freed_in_heap = 0;
        }
      }
    }
    plan->kernels_.push_back(std::move(kernel));
  }
  plan->last_use_.assign(g.values.size(), -1);
  plan->output_slot_.assign(g.values.size(), -1);
  for (int k = 0; k < n; ++k) {
    for (int v : g.nodes[k].inputs) {
      if (v >= 0) plan->last_use_[v] = k;
    }
  }
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    int v = g.outputs[i];
    plan->last_use_[v] = n;
    if (plan->output_slot_[v] < 0) plan->output_slot_[v] = static_cast<int>(i);
  }
  plan->release_after_.resize(n);
  for (size_t v = 0; v < g.values.size(); ++v) {
    int last = plan->last_use_[v];
    if (g.values[v].constant || g.values[v].producer < 0) continue;
    if (last >= 0 && last < n) {
      plan->release_after_[last].push_back(static_cast<int>(v));
    } else if (last < 0 && g.values[v].producer >= 0) {
      plan->release_after_[g.values[v].producer].push_back(static_cast<int>(v));
    }
  }
  plan->pool_ = std::make_unique<ThreadPool>(std::max(1, options.intra_op_threads));
  plan->max_tensor_bytes_ = options.max_tensor_bytes;
  return plan;
}

absl::Status ExecPlan::CheckInputs(absl::Span<const Tensor> inputs) const {
  if (inputs.size() != graph_.inputs.size()) {
    std::vector<std::string> names;
    for (int v : graph_.inputs) names.push_back(absl::StrCat("'", graph_.values[v].name, "'"));
    return absl::InvalidArgumentError(absl::StrCat("expected ", graph_.inputs.size(), " inputs (",
                                                   absl::StrJoin(names, ", "), "), got ",
                                                   inputs.size()));
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Value& decl = graph_.values[graph_.inputs[i]];
    const Tensor& t = inputs[i];
    std::string expected =
        absl::StrCat(DataTypeName(decl.dtype), " ", decl.shape ? decl.shape->ToString() : "[any]");
    if (t.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", decl.name, "': no tensor given (expected ", expected, ")"));
    }
    bool ok = decl.dtype == DataType::kInvalid || t.dtype() == decl.dtype;
    if (decl.shape) {
      ok = ok && t.rank() == decl.shape->rank();
      for (int d = 0; ok && d < t.rank(); ++d) {
        ok = (*decl.shape)[d] < 0 || (*decl.shape)[d] == t.dim(d);
      }
    }
    for (int d = 0; ok && d < t.rank(); ++d) ok = t.dim(d) >= 0;
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", decl.name, "': expected ", expected, ", got ", t.DebugString()));
    }
    if (t.dtype() != DataType::kBytes && t.raw_data() == nullptr && t.NumElements() > 0) {
      return absl::InvalidArgumentError(absl::StrCat("input '", decl.name, "': no data"));
    }
  }
  return absl::OkStatus();
}

std::unique_ptr<ExecState> ExecPlan::AcquireState() const {
  {
    std::lock_guard<std::mutex> lock(states_mu_);
    if (!free_states_.empty()) {
      std::unique_ptr<ExecState> s = std::move(free_states_.back());
      free_states_.pop_back();
      return s;
    }
  }
  return std::make_unique<ExecState>(*this);
}

void ExecPlan::ReleaseState(std::unique_ptr<ExecState> state) const {
  std::lock_guard<std::mutex> lock(states_mu_);
  free_states_.push_back(std::move(state));
}

absl::Status ExecPlan::Run(absl::Span<const Tensor> inputs, std::vector<Tensor>* outputs) const {
  FW_RETURN_IF_ERROR(CheckInputs(inputs));
  std::unique_ptr<ExecState> state = AcquireState();
  absl::Status status = state->Run(inputs, outputs);
  ReleaseState(std::move(state));
  return status;
}

absl::StatusOr<std::vector<Tensor>> EvaluateNode(const Node& node, const Graph& graph,
                                                 absl::Span<const Tensor> inputs) {
  Graph mini;
  mini.opset = graph.opset;
  Node copy = node;
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    if (node.inputs[i] < 0) continue;
    Value v{.name = graph.values[node.inputs[i]].name};
    v.dtype = inputs[i].dtype();
    v.shape = inputs[i].shape();
    v.constant = inputs[i];
    int id = mini.FindValue(v.name);
    copy.inputs[i] = id >= 0 ? id : mini.AddValue(std::move(v));
  }
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    if (node.outputs[i] < 0) continue;
    copy.outputs[i] = mini.AddValue(Value{.name = graph.values[node.outputs[i]].name});
    mini.outputs.push_back(copy.outputs[i]);
  }
  mini.nodes.push_back(std::move(copy));
  FW_RETURN_IF_ERROR(mini.TopologicalSort());
  FW_ASSIGN_OR_RETURN(std::unique_ptr<ExecPlan> plan, ExecPlan::Create(std::move(mini), {}));
  std::vector<Tensor> produced;
  FW_RETURN_IF_ERROR(plan->Run({}, &produced));
  std::vector<Tensor> outputs(node.outputs.size());
  for (size_t i = 0, k = 0; i < node.outputs.size(); ++i) {
    if (node.outputs[i] >= 0) outputs[i] = std::move(produced[k++]);
  }
  return outputs;
}

}  // namespace flywheel::engine
