// Slice: a strided window of the input (starts/ends/axes/steps as inputs from opset 10, as
// attributes before), with ONNX's clamping of out-of-range starts and ends.
#include <algorithm>

#include "engine/kernels/tensor_ops.h"
#include "engine/kernels/transpose.h"

namespace flywheel::engine {
namespace {

class SliceKernel : public Kernel {
 public:
  SliceKernel(const Node& node, const Graph&)
      : starts_(node, "starts", 1),
        ends_(node, "ends", 2),
        axes_(node, "axes", 3),
        steps_(node, "steps", 4) {}

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* in, ctx.RequiredInput(0));
    FW_RETURN_IF_ERROR(CheckCopyable(ctx, *in, "data"));
    const int rank = in->rank();
    // A scalar has no axis to slice (and axis 0 would be read past its empty shape).
    if (rank == 0) return ctx.Error("data is a scalar; Slice needs an input of rank 1 or more");
    if (rank > kMaxStridedRank) {
      return ctx.Error("rank ", rank, " is above the supported ", kMaxStridedRank);
    }
    FW_ASSIGN_OR_RETURN(IntList starts, starts_.Get(ctx, "starts"));
    FW_ASSIGN_OR_RETURN(IntList ends, ends_.Get(ctx, "ends"));
    FW_ASSIGN_OR_RETURN(IntList axes, axes_.Get(ctx, "axes"));
    FW_ASSIGN_OR_RETURN(IntList steps, steps_.Get(ctx, "steps"));
    if (starts.size() != ends.size()) {
      return ctx.Error("starts has ", starts.size(), " values but ends has ", ends.size());
    }
    if (!axes.empty() && axes.size() != starts.size()) {
      return ctx.Error("axes has ", axes.size(), " values but starts has ", starts.size());
    }
    if (!steps.empty() && steps.size() != starts.size()) {
      return ctx.Error("steps has ", steps.size(), " values but starts has ", starts.size());
    }
    if (axes.empty() && static_cast<int>(starts.size()) > rank) {
      return ctx.Error(starts.size(), " starts for an input of rank ", rank);
    }
    const IntList in_strides = Strides(in->shape());
    StrideList dims(in->shape().dims().begin(), in->shape().dims().end());
    StrideList src_strides(in_strides.begin(), in_strides.end());
    bool seen[kMaxStridedRank] = {};
    int64_t offset = 0;
    for (size_t i = 0; i < starts.size(); ++i) {
      int axis = static_cast<int>(i);
      if (!axes.empty()) {
        FW_ASSIGN_OR_RETURN(axis, NormalizeAxis(axes[i], rank, ctx.node()));
      }
      if (seen[axis]) return ctx.Error("axis ", axis, " is sliced twice");
      seen[axis] = true;
      const int64_t step = steps.empty() ? 1 : steps[i];
      if (step == 0) return ctx.Error("steps[", i, "] is 0");
      const int64_t d = in->dim(axis);
      int64_t s = starts[i], e = ends[i];
      if (s < 0) s += d;
      if (e < 0) e += d;
      int64_t count;
      if (step > 0) {
        s = std::clamp<int64_t>(s, 0, d);
        e = std::clamp<int64_t>(e, 0, d);
        count = e > s ? (e - s - 1) / step + 1 : 0;
      } else {
        s = std::clamp<int64_t>(s, 0, d - 1);
        e = std::clamp<int64_t>(e, -1, d - 1);
        // step > INT64_MIN: -step must not overflow.
        count = s > e ? (s - e - 1) / -std::max(step, -INT64_MAX) + 1 : 0;
      }
      dims[axis] = count;
      if (count > 0) offset += s * in_strides[axis];
      // With one element or none the stride is never used (and step may be huge).
      src_strides[axis] = count > 1 ? in_strides[axis] * step : 0;
    }
    Shape out_shape(absl::MakeConstSpan(dims.data(), dims.size()));
    FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(0, in->dtype(), out_shape));
    if (out->NumElements() == 0) return absl::OkStatus();
    const size_t es = DataTypeSize(in->dtype());
    const IntList out_strides = Strides(out_shape);
    StrideList dst_strides(out_strides.begin(), out_strides.end());
    StridedCopy(static_cast<const char*>(in->raw_data()) + offset * static_cast<int64_t>(es),
                out->raw_data(), es, dims, src_strides, dst_strides, &ctx.pool());
    return absl::OkStatus();
  }

 private:
  IntsAttrOrInput starts_, ends_, axes_, steps_;
};

}  // namespace

void RegisterSliceKernels(KernelRegistry& registry) {
  registry.Register("", "Slice", &MakeKernel<SliceKernel>);
}

}  // namespace flywheel::engine
