// Gather: picks slices of `data` along one axis by index; axis 0 over a 2-D table is an
// embedding lookup, copied row by row with memcpy.
#include <cstring>

#include "engine/kernels/tensor_ops.h"

namespace flywheel::engine {
namespace {

constexpr int64_t kGrainBytes = 32 * 1024;

class GatherKernel : public Kernel {
 public:
  GatherKernel(const Node& node, const Graph&) : axis_(node.GetInt("axis", 0)) {}

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* data, ctx.RequiredInput(0));
    FW_ASSIGN_OR_RETURN(const Tensor* indices, ctx.RequiredInput(1));
    FW_RETURN_IF_ERROR(CheckCopyable(ctx, *data, "data"));
    if (indices->dtype() != DataType::kInt64 && indices->dtype() != DataType::kInt32) {
      return ctx.Error("indices must be INT64 or INT32, got ", DataTypeName(indices->dtype()));
    }
    if (data->rank() == 0) return ctx.Error("data must have rank >= 1, got a scalar");
    FW_ASSIGN_OR_RETURN(int axis, NormalizeAxis(axis_, data->rank(), ctx.node()));
    const int64_t n = data->dim(axis);
    const int64_t outer = data->shape().Product(0, axis);
    const int64_t inner = data->shape().Product(axis + 1, data->rank());
    const int64_t num_idx = indices->NumElements();

    Shape out_shape;
    for (int k = 0; k < axis; ++k) out_shape.push_back(data->dim(k));
    for (int k = 0; k < indices->rank(); ++k) out_shape.push_back(indices->dim(k));
    for (int k = axis + 1; k < data->rank(); ++k) out_shape.push_back(data->dim(k));

    // Check every index before copying anything: a bad model must never read out of bounds.
    if (indices->dtype() == DataType::kInt64) {
      FW_RETURN_IF_ERROR(CheckIndices(ctx, indices->data<int64_t>(), num_idx, n, axis));
    } else {
      FW_RETURN_IF_ERROR(CheckIndices(ctx, indices->data<int32_t>(), num_idx, n, axis));
    }
    FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(0, data->dtype(), out_shape));
    if (out->NumElements() == 0) return absl::OkStatus();
    const size_t es = DataTypeSize(data->dtype());
    if (indices->dtype() == DataType::kInt64) {
      Copy(ctx, *data, indices->data<int64_t>(), num_idx, outer, n, inner, es, out);
    } else {
      Copy(ctx, *data, indices->data<int32_t>(), num_idx, outer, n, inner, es, out);
    }
    return absl::OkStatus();
  }

 private:
  template <typename I>
  static absl::Status CheckIndices(const KernelContext& ctx, const I* idx, int64_t num, int64_t n,
                                   int axis) {
    for (int64_t i = 0; i < num; ++i) {
      const int64_t v = idx[i];
      if (v < -n || v >= n) {
        return ctx.Error("index ", v, " (at position ", i, ") is out of range [", -n, ", ", n,
                         ") for axis ", axis, " of size ", n);
      }
    }
    return absl::OkStatus();
  }

  // Output row r = (o, j) is data row (o, idx[j]); a row is `inner` elements.
  template <typename I>
  static void Copy(KernelContext& ctx, const Tensor& data, const I* idx, int64_t num_idx,
                   int64_t outer, int64_t n, int64_t inner, size_t es, Tensor* out) {
    const char* src = static_cast<const char*>(data.raw_data());
    char* dst = static_cast<char*>(out->raw_data());
    const size_t row_bytes = static_cast<size_t>(inner) * es;
    const int64_t rows = outer * num_idx;
    auto copy_rows = [&](int64_t begin, int64_t end) {
      if (inner == 1) {
        // Single elements: a typed load/store beats a memcpy call.
        DispatchBySize(es, [&](auto tag) {
          using U = decltype(tag);
          const U* s = reinterpret_cast<const U*>(src);
          U* d = reinterpret_cast<U*>(dst);
          for (int64_t r = begin; r < end; ++r) {
            const int64_t o = r / num_idx;
            int64_t i = idx[r - o * num_idx];
            if (i < 0) i += n;
            d[r] = s[o * n + i];
          }
        });
        return;
      }
      for (int64_t r = begin; r < end; ++r) {
        const int64_t o = r / num_idx;
        int64_t i = idx[r - o * num_idx];
        if (i < 0) i += n;
        std::memcpy(dst + r * row_bytes, src + (o * n + i) * row_bytes, row_bytes);
      }
    };
    const int64_t grain =
        std::max<int64_t>(1, kGrainBytes / static_cast<int64_t>(std::max<size_t>(row_bytes, 1)));
    ctx.pool().ParallelFor(rows, grain, copy_rows);
  }

  int64_t axis_;
};

}  // namespace

void RegisterGatherKernels(KernelRegistry& registry) {
  registry.Register("", "Gather", &MakeKernel<GatherKernel>);
}

}  // namespace flywheel::engine
