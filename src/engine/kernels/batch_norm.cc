// BatchNormalization in its inference form: y = (x - mean) / sqrt(var + epsilon) * scale + B per
// channel, folded into one scale and shift per channel (precomputed at load when constant).
#include <cmath>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "engine/kernels/conv_util.h"
#include "engine/kernels/registry.h"

namespace flywheel::engine {
namespace {

class BatchNormKernel : public Kernel {
 public:
  static absl::StatusOr<std::unique_ptr<Kernel>> Create(const Node& node, const Graph& graph) {
    auto err = [&](const auto&... args) {
      return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": ", args...));
    };
    if (node.GetInt("training_mode", 0) != 0) {
      return err("training_mode=1 is not supported (inference only)");
    }
    if (node.HasAttr("spatial") && node.GetInt("spatial", 1) != 1) {
      return err("spatial=0 is not supported");
    }
    for (size_t i = 1; i < node.outputs.size(); ++i) {
      if (node.outputs[i] >= 0) {
        return err("training outputs (running mean/var, saved mean/var) are not supported");
      }
    }
    for (int i = 0; i < 5; ++i) {
      if (node.input(i) < 0) return err("needs 5 inputs (X, scale, B, mean, var)");
    }
    std::unique_ptr<BatchNormKernel> k(new BatchNormKernel());
    k->epsilon_ = node.GetFloat("epsilon", 1e-5f);
    const Tensor* p[4];
    bool all_const = true;
    for (int i = 0; i < 4; ++i) {
      p[i] = graph.ConstantOf(node.input(i + 1));
      all_const = all_const && p[i] != nullptr;
    }
    if (all_const) {
      FW_RETURN_IF_ERROR(k->Fold(node, p, &k->scale_shift_));
      k->folded_ = true;
    }
    return std::unique_ptr<Kernel>(std::move(k));
  }

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* x, ctx.RequiredInput(0));
    if (x->dtype() != DataType::kFp32) return ctx.Error("X must be FP32, got ", x->DebugString());
    if (x->rank() < 2)
      return ctx.Error("X must have rank >= 2 (N, C, ...), got ", x->DebugString());
    const int64_t n = x->dim(0), c = x->dim(1), inner = x->shape().Product(2, x->rank());
    const float* ss;
    if (folded_) {
      if (static_cast<int64_t>(scale_shift_.size()) != 2 * c) {
        return ctx.Error("X has ", c, " channels but the parameters have ",
                         scale_shift_.size() / 2);
      }
      ss = scale_shift_.data();
    } else {
      const Tensor* p[4];
      for (int i = 0; i < 4; ++i) {
        FW_ASSIGN_OR_RETURN(p[i], ctx.RequiredInput(i + 1));
        if (p[i]->dtype() != DataType::kFp32 || p[i]->rank() != 1 || p[i]->dim(0) != c) {
          return ctx.Error("parameter ", i + 1, " must be FP32 [", c, "], got ",
                           p[i]->DebugString());
        }
      }
      float* buf = static_cast<float*>(ctx.Scratch(2 * c * sizeof(float)));
      FoldInto(p, c, buf);
      ss = buf;
    }
    FW_ASSIGN_OR_RETURN(Tensor * y, ctx.AllocateOutput(0, DataType::kFp32, x->shape()));
    const float* in = x->data<float>();
    float* out = y->data<float>();
    const int64_t planes = n * c;
    const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1));
    ctx.pool().ParallelFor(planes, grain, [&](int64_t begin, int64_t end) {
      for (int64_t pl = begin; pl < end; ++pl) {
        const int64_t ch = pl % c;
        const float a = ss[2 * ch], b = ss[2 * ch + 1];
        const float* src = in + pl * inner;
        float* dst = out + pl * inner;
        for (int64_t i = 0; i < inner; ++i) dst[i] = src[i] * a + b;
      }
    });
    return absl::OkStatus();
  }

  bool ReadsConstantInput(int i) const override { return !(folded_ && i >= 1); }

 private:
  BatchNormKernel() = default;

  absl::Status Fold(const Node& node, const Tensor* const* p, std::vector<float>* out) const {
    const int64_t c = p[0]->rank() == 1 ? p[0]->dim(0) : -1;
    for (int i = 0; i < 4; ++i) {
      if (p[i]->dtype() != DataType::kFp32 || p[i]->rank() != 1 || p[i]->dim(0) != c) {
        return absl::InvalidArgumentError(
            absl::StrCat(node.Describe(),
                         ": scale, B, mean and var must be FP32 [C] of one size, "
                         "got ",
                         p[i]->DebugString(), " for input ", i + 1));
      }
    }
    out->resize(2 * c);
    FoldInto(p, c, out->data());
    return absl::OkStatus();
  }

  // Interleaved (scale, shift) per channel.
  void FoldInto(const Tensor* const* p, int64_t c, float* out) const {
    const float *scale = p[0]->data<float>(), *bias = p[1]->data<float>(),
                *mean = p[2]->data<float>(), *var = p[3]->data<float>();
    for (int64_t i = 0; i < c; ++i) {
      const double a = scale[i] / std::sqrt(static_cast<double>(var[i]) + epsilon_);
      out[2 * i] = static_cast<float>(a);
      out[2 * i + 1] = static_cast<float>(bias[i] - mean[i] * a);
    }
  }

  float epsilon_ = 1e-5f;
  bool folded_ = false;
  std::vector<float> scale_shift_;
};

absl::StatusOr<std::unique_ptr<Kernel>> MakeBatchNorm(const Node& node, const Graph& graph) {
  return BatchNormKernel::Create(node, graph);
}

}  // namespace

void RegisterBatchNormKernels(KernelRegistry& registry) {
  registry.Register("", "BatchNormalization", MakeBatchNorm);
}

}  // namespace flywheel::engine
