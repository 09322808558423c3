// Shape (with opset 15's start/end) and ConstantOfShape: the small operators of shape subgraphs.
#include <algorithm>
#include <cstring>

#include "absl/strings/str_join.h"
#include "engine/kernels/tensor_ops.h"

namespace flywheel::engine {
namespace {

class ShapeKernel : public Kernel {
 public:
  ShapeKernel(const Node& node, const Graph&)
      : start_(node.GetInt("start", 0)),
        end_(node.HasAttr("end") ? node.GetInt("end", 0) : INT64_MAX) {}

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* in, ctx.RequiredInput(0));
    const int64_t rank = in->rank();
    auto clamp = [rank](int64_t v) {
      if (v < 0) v += rank;
      return std::clamp<int64_t>(v, 0, rank);
    };
    const int64_t start = clamp(start_), end = clamp(end_);
    const int64_t n = std::max<int64_t>(0, end - start);
    FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(0, DataType::kInt64, Shape{n}));
    for (int64_t i = 0; i < n; ++i) out->data<int64_t>()[i] = in->dim(static_cast<int>(start + i));
    return absl::OkStatus();
  }

 private:
  int64_t start_, end_;
};

class ConstantOfShapeKernel : public Kernel {
 public:
  static absl::StatusOr<std::unique_ptr<Kernel>> Create(const Node& node, const Graph&) {
    std::unique_ptr<ConstantOfShapeKernel> k(new ConstantOfShapeKernel());
    if (const Tensor* value = node.GetTensor("value"); value != nullptr) {
      const size_t es = DataTypeSize(value->dtype());
      if (value->NumElements() != 1 || es == 0 || es > sizeof(k->value_)) {
        return absl::InvalidArgumentError(absl::StrCat(
            node.Describe(), ": attribute 'value' must be one numeric or bool element, got ",
            value->DebugString()));
      }
      k->dtype_ = value->dtype();
      std::memcpy(k->value_, value->raw_data(), es);
    }
    return k;
  }

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* shape_in, ctx.RequiredInput(0));
    if (shape_in->rank() > 1) return ctx.Error("input must be 1-D, got ", shape_in->DebugString());
    FW_ASSIGN_OR_RETURN(IntList dims, ReadInts(*shape_in, ctx.node(), "shape"));
    Shape shape;
    int64_t total = 1;
    for (int64_t d : dims) {
      if (d < 0) return ctx.Error("shape [", absl::StrJoin(dims, ","), "] has a negative dim");
      if (d > 0 && total > (int64_t{1} << 40) / d) return ctx.Error("shape is too large");
      total *= d;
      shape.push_back(d);
    }
    FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(0, dtype_, shape));
    const int64_t n = out->NumElements();
    DispatchBySize(DataTypeSize(dtype_), [&](auto tag) {
      using U = decltype(tag);
      U v;
      std::memcpy(&v, value_, sizeof(U));
      std::fill(out->data<U>(), out->data<U>() + n, v);
    });
    return absl::OkStatus();
  }

 private:
  ConstantOfShapeKernel() = default;
  DataType dtype_ = DataType::kFp32;
  alignas(8) unsigned char value_[8] = {};
};

}  // namespace

void RegisterShapeKernels(KernelRegistry& registry) {
  registry.Register("", "Shape", &MakeKernel<ShapeKernel>);
  registry.Register("", "ConstantOfShape", &ConstantOfShapeKernel::Create);
}

}  // namespace flywheel::engine
