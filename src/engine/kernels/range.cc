// Range: start, start + delta, ... up to (not including) limit, for float and integer types.
#include <cmath>

#include "engine/kernels/tensor_ops.h"

namespace flywheel::engine {
namespace {

class RangeKernel : public Kernel {
 public:
  RangeKernel(const Node&, const Graph&) {}

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* start, ctx.RequiredInput(0));
    FW_ASSIGN_OR_RETURN(const Tensor* limit, ctx.RequiredInput(1));
    FW_ASSIGN_OR_RETURN(const Tensor* delta, ctx.RequiredInput(2));
    const DataType dt = start->dtype();
    for (const Tensor* t : {start, limit, delta}) {
      if (t->dtype() != dt || t->NumElements() != 1) {
        return ctx.Error("start, limit and delta must be scalars of one type, got ",
                         start->DebugString(), ", ", limit->DebugString(), ", ",
                         delta->DebugString());
      }
    }
    absl::Status status;
    bool known = false;
    switch (dt) {
      case DataType::kFp32:
        status = Fill<float>(ctx, *start, *limit, *delta);
        known = true;
        break;
      case DataType::kFp64:
        status = Fill<double>(ctx, *start, *limit, *delta);
        known = true;
        break;
      case DataType::kInt16:
        status = Fill<int16_t>(ctx, *start, *limit, *delta);
        known = true;
        break;
      case DataType::kInt32:
        status = Fill<int32_t>(ctx, *start, *limit, *delta);
        known = true;
        break;
      case DataType::kInt64:
        status = Fill<int64_t>(ctx, *start, *limit, *delta);
        known = true;
        break;
      default:
        break;
    }
    if (!known) return ctx.Error("type ", DataTypeName(dt), " is not supported");
    return status;
  }

 private:
  template <typename T>
  static absl::Status Fill(KernelContext& ctx, const Tensor& start_t, const Tensor& limit_t,
                           const Tensor& delta_t) {
    const T start = start_t.data<T>()[0], limit = limit_t.data<T>()[0],
            delta = delta_t.data<T>()[0];
    if (delta == T(0)) return ctx.Error("delta is 0");
    const double count = std::ceil((static_cast<double>(limit) - static_cast<double>(start)) /
                                   static_cast<double>(delta));
    if (!(count < 1e12)) {
      if (std::isnan(count) || count > 0) return ctx.Error("range has too many elements");
    }
    const int64_t n = count > 0 ? static_cast<int64_t>(count) : 0;
    FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(0, DataTypeOf<T>(), Shape{n}));
    T* d = out->data<T>();
    for (int64_t i = 0; i < n; ++i) d[i] = static_cast<T>(start + static_cast<T>(i) * delta);
    return absl::OkStatus();
  }
};

}  // namespace

void RegisterRangeKernels(KernelRegistry& registry) {
  registry.Register("", "Range", &MakeKernel<RangeKernel>);
}

}  // namespace flywheel::engine
