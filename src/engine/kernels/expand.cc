// Expand: broadcasts the input to a shape (numpy rules, both ways) by a strided copy with
// stride 0 along broadcast axes.
#include "engine/kernels/tensor_ops.h"
#include "engine/kernels/transpose.h"

namespace flywheel::engine {
namespace {

class ExpandKernel : public Kernel {
 public:
  ExpandKernel(const Node&, const Graph&) {}

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* in, ctx.RequiredInput(0));
    FW_ASSIGN_OR_RETURN(const Tensor* shape_in, ctx.RequiredInput(1));
    FW_RETURN_IF_ERROR(CheckCopyable(ctx, *in, "input"));
    if (shape_in->rank() > 1) return ctx.Error("shape must be 1-D, got ", shape_in->DebugString());
    FW_ASSIGN_OR_RETURN(IntList dims, ReadInts(*shape_in, ctx.node(), "shape"));
    for (int64_t d : dims) {
      if (d < 0) return ctx.Error("shape has a negative dim ", d);
    }
    auto broadcast = BroadcastShapes(in->shape(), Shape(absl::MakeConstSpan(dims)));
    if (!broadcast.ok()) return ctx.Error(broadcast.status().message());
    const Shape& out_shape = *broadcast;
    const int rank = out_shape.rank();
    if (rank > kMaxStridedRank)
      return ctx.Error("rank ", rank, " is above the supported ", kMaxStridedRank);
    FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(0, in->dtype(), out_shape));
    if (out->NumElements() == 0) return absl::OkStatus();
    const IntList in_strides = Strides(in->shape());
    StrideList odims(rank), ss(rank), ds(rank);
    int64_t s = 1;
    for (int k = rank - 1; k >= 0; --k) {
      odims[k] = out_shape[k];
      ds[k] = s;
      s *= out_shape[k];
      const int j = k - (rank - in->rank());
      ss[k] = (j < 0 || in->dim(j) == 1) ? 0 : in_strides[j];
    }
    StridedCopy(in->raw_data(), out->raw_data(), DataTypeSize(in->dtype()), odims, ss, ds,
                &ctx.pool());
    return absl::OkStatus();
  }
};

}  // namespace

void RegisterExpandKernels(KernelRegistry& registry) {
  registry.Register("", "Expand", &MakeKernel<ExpandKernel>);
}

}  // namespace flywheel::engine
