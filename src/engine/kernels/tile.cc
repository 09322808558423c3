// Tile: repeats the input along each axis; seen as a strided copy over [r0, d0, r1, d1, ...]
// with stride 0 along the repeat axes.
#include "engine/kernels/tensor_ops.h"
#include "engine/kernels/transpose.h"

namespace flywheel::engine {
namespace {

class TileKernel : public Kernel {
 public:
  TileKernel(const Node&, const Graph&) {}

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* in, ctx.RequiredInput(0));
    FW_ASSIGN_OR_RETURN(const Tensor* repeats_in, ctx.RequiredInput(1));
    FW_RETURN_IF_ERROR(CheckCopyable(ctx, *in, "input"));
    FW_ASSIGN_OR_RETURN(IntList repeats, ReadInts(*repeats_in, ctx.node(), "repeats"));
    const int rank = in->rank();
    if (static_cast<int>(repeats.size()) != rank) {
      return ctx.Error("repeats has ", repeats.size(), " values for an input of rank ", rank);
    }
    if (2 * rank > kMaxStridedRank) {
      return ctx.Error("rank ", rank, " is above the supported ", kMaxStridedRank / 2);
    }
    Shape out_shape;
    for (int k = 0; k < rank; ++k) {
      if (repeats[k] < 0) return ctx.Error("repeats[", k, "] = ", repeats[k], " is negative");
      int64_t dim;
      if (__builtin_mul_overflow(in->dim(k), repeats[k], &dim)) {
        return ctx.Error("repeats[", k, "] = ", repeats[k], " times dimension ", in->dim(k),
                         " overflows");
      }
      out_shape.push_back(dim);
    }
    FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(0, in->dtype(), out_shape));
    if (out->NumElements() == 0) return absl::OkStatus();
    const IntList in_strides = Strides(in->shape());
    const IntList out_strides = Strides(out_shape);
    StrideList dims(2 * rank), ss(2 * rank), ds(2 * rank);
    for (int k = 0; k < rank; ++k) {
      dims[2 * k] = repeats[k];
      ss[2 * k] = 0;
      ds[2 * k] = in->dim(k) * out_strides[k];
      dims[2 * k + 1] = in->dim(k);
      ss[2 * k + 1] = in_strides[k];
      ds[2 * k + 1] = out_strides[k];
    }
    StridedCopy(in->raw_data(), out->raw_data(), DataTypeSize(in->dtype()), dims, ss, ds,
                &ctx.pool());
    return absl::OkStatus();
  }
};

}  // namespace

void RegisterTileKernels(KernelRegistry& registry) {
  registry.Register("", "Tile", &MakeKernel<TileKernel>);
}

}  // namespace flywheel::engine
