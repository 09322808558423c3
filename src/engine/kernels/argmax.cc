// ArgMax and ArgMin: int64 index of the extreme value along an axis, the first one on ties unless
// select_last_index=1.
#include <algorithm>

#include "engine/kernels/tensor_ops.h"

namespace flywheel::engine {
namespace {

constexpr int64_t kGrainElements = 32 * 1024;
// Columns processed together when the reduced axis is not the innermost.
constexpr int64_t kBlock = 64;

template <bool kMax>
class ArgKernel : public Kernel {
 public:
  ArgKernel(const Node& node, const Graph&)
      : axis_(node.GetInt("axis", 0)),
        keepdims_(node.GetInt("keepdims", 1) != 0),
        last_(node.GetInt("select_last_index", 0) != 0) {}

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* x, ctx.RequiredInput(0));
    const int rank = x->rank();
    FW_ASSIGN_OR_RETURN(int axis, NormalizeAxis(axis_, std::max(rank, 1), ctx.node()));
    const int64_t n = rank == 0 ? 1 : x->dim(axis);
    Shape out_shape;
    for (int k = 0; k < rank; ++k) {
      if (k != axis) {
        out_shape.push_back(x->dim(k));
      } else if (keepdims_) {
        out_shape.push_back(1);
      }
    }
    if (n == 0 && x->NumElements() == 0 && out_shape.NumElements() > 0) {
      return ctx.Error("cannot take the arg", kMax ? "max" : "min", " over axis ", axis,
                       " of size 0 in ", x->shape().ToString());
    }
    FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(0, DataType::kInt64, out_shape));
    if (out->NumElements() == 0) return absl::OkStatus();
    const int64_t outer = rank == 0 ? 1 : x->shape().Product(0, axis);
    const int64_t inner = rank == 0 ? 1 : x->shape().Product(axis + 1, rank);
    if (!DispatchNumeric(x->dtype(), [&](auto tag) {
          Compute<decltype(tag)>(ctx, x->data<decltype(tag)>(), outer, n, inner,
                                 out->data<int64_t>());
        })) {
      return ctx.Error("type ", DataTypeName(x->dtype()), " is not supported");
    }
    return absl::OkStatus();
  }

 private:
  template <typename T>
  bool Better(T v, T best) const {
    if (last_) return kMax ? v >= best : v <= best;
    return kMax ? v > best : v < best;
  }

  template <typename T>
  void Compute(KernelContext& ctx, const T* src, int64_t outer, int64_t n, int64_t inner,
               int64_t* out) const {
    if (inner == 1) {
      ctx.pool().ParallelFor(outer, std::max<int64_t>(1, kGrainElements / n),
                             [&](int64_t b, int64_t e) {
                               for (int64_t o = b; o < e; ++o) {
                                 const T* row = src + o * n;
                                 T best = row[0];
                                 int64_t at = 0;
                                 for (int64_t j = 1; j < n; ++j) {
                                   if (Better(row[j], best)) {
                                     best = row[j];
                                     at = j;
                                   }
                                 }
                                 out[o] = at;
                               }
                             });
      return;
    }
    const int64_t blocks = (inner + kBlock - 1) / kBlock;
    ctx.pool().ParallelFor(outer * blocks, std::max<int64_t>(1, kGrainElements / (n * kBlock)),
                           [&](int64_t b, int64_t e) {
                             T best[kBlock];
                             for (int64_t u = b; u < e; ++u) {
                               const int64_t o = u / blocks, i0 = (u % blocks) * kBlock;
                               const int64_t m = std::min(kBlock, inner - i0);
                               const T* base = src + o * n * inner + i0;
                               int64_t* dst = out + o * inner + i0;
                               for (int64_t i = 0; i < m; ++i) {
                                 best[i] = base[i];
                                 dst[i] = 0;
                               }
                               for (int64_t j = 1; j < n; ++j) {
                                 const T* row = base + j * inner;
                                 for (int64_t i = 0; i < m; ++i) {
                                   if (Better(row[i], best[i])) {
                                     best[i] = row[i];
                                     dst[i] = j;
                                   }
                                 }
                               }
                             }
                           });
  }

  int64_t axis_;
  bool keepdims_;
  bool last_;
};

}  // namespace

void RegisterArgMaxKernels(KernelRegistry& registry) {
  registry.Register("", "ArgMax", &MakeKernel<ArgKernel<true>>);
  registry.Register("", "ArgMin", &MakeKernel<ArgKernel<false>>);
}

}  // namespace flywheel::engine
