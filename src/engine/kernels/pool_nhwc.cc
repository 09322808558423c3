// Channels-last pooling for the NHWC chains the channels-last pass builds: com.flywheel
// NhwcMaxPool (MaxPool attributes, X and Y [N, H, W, C], no Indices) and NhwcGlobalAveragePool
// (X [N, H, W, C], Y [N, C, 1, 1] as GlobalAveragePool). Channels are the contiguous axis, so each
// window tap is a vector max/add over C. NhwcMaxPool runs on oneDNN's pooling where it has an
// optimised kernel for the geometry: these pools sit between oneDNN convolutions, whose OpenMP
// workers keep spinning for a while after each primitive, so the pool shares those threads rather
// than waking the engine's pool to compete with them for the cores (with 2 threads on a busy
// machine that cost milliseconds). Elsewhere (and for GlobalAveragePool, a few microseconds) the
// Highway loop runs on the calling thread, or for 4M+ elements on the thread pool.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "engine/kernels/pool_nhwc.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

namespace flywheel::engine::pool_nhwc_internal {
#ifndef FLYWHEEL_POOL_NHWC_GEOMETRY
#define FLYWHEEL_POOL_NHWC_GEOMETRY
// One 2-D max pooling over [N, H, W, C], with the effective (ComputeWindow) padding.
struct MaxPoolGeometry {
  int64_t n, ih, iw, c, oh, ow;
  int64_t kh, kw, sh, sw, dh, dw, ph, pw;
};
#endif
}  // namespace flywheel::engine::pool_nhwc_internal

HWY_BEFORE_NAMESPACE();
namespace flywheel::engine::pool_nhwc_internal {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Output rows [r0, r1) of n * oh. Each output pixel is the lane-wise max of its window's taps
// inside the input (padding never wins a max); a window entirely in the padding gives lowest().
void MaxPoolRows(const float* in, float* out, const MaxPoolGeometry& g, int64_t r0, int64_t r1) {
  const hn::ScalableTag<float> d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  const int64_t c = g.c;
  auto taps = [](int64_t o, int64_t s, int64_t p, int64_t dil, int64_t k, int64_t in,
                 int64_t* start, int64_t* lo, int64_t* hi) {
    *start = o * s - p;
    *lo = *start >= 0 ? 0 : (-*start + dil - 1) / dil;
    const int64_t last = in - 1 - *start;
    *hi = last < 0 ? 0 : std::min<int64_t>(last / dil + 1, k);
    if (*lo > *hi) *lo = *hi;
  };
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t b = r / g.oh, y_h = r % g.oh;
    int64_t hs, hlo, hhi;
    taps(y_h, g.sh, g.ph, g.dh, g.kh, g.ih, &hs, &hlo, &hhi);
    const float* plane = in + b * g.ih * g.iw * c;
    float* dst = out + r * g.ow * c;
    for (int64_t y_w = 0; y_w < g.ow; ++y_w, dst += c) {
      int64_t ws, wlo, whi;
      taps(y_w, g.sw, g.pw, g.dw, g.kw, g.iw, &ws, &wlo, &whi);
      if (hlo >= hhi || wlo >= whi) {
        std::fill_n(dst, c, std::numeric_limits<float>::lowest());
        continue;
      }
      const float* first = plane + ((hs + hlo * g.dh) * g.iw + ws + wlo * g.dw) * c;
      const int64_t row_step = g.dh * g.iw * c, col_step = g.dw * c;
      int64_t ch = 0;
      for (; ch + L <= c; ch += L) {
        auto best = hn::LoadU(d, first + ch);
        const float* row = first + ch;
        for (int64_t jh = hlo; jh < hhi; ++jh, row += row_step) {
          const float* tap = row;
          for (int64_t jw = wlo; jw < whi; ++jw, tap += col_step) {
            best = hn::Max(best, hn::LoadU(d, tap));
          }
        }
        hn::StoreU(best, d, dst + ch);
      }
      for (; ch < c; ++ch) {
        float best = first[ch];
        const float* row = first + ch;
        for (int64_t jh = hlo; jh < hhi; ++jh, row += row_step) {
          const float* tap = row;
          for (int64_t jw = wlo; jw < whi; ++jw, tap += col_step) best = std::max(best, *tap);
        }
        dst[ch] = best;
      }
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace flywheel::engine::pool_nhwc_internal
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <atomic>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "engine/kernels/conv_util.h"
#include "engine/kernels/dnnl_util.h"
#include "engine/kernels/registry.h"

namespace flywheel::engine {
namespace pool_nhwc_internal {
HWY_EXPORT(MaxPoolRows);

// Dispatches from inside this namespace (see layer_norm.cc).
void DispatchMaxPoolRows(const float* in, float* out, const MaxPoolGeometry& g, int64_t r0,
                         int64_t r1) {
  HWY_DYNAMIC_DISPATCH(MaxPoolRows)(in, out, g, r0, r1);
}
}  // namespace pool_nhwc_internal

namespace {

// Inputs of at least this many elements are split over the thread pool.
constexpr int64_t kParallelElements = int64_t{1} << 22;

// Fixed-width chunks let the compiler keep a chunk in vector registers at the default -O2.
constexpr int64_t kLanes = 16;

inline void AddInto(float* __restrict acc, const float* __restrict in, int64_t c) {
  int64_t i = 0;
  for (; i + kLanes <= c; i += kLanes) {
    for (int64_t j = 0; j < kLanes; ++j) acc[i + j] += in[i + j];
  }
  for (; i < c; ++i) acc[i] += in[i];
}

using dnnl::memory;

// oneDNN max pooling for one input shape and thread count; `prim` is empty where oneDNN has no
// optimised kernel for it (the Highway loop runs instead).
struct DnnlPool {
  Shape x_shape;
  int threads = 0;
  dnnl::pooling_v2_forward prim;
  memory::desc src_md, dst_md, scratch_md;
  uint64_t id = 0;  // unique over the process: keys the per-thread call cache
};

// A thread's memory objects and arguments for one DnnlPool, re-pointed at each run's buffers so
// that a run creates no oneDNN objects.
struct DnnlPoolCall {
  uint64_t id = 0;
  memory src, dst, scratch;
  std::unordered_map<int, memory> args;
};

DnnlPoolCall& PoolCallFor(const DnnlPool& p) {
  constexpr int kSlots = 8;
  thread_local DnnlPoolCall slots[kSlots];
  thread_local int next = 0;
  for (DnnlPoolCall& c : slots) {
    if (c.id == p.id) return c;
  }
  DnnlPoolCall& c = slots[next];
  next = (next + 1) % kSlots;
  c = DnnlPoolCall{};
  c.id = p.id;
  c.src = memory(p.src_md, DnnlEngine(), DNNL_MEMORY_NONE);
  c.dst = memory(p.dst_md, DnnlEngine(), DNNL_MEMORY_NONE);
  c.scratch = memory(p.scratch_md, DnnlEngine(), DNNL_MEMORY_NONE);
  c.args = {{DNNL_ARG_SRC, c.src}, {DNNL_ARG_DST, c.dst}, {DNNL_ARG_SCRATCHPAD, c.scratch}};
  return c;
}

// Below this many input elements a pool runs on one thread (waking OpenMP's costs more).
constexpr int64_t kDnnlSingleThreadElements = int64_t{1} << 18;

class NhwcMaxPoolKernel : public Kernel {
 public:
  static absl::StatusOr<std::unique_ptr<Kernel>> Create(const Node& node, const Graph&) {
    std::unique_ptr<NhwcMaxPoolKernel> k(new NhwcMaxPoolKernel());
    FW_ASSIGN_OR_RETURN(k->attrs_, ParseWindowAttrs(node));
    if (k->attrs_.kernel_shape.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat(node.Describe(),
                                                     ": kernel_shape must have 2 values, got ",
                                                     k->attrs_.kernel_shape.size()));
    }
    for (size_t i = 1; i < node.outputs.size(); ++i) {
      if (node.outputs[i] >= 0) {
        return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": has no Indices output"));
      }
    }
    return std::unique_ptr<Kernel>(std::move(k));
  }

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* x, ctx.RequiredInput(0));
    if (x->dtype() != DataType::kFp32) return ctx.Error("X must be FP32, got ", x->DebugString());
    if (x->rank() != 4) return ctx.Error("X must be [N, H, W, C], got ", x->DebugString());
    const int64_t n = x->dim(0), ih = x->dim(1), iw = x->dim(2), c = x->dim(3);
    const int64_t in_hw[2] = {ih, iw};
    FW_ASSIGN_OR_RETURN(WindowGeometry g,
                        ComputeWindow(ctx.node(), attrs_, 2, in_hw, attrs_.kernel_shape.data()));
    const int64_t oh = g.out[0], ow = g.out[1];
    FW_ASSIGN_OR_RETURN(Tensor * y, ctx.AllocateOutput(0, DataType::kFp32, Shape{n, oh, ow, c}));
    if (y->NumElements() == 0) return absl::OkStatus();
    const float* in = x->data<float>();
    float* out = y->data<float>();
    const pool_nhwc_internal::MaxPoolGeometry geo{n,
                                                  ih,
                                                  iw,
                                                  c,
                                                  oh,
                                                  ow,
                                                  g.kernel[0],
                                                  g.kernel[1],
                                                  g.strides[0],
                                                  g.strides[1],
                                                  g.dilations[0],
                                                  g.dilations[1],
                                                  g.pad_begin[0],
                                                  g.pad_begin[1]};
    const int threads = x->NumElements() < kDnnlSingleThreadElements ? 1 : ctx.num_threads();
    std::shared_ptr<const DnnlPool> pool = GetPool(x->shape(), threads, g, oh, ow);
    if (pool->prim) {
      const size_t scratch_bytes = pool->scratch_md.get_size();
      void* scratch = scratch_bytes > 0 ? ctx.Scratch(scratch_bytes) : nullptr;
      try {
        SetDnnlThreads(threads);
        DnnlPoolCall& call = PoolCallFor(*pool);
        call.src.set_data_handle(const_cast<float*>(in));
        call.dst.set_data_handle(out);
        if (scratch != nullptr) call.scratch.set_data_handle(scratch);
        dnnl::stream& s = DnnlStream();
        pool->prim.execute(s, call.args);
        s.wait();
      } catch (const dnnl::error& ex) {
        return DnnlError(ctx.node(), "max pooling", ex);
      }
      return absl::OkStatus();
    }
    const int64_t rows = n * oh;
    if (x->NumElements() < kParallelElements || ctx.num_threads() <= 1) {
      pool_nhwc_internal::DispatchMaxPoolRows(in, out, geo, 0, rows);
    } else {
      const int64_t per_row = std::max<int64_t>(1, x->NumElements() / std::max<int64_t>(rows, 1));
      ctx.pool().ParallelFor(rows, std::max<int64_t>(1, (1 << 20) / per_row),
                             [&](int64_t begin, int64_t end) {
                               pool_nhwc_internal::DispatchMaxPoolRows(in, out, geo, begin, end);
                             });
    }
    return absl::OkStatus();
  }

 private:
  NhwcMaxPoolKernel() = default;

  // The cached oneDNN pooling for `x` (NHWC) at `threads`, built on first use.
  std::shared_ptr<const DnnlPool> GetPool(const Shape& x, int threads, const WindowGeometry& g,
                                          int64_t oh, int64_t ow) const {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& p : cache_) {
        if (p->x_shape == x && p->threads == threads) return p;
      }
    }
    static std::atomic<uint64_t> next_id{1};
    auto p = std::make_shared<DnnlPool>();
    p->x_shape = x;
    p->threads = threads;
    p->id = next_id.fetch_add(1);
    try {
      SetDnnlThreads(threads);  // oneDNN fixes a primitive's threads when it creates it
      const memory::dims src{x[0], x[3], x[1], x[2]}, dst{x[0], x[3], oh, ow};
      p->src_md = memory::desc(src, memory::data_type::f32, memory::format_tag::nhwc);
      p->dst_md = memory::desc(dst, memory::data_type::f32, memory::format_tag::nhwc);
      dnnl::pooling_v2_forward::desc desc(
          dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_max, p->src_md, p->dst_md,
          {g.strides[0], g.strides[1]}, {g.kernel[0], g.kernel[1]},
          {g.dilations[0] - 1, g.dilations[1] - 1}, {g.pad_begin[0], g.pad_begin[1]},
          {g.pad_end[0], g.pad_end[1]});
      dnnl::primitive_attr attr;
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      dnnl::pooling_v2_forward::primitive_desc pd(desc, attr, DnnlEngine());
      if (!absl::StartsWith(pd.impl_info_str(), "ref")) {
        p->prim = dnnl::pooling_v2_forward(pd);
        p->scratch_md = pd.scratchpad_desc();
      }
    } catch (const dnnl::error&) {
      p->prim = dnnl::pooling_v2_forward();  // a geometry oneDNN does not take: Highway loop
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (cache_.size() >= kMaxCached) cache_.erase(cache_.begin());
    cache_.push_back(p);
    return p;
  }

  static constexpr size_t kMaxCached = 16;
  WindowAttrs attrs_;
  mutable std::mutex mu_;
  mutable std::vector<std::shared_ptr<const DnnlPool>> cache_;  // guarded by mu_
};

class NhwcGlobalAveragePoolKernel : public Kernel {
 public:
  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* x, ctx.RequiredInput(0));
    if (x->dtype() != DataType::kFp32) return ctx.Error("X must be FP32, got ", x->DebugString());
    if (x->rank() != 4) return ctx.Error("X must be [N, H, W, C], got ", x->DebugString());
    const int64_t n = x->dim(0), hw = x->dim(1) * x->dim(2), c = x->dim(3);
    FW_ASSIGN_OR_RETURN(Tensor * y, ctx.AllocateOutput(0, DataType::kFp32, Shape{n, c, 1, 1}));
    if (y->NumElements() == 0) return absl::OkStatus();
    const float* in = x->data<float>();
    float* out = y->data<float>();
    const float scale = hw > 0 ? 1.0f / static_cast<float>(hw) : 0.0f;
    {
      for (int64_t b = 0; b < n; ++b) {
        float* acc = out + b * c;  // [N, C, 1, 1] is [N, C] in memory
        std::fill_n(acc, c, 0.0f);
        const float* src = in + b * hw * c;
        for (int64_t p = 0; p < hw; ++p) AddInto(acc, src + p * c, c);
        for (int64_t i = 0; i < c; ++i) acc[i] *= scale;
      }
    }
    return absl::OkStatus();
  }
};

absl::StatusOr<std::unique_ptr<Kernel>> MakeNhwcGlobalAveragePool(const Node&, const Graph&) {
  return std::unique_ptr<Kernel>(new NhwcGlobalAveragePoolKernel());
}

}  // namespace

void RegisterChannelsLastPoolKernels(KernelRegistry& registry) {
  registry.Register(kFlywheelDomain, "NhwcMaxPool", NhwcMaxPoolKernel::Create);
  registry.Register(kFlywheelDomain, "NhwcGlobalAveragePool", MakeNhwcGlobalAveragePool);
}

}  // namespace flywheel::engine
#endif  // HWY_ONCE
