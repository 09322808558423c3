// Gemm (Y = alpha * op(A) @ op(B) + beta * C, C unidirectionally broadcast) and the fused
// com.flywheel FusedGemm (the same, then an activation). A constant B is packed once at load; a
// row-vector C with beta = 1 becomes the GEMM's bias epilogue, any other C is broadcast into Y
// first and accumulated onto.
#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "engine/kernels/activation.h"
#include "engine/kernels/gemm.h"
#include "engine/kernels/registry.h"

namespace flywheel::engine {
namespace {

class GemmKernel : public Kernel {
 public:
  static absl::StatusOr<std::unique_ptr<Kernel>> Create(const Node& node, const Graph& graph,
                                                        bool fused) {
    std::unique_ptr<GemmKernel> k(new GemmKernel());
    if (node.input(0) < 0 || node.input(1) < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(node.Describe(), ": inputs A and B are required"));
    }
    k->trans_a_ = node.GetInt("transA", 0) != 0;
    k->trans_b_ = node.GetInt("transB", 0) != 0;
    k->alpha_ = node.GetFloat("alpha", 1.0f);
    k->beta_ = node.GetFloat("beta", 1.0f);
    if (fused) {
      FW_ASSIGN_OR_RETURN(k->act_, ActivationFromNode(node));
    }
    k->has_c_ = node.input(2) >= 0;
    if (const Tensor* b = graph.ConstantOf(node.input(1))) {
      if (b->dtype() != DataType::kFp32 || b->rank() != 2) {
        return absl::InvalidArgumentError(
            absl::StrCat(node.Describe(), ": B must be a 2-D FP32 tensor, got ", b->DebugString()));
      }
      const int64_t kk = k->trans_b_ ? b->dim(1) : b->dim(0);
      const int64_t n = k->trans_b_ ? b->dim(0) : b->dim(1);
      k->packed_ = PackB(k->trans_b_, kk, n, b->data<float>(), b->dim(1));
    }
    return std::unique_ptr<Kernel>(std::move(k));
  }

  bool ReadsConstantInput(int i) const override { return !(i == 1 && !packed_.empty()); }

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* a, ctx.RequiredInput(0));
    if (a->dtype() != DataType::kFp32 || a->rank() != 2) {
      return ctx.Error("A must be a 2-D FP32 tensor, got ", a->DebugString());
    }
    const int64_t m = trans_a_ ? a->dim(1) : a->dim(0);
    const int64_t k = trans_a_ ? a->dim(0) : a->dim(1);
    const Tensor* b = nullptr;
    int64_t kb, n;
    if (!packed_.empty()) {
      kb = packed_.k;
      n = packed_.n;
    } else {
      FW_ASSIGN_OR_RETURN(b, ctx.RequiredInput(1));
      if (b->dtype() != DataType::kFp32 || b->rank() != 2) {
        return ctx.Error("B must be a 2-D FP32 tensor, got ", b->DebugString());
      }
      kb = trans_b_ ? b->dim(1) : b->dim(0);
      n = trans_b_ ? b->dim(0) : b->dim(1);
    }
    if (k != kb) {
      return ctx.Error("op(A) is [", m, ",", k, "] but op(B) is [", kb, ",", n,
                       "]: inner dimensions differ");
    }
    const Tensor* c = has_c_ ? ctx.input(2) : nullptr;
    int64_t cm = 1, cn = 1;
    if (c != nullptr) {
      if (c->dtype() != DataType::kFp32 || c->rank() > 2) {
        return ctx.Error("C must be an FP32 tensor of rank <= 2, got ", c->DebugString());
      }
      if (c->rank() >= 1) cn = c->dim(c->rank() - 1);
      if (c->rank() == 2) cm = c->dim(0);
      if ((cm != 1 && cm != m) || (cn != 1 && cn != n)) {
        return ctx.Error("C ", c->shape().ToString(), " does not broadcast to [", m, ",", n, "]");
      }
    }
    FW_ASSIGN_OR_RETURN(Tensor * y, ctx.AllocateOutput(0, DataType::kFp32, Shape{m, n}));
    if (m == 0 || n == 0) return absl::OkStatus();
    float* yd = y->data<float>();
    GemmEpilogue epi;
    epi.act = act_;
    float beta = 0.0f;
    if (c != nullptr && beta_ != 0.0f) {
      const float* cd = c->data<float>();
      if (cm == 1 && cn == n && n > 1 && beta_ == 1.0f) {
        epi.bias = cd;
      } else {
        // Broadcast beta * C into Y, then accumulate onto it.
        for (int64_t i = 0; i < m; ++i) {
          const float* crow = cd + (cm == 1 ? 0 : i * cn);
          float* yrow = yd + i * n;
          if (cn == 1) {
            std::fill_n(yrow, n, beta_ * crow[0]);
          } else {
            for (int64_t j = 0; j < n; ++j) yrow[j] = beta_ * crow[j];
          }
        }
        beta = 1.0f;
      }
    }
    const int64_t lda = a->dim(1);
    if (!packed_.empty()) {
      SgemmPacked(trans_a_, m, alpha_, a->data<float>(), lda, packed_, beta, yd, n, epi,
                  &ctx.pool());
    } else {
      float* packed =
          static_cast<float*>(ctx.Scratch(std::max<int64_t>(PackedBSize(k, n), 1) * sizeof(float)));
      PackBInto(trans_b_, k, n, b->data<float>(), b->dim(1), packed);
      SgemmPanels(trans_a_, m, n, k, alpha_, a->data<float>(), lda, packed, beta, yd, n, epi,
                  &ctx.pool());
    }
    return absl::OkStatus();
  }

 private:
  GemmKernel() = default;

  bool trans_a_ = false, trans_b_ = false;
  float alpha_ = 1.0f, beta_ = 1.0f;
  bool has_c_ = false;
  Activation act_;
  PackedB packed_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> MakeGemm(const Node& node, const Graph& graph) {
  return GemmKernel::Create(node, graph, /*fused=*/false);
}

absl::StatusOr<std::unique_ptr<Kernel>> MakeFusedGemm(const Node& node, const Graph& graph) {
  return GemmKernel::Create(node, graph, /*fused=*/true);
}

}  // namespace flywheel::engine
