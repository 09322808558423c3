// LayerNormalization (ONNX opset 17): each row of the trailing dims from `axis` on is normalised
// to zero mean and unit variance (two passes: mean, then variance of the centred values), then
// scaled and shifted; optional Mean and InvStdDev outputs. The row loop is Highway code compiled
// per SIMD target through hwy/foreach_target.h; rows are split over the thread pool.
#include <algorithm>
#include <cmath>
#include <memory>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "engine/kernels/layer_norm.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace flywheel::engine::layer_norm_internal {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Normalises rows [r0, r1) of x (each `cols` long) into y. scale/bias have `cols` elements, or one
// when *_bcast is set; bias may be nullptr. mean/inv_std (per row) may be nullptr.
void LayerNormRows(const float* x, float* y, int64_t r0, int64_t r1, int64_t cols,
                   const float* scale, bool scale_bcast, const float* bias, bool bias_bcast,
                   float epsilon, float* mean_out, float* inv_out) {
  const hn::ScalableTag<float> d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    auto s0 = hn::Zero(d), s1 = hn::Zero(d);
    int64_t j = 0;
    for (; j + 2 * L <= cols; j += 2 * L) {
      s0 = hn::Add(s0, hn::LoadU(d, xr + j));
      s1 = hn::Add(s1, hn::LoadU(d, xr + j + L));
    }
    for (; j + L <= cols; j += L) s0 = hn::Add(s0, hn::LoadU(d, xr + j));
    float sum = hn::GetLane(hn::SumOfLanes(d, hn::Add(s0, s1)));
    for (; j < cols; ++j) sum += xr[j];
    const float mean = sum / static_cast<float>(cols);
    const auto vm = hn::Set(d, mean);
    s0 = hn::Zero(d);
    s1 = hn::Zero(d);
    j = 0;
    for (; j + 2 * L <= cols; j += 2 * L) {
      const auto a = hn::Sub(hn::LoadU(d, xr + j), vm);
      const auto b = hn::Sub(hn::LoadU(d, xr + j + L), vm);
      s0 = hn::MulAdd(a, a, s0);
      s1 = hn::MulAdd(b, b, s1);
    }
    for (; j + L <= cols; j += L) {
      const auto a = hn::Sub(hn::LoadU(d, xr + j), vm);
      s0 = hn::MulAdd(a, a, s0);
    }
    float sq = hn::GetLane(hn::SumOfLanes(d, hn::Add(s0, s1)));
    for (; j < cols; ++j) sq += (xr[j] - mean) * (xr[j] - mean);
    const float inv = 1.0f / std::sqrt(sq / static_cast<float>(cols) + epsilon);
    if (mean_out != nullptr) mean_out[r] = mean;
    if (inv_out != nullptr) inv_out[r] = inv;
    const auto vi = hn::Set(d, inv);
    const auto vs = hn::Set(d, scale[0]);
    const auto vb = hn::Set(d, bias != nullptr ? bias[0] : 0.0f);
    j = 0;
    for (; j + L <= cols; j += L) {
      const auto sc = scale_bcast ? vs : hn::LoadU(d, scale + j);
      const auto bi = bias == nullptr || bias_bcast ? vb : hn::LoadU(d, bias + j);
      const auto n = hn::Mul(hn::Sub(hn::LoadU(d, xr + j), vm), vi);
      hn::StoreU(hn::MulAdd(n, sc, bi), d, yr + j);
    }
    for (; j < cols; ++j) {
      const float sc = scale_bcast ? scale[0] : scale[j];
      const float bi = bias == nullptr ? 0.0f : (bias_bcast ? bias[0] : bias[j]);
      yr[j] = (xr[j] - mean) * inv * sc + bi;
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace flywheel::engine::layer_norm_internal
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "engine/kernels/kernel_util.h"
#include "engine/kernels/registry.h"

namespace flywheel::engine {
namespace layer_norm_internal {
HWY_EXPORT(LayerNormRows);

// Dispatches from inside this namespace: with a single compiled target, HWY_DYNAMIC_DISPATCH
// expands to a namespace-relative name that must resolve here.
void DispatchLayerNormRows(const float* x, float* y, int64_t r0, int64_t r1, int64_t cols,
                           const float* scale, bool scale_bcast, const float* bias, bool bias_bcast,
                           float eps, float* mean_out, float* inv_out) {
  HWY_DYNAMIC_DISPATCH(LayerNormRows)
  (x, y, r0, r1, cols, scale, scale_bcast, bias, bias_bcast, eps, mean_out, inv_out);
}
}  // namespace layer_norm_internal

namespace {

// Elements per parallel work item: rows are grouped so that each item is worth a thread wake-up.
constexpr int64_t kMinElementsPerTask = 32 * 1024;

class LayerNormKernel : public Kernel {
 public:
  LayerNormKernel(int64_t axis, float epsilon) : axis_(axis), epsilon_(epsilon) {}

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* x, ctx.RequiredInput(0));
    FW_ASSIGN_OR_RETURN(const Tensor* scale, ctx.RequiredInput(1));
    const Tensor* bias = ctx.input(2);
    if (x->dtype() != DataType::kFp32) return ctx.Error("X must be FP32, got ", x->DebugString());
    const Shape& shape = x->shape();
    if (shape.rank() == 0) return ctx.Error("X must have rank >= 1");
    FW_ASSIGN_OR_RETURN(int axis, NormalizeAxis(axis_, shape.rank(), ctx.node()));
    const int64_t rows = shape.Product(0, axis);
    const int64_t cols = shape.Product(axis, shape.rank());
    auto check_param = [&](const Tensor* t, const char* what) -> absl::Status {
      if (t->dtype() != DataType::kFp32 || (t->NumElements() != cols && t->NumElements() != 1)) {
        return ctx.Error(what, " must be FP32 with ", cols, " elements (the normalised shape ",
                         Shape(absl::MakeConstSpan(shape.dims()).subspan(axis)).ToString(),
                         ") or one, got ", t->DebugString());
      }
      return absl::OkStatus();
    };
    FW_RETURN_IF_ERROR(check_param(scale, "Scale"));
    if (bias != nullptr) FW_RETURN_IF_ERROR(check_param(bias, "B"));
    FW_ASSIGN_OR_RETURN(Tensor * y, ctx.AllocateOutput(0, DataType::kFp32, shape));
    Shape stat_shape;
    for (int i = 0; i < shape.rank(); ++i) stat_shape.push_back(i < axis ? shape[i] : 1);
    float* mean_out = nullptr;
    float* inv_out = nullptr;
    const Node& node = ctx.node();
    if (node.outputs.size() > 1 && node.outputs[1] >= 0) {
      FW_ASSIGN_OR_RETURN(Tensor * t, ctx.AllocateOutput(1, DataType::kFp32, stat_shape));
      mean_out = t->data<float>();
    }
    if (node.outputs.size() > 2 && node.outputs[2] >= 0) {
      FW_ASSIGN_OR_RETURN(Tensor * t, ctx.AllocateOutput(2, DataType::kFp32, stat_shape));
      inv_out = t->data<float>();
    }
    if (rows == 0) return absl::OkStatus();
    if (cols == 0) {
      // Nothing to normalise: statistics of an empty row are undefined; report NaN.
      for (int64_t r = 0; r < rows; ++r) {
        if (mean_out != nullptr) mean_out[r] = std::nanf("");
        if (inv_out != nullptr) inv_out[r] = std::nanf("");
      }
      return absl::OkStatus();
    }
    const float* xd = x->data<float>();
    float* yd = y->data<float>();
    const float* sd = scale->data<float>();
    const bool s_bcast = scale->NumElements() == 1 && cols != 1;
    const float* bd = bias != nullptr ? bias->data<float>() : nullptr;
    const bool b_bcast = bias != nullptr && bias->NumElements() == 1 && cols != 1;
    const float eps = epsilon_;
    auto body = [&](int64_t r0, int64_t r1) {
      layer_norm_internal::DispatchLayerNormRows(xd, yd, r0, r1, cols, sd, s_bcast, bd, b_bcast,
                                                 eps, mean_out, inv_out);
    };
    const int64_t grain = std::max<int64_t>(1, kMinElementsPerTask / cols);
    if (ctx.num_threads() == 1 || rows <= grain) {
      body(0, rows);
    } else {
      ctx.pool().ParallelFor(rows, grain, body);
    }
    return absl::OkStatus();
  }

 private:
  int64_t axis_;
  float epsilon_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> MakeLayerNorm(const Node& node, const Graph&) {
  if (node.input(0) < 0 || node.input(1) < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(node.Describe(), ": inputs X and Scale are required"));
  }
  const float eps = node.GetFloat("epsilon", 1e-5f);
  if (!(eps >= 0.0f) || !std::isfinite(eps)) {
    return absl::InvalidArgumentError(
        absl::StrCat(node.Describe(), ": epsilon must be a finite non-negative float, got ", eps));
  }
  return std::unique_ptr<Kernel>(new LayerNormKernel(node.GetInt("axis", -1), eps));
}

}  // namespace flywheel::engine
#endif  // HWY_ONCE
