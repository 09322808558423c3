// Operators that only change how a buffer is seen: Reshape, Flatten, Squeeze, Unsqueeze,
// Identity and inference-mode Dropout. Outputs are views of the input (ctx.ForwardInput).
#include <cstring>

#include "absl/strings/str_join.h"
#include "engine/kernels/tensor_ops.h"

namespace flywheel::engine {
namespace {

// Axes are kept as a bit mask; ranks above this are refused.
constexpr int kMaxViewRank = 64;

class ReshapeKernel : public Kernel {
 public:
  ReshapeKernel(const Node& node, const Graph&)
      : shape_(node, "shape", 1), allow_zero_(node.GetInt("allowzero", 0) != 0) {}

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* in, ctx.RequiredInput(0));
    if (!shape_.present(ctx)) return ctx.Error("the target shape (input 1) is missing");
    FW_ASSIGN_OR_RETURN(IntList dims, shape_.Get(ctx, "shape"));
    Shape out;
    int infer = -1;
    int64_t known = 1;
    bool has_zero = false;
    for (int k = 0; k < static_cast<int>(dims.size()); ++k) {
      int64_t d = dims[k];
      if (d == -1) {
        if (infer >= 0) return ctx.Error("shape has more than one -1");
        infer = k;
        out.push_back(1);
        continue;
      }
      if (d == 0 && !allow_zero_) {
        if (k >= in->rank()) {
          return ctx.Error("shape[", k, "] = 0 copies an input dim, but the input ",
                           in->shape().ToString(), " has rank ", in->rank());
        }
        d = in->dim(k);
      } else if (d < 0) {
        return ctx.Error("shape[", k, "] = ", d, " is negative");
      }
      if (dims[k] == 0) has_zero = true;
      out.push_back(d);
      if (d != 0 && known > (int64_t{1} << 62) / d) return ctx.Error("shape is too large");
      known *= d;
    }
    if (allow_zero_ && has_zero && infer >= 0) {
      return ctx.Error("shape may not hold both 0 and -1 when allowzero=1");
    }
    const int64_t n = in->NumElements();
    if (infer >= 0) {
      if (known == 0 || n % known != 0) {
        return ctx.Error("cannot reshape ", in->shape().ToString(), " (", n, " elements) to [",
                         absl::StrJoin(dims, ","), "]: the -1 cannot be inferred");
      }
      out.set_dim(infer, n / known);
    } else if (known != n) {
      return ctx.Error("cannot reshape ", in->shape().ToString(), " (", n, " elements) to ",
                       out.ToString(), " (", known, " elements)");
    }
    return ctx.ForwardInput(0, 0, out);
  }

 private:
  IntsAttrOrInput shape_;
  bool allow_zero_;
};

class FlattenKernel : public Kernel {
 public:
  FlattenKernel(const Node& node, const Graph&) : axis_(node.GetInt("axis", 1)) {}

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* in, ctx.RequiredInput(0));
    const int rank = in->rank();
    if (axis_ < -rank || axis_ > rank) {
      return ctx.Error("axis ", axis_, " is out of range [", -rank, ", ", rank, "] for input ",
                       in->shape().ToString());
    }
    const int axis = static_cast<int>(axis_ < 0 ? axis_ + rank : axis_);
    return ctx.ForwardInput(0, 0,
                            Shape{in->shape().Product(0, axis), in->shape().Product(axis, rank)});
  }

 private:
  int64_t axis_;
};

// Normalises `axes` against `rank` into a bit mask; fails on duplicates or out-of-range axes.
absl::StatusOr<uint64_t> AxesMask(const KernelContext& ctx, const IntList& axes, int rank) {
  if (rank > kMaxViewRank)
    return ctx.Error("rank ", rank, " is above the supported ", kMaxViewRank);
  uint64_t mask = 0;
  for (int64_t a : axes) {
    FW_ASSIGN_OR_RETURN(int axis, NormalizeAxis(a, rank, ctx.node()));
    if (mask & (uint64_t{1} << axis)) return ctx.Error("axis ", a, " is listed twice");
    mask |= uint64_t{1} << axis;
  }
  return mask;
}

class SqueezeKernel : public Kernel {
 public:
  SqueezeKernel(const Node& node, const Graph&) : axes_(node, "axes", 1) {}

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* in, ctx.RequiredInput(0));
    FW_ASSIGN_OR_RETURN(IntList axes, axes_.Get(ctx, "axes"));
    Shape out;
    if (axes.empty()) {
      for (int64_t d : in->shape().dims()) {
        if (d != 1) out.push_back(d);
      }
      return ctx.ForwardInput(0, 0, out);
    }
    FW_ASSIGN_OR_RETURN(uint64_t mask, AxesMask(ctx, axes, in->rank()));
    for (int k = 0; k < in->rank(); ++k) {
      if (!(mask & (uint64_t{1} << k))) {
        out.push_back(in->dim(k));
      } else if (in->dim(k) != 1) {
        return ctx.Error("cannot squeeze axis ", k, " of ", in->shape().ToString(),
                         ": its size is not 1");
      }
    }
    return ctx.ForwardInput(0, 0, out);
  }

 private:
  IntsAttrOrInput axes_;
};

class UnsqueezeKernel : public Kernel {
 public:
  UnsqueezeKernel(const Node& node, const Graph&) : axes_(node, "axes", 1) {}

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* in, ctx.RequiredInput(0));
    if (!axes_.present(ctx)) return ctx.Error("axes are required");
    FW_ASSIGN_OR_RETURN(IntList axes, axes_.Get(ctx, "axes"));
    const int rank = in->rank() + static_cast<int>(axes.size());
    FW_ASSIGN_OR_RETURN(uint64_t mask, AxesMask(ctx, axes, rank));
    Shape out;
    for (int k = 0, j = 0; k < rank; ++k) {
      out.push_back((mask & (uint64_t{1} << k)) ? 1 : in->dim(j++));
    }
    return ctx.ForwardInput(0, 0, out);
  }

 private:
  IntsAttrOrInput axes_;
};

class IdentityKernel : public Kernel {
 public:
  IdentityKernel(const Node&, const Graph&) {}

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* in, ctx.RequiredInput(0));
    return ctx.ForwardInput(0, 0, in->shape());
  }
};

// Inference only: the output is the input and the optional mask is all true.
class DropoutKernel : public Kernel {
 public:
  DropoutKernel(const Node&, const Graph&) {}

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* in, ctx.RequiredInput(0));
    if (const Tensor* training = ctx.input(2); training != nullptr) {
      if (training->dtype() != DataType::kBool || training->NumElements() != 1) {
        return ctx.Error("training_mode must be a BOOL scalar, got ", training->DebugString());
      }
      if (training->data<bool>()[0]) {
        return ctx.Error("training_mode=true is not supported: this engine runs inference only");
      }
    }
    FW_RETURN_IF_ERROR(ctx.ForwardInput(0, 0, in->shape()));
    if (ctx.num_outputs() > 1 && ctx.node().outputs[1] >= 0) {
      FW_ASSIGN_OR_RETURN(Tensor * mask, ctx.AllocateOutput(1, DataType::kBool, in->shape()));
      if (mask->NumElements() > 0) std::memset(mask->raw_data(), 1, mask->NumElements());
    }
    return absl::OkStatus();
  }
};

}  // namespace

void RegisterViewKernels(KernelRegistry& registry) {
  registry.Register("", "Reshape", &MakeKernel<ReshapeKernel>);
  registry.Register("", "Flatten", &MakeKernel<FlattenKernel>);
  registry.Register("", "Squeeze", &MakeKernel<SqueezeKernel>);
  registry.Register("", "Unsqueeze", &MakeKernel<UnsqueezeKernel>);
  registry.Register("", "Identity", &MakeKernel<IdentityKernel>);
  registry.Register("", "Dropout", &MakeKernel<DropoutKernel>);
}

}  // namespace flywheel::engine
