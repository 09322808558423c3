// com.flywheel Attention: softmax(scale * Q @ K^T + mask) @ V per (batch, head), created by the
// graph passes from the MatMul/Softmax/MatMul pattern of transformer encoders. The (batch, head)
// pairs are split over the thread pool; each worker slot has its own scratch for the score matrix
// and the packed right-hand operands.
#include <algorithm>
#include <cmath>
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "engine/kernels/gemm.h"
#include "engine/kernels/registry.h"
#include "engine/kernels/simd_math.h"

namespace flywheel::engine {
namespace {

// Below this many multiply-adds per thread, heads run on the calling thread.
constexpr int64_t kMinFmasPerThread = 64 * 1024;

class AttentionKernel : public Kernel {
 public:
  static absl::StatusOr<std::unique_ptr<Kernel>> Create(const Node& node, const Graph&) {
    std::unique_ptr<AttentionKernel> k(new AttentionKernel());
    if (node.input(0) < 0 || node.input(1) < 0 || node.input(2) < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(node.Describe(), ": inputs Q, K and V are required"));
    }
    k->has_scale_ = node.HasAttr("scale");
    k->scale_ = node.GetFloat("scale", 1.0f);
    const int64_t kt = node.GetInt("k_transposed", 0);
    if (kt != 0 && kt != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(node.Describe(), ": k_transposed must be 0 or 1, got ", kt));
    }
    k->k_transposed_ = kt == 1;
    return std::unique_ptr<Kernel>(std::move(k));
  }

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* q, ctx.RequiredInput(0));
    FW_ASSIGN_OR_RETURN(const Tensor* kt, ctx.RequiredInput(1));
    FW_ASSIGN_OR_RETURN(const Tensor* v, ctx.RequiredInput(2));
    const Tensor* mask = ctx.input(3);
    for (const Tensor* t : {q, kt, v}) {
      if (t->dtype() != DataType::kFp32 || t->rank() != 4) {
        return ctx.Error("Q, K and V must be 4-D FP32 tensors, got ", t->DebugString());
      }
    }
    const int64_t nb = q->dim(0), nh = q->dim(1), s = q->dim(2), d = q->dim(3);
    const int64_t sk = k_transposed_ ? kt->dim(3) : kt->dim(2);
    const int64_t dk = k_transposed_ ? kt->dim(2) : kt->dim(3);
    const int64_t dv = v->dim(3);
    if (kt->dim(0) != nb || kt->dim(1) != nh || v->dim(0) != nb || v->dim(1) != nh || dk != d ||
        v->dim(2) != sk) {
      return ctx.Error("shapes do not match: Q ", q->shape().ToString(), ", K ",
                       kt->shape().ToString(), k_transposed_ ? " (transposed)" : "", ", V ",
                       v->shape().ToString());
    }
    // Mask strides over [B, H, S, Sk], 0 where the mask broadcasts.
    int64_t ms[4] = {0, 0, 0, 0};
    if (mask != nullptr) {
      if (mask->dtype() != DataType::kFp32 || mask->rank() > 4) {
        return ctx.Error("mask must be an FP32 tensor of rank <= 4, got ", mask->DebugString());
      }
      const int64_t full[4] = {nb, nh, s, sk};
      int64_t stride = 1;
      for (int i = 3, j = mask->rank() - 1; i >= 0; --i, --j) {
        const int64_t dm = j >= 0 ? mask->dim(j) : 1;
        if (dm != 1 && dm != full[i]) {
          return ctx.Error("mask ", mask->shape().ToString(), " does not broadcast to [", nb, ",",
                           nh, ",", s, ",", sk, "]");
        }
        ms[i] = dm == 1 ? 0 : stride;
        stride *= dm;
      }
    }
    FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(0, DataType::kFp32, Shape{nb, nh, s, dv}));
    const int64_t heads = nb * nh;
    if (heads == 0 || s == 0 || dv == 0) return absl::OkStatus();
    if (sk == 0) {
      // Softmax over nothing: define the result as zeros rather than NaN.
      std::fill_n(out->data<float>(), out->NumElements(), 0.0f);
      return absl::OkStatus();
    }
    const float scale = has_scale_ ? scale_ : 1.0f / std::sqrt(static_cast<float>(d));
    const int64_t per_head = s * sk * (d + dv);
    const int64_t slots = std::clamp<int64_t>(
        std::min<int64_t>(heads * per_head / kMinFmasPerThread, heads), 1, ctx.num_threads());
    auto round64 = [](int64_t floats) { return (floats + 15) / 16 * 16; };
    const int64_t score_floats = round64(s * sk);
    const int64_t pack_floats =
        round64(std::max<int64_t>({PackedBSize(d, sk), PackedBSize(sk, dv), 1}));
    const int64_t slot_floats = score_floats + pack_floats;
    float* scratch = static_cast<float*>(ctx.Scratch(slots * slot_floats * sizeof(float)));
    const float* qd = q->data<float>();
    const float* kd = kt->data<float>();
    const float* vd = v->data<float>();
    const float* md = mask != nullptr ? mask->data<float>() : nullptr;
    float* od = out->data<float>();
    const bool k_transposed = k_transposed_;
    auto run_heads = [&](int64_t slot, int64_t begin, int64_t end) {
      float* scores = scratch + slot * slot_floats;
      float* packed = scores + score_floats;
      for (int64_t bh = begin; bh < end; ++bh) {
        const int64_t b = bh / nh, h = bh % nh;
        // scores = scale * Q @ K^T
        const float* kh = kd + bh * sk * d;
        if (k_transposed) {
          PackBInto(false, d, sk, kh, sk, packed);
        } else {
          PackBInto(true, d, sk, kh, d, packed);
        }
        SgemmPanels(false, s, sk, d, scale, qd + bh * s * d, d, packed, 0.0f, scores, sk,
                    GemmEpilogue{}, nullptr);
        for (int64_t i = 0; md != nullptr && i < s; ++i) {
          float* row = scores + i * sk;
          const float* mrow = md + b * ms[0] + h * ms[1] + i * ms[2];
          if (ms[3] == 0) {
            for (int64_t j = 0; j < sk; ++j) row[j] += mrow[0];
          } else {
            for (int64_t j = 0; j < sk; ++j) row[j] += mrow[j];
          }
        }
        simd::SoftmaxRows(scores, scores, s, sk, /*log=*/false);
        // out = P @ V
        PackBInto(false, sk, dv, vd + bh * sk * dv, dv, packed);
        SgemmPanels(false, s, dv, sk, 1.0f, scores, sk, packed, 0.0f, od + bh * s * dv, dv,
                    GemmEpilogue{}, nullptr);
      }
    };
    if (slots == 1) {
      run_heads(0, 0, heads);
    } else {
      ctx.pool().ParallelFor(slots, 1, [&](int64_t s0, int64_t s1) {
        for (int64_t sl = s0; sl < s1; ++sl) {
          run_heads(sl, sl * heads / slots, (sl + 1) * heads / slots);
        }
      });
    }
    return absl::OkStatus();
  }

 private:
  AttentionKernel() = default;

  bool has_scale_ = false;
  float scale_ = 1.0f;
  bool k_transposed_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> MakeAttention(const Node& node, const Graph& graph) {
  return AttentionKernel::Create(node, graph);
}

}  // namespace flywheel::engine
