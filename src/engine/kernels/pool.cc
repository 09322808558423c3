// Pooling over NCHW float tensors: MaxPool (with the optional Indices output), AveragePool and
// GlobalAveragePool / GlobalMaxPool, for 1 to 3 spatial axes. Every window is clipped to the
// input by per-axis tap ranges computed once per run, so no padded element is ever read.
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

enum class PoolKind { kMax, kAverage };

// For one output position on one axis: the first input position of the window, the range of
// taps [lo, hi) that fall inside the input, and the number of taps inside input + padding.
struct AxisTaps {
  int64_t start, lo, hi, padded;
};

int64_t FloorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

void ComputeTaps(const WindowGeometry& g, int axis, AxisTaps* taps) {
  const int64_t k = g.kernel[axis], s = g.strides[axis], d = g.dilations[axis];
  const int64_t in = g.in[axis], pb = g.pad_begin[axis], pe = g.pad_end[axis];
  for (int64_t o = 0; o < g.out[axis]; ++o) {
    AxisTaps& t = taps[o];
    t.start = o * s - pb;
    t.lo = t.start >= 0 ? 0 : (-t.start + d - 1) / d;
    t.hi = std::clamp<int64_t>(FloorDiv(in - 1 - t.start, d) + 1, 0, k);
    t.padded = std::clamp<int64_t>(FloorDiv(in + pe - 1 - t.start, d) + 1, 0, k);
    if (t.lo > t.hi) t.lo = t.hi;
  }
}

class PoolKernel : public Kernel {
 public:
  static absl::StatusOr<std::unique_ptr<Kernel>> Create(const Node& node, const Graph& graph,
                                                        PoolKind kind) {
    auto err = [&](const auto&... args) {
      return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": ", args...));
    };
    std::unique_ptr<PoolKernel> k(new PoolKernel());
    k->kind_ = kind;
    FW_ASSIGN_OR_RETURN(k->attrs_, ParseWindowAttrs(node));
    const size_t sp = k->attrs_.kernel_shape.size();
    if (sp < 1 || sp > 3) return err("kernel_shape must have 1 to 3 values, got ", sp);
    if (kind == PoolKind::kAverage) {
      int64_t cip = node.GetInt("count_include_pad", 0);
      if (cip != 0 && cip != 1) return err("count_include_pad must be 0 or 1, got ", cip);
      k->count_include_pad_ = cip == 1;
    } else {
      int64_t so = node.GetInt("storage_order", 0);
      if (so != 0 && so != 1) return err("storage_order must be 0 or 1, got ", so);
      k->column_major_ = so == 1;
      k->indices_ = node.outputs.size() > 1 && node.outputs[1] >= 0;
    }
    return std::unique_ptr<Kernel>(std::move(k));
  }

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* x, ctx.RequiredInput(0));
    const int sp = static_cast<int>(attrs_.kernel_shape.size());
    if (x->dtype() != DataType::kFp32) return ctx.Error("X must be FP32, got ", x->DebugString());
    if (x->rank() != sp + 2) {
      return ctx.Error("X must have rank ", sp + 2, " for a ", sp, "-D kernel, got ",
                       x->DebugString());
    }
    FW_ASSIGN_OR_RETURN(WindowGeometry g,
                        ComputeWindow(ctx.node(), attrs_, sp, x->shape().dims().data() + 2,
                                      attrs_.kernel_shape.data()));
    // Pad the geometry to 3 axes (leading axes of size 1) so one loop nest serves all ranks.
    WindowGeometry g3;
    g3.spatial = 3;
    for (int i = 0; i < 3 - sp; ++i) {
      for (IntList* v : {&g3.kernel, &g3.strides, &g3.dilations, &g3.in, &g3.out}) v->push_back(1);
      g3.pad_begin.push_back(0);
      g3.pad_end.push_back(0);
    }
    for (int i = 0; i < sp; ++i) {
      g3.kernel.push_back(g.kernel[i]);
      g3.strides.push_back(g.strides[i]);
      g3.dilations.push_back(g.dilations[i]);
      g3.in.push_back(g.in[i]);
      g3.out.push_back(g.out[i]);
      g3.pad_begin.push_back(g.pad_begin[i]);
      g3.pad_end.push_back(g.pad_end[i]);
    }
    Shape ys{x->dim(0), x->dim(1)};
    for (int i = 0; i < sp; ++i) ys.push_back(g.out[i]);
    FW_ASSIGN_OR_RETURN(Tensor * y, ctx.AllocateOutput(0, DataType::kFp32, ys));
    int64_t* idx = nullptr;
    if (indices_) {
      FW_ASSIGN_OR_RETURN(Tensor * it, ctx.AllocateOutput(1, DataType::kInt64, ys));
      idx = it->data<int64_t>();
    }
    if (y->NumElements() == 0) return absl::OkStatus();
    AxisTaps* taps[3];
    for (int a = 0; a < 3; ++a) {
      taps[a] = static_cast<AxisTaps*>(ctx.Scratch(sizeof(AxisTaps) * g3.out[a]));
      ComputeTaps(g3, a, taps[a]);
    }
    const int64_t planes = x->dim(0) * x->dim(1);
    const int64_t in_plane = g3.in[0] * g3.in[1] * g3.in[2];
    const int64_t out_plane = g3.out[0] * g3.out[1] * g3.out[2];
    const int64_t work = out_plane * g3.kernel[0] * g3.kernel[1] * g3.kernel[2];
    const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(work, 1));
    const float* in = x->data<float>();
    float* out = y->data<float>();
    // 2-D max pooling without dilation or Indices (the common CNN case) takes the separable path.
    const bool separable = kind_ == PoolKind::kMax && idx == nullptr && g3.out[0] == 1 &&
                           g3.kernel[0] == 1 && g3.in[0] == 1 && g3.dilations[1] == 1 &&
                           g3.dilations[2] == 1 && g3.in[2] <= kMaxSeparableWidth;
    ctx.pool().ParallelFor(planes, grain, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        if (separable) {
          MaxPlane2D(g3, taps, in + p * in_plane, out + p * out_plane);
        } else {
          PoolPlane(g3, taps, in + p * in_plane, out + p * out_plane,
                    idx != nullptr ? idx + p * out_plane : nullptr, p * in_plane);
        }
      }
    });
    return absl::OkStatus();
  }

 private:
  PoolKernel() = default;

  // Widest input row the separable path handles (its row buffer lives on the stack).
  static constexpr int64_t kMaxSeparableWidth = 2048;

  // Max pooling of one 2-D plane in two passes per output row: the element-wise max of the
  // window's input rows (contiguous, vectorised by the compiler), then the max across each
  // window's columns of that row.
  static void MaxPlane2D(const WindowGeometry& g, AxisTaps* const* taps, const float* in,
                         float* out) {
    const int64_t iw = g.in[2];
    float row_max[kMaxSeparableWidth];
    for (int64_t oh = 0; oh < g.out[1]; ++oh) {
      const AxisTaps& th = taps[1][oh];
      if (th.lo >= th.hi) {
        for (int64_t ow = 0; ow < g.out[2]; ++ow) *out++ = std::numeric_limits<float>::lowest();
        continue;
      }
      const float* first = in + (th.start + th.lo) * iw;
      std::copy(first, first + iw, row_max);
      for (int64_t jh = th.lo + 1; jh < th.hi; ++jh) {
        const float* row = in + (th.start + jh) * iw;
        for (int64_t w = 0; w < iw; ++w) row_max[w] = std::max(row_max[w], row[w]);
      }
      for (int64_t ow = 0; ow < g.out[2]; ++ow) {
        const AxisTaps& tw = taps[2][ow];
        if (tw.lo >= tw.hi) {
          *out++ = std::numeric_limits<float>::lowest();
          continue;
        }
        // tw.start may be negative (padding); only taps in [lo, hi) are inside the row.
        float best = row_max[tw.start + tw.lo];
        for (int64_t jw = tw.lo + 1; jw < tw.hi; ++jw)
          best = std::max(best, row_max[tw.start + jw]);
        *out++ = best;
      }
    }
  }

  void PoolPlane(const WindowGeometry& g, AxisTaps* const* taps, const float* in, float* out,
                 int64_t* idx, int64_t plane_offset) const {
    const int64_t ih = g.in[1], iw = g.in[2];
    const int64_t dd = g.dilations[0], dh = g.dilations[1], dw = g.dilations[2];
    for (int64_t od = 0; od < g.out[0]; ++od) {
      const AxisTaps& td = taps[0][od];
      for (int64_t oh = 0; oh < g.out[1]; ++oh) {
        const AxisTaps& th = taps[1][oh];
        for (int64_t ow = 0; ow < g.out[2]; ++ow) {
          const AxisTaps& tw = taps[2][ow];
          float r;
          if (kind_ == PoolKind::kMax && idx == nullptr && td.lo < td.hi && th.lo < th.hi &&
              tw.lo < tw.hi) {
            // No Indices output: a branch-free max, seeded with the window's first element so that
            // a NaN there behaves as in the general path below.
            const float* first = in + ((td.start + td.lo * dd) * ih + th.start + th.lo * dh) * iw;
            float best = first[tw.start + tw.lo * dw];
            for (int64_t jd = td.lo; jd < td.hi; ++jd) {
              const int64_t z = td.start + jd * dd;
              for (int64_t jh = th.lo; jh < th.hi; ++jh) {
                const float* row = in + (z * ih + th.start + jh * dh) * iw + tw.start;
                for (int64_t jw = tw.lo; jw < tw.hi; ++jw) best = std::max(best, row[jw * dw]);
              }
            }
            r = best;
          } else if (kind_ == PoolKind::kMax) {
            float best = std::numeric_limits<float>::lowest();
            int64_t best_at = -1;
            for (int64_t jd = td.lo; jd < td.hi; ++jd) {
              const int64_t z = td.start + jd * dd;
              for (int64_t jh = th.lo; jh < th.hi; ++jh) {
                const int64_t h = th.start + jh * dh;
                const float* row = in + (z * ih + h) * iw;
                for (int64_t jw = tw.lo; jw < tw.hi; ++jw) {
                  const int64_t w = tw.start + jw * dw;
                  // NaN propagates like std::max over the window in ONNX Runtime: ignored.
                  if (row[w] > best || best_at < 0) {
                    best = row[w];
                    best_at = (z * ih + h) * iw + w;
                  }
                }
              }
            }
            r = best;
            if (idx != nullptr) {
              int64_t at = best_at < 0 ? 0 : best_at;
              if (column_major_) {
                // storage_order=1: column-major within each depth slice, (z, w, h).
                const int64_t z = at / (ih * iw), h = at / iw % ih, w = at % iw;
                at = (z * iw + w) * ih + h;
              }
              *idx++ = plane_offset + at;
            }
          } else {
            double sum = 0;
            for (int64_t jd = td.lo; jd < td.hi; ++jd) {
              const int64_t z = td.start + jd * dd;
              for (int64_t jh = th.lo; jh < th.hi; ++jh) {
                const int64_t h = th.start + jh * dh;
                const float* row = in + (z * ih + h) * iw;
                float s = 0;
                for (int64_t jw = tw.lo; jw < tw.hi; ++jw) s += row[tw.start + jw * dw];
                sum += s;
              }
            }
            const int64_t count = count_include_pad_
                                      ? td.padded * th.padded * tw.padded
                                      : (td.hi - td.lo) * (th.hi - th.lo) * (tw.hi - tw.lo);
            r = count > 0 ? static_cast<float>(sum / count) : 0.0f;
          }
          *out++ = r;
        }
      }
    }
  }

  PoolKind kind_ = PoolKind::kMax;
  WindowAttrs attrs_;
  bool count_include_pad_ = false;
  bool column_major_ = false;
  bool indices_ = false;
};

// GlobalAveragePool / GlobalMaxPool: one value per (n, c) plane.
class GlobalPoolKernel : public Kernel {
 public:
  explicit GlobalPoolKernel(PoolKind kind) : kind_(kind) {}

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* x, ctx.RequiredInput(0));
    if (x->dtype() != DataType::kFp32) return ctx.Error("X must be FP32, got ", x->DebugString());
    if (x->rank() < 2)
      return ctx.Error("X must have rank >= 2 (N, C, ...), got ", x->DebugString());
    Shape ys{x->dim(0), x->dim(1)};
    for (int i = 2; i < x->rank(); ++i) ys.push_back(1);
    FW_ASSIGN_OR_RETURN(Tensor * y, ctx.AllocateOutput(0, DataType::kFp32, ys));
    const int64_t planes = x->dim(0) * x->dim(1);
    const int64_t inner = x->shape().Product(2, x->rank());
    if (inner == 0 && kind_ == PoolKind::kMax) {
      return ctx.Error("GlobalMaxPool over an empty spatial extent");
    }
    const float* in = x->data<float>();
    float* out = y->data<float>();
    const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(inner, 1));
    ctx.pool().ParallelFor(planes, grain, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const float* src = in + p * inner;
        if (kind_ == PoolKind::kAverage) {
          // Eight independent partial sums: vectorisable and more accurate than one.
          float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
          int64_t i = 0;
          for (; i + 8 <= inner; i += 8) {
            for (int j = 0; j < 8; ++j) acc[j] += src[i + j];
          }
          double sum = 0;
          for (int j = 0; j < 8; ++j) sum += acc[j];
          for (; i < inner; ++i) sum += src[i];
          out[p] = inner > 0 ? static_cast<float>(sum / inner) : 0.0f;
        } else {
          float best = src[0];
          for (int64_t i = 1; i < inner; ++i) best = std::max(best, src[i]);
          out[p] = best;
        }
      }
    });
    return absl::OkStatus();
  }

 private:
  PoolKind kind_;
};

absl::StatusOr<std::unique_ptr<Kernel>> MakeMaxPool(const Node& node, const Graph& graph) {
  return PoolKernel::Create(node, graph, PoolKind::kMax);
}
absl::StatusOr<std::unique_ptr<Kernel>> MakeAveragePool(const Node& node, const Graph& graph) {
  return PoolKernel::Create(node, graph, PoolKind::kAverage);
}
absl::StatusOr<std::unique_ptr<Kernel>> MakeGlobalAveragePool(const Node& node, const Graph&) {
  return std::unique_ptr<Kernel>(new GlobalPoolKernel(PoolKind::kAverage));
}
absl::StatusOr<std::unique_ptr<Kernel>> MakeGlobalMaxPool(const Node& node, const Graph&) {
  return std::unique_ptr<Kernel>(new GlobalPoolKernel(PoolKind::kMax));
}

}  // namespace

void RegisterPoolKernels(KernelRegistry& registry) {
  registry.Register("", "MaxPool", MakeMaxPool);
  registry.Register("", "AveragePool", MakeAveragePool);
  registry.Register("", "GlobalAveragePool", MakeGlobalAveragePool);
  registry.Register("", "GlobalMaxPool", MakeGlobalMaxPool);
}

}  // namespace flywheel::engine
