// Split: cuts the input along one axis into parts given by sizes (attribute before opset 13,
// input from 13), by opset 18's num_outputs, or into equal parts.
#include <cstring>

#include "absl/strings/str_join.h"
#include "engine/kernels/tensor_ops.h"

namespace flywheel::engine {
namespace {

constexpr int64_t kGrainBytes = 32 * 1024;

class SplitKernel : public Kernel {
 public:
  SplitKernel(const Node& node, const Graph&)
      : axis_(node.GetInt("axis", 0)),
        split_(node, "split", 1),
        num_outputs_attr_(node.GetInt("num_outputs", 0)) {}

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* in, ctx.RequiredInput(0));
    FW_RETURN_IF_ERROR(CheckCopyable(ctx, *in, "input"));
    if (in->rank() == 0) return ctx.Error("input must have rank >= 1, got a scalar");
    FW_ASSIGN_OR_RETURN(int axis, NormalizeAxis(axis_, in->rank(), ctx.node()));
    const int n_out = ctx.num_outputs();
    const int64_t d = in->dim(axis);
    FW_ASSIGN_OR_RETURN(IntList sizes, split_.Get(ctx, "split"));
    if (!sizes.empty()) {
      if (static_cast<int>(sizes.size()) != n_out) {
        return ctx.Error("split has ", sizes.size(), " sizes for ", n_out, " outputs");
      }
      int64_t sum = 0;
      for (int64_t s : sizes) {
        if (s < 0) return ctx.Error("split size ", s, " is negative");
        sum += s;
      }
      if (sum != d) {
        return ctx.Error("split sizes [", absl::StrJoin(sizes, ","), "] add up to ", sum,
                         ", not to dim ", axis, " of ", in->shape().ToString());
      }
    } else if (num_outputs_attr_ > 0) {
      // Opset 18: ceil(d / n) each, the last part smaller.
      if (num_outputs_attr_ != n_out) {
        return ctx.Error("num_outputs is ", num_outputs_attr_, " but the node has ", n_out,
                         " outputs");
      }
      const int64_t chunk = (d + n_out - 1) / n_out;
      for (int i = 0; i < n_out; ++i) {
        sizes.push_back(std::max<int64_t>(0, std::min(chunk, d - i * chunk)));
      }
    } else {
      if (n_out == 0 || d % n_out != 0) {
        return ctx.Error("cannot split dim ", axis, " of ", in->shape().ToString(), " into ", n_out,
                         " equal parts");
      }
      sizes.assign(n_out, d / n_out);
    }
    const size_t es = DataTypeSize(in->dtype());
    const int64_t outer = in->shape().Product(0, axis);
    const size_t inner_bytes = static_cast<size_t>(in->shape().Product(axis + 1, in->rank())) * es;
    const size_t in_row = static_cast<size_t>(d) * inner_bytes;
    const char* src = static_cast<const char*>(in->raw_data());
    size_t offset = 0;
    for (int i = 0; i < n_out; ++i) {
      const size_t block = static_cast<size_t>(sizes[i]) * inner_bytes;
      if (ctx.node().outputs[i] >= 0) {
        Shape shape = in->shape();
        shape.set_dim(axis, sizes[i]);
        FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(i, in->dtype(), shape));
        char* dst = static_cast<char*>(out->raw_data());
        if (block > 0) {
          ctx.pool().ParallelFor(outer,
                                 std::max<int64_t>(1, kGrainBytes / static_cast<int64_t>(block)),
                                 [&](int64_t b, int64_t e) {
                                   for (int64_t o = b; o < e; ++o) {
                                     std::memcpy(dst + o * block, src + o * in_row + offset, block);
                                   }
                                 });
        }
      }
      offset += block;
    }
    return absl::OkStatus();
  }

 private:
  int64_t axis_;
  IntsAttrOrInput split_;
  int64_t num_outputs_attr_;
};

}  // namespace

void RegisterSplitKernels(KernelRegistry& registry) {
  registry.Register("", "Split", &MakeKernel<SplitKernel>);
}

}  // namespace flywheel::engine
