// Softmax and LogSoftmax. Opset >= 13 normalises along one axis; earlier opsets coerce the input
// to 2-D at `axis` and normalise each row of the flattened trailing dims. Both are numerically
// stable (the max is subtracted first) and vectorised through simd_math.
#include <algorithm>
#include <cmath>
#include <memory>

#include "absl/strings/str_cat.h"
#include "engine/kernels/broadcast.h"
#include "engine/kernels/elementwise_util.h"
#include "engine/kernels/kernel_util.h"
#include "engine/kernels/simd_math.h"

namespace flywheel::engine {
namespace {

// Columns per work item when the axis is not the innermost one.
constexpr int64_t kColumnBlock = 256;

template <typename T>
void SoftmaxScalar(const T* x, T* y, int64_t len, int64_t stride, bool log) {
  T m = x[0];
  for (int64_t k = 1; k < len; ++k) m = std::max(m, x[k * stride]);
  T s = 0;
  for (int64_t k = 0; k < len; ++k) s += std::exp(x[k * stride] - m);
  if (log) {
    const T ls = std::log(s);
    for (int64_t k = 0; k < len; ++k) y[k * stride] = x[k * stride] - m - ls;
  } else {
    for (int64_t k = 0; k < len; ++k) y[k * stride] = std::exp(x[k * stride] - m) / s;
  }
}

class SoftmaxKernel : public Kernel {
 public:
  SoftmaxKernel(int64_t axis, bool coerce_2d, bool log)
      : axis_(axis), coerce_2d_(coerce_2d), log_(log) {}

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* in, ctx.RequiredInput(0));
    const DataType dtype = in->dtype();
    if (dtype != DataType::kFp32 && dtype != DataType::kFp64) {
      return ctx.Error("unsupported input type ", DataTypeName(dtype));
    }
    const Shape& shape = in->shape();
    FW_ASSIGN_OR_RETURN(int axis, NormalizeAxis(axis_, shape.rank(), ctx.node()));
    FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(0, dtype, shape));
    if (in->NumElements() == 0) return absl::OkStatus();
    // [outer, len, inner]: normalise over len, elements of one group `inner` apart.
    int64_t outer, len, inner;
    if (shape.rank() == 0) {
      outer = len = inner = 1;
    } else if (coerce_2d_) {
      outer = shape.Product(0, axis);
      len = shape.Product(axis, shape.rank());
      inner = 1;
    } else {
      outer = shape.Product(0, axis);
      len = shape[axis];
      inner = shape.Product(axis + 1, shape.rank());
    }
    const bool log = log_;
    if (inner == 1) {
      const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / len);
      auto rows = [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          if (dtype == DataType::kFp32) {
            simd::SoftmaxRow(in->data<float>() + r * len, out->data<float>() + r * len, len, log);
          } else {
            SoftmaxScalar(in->data<double>() + r * len, out->data<double>() + r * len, len, 1, log);
          }
        }
      };
      if (outer <= grain || ctx.num_threads() == 1) {
        rows(0, outer);
      } else {
        ctx.pool().ParallelFor(outer, grain, rows);
      }
      return absl::OkStatus();
    }
    // Axis in the middle: work items are (outer index, block of columns).
    const int64_t blocks = (inner + kColumnBlock - 1) / kColumnBlock;
    const int64_t items = outer * blocks;
    const int64_t grain =
        std::max<int64_t>(1, kElementwiseGrain / (len * std::min(inner, kColumnBlock)));
    auto work = [&](int64_t begin, int64_t end) {
      for (int64_t w = begin; w < end; ++w) {
        const int64_t o = w / blocks, j0 = (w % blocks) * kColumnBlock;
        const int64_t width = std::min(kColumnBlock, inner - j0);
        const int64_t base = o * len * inner + j0;
        if (dtype == DataType::kFp32) {
          simd::SoftmaxColumns(in->data<float>() + base, out->data<float>() + base, len, inner,
                               width, log);
        } else {
          for (int64_t j = 0; j < width; ++j) {
            SoftmaxScalar(in->data<double>() + base + j, out->data<double>() + base + j, len, inner,
                          log);
          }
        }
      }
    };
    if (items <= grain || ctx.num_threads() == 1) {
      work(0, items);
    } else {
      ctx.pool().ParallelFor(items, grain, work);
    }
    return absl::OkStatus();
  }

 private:
  int64_t axis_;
  bool coerce_2d_;
  bool log_;
};

template <bool kLog>
absl::StatusOr<std::unique_ptr<Kernel>> MakeSoftmax(const Node& node, const Graph& graph) {
  // Opset 13 changed the semantics: one axis (default -1) instead of 2-D coercion (default 1).
  const bool coerce = graph.opset > 0 && graph.opset < 13;
  const int64_t axis = node.GetInt("axis", coerce ? 1 : -1);
  return std::make_unique<SoftmaxKernel>(axis, coerce, kLog);
}

}  // namespace

void RegisterSoftmaxKernels(KernelRegistry& r) {
  r.Register("", "Softmax", MakeSoftmax<false>);
  r.Register("", "LogSoftmax", MakeSoftmax<true>);
}

}  // namespace flywheel::engine
