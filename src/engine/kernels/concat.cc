// Concat: joins tensors of equal rank along one axis; every input contributes one contiguous
// block per outer index.
#include <cstring>

#include "engine/kernels/tensor_ops.h"

namespace flywheel::engine {
namespace {

constexpr int64_t kGrainBytes = 32 * 1024;

class ConcatKernel : public Kernel {
 public:
  static absl::StatusOr<std::unique_ptr<Kernel>> Create(const Node& node, const Graph&) {
    if (!node.HasAttr("axis")) {
      return absl::InvalidArgumentError(
          absl::StrCat(node.Describe(), ": attribute 'axis' is required"));
    }
    if (node.inputs.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(node.Describe(), ": needs at least one input"));
    }
    return std::unique_ptr<Kernel>(new ConcatKernel(node.GetInt("axis", 0)));
  }

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* first, ctx.RequiredInput(0));
    FW_RETURN_IF_ERROR(CheckCopyable(ctx, *first, "input 0"));
    const int rank = first->rank();
    if (rank == 0) return ctx.Error("inputs must have rank >= 1, got a scalar");
    FW_ASSIGN_OR_RETURN(int axis, NormalizeAxis(axis_, rank, ctx.node()));
    Shape out_shape = first->shape();
    int64_t total = 0;
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      FW_ASSIGN_OR_RETURN(const Tensor* in, ctx.RequiredInput(i));
      bool ok = in->dtype() == first->dtype() && in->rank() == rank;
      for (int k = 0; ok && k < rank; ++k) ok = k == axis || in->dim(k) == first->dim(k);
      if (!ok) {
        return ctx.Error("input ", i, " is ", in->DebugString(),
                         ", which cannot be joined to input 0 (", first->DebugString(),
                         ") along axis ", axis);
      }
      total += in->dim(axis);
    }
    out_shape.set_dim(axis, total);
    FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(0, first->dtype(), out_shape));
    if (out->NumElements() == 0) return absl::OkStatus();
    const size_t es = DataTypeSize(first->dtype());
    const int64_t outer = out_shape.Product(0, axis);
    const size_t inner_bytes = static_cast<size_t>(out_shape.Product(axis + 1, rank)) * es;
    const size_t out_row = static_cast<size_t>(total) * inner_bytes;
    char* dst = static_cast<char*>(out->raw_data());
    auto copy = [&](int64_t begin, int64_t end) {
      size_t offset = 0;
      for (int i = 0; i < ctx.num_inputs(); ++i) {
        const Tensor* in = ctx.input(i);
        const size_t block = static_cast<size_t>(in->dim(axis)) * inner_bytes;
        const char* src = static_cast<const char*>(in->raw_data());
        if (block > 0) {
          for (int64_t o = begin; o < end; ++o) {
            std::memcpy(dst + o * out_row + offset, src + o * block, block);
          }
        }
        offset += block;
      }
    };
    ctx.pool().ParallelFor(outer, std::max<int64_t>(1, kGrainBytes / std::max<int64_t>(out_row, 1)),
                           copy);
    return absl::OkStatus();
  }

 private:
  explicit ConcatKernel(int64_t axis) : axis_(axis) {}
  int64_t axis_;
};

}  // namespace

void RegisterConcatKernels(KernelRegistry& registry) {
  registry.Register("", "Concat", &ConcatKernel::Create);
}

}  // namespace flywheel::engine
