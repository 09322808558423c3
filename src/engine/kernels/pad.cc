// Pad: constant, reflect and edge padding (negative pads crop). Pads and the constant are
// attributes before opset 11 and inputs from 11; opset 18 adds an axes input.
#include <algorithm>
#include <cstring>

#include "engine/kernels/tensor_ops.h"
#include "engine/kernels/transpose.h"

namespace flywheel::engine {
namespace {

constexpr int64_t kGrainBytes = 32 * 1024;

enum class PadMode { kConstant, kReflect, kEdge };

// Source index of output position i (already shifted by the begin pad) on an axis of size d.
int64_t MapIndex(PadMode mode, int64_t i, int64_t d) {
  if (i >= 0 && i < d) return i;
  if (mode == PadMode::kEdge || d == 1) return std::clamp<int64_t>(i, 0, d - 1);
  const int64_t period = 2 * (d - 1);
  i %= period;
  if (i < 0) i += period;
  return i < d ? i : period - i;
}

class PadKernel : public Kernel {
 public:
  static absl::StatusOr<std::unique_ptr<Kernel>> Create(const Node& node, const Graph&) {
    std::unique_ptr<PadKernel> k(new PadKernel(node));
    const std::string mode = node.GetString("mode", "constant");
    if (mode == "constant") {
      k->mode_ = PadMode::kConstant;
    } else if (mode == "reflect") {
      k->mode_ = PadMode::kReflect;
    } else if (mode == "edge") {
      k->mode_ = PadMode::kEdge;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          node.Describe(), ": mode '", mode, "' is not supported (constant, reflect, edge)"));
    }
    return k;
  }

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* in, ctx.RequiredInput(0));
    FW_RETURN_IF_ERROR(CheckCopyable(ctx, *in, "data"));
    const int rank = in->rank();
    if (rank > kMaxStridedRank)
      return ctx.Error("rank ", rank, " is above the supported ", kMaxStridedRank);
    if (!pads_.present(ctx)) return ctx.Error("pads are required");
    FW_ASSIGN_OR_RETURN(IntList pads_in, pads_.Get(ctx, "pads"));
    FW_ASSIGN_OR_RETURN(IntList axes, axes_.Get(ctx, "axes"));
    const int naxes = axes.empty() ? rank : static_cast<int>(axes.size());
    if (static_cast<int>(pads_in.size()) != 2 * naxes) {
      return ctx.Error("pads has ", pads_in.size(), " values; expected ", 2 * naxes);
    }
    int64_t begin[kMaxStridedRank] = {}, end[kMaxStridedRank] = {};
    for (int i = 0; i < naxes; ++i) {
      int axis = i;
      if (!axes.empty()) {
        FW_ASSIGN_OR_RETURN(axis, NormalizeAxis(axes[i], rank, ctx.node()));
      }
      begin[axis] = pads_in[i];
      end[axis] = pads_in[naxes + i];
    }
    Shape out_shape;
    for (int k = 0; k < rank; ++k) {
      const int64_t d = in->dim(k) + begin[k] + end[k];
      if (d < 0) {
        return ctx.Error("pads ", begin[k], ", ", end[k], " on axis ", k, " of ",
                         in->shape().ToString(), " leave a negative size");
      }
      if (mode_ != PadMode::kConstant && in->dim(k) == 0 && d > 0) {
        return ctx.Error("cannot ", mode_ == PadMode::kEdge ? "edge" : "reflect", "-pad axis ", k,
                         " of size 0");
      }
      out_shape.push_back(d);
    }
    FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(0, in->dtype(), out_shape));
    if (out->NumElements() == 0) return absl::OkStatus();
    const size_t es = DataTypeSize(in->dtype());
    const IntList in_strides = Strides(in->shape());
    const IntList out_strides = Strides(out_shape);
    if (mode_ == PadMode::kConstant) {
      alignas(8) unsigned char value[8] = {};
      FW_RETURN_IF_ERROR(ConstantValue(ctx, *in, value));
      const int64_t n = out->NumElements();
      DispatchBySize(es, [&](auto tag) {
        using U = decltype(tag);
        U v;
        std::memcpy(&v, value, sizeof(U));
        std::fill(out->data<U>(), out->data<U>() + n, v);
      });
      StrideList dims(rank), ss(in_strides.begin(), in_strides.end()),
          ds(out_strides.begin(), out_strides.end());
      int64_t src_off = 0, dst_off = 0;
      for (int k = 0; k < rank; ++k) {
        dims[k] = in->dim(k) + std::min<int64_t>(0, begin[k]) + std::min<int64_t>(0, end[k]);
        if (dims[k] <= 0) return absl::OkStatus();  // nothing of the input survives
        src_off += std::max<int64_t>(0, -begin[k]) * in_strides[k];
        dst_off += std::max<int64_t>(0, begin[k]) * out_strides[k];
      }
      StridedCopy(static_cast<const char*>(in->raw_data()) + src_off * static_cast<int64_t>(es),
                  static_cast<char*>(out->raw_data()) + dst_off * static_cast<int64_t>(es), es,
                  dims, ss, ds, &ctx.pool());
      return absl::OkStatus();
    }
    // Edge and reflect: each output row reads one input row, its ends mapped element by element.
    if (rank == 0) {
      std::memcpy(out->raw_data(), in->raw_data(), es);
      return absl::OkStatus();
    }
    const int last = rank - 1;
    const int64_t rows = out_shape.Product(0, last);
    const int64_t row_len = out_shape[last];
    DispatchBySize(es, [&](auto tag) {
      using U = decltype(tag);
      const U* src = in->data<U>();
      U* dst = out->data<U>();
      auto fn = [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          int64_t rem = r, src_row = 0;
          for (int k = last - 1; k >= 0; --k) {
            const int64_t i = rem % out_shape[k];
            rem /= out_shape[k];
            src_row += MapIndex(mode_, i - begin[k], in->dim(k)) * in_strides[k];
          }
          const U* s = src + src_row;
          U* d = dst + r * row_len;
          const int64_t dl = in->dim(last);
          const int64_t lo = std::clamp<int64_t>(begin[last], 0, row_len);
          const int64_t hi = std::clamp<int64_t>(begin[last] + dl, lo, row_len);
          for (int64_t j = 0; j < lo; ++j) d[j] = s[MapIndex(mode_, j - begin[last], dl)];
          if (hi > lo) std::memcpy(d + lo, s + (lo - begin[last]), (hi - lo) * sizeof(U));
          for (int64_t j = hi; j < row_len; ++j) d[j] = s[MapIndex(mode_, j - begin[last], dl)];
        }
      };
      ctx.pool().ParallelFor(
          rows, std::max<int64_t>(1, kGrainBytes / std::max<int64_t>(1, row_len * sizeof(U))), fn);
    });
    return absl::OkStatus();
  }

 private:
  explicit PadKernel(const Node& node)
      : pads_(node, "pads", 1),
        axes_(node, "axes", 3),
        has_value_attr_(node.HasAttr("value")),
        value_attr_(node.GetFloat("value", 0)) {}

  // The padding value as the input's element type: input 2, else the float attribute (opset
  // < 11), else 0.
  absl::Status ConstantValue(const KernelContext& ctx, const Tensor& in,
                             unsigned char* value) const {
    if (const Tensor* c = ctx.input(2); c != nullptr) {
      if (c->dtype() != in.dtype() || c->NumElements() != 1) {
        return ctx.Error("constant_value must be one ", DataTypeName(in.dtype()), " element, got ",
                         c->DebugString());
      }
      std::memcpy(value, c->raw_data(), DataTypeSize(in.dtype()));
      return absl::OkStatus();
    }
    if (!has_value_attr_) return absl::OkStatus();
    const float v = value_attr_;
    if (in.dtype() == DataType::kBool) {
      value[0] = v != 0;
      return absl::OkStatus();
    }
    if (!DispatchNumeric(in.dtype(), [&](auto tag) {
          using T = decltype(tag);
          T t = static_cast<T>(v);
          std::memcpy(value, &t, sizeof(T));
        })) {
      return ctx.Error("a 'value' attribute cannot pad type ", DataTypeName(in.dtype()));
    }
    return absl::OkStatus();
  }

  IntsAttrOrInput pads_, axes_;
  bool has_value_attr_;
  float value_attr_;
  PadMode mode_ = PadMode::kConstant;
};

}  // namespace

void RegisterPadKernels(KernelRegistry& registry) {
  registry.Register("", "Pad", &PadKernel::Create);
}

}  // namespace flywheel::engine
