// Conv and the fused com.flywheel FusedConv (Conv + optional residual Z + activation) on oneDNN,
// with constant weights pre-packed at load into the layout oneDNN prefers. FusedConv with
// channels_last_y = 1 (set by the channels-last pass) writes Y and reads Z as NHWC, and with
// channels_last_x = 1 reads X as NHWC too (else NCHW, reordered by oneDNN). Registers
// the whole convolution family (pools, BatchNormalization, ConvTranspose).
#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "engine/kernels/activation.h"
#include "engine/kernels/conv_util.h"
#include "engine/kernels/dnnl_util.h"
#include "engine/kernels/registry.h"

namespace flywheel::engine {
namespace {

using dnnl::memory;

constexpr size_t kMaxCachedShapes = 16;

// A primitive for one pair of input and weight shapes. oneDNN's blocked-layout convolutions
// (nChw16c...) are several times faster than its plain-NCHW path even with a reorder on each side,
// so the primitive picks its own src/dst layouts and the entry carries the reorders to and from
// the plain NCHW tensors the rest of the engine uses.
struct ConvEntry {
  Shape x_shape, w_shape, y_shape;
  dnnl::convolution_forward prim;
  memory::desc src_md, dst_md;            // plain NCHW X and Y
  memory::desc conv_src_md, conv_dst_md;  // the layouts the primitive computes in
  memory::desc w_md, bias_md, scratch_md;
  dnnl::reorder src_in, dst_out, z_in;  // set only where the layouts differ
  memory::desc src_in_scratch_md, dst_out_scratch_md, z_in_scratch_md;
  memory
      weights;  // packed constant weights in the primitive's layout (empty: weights are an input)
  size_t scratch_bytes = 0;             // the largest scratchpad of the primitives above
  size_t src_bytes = 0, dst_bytes = 0;  // blocked temporaries (0 when no reorder)
  bool single_thread = false;           // too little work to pay for waking OpenMP threads
  int threads = 1;                      // the session's intra-op threads it was built for
  bool sum_z = false;                   // Z enters via a sum post-op: dst is pre-filled with Z
  bool manual_epilogue = false;  // post-ops unsupported: add Z and apply the activation ourselves
  uint64_t id = 0;               // unique over the process: keys the per-thread call cache
};

// The oneDNN memory objects and argument maps of one entry's execution, kept per thread and
// re-pointed at each run's buffers, so that a run creates no oneDNN objects and allocates nothing.
struct ConvCall {
  uint64_t id = 0;
  memory src, conv_src, conv_dst, dst, z, weights, bias;
  memory scratch_src, scratch_z, scratch_conv, scratch_dst;
  std::unordered_map<int, memory> src_args, z_args, conv_args, dst_args;
};

// Returns this thread's call cache for `e`, building it on first use. Entries are identified by
// id, never by address, so a freed entry's slot is simply rebuilt.
ConvCall& CallFor(const ConvEntry& e, const dnnl::engine& eng) {
  constexpr int kSlots = 16;
  thread_local ConvCall slots[kSlots];
  thread_local int next = 0;
  for (ConvCall& c : slots) {
    if (c.id == e.id) return c;
  }
  ConvCall& c = slots[next];
  next = (next + 1) % kSlots;
  c = ConvCall{};
  c.id = e.id;
  c.conv_src = memory(e.conv_src_md, eng, DNNL_MEMORY_NONE);
  c.conv_dst = memory(e.conv_dst_md, eng, DNNL_MEMORY_NONE);
  c.src = memory(e.src_md, eng, DNNL_MEMORY_NONE);
  c.dst = memory(e.dst_md, eng, DNNL_MEMORY_NONE);
  c.weights = memory(e.w_md, eng, DNNL_MEMORY_NONE);
  if (e.bias_md.get_size() > 0) c.bias = memory(e.bias_md, eng, DNNL_MEMORY_NONE);
  auto scratch = [&](const memory::desc& md) { return memory(md, eng, DNNL_MEMORY_NONE); };
  c.scratch_conv = scratch(e.scratch_md);
  c.conv_args = {{DNNL_ARG_SRC, c.conv_src},
                 {DNNL_ARG_WEIGHTS, c.weights},
                 {DNNL_ARG_DST, c.conv_dst},
                 {DNNL_ARG_SCRATCHPAD, c.scratch_conv}};
  if (c.bias) c.conv_args.emplace(DNNL_ARG_BIAS, c.bias);
  if (e.src_bytes > 0) {
    c.scratch_src = scratch(e.src_in_scratch_md);
    c.src_args = {
        {DNNL_ARG_FROM, c.src}, {DNNL_ARG_TO, c.conv_src}, {DNNL_ARG_SCRATCHPAD, c.scratch_src}};
  }
  if (e.dst_bytes > 0) {
    c.scratch_dst = scratch(e.dst_out_scratch_md);
    c.dst_args = {
        {DNNL_ARG_FROM, c.conv_dst}, {DNNL_ARG_TO, c.dst}, {DNNL_ARG_SCRATCHPAD, c.scratch_dst}};
    if (e.sum_z) {
      c.z = memory(e.dst_md, eng, DNNL_MEMORY_NONE);
      c.scratch_z = scratch(e.z_in_scratch_md);
      c.z_args = {
          {DNNL_ARG_FROM, c.z}, {DNNL_ARG_TO, c.conv_dst}, {DNNL_ARG_SCRATCHPAD, c.scratch_z}};
    }
  }
  return c;
}

// True when `md` is oneDNN's channel-blocked layout (aBcd16b, aBcd8b) of a 4-D f32 tensor with
// exactly one block of channels: the same bytes as NHWC.
bool IsNhwcBytes(const memory::desc& md) {
  const memory::dims d = md.dims();
  if (d.size() != 4) return false;
  if (d[1] == 16) return md == memory::desc(d, memory::data_type::f32, memory::format_tag::aBcd16b);
  if (d[1] == 8) return md == memory::desc(d, memory::data_type::f32, memory::format_tag::aBcd8b);
  return false;
}

// A reorder with a user-managed scratchpad, whose descriptor goes to `scratch_md`.
dnnl::reorder MakeReorder(const memory::desc& from, const memory::desc& to,
                          memory::desc* scratch_md) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::reorder::primitive_desc pd(DnnlEngine(), from, DnnlEngine(), to, attr);
  *scratch_md = pd.scratchpad_desc();
  return dnnl::reorder(pd);
}

// Appends the oneDNN eltwise post-ops equivalent to `act`; false when there is none.
bool AppendActivation(dnnl::post_ops& po, const Activation& act) {
  using dnnl::algorithm;
  switch (act.kind) {
    case ActivationKind::kNone:
      return true;
    case ActivationKind::kRelu:
      po.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
      return true;
    case ActivationKind::kLeakyRelu:
      po.append_eltwise(1.f, algorithm::eltwise_relu, act.alpha, 0.f);
      return true;
    case ActivationKind::kSigmoid:
      po.append_eltwise(1.f, algorithm::eltwise_logistic, 0.f, 0.f);
      return true;
    case ActivationKind::kTanh:
      po.append_eltwise(1.f, algorithm::eltwise_tanh, 0.f, 0.f);
      return true;
    case ActivationKind::kGelu:
      po.append_eltwise(1.f, algorithm::eltwise_gelu_erf, 0.f, 0.f);
      return true;
    case ActivationKind::kClip:
      po.append_eltwise(1.f, algorithm::eltwise_clip, act.alpha, act.beta);
      return true;
    case ActivationKind::kHardSigmoid:
      po.append_eltwise(1.f, algorithm::eltwise_linear, act.alpha, act.beta);
      po.append_eltwise(1.f, algorithm::eltwise_clip, 0.f, 1.f);
      return true;
    case ActivationKind::kElu:
      po.append_eltwise(1.f, algorithm::eltwise_elu, act.alpha, 0.f);
      return true;
  }
  return false;
}

class ConvKernel : public Kernel {
 public:
  static absl::StatusOr<std::unique_ptr<Kernel>> Create(const Node& node, const Graph& graph,
                                                        bool fused);
  absl::Status Run(KernelContext& ctx) const override;
  bool ReadsConstantInput(int i) const override {
    return !((i == 1 && const_w_) || (i == 2 && const_b_));
  }

 private:
  ConvKernel() = default;
  absl::StatusOr<std::shared_ptr<const ConvEntry>> GetEntry(const Node& node, int threads,
                                                            const Shape& x, const Shape& w) const;
  absl::StatusOr<std::shared_ptr<ConvEntry>> Build(const Node& node, int threads, const Shape& x,
                                                   const Shape& w) const;
  // REQUIRES: mu_ held. Returns constant weights packed as `md`.
  memory PackedWeights(const memory::desc& md) const;

  WindowAttrs attrs_;
  int64_t group_ = 1;
  Activation act_;
  bool has_bias_ = false, has_z_ = false;
  bool channels_last_ = false;    // Z and Y are [N, H, W, C]
  bool channels_last_x_ = false;  // so is X
  bool const_w_ = false, const_b_ = false;
  Shape w_shape_;  // when const_w_
  memory bias_;    // copy of a constant bias

  mutable std::mutex mu_;
  mutable std::vector<std::shared_ptr<const ConvEntry>> cache_;  // guarded by mu_
  mutable size_t next_evict_ = 0;                                // guarded by mu_
  // Constant weights: plain until first packed, then packed in every layout used so far.
  mutable Tensor w_plain_;              // guarded by mu_
  mutable std::vector<memory> packed_;  // guarded by mu_
};

absl::StatusOr<std::unique_ptr<Kernel>> ConvKernel::Create(const Node& node, const Graph& graph,
                                                           bool fused) {
  std::unique_ptr<ConvKernel> k(new ConvKernel());
  FW_ASSIGN_OR_RETURN(k->attrs_, ParseWindowAttrs(node));
  k->group_ = node.GetInt("group", 1);
  if (k->group_ <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(node.Describe(), ": group must be positive, got ", k->group_));
  }
  if (fused) {
    FW_ASSIGN_OR_RETURN(k->act_, ActivationFromNode(node));
    k->has_z_ = node.input(3) >= 0;
    k->channels_last_ = node.GetInt("channels_last_y", 0) != 0;
    k->channels_last_x_ = k->channels_last_ && node.GetInt("channels_last_x", 0) != 0;
  } else if (node.input(3) >= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(node.Describe(), ": Conv takes at most 3 inputs"));
  }
  if (node.input(0) < 0 || node.input(1) < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(node.Describe(), ": inputs X and W are required"));
  }
  k->has_bias_ = node.input(2) >= 0;
  if (const Tensor* w = graph.ConstantOf(node.input(1))) {
    if (w->dtype() != DataType::kFp32) {
      return absl::InvalidArgumentError(
          absl::StrCat(node.Describe(), ": W must be FP32, got ", DataTypeName(w->dtype())));
    }
    if (w->rank() < 3 || w->rank() > 5) {
      return absl::InvalidArgumentError(
          absl::StrCat(node.Describe(), ": W must have rank 3 to 5, got ", w->shape().ToString()));
    }
    if (k->channels_last_ && w->rank() != 4) {
      return absl::InvalidArgumentError(absl::StrCat(
          node.Describe(), ": channels_last needs a 2-D kernel, got W ", w->shape().ToString()));
    }
    k->const_w_ = true;
    k->w_shape_ = w->shape();
    k->w_plain_ = *w;
  }
  if (const Tensor* b = k->has_bias_ ? graph.ConstantOf(node.input(2)) : nullptr) {
    if (b->dtype() != DataType::kFp32 || b->rank() != 1 ||
        (k->const_w_ && b->dim(0) != k->w_shape_[0])) {
      return absl::InvalidArgumentError(
          absl::StrCat(node.Describe(), ": bias B must be FP32 [M] with M = W's first dim, got ",
                       b->DebugString()));
    }
    k->const_b_ = true;
    try {
      int64_t n = b->dim(0);
      k->bias_ = memory(PlainDesc(&n, 1), DnnlEngine());
      std::copy_n(b->data<float>(), n, static_cast<float*>(k->bias_.get_data_handle()));
    } catch (const dnnl::error& e) {
      return DnnlError(node, "bias copy", e);
    }
  }
  // Warm the cache (and pack the weights) when the input shape is known.
  const Value& xv = graph.values[node.input(0)];
  if (k->const_w_ && xv.shape && xv.shape->rank() == k->w_shape_.rank()) {
    Shape x = *xv.shape;
    if (x.rank() > 0 && x[0] < 0) x.set_dim(0, 1);
    if (x.IsFullyDefined() && x.NumElements() > 0) {
      FW_RETURN_IF_ERROR(k->GetEntry(node, 1, x, k->w_shape_).status());
    }
  }
  return std::unique_ptr<Kernel>(std::move(k));
}

memory ConvKernel::PackedWeights(const memory::desc& md) const {
  for (const memory& m : packed_) {
    if (m.get_desc() == md) return m;
  }
  memory src;
  if (!w_plain_.empty()) {
    memory::dims dims = md.dims();  // the plain ONNX layout, seen with the primitive's dims
    src = memory(PlainDesc(dims.data(), static_cast<int>(dims.size())), DnnlEngine(),
                 const_cast<void*>(w_plain_.raw_data()));
  } else {
    src = packed_.front();
  }
  memory dst(md, DnnlEngine());
  dnnl::stream& s = DnnlStream();
  dnnl::reorder(src, dst).execute(s, src, dst);
  s.wait();
  packed_.push_back(dst);
  w_plain_ = Tensor();  // the packed copy is the source from now on
  return dst;
}

absl::StatusOr<std::shared_ptr<ConvEntry>> ConvKernel::Build(const Node& node, int threads,
                                                             const Shape& x_in,
                                                             const Shape& w) const {
  auto err = [&](const auto&... args) {
    return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": ", args...));
  };
  if (channels_last_ && x_in.rank() != 4) {
    return err("a channels-last Conv needs a 4-D X, got ", x_in.ToString());
  }
  // oneDNN describes tensors by logical NCHW dims whatever their layout.
  const Shape x = channels_last_x_ ? Shape{x_in[0], x_in[3], x_in[1], x_in[2]} : x_in;
  const int rank = x.rank();
  if (rank < 3 || rank > 5)
    return err("X must have rank 3 to 5 (N, C, spatial...), got ", x.ToString());
  if (w.rank() != rank) return err("W ", w.ToString(), " must have the rank of X ", x.ToString());
  const int spatial = rank - 2;
  const int64_t c = x[1], m = w[0];
  if (m <= 0 || m % group_ != 0) {
    return err("output channels ", m, " (W ", w.ToString(),
               ") must be a positive multiple of group ", group_);
  }
  if (c != w[1] * group_) {
    return err("X has ", c, " channels but W ", w.ToString(), " with group ", group_, " expects ",
               w[1] * group_);
  }
  if (!attrs_.kernel_shape.empty()) {
    if (static_cast<int>(attrs_.kernel_shape.size()) != spatial) {
      return err("kernel_shape has ", attrs_.kernel_shape.size(), " values for ", spatial,
                 " spatial axes");
    }
    for (int i = 0; i < spatial; ++i) {
      if (attrs_.kernel_shape[i] != w[2 + i]) {
        return err("kernel_shape does not match W ", w.ToString());
      }
    }
  }
  FW_ASSIGN_OR_RETURN(WindowGeometry g, ComputeWindow(node, attrs_, spatial, x.dims().data() + 2,
                                                      w.dims().data() + 2));
  static std::atomic<uint64_t> next_id{1};
  auto e = std::make_shared<ConvEntry>();
  e->id = next_id.fetch_add(1);
  e->x_shape = x_in;
  e->w_shape = w;
  Shape y_nchw{x[0], m};
  for (int i = 0; i < spatial; ++i) y_nchw.push_back(g.out[i]);
  e->y_shape = channels_last_ ? Shape{y_nchw[0], y_nchw[2], y_nchw[3], y_nchw[1]} : y_nchw;
  if (e->y_shape.NumElements() == 0 || x.NumElements() == 0) return e;  // nothing to compute
  // Below ~2M multiply-adds (a batch-1 layer of a small CNN) a second thread costs more in
  // synchronisation than it saves. oneDNN fixes a primitive's thread count when it creates it, so
  // the count is set before creation as well as before execution.
  e->threads = threads;
  e->single_thread = e->y_shape.NumElements() * w.Product(1, rank) < (int64_t{1} << 21);
  SetDnnlThreads(e->single_thread ? 1 : threads);
  try {
    e->src_md = channels_last_x_ ? memory::desc(memory::dims(x.dims().begin(), x.dims().end()),
                                                memory::data_type::f32, memory::format_tag::nhwc)
                                 : PlainDesc(x.dims().data(), rank);
    e->dst_md = channels_last_
                    ? memory::desc(memory::dims(y_nchw.dims().begin(), y_nchw.dims().end()),
                                   memory::data_type::f32, memory::format_tag::nhwc)
                    : PlainDesc(y_nchw.dims().data(), rank);
    memory::dims wdims;
    if (group_ > 1) {
      wdims.push_back(group_);
      wdims.push_back(m / group_);
    } else {
      wdims.push_back(m);
    }
    for (int i = 1; i < rank; ++i) wdims.push_back(w[i]);
    memory::desc w_plain = PlainDesc(wdims.data(), static_cast<int>(wdims.size()));
    memory::desc w_any(wdims, memory::data_type::f32, memory::format_tag::any);
    memory::desc bias_md = has_bias_ ? PlainDesc(&m, 1) : memory::desc();
    memory::dims strides(g.strides.begin(), g.strides.end()), dil(spatial),
        pl(g.pad_begin.begin(), g.pad_begin.end()), pr(g.pad_end.begin(), g.pad_end.end());
    for (int i = 0; i < spatial; ++i) dil[i] = g.dilations[i] - 1;
    const bool want_post_ops = has_z_ || act_.kind != ActivationKind::kNone;
    // `nchw_src`: X as it is (plain NCHW) and Y in the layout oneDNN picks.
    auto make_pd = [&](bool blocked, bool post_ops, bool nchw_src = false) {
      memory::desc src_any(e->src_md.dims(), memory::data_type::f32, memory::format_tag::any);
      memory::desc dst_any(e->dst_md.dims(), memory::data_type::f32, memory::format_tag::any);
      const bool src_free = !nchw_src && (blocked || (channels_last_ && !channels_last_x_));
      dnnl::convolution_forward::desc desc(
          dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
          src_free ? src_any : e->src_md, const_w_ ? w_any : w_plain, bias_md,
          blocked || nchw_src ? dst_any : e->dst_md, strides, dil, pl, pr);
      dnnl::primitive_attr attr;
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      if (post_ops) {
        dnnl::post_ops po;
        if (has_z_) po.append_sum(1.f);
        AppendActivation(po, act_);
        attr.set_post_ops(po);
      }
      return dnnl::convolution_forward::primitive_desc(desc, attr, DnnlEngine());
    };
    // Preferred first: blocked layouts with fused post-ops; the last resort is plain layouts with
    // the epilogue done by hand. Channels-last tensors try their own layout first: oneDNN's
    // NHWC kernels are as fast as its blocked ones, and need no reorder.
    dnnl::convolution_forward::primitive_desc pd;
    bool done = false;
    if (channels_last_ && !channels_last_x_ && c < 8) {
      // A first layer (few NCHW input channels): oneDNN's direct kernel reads NCHW X as it is
      // and writes channel blocks, faster than reordering X for its NHWC kernel; with exactly
      // one block of output channels its output is NHWC byte for byte, so it needs no reorder.
      try {
        pd = make_pd(false, want_post_ops, /*nchw_src=*/true);
        done = !absl::StartsWith(pd.impl_info_str(), "ref") && IsNhwcBytes(pd.dst_desc());
      } catch (const dnnl::error&) {
      }
    }
    for (int attempt = 0; attempt < 4 && !done; ++attempt) {
      const bool blocked = channels_last_ ? attempt >= 2 : attempt < 2;
      const bool post_ops = want_post_ops && attempt % 2 == 0;
      if (!want_post_ops && attempt % 2 == 1) continue;
      try {
        pd = make_pd(blocked, post_ops);
        // Fixed NHWC layouts are only worth it with an optimised kernel; oneDNN's reference
        // convolution accepts any layout and is orders of magnitude slower than a reorder.
        if (channels_last_ && !blocked && absl::StartsWith(pd.impl_info_str(), "ref")) continue;
        done = true;
        e->manual_epilogue = want_post_ops && !post_ops;
      } catch (const dnnl::error&) {
        if (attempt == 3) throw;
      }
    }
    e->prim = dnnl::convolution_forward(pd);
    e->conv_src_md = pd.src_desc();
    e->conv_dst_md = pd.dst_desc();
    e->w_md = pd.weights_desc();
    e->bias_md = bias_md;
    e->scratch_md = pd.scratchpad_desc();
    e->scratch_bytes = e->scratch_md.get_size();
    e->sum_z = has_z_ && !e->manual_epilogue;
    if (e->conv_src_md != e->src_md) {
      e->src_in = MakeReorder(e->src_md, e->conv_src_md, &e->src_in_scratch_md);
      e->src_bytes = e->conv_src_md.get_size();
      e->scratch_bytes = std::max(e->scratch_bytes, e->src_in_scratch_md.get_size());
    }
    if (e->conv_dst_md != e->dst_md && !(channels_last_ && IsNhwcBytes(e->conv_dst_md))) {
      e->dst_out = MakeReorder(e->conv_dst_md, e->dst_md, &e->dst_out_scratch_md);
      e->dst_bytes = e->conv_dst_md.get_size();
      e->scratch_bytes = std::max(e->scratch_bytes, e->dst_out_scratch_md.get_size());
      if (e->sum_z) {
        e->z_in = MakeReorder(e->dst_md, e->conv_dst_md, &e->z_in_scratch_md);
        e->scratch_bytes = std::max(e->scratch_bytes, e->z_in_scratch_md.get_size());
      }
    }
  } catch (const dnnl::error& ex) {
    return DnnlError(node, "convolution setup", ex);
  }
  return e;
}

absl::StatusOr<std::shared_ptr<const ConvEntry>> ConvKernel::GetEntry(const Node& node, int threads,
                                                                      const Shape& x,
                                                                      const Shape& w) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& e : cache_) {
      if (e->x_shape == x && e->w_shape == w && e->threads == threads) return e;
    }
  }
  FW_ASSIGN_OR_RETURN(std::shared_ptr<ConvEntry> e, Build(node, threads, x, w));
  std::lock_guard<std::mutex> lock(mu_);
  if (const_w_ && e->prim) {
    try {
      e->weights = PackedWeights(e->w_md);
    } catch (const dnnl::error& ex) {
      return DnnlError(node, "weight packing", ex);
    }
  }
  if (cache_.size() < kMaxCachedShapes) {
    cache_.push_back(e);
  } else {
    cache_[next_evict_] = e;
    next_evict_ = (next_evict_ + 1) % kMaxCachedShapes;
  }
  return std::shared_ptr<const ConvEntry>(e);
}

absl::Status ConvKernel::Run(KernelContext& ctx) const {
  FW_ASSIGN_OR_RETURN(const Tensor* x, ctx.RequiredInput(0));
  const Tensor* w = nullptr;
  const Tensor* b = nullptr;
  const Tensor* z = nullptr;
  if (!const_w_) {
    FW_ASSIGN_OR_RETURN(w, ctx.RequiredInput(1));
    if (w->dtype() != DataType::kFp32) return ctx.Error("W must be FP32, got ", w->DebugString());
  }
  if (x->dtype() != DataType::kFp32) return ctx.Error("X must be FP32, got ", x->DebugString());
  const Shape& w_shape = const_w_ ? w_shape_ : w->shape();
  if (has_bias_ && !const_b_) {
    FW_ASSIGN_OR_RETURN(b, ctx.RequiredInput(2));
    if (b->dtype() != DataType::kFp32 || b->rank() != 1 || w_shape.rank() < 1 ||
        b->dim(0) != w_shape[0]) {
      return ctx.Error("bias B must be FP32 [", w_shape.rank() > 0 ? w_shape[0] : 0, "], got ",
                       b->DebugString());
    }
  }
  FW_ASSIGN_OR_RETURN(std::shared_ptr<const ConvEntry> e,
                      GetEntry(ctx.node(), ctx.num_threads(), x->shape(), w_shape));
  FW_ASSIGN_OR_RETURN(Tensor * y, ctx.AllocateOutput(0, DataType::kFp32, e->y_shape));
  if (has_z_) {
    FW_ASSIGN_OR_RETURN(z, ctx.RequiredInput(3));
    if (z->dtype() != DataType::kFp32 || z->shape() != e->y_shape) {
      return ctx.Error("Z must be FP32 ", e->y_shape.ToString(), " like the output, got ",
                       z->DebugString());
    }
  }
  if (!e->prim) return absl::OkStatus();  // empty output
  void* scratch = e->scratch_bytes > 0 ? ctx.Scratch(e->scratch_bytes) : nullptr;
  void* src_buf = e->src_bytes > 0 ? ctx.Scratch(e->src_bytes) : const_cast<void*>(x->raw_data());
  void* dst_buf = e->dst_bytes > 0 ? ctx.Scratch(e->dst_bytes) : y->raw_data();
  try {
    const dnnl::engine& eng = DnnlEngine();
    dnnl::stream& s = DnnlStream();
    SetDnnlThreads(e->single_thread ? 1 : ctx.num_threads());
    ConvCall& call = CallFor(*e, eng);
    // Every scratchpad of this node shares one buffer: the primitives run one after another.
    for (memory* m : {&call.scratch_src, &call.scratch_z, &call.scratch_conv, &call.scratch_dst}) {
      if (*m) m->set_data_handle(scratch);
    }
    call.conv_src.set_data_handle(src_buf);
    call.conv_dst.set_data_handle(dst_buf);
    if (e->src_bytes > 0) {
      call.src.set_data_handle(const_cast<void*>(x->raw_data()));
      e->src_in.execute(s, call.src_args);
    }
    if (e->sum_z) {
      if (e->dst_bytes > 0) {
        call.z.set_data_handle(const_cast<void*>(z->raw_data()));
        e->z_in.execute(s, call.z_args);
      } else {
        std::memcpy(dst_buf, z->raw_data(), z->ByteSize());
      }
    }
    // Constant weights and bias are the entry's and the kernel's own memory objects; they are put
    // in the argument map for this call only, so the thread's cache never keeps them alive.
    if (const_w_) {
      call.conv_args[DNNL_ARG_WEIGHTS] = e->weights;
    } else {
      call.weights.set_data_handle(const_cast<void*>(w->raw_data()));
    }
    if (has_bias_) {
      if (const_b_) {
        call.conv_args[DNNL_ARG_BIAS] = bias_;
      } else {
        call.bias.set_data_handle(const_cast<void*>(b->raw_data()));
      }
    }
    e->prim.execute(s, call.conv_args);
    if (const_w_) call.conv_args[DNNL_ARG_WEIGHTS] = call.weights;
    if (has_bias_ && const_b_) call.conv_args[DNNL_ARG_BIAS] = call.bias;
    if (e->dst_bytes > 0) {
      call.dst.set_data_handle(y->raw_data());
      e->dst_out.execute(s, call.dst_args);
    }
    s.wait();
  } catch (const dnnl::error& ex) {
    return DnnlError(ctx.node(), "convolution", ex);
  }
  if (e->manual_epilogue) {
    float* out = y->data<float>();
    const float* zd = z != nullptr ? z->data<float>() : nullptr;
    const int64_t n = y->NumElements();
    const Activation act = act_;
    ctx.pool().ParallelFor((n + 4095) / 4096, 16, [&](int64_t begin, int64_t end) {
      int64_t lo = begin * 4096, hi = std::min(n, end * 4096);
      if (zd != nullptr) {
        for (int64_t i = lo; i < hi; ++i) out[i] += zd[i];
      }
      ApplyActivation(act, out + lo, hi - lo);
    });
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Kernel>> MakeConv(const Node& node, const Graph& graph) {
  return ConvKernel::Create(node, graph, /*fused=*/false);
}

absl::StatusOr<std::unique_ptr<Kernel>> MakeFusedConv(const Node& node, const Graph& graph) {
  return ConvKernel::Create(node, graph, /*fused=*/true);
}

}  // namespace

void RegisterConvKernels(KernelRegistry& registry) {
  registry.Register("", "Conv", MakeConv);
  registry.Register(kFlywheelDomain, "FusedConv", MakeFusedConv);
  RegisterPoolKernels(registry);
  RegisterChannelsLastPoolKernels(registry);
  RegisterBatchNormKernels(registry);
  RegisterConvTransposeKernels(registry);
}

}  // namespace flywheel::engine
