// TopK: the k largest (or smallest) elements along an axis and their int64 indices; equal values
// keep the lower index first, as ONNX Runtime does. NaN counts as larger than every number.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "engine/kernels/tensor_ops.h"

namespace flywheel::engine {
namespace {

// Below this many elements in all, TopK runs on the calling thread.
constexpr int64_t kParallelElements = 16 * 1024;

template <typename T>
struct Entry {
  T value;
  int64_t index;
};

template <typename T>
bool Greater(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(a)) return !std::isnan(b);
    if (std::isnan(b)) return false;
  }
  return a > b;
}

class TopKKernel : public Kernel {
 public:
  TopKKernel(const Node& node, const Graph&)
      : axis_(node.GetInt("axis", -1)),
        largest_(node.GetInt("largest", 1) != 0),
        k_attr_(node.HasAttr("k") ? node.GetInt("k", 0) : -1) {}

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* x, ctx.RequiredInput(0));
    if (x->rank() == 0) return ctx.Error("input must have rank >= 1, got a scalar");
    FW_ASSIGN_OR_RETURN(int axis, NormalizeAxis(axis_, x->rank(), ctx.node()));
    int64_t k = k_attr_;
    if (const Tensor* k_in = ctx.input(1); k_in != nullptr) {
      FW_ASSIGN_OR_RETURN(IntList kv, ReadInts(*k_in, ctx.node(), "K"));
      if (kv.size() != 1) return ctx.Error("K must hold one value, got ", k_in->DebugString());
      k = kv[0];
    } else if (k < 0 && !ctx.node().HasAttr("k")) {
      return ctx.Error("K (input 1) is missing");
    }
    const int64_t n = x->dim(axis);
    if (k < 0 || k > n) {
      return ctx.Error("k = ", k, " is out of range [0, ", n, "] for axis ", axis, " of ",
                       x->shape().ToString());
    }
    Shape out_shape = x->shape();
    out_shape.set_dim(axis, k);
    absl::Status status;
    if (!DispatchNumeric(x->dtype(), [&](auto tag) {
          status = Compute<decltype(tag)>(ctx, *x, axis, k, out_shape);
        })) {
      return ctx.Error("type ", DataTypeName(x->dtype()), " is not supported");
    }
    return status;
  }

 private:
  template <typename T>
  absl::Status Compute(KernelContext& ctx, const Tensor& x, int axis, int64_t k,
                       const Shape& out_shape) const {
    FW_ASSIGN_OR_RETURN(Tensor * values, ctx.AllocateOutput(0, x.dtype(), out_shape));
    FW_ASSIGN_OR_RETURN(Tensor * indices, ctx.AllocateOutput(1, DataType::kInt64, out_shape));
    if (values->NumElements() == 0) return absl::OkStatus();
    const int64_t n = x.dim(axis);
    const int64_t outer = x.shape().Product(0, axis);
    const int64_t inner = x.shape().Product(axis + 1, x.rank());
    const int64_t rows = outer * inner;
    const int64_t chunks =
        x.NumElements() < kParallelElements ? 1 : std::min<int64_t>(rows, ctx.num_threads());
    // One buffer of n entries per chunk: chunks run concurrently.
    auto* scratch =
        static_cast<Entry<T>*>(ctx.Scratch(static_cast<size_t>(chunks * n) * sizeof(Entry<T>)));
    const T* src = x.data<T>();
    T* out_v = values->data<T>();
    int64_t* out_i = indices->data<int64_t>();
    const bool largest = largest_;
    auto before = [largest](const Entry<T>& a, const Entry<T>& b) {
      if (largest) {
        if (Greater(a.value, b.value)) return true;
        if (Greater(b.value, a.value)) return false;
      } else {
        if (Greater(b.value, a.value)) return true;
        if (Greater(a.value, b.value)) return false;
      }
      return a.index < b.index;
    };
    auto run_chunks = [&](int64_t cb, int64_t ce) {
      for (int64_t c = cb; c < ce; ++c) {
        Entry<T>* buf = scratch + c * n;
        for (int64_t r = c * rows / chunks; r < (c + 1) * rows / chunks; ++r) {
          const int64_t o = r / inner, i = r % inner;
          const T* row = src + o * n * inner + i;
          for (int64_t j = 0; j < n; ++j) buf[j] = Entry<T>{row[j * inner], j};
          if (k < n) std::nth_element(buf, buf + k, buf + n, before);
          std::sort(buf, buf + k, before);
          T* ov = out_v + o * k * inner + i;
          int64_t* oi = out_i + o * k * inner + i;
          for (int64_t j = 0; j < k; ++j) {
            ov[j * inner] = buf[j].value;
            oi[j * inner] = buf[j].index;
          }
        }
      }
    };
    ctx.pool().ParallelFor(chunks, 1, run_chunks);
    return absl::OkStatus();
  }

  int64_t axis_;
  bool largest_;
  int64_t k_attr_;
};

}  // namespace

void RegisterTopKKernels(KernelRegistry& registry) {
  registry.Register("", "TopK", &MakeKernel<TopKKernel>);
}

}  // namespace flywheel::engine
