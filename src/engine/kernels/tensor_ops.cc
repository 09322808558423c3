#include "engine/kernels/tensor_ops.h"

#include "engine/kernels/registry.h"

namespace flywheel::engine {

IntsAttrOrInput::IntsAttrOrInput(const Node& node, absl::string_view name, int input)
    : input_(input) {
  if (node.HasAttr(name)) {
    std::vector<int64_t> v = node.GetInts(name);
    attr_.emplace(v.begin(), v.end());
  }
}

absl::StatusOr<IntList> IntsAttrOrInput::Get(const KernelContext& ctx,
                                             absl::string_view what) const {
  if (attr_.has_value()) return *attr_;
  const Tensor* t = ctx.input(input_);
  if (t == nullptr) return IntList();
  return ReadInts(*t, ctx.node(), what);
}

absl::Status CheckCopyable(const KernelContext& ctx, const Tensor& t, absl::string_view what) {
  if (t.dtype() == DataType::kBytes || DataTypeSize(t.dtype()) == 0) {
    return ctx.Error(what, " has type ", DataTypeName(t.dtype()),
                     ", which this operator does not support");
  }
  return absl::OkStatus();
}

void RegisterTensorKernels(KernelRegistry& registry) {
  RegisterGatherKernels(registry);
  RegisterConcatKernels(registry);
  RegisterViewKernels(registry);
  RegisterTransposeKernels(registry);
  RegisterSliceKernels(registry);
  RegisterSplitKernels(registry);
  RegisterShapeKernels(registry);
  RegisterRangeKernels(registry);
  RegisterExpandKernels(registry);
  RegisterTileKernels(registry);
  RegisterPadKernels(registry);
  RegisterTopKKernels(registry);
  RegisterReduceKernels(registry);
  RegisterArgMaxKernels(registry);
}

}  // namespace flywheel::engine
