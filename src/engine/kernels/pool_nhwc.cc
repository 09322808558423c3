// Channels-last pooling for the NHWC chains the channels-last pass builds: com.flywheel
// NhwcMaxPool (MaxPool attributes, X and Y [N, H, W, C], no Indices) and NhwcGlobalAveragePool
// (X [N, H, W, C], Y [N, C, 1, 1] as GlobalAveragePool). Channels are the contiguous axis, so each
// window tap is a vector max/add over C. They run on the calling thread: they sit between oneDNN
// convolutions, whose OpenMP workers keep spinning for a while after each primitive, and a
// thread-pool worker woken in that window competes with them for the cores (with 2 threads on a
// busy machine that cost milliseconds), while the pools themselves are a small part of the model.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "engine/kernels/conv_util.h"
#include "engine/kernels/registry.h"

namespace flywheel::engine {
namespace {

// Fixed-width chunks let the compiler keep a chunk in vector registers at the default -O2.
constexpr int64_t kLanes = 16;

inline void MaxInto(float* __restrict acc, const float* __restrict in, int64_t c) {
  int64_t i = 0;
  for (; i + kLanes <= c; i += kLanes) {
    for (int64_t j = 0; j < kLanes; ++j) acc[i + j] = std::max(acc[i + j], in[i + j]);
  }
  for (; i < c; ++i) acc[i] = std::max(acc[i], in[i]);
}

inline void AddInto(float* __restrict acc, const float* __restrict in, int64_t c) {
  int64_t i = 0;
  for (; i + kLanes <= c; i += kLanes) {
    for (int64_t j = 0; j < kLanes; ++j) acc[i + j] += in[i + j];
  }
  for (; i < c; ++i) acc[i] += in[i];
}

// First input position of output `o`'s window and its taps [lo, hi) inside the input.
struct Taps {
  int64_t start, lo, hi;
};

Taps TapsOf(const WindowGeometry& g, int axis, int64_t o) {
  const int64_t d = g.dilations[axis];
  Taps t;
  t.start = o * g.strides[axis] - g.pad_begin[axis];
  t.lo = t.start >= 0 ? 0 : (-t.start + d - 1) / d;
  const int64_t last = g.in[axis] - 1 - t.start;  // >= 0 unless the window is all padding
  t.hi = last < 0 ? 0 : std::min<int64_t>(last / d + 1, g.kernel[axis]);
  if (t.lo > t.hi) t.lo = t.hi;
  return t;
}

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
    const int64_t dh = g.dilations[0], dw = g.dilations[1];
    {
      for (int64_t r = 0; r < n * oh; ++r) {
        const int64_t b = r / oh, y_h = r % oh;
        const Taps th = TapsOf(g, 0, y_h);
        float* dst = out + r * ow * c;
        for (int64_t y_w = 0; y_w < ow; ++y_w, dst += c) {
          const Taps tw = TapsOf(g, 1, y_w);
          if (th.lo >= th.hi || tw.lo >= tw.hi) {  // a window entirely in the padding
            std::fill_n(dst, c, std::numeric_limits<float>::lowest());
            continue;
          }
          const float* plane = in + b * ih * iw * c;
          auto at = [&](int64_t jh, int64_t jw) {
            return plane + ((th.start + jh * dh) * iw + tw.start + jw * dw) * c;
          };
          std::copy_n(at(th.lo, tw.lo), c, dst);
          for (int64_t jh = th.lo; jh < th.hi; ++jh) {
            for (int64_t jw = jh == th.lo ? tw.lo + 1 : tw.lo; jw < tw.hi; ++jw) {
              MaxInto(dst, at(jh, jw), c);
            }
          }
        }
      }
    }
    return absl::OkStatus();
  }

 private:
  NhwcMaxPoolKernel() = default;
  WindowAttrs attrs_;
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
