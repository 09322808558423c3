// ConvTranspose (1-D and 2-D, float32 NCHW) as a GEMM into a column buffer (oneDNN's sgemm)
// followed by col2im, which handles every padding, output_padding and output_shape case exactly.
#include <algorithm>
#include <cstring>
#include <memory>

#include <oneapi/dnnl/dnnl.hpp>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "engine/kernels/conv_util.h"
#include "engine/kernels/dnnl_util.h"
#include "engine/kernels/registry.h"

namespace flywheel::engine {
namespace {

class ConvTransposeKernel : public Kernel {
 public:
  static absl::StatusOr<std::unique_ptr<Kernel>> Create(const Node& node, const Graph& graph) {
    auto err = [&](const auto&... args) {
      return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": ", args...));
    };
    std::unique_ptr<ConvTransposeKernel> k(new ConvTransposeKernel());
    FW_ASSIGN_OR_RETURN(k->attrs_, ParseWindowAttrs(node));
    k->group_ = node.GetInt("group", 1);
    if (k->group_ <= 0) return err("group must be positive, got ", k->group_);
    std::vector<int64_t> op = node.GetInts("output_padding"), os = node.GetInts("output_shape");
    k->output_padding_.assign(op.begin(), op.end());
    k->output_shape_.assign(os.begin(), os.end());
    for (int64_t v : op) {
      if (v < 0) return err("output_padding must not be negative");
    }
    for (int64_t v : os) {
      if (v <= 0) return err("output_shape must be positive");
    }
    if (node.input(0) < 0 || node.input(1) < 0) return err("inputs X and W are required");
    k->has_bias_ = node.input(2) >= 0;
    return std::unique_ptr<Kernel>(std::move(k));
  }

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* x, ctx.RequiredInput(0));
    FW_ASSIGN_OR_RETURN(const Tensor* w, ctx.RequiredInput(1));
    const Tensor* b = has_bias_ ? ctx.input(2) : nullptr;
    if (x->dtype() != DataType::kFp32 || w->dtype() != DataType::kFp32) {
      return ctx.Error("X and W must be FP32, got ", x->DebugString(), " and ", w->DebugString());
    }
    const int rank = x->rank();
    if (rank != 3 && rank != 4) {
      return ctx.Error("only 1-D and 2-D ConvTranspose are supported; X is ", x->DebugString());
    }
    if (w->rank() != rank) {
      return ctx.Error("W ", w->DebugString(), " must have the rank of X ", x->DebugString());
    }
    const int sp = rank - 2;
    const int64_t n = x->dim(0), c = x->dim(1), mg = w->dim(1), m = mg * group_;
    if (c % group_ != 0 || w->dim(0) != c || mg <= 0) {
      return ctx.Error("X has ", c, " channels; W ", w->DebugString(),
                       " must be [C, M/group, k...] with C divisible by group ", group_);
    }
    if (b != nullptr && (b->dtype() != DataType::kFp32 || b->rank() != 1 || b->dim(0) != m)) {
      return ctx.Error("bias B must be FP32 [", m, "], got ", b->DebugString());
    }
    auto check_len = [&](const IntList& v, size_t want, const char* name) -> absl::Status {
      if (!v.empty() && v.size() != want) {
        return ctx.Error(name, " has ", v.size(), " values, expected ", want);
      }
      return absl::OkStatus();
    };
    FW_RETURN_IF_ERROR(check_len(attrs_.strides, sp, "strides"));
    FW_RETURN_IF_ERROR(check_len(attrs_.dilations, sp, "dilations"));
    FW_RETURN_IF_ERROR(check_len(attrs_.pads, 2 * sp, "pads"));
    FW_RETURN_IF_ERROR(check_len(attrs_.kernel_shape, sp, "kernel_shape"));
    FW_RETURN_IF_ERROR(check_len(output_padding_, sp, "output_padding"));
    if (!output_shape_.empty() && output_shape_.size() != static_cast<size_t>(sp) &&
        output_shape_.size() != static_cast<size_t>(rank)) {
      return ctx.Error("output_shape has ", output_shape_.size(), " values, expected ", sp);
    }
    // Per spatial axis (1-D is treated as H = 1): sizes, strides, dilation, pads.
    int64_t in[2] = {1, 1}, k[2] = {1, 1}, s[2] = {1, 1}, d[2] = {1, 1}, pb[2] = {0, 0},
            out[2] = {1, 1};
    for (int i = 0; i < sp; ++i) {
      const int a = i + 2 - sp;
      in[a] = x->dim(2 + i);
      k[a] = w->dim(2 + i);
      if (!attrs_.kernel_shape.empty() && attrs_.kernel_shape[i] != k[a]) {
        return ctx.Error("kernel_shape does not match W ", w->DebugString());
      }
      s[a] = attrs_.strides.empty() ? 1 : attrs_.strides[i];
      d[a] = attrs_.dilations.empty() ? 1 : attrs_.dilations[i];
      const int64_t adj = output_padding_.empty() ? 0 : output_padding_[i];
      if (adj >= s[a] && adj >= d[a]) {
        return ctx.Error("output_padding ", adj, " must be smaller than the stride or dilation");
      }
      const int64_t keff = (k[a] - 1) * d[a] + 1;
      const int64_t full = s[a] * (in[a] - 1) + adj + keff;  // output size with no padding
      int64_t p0 = 0, p1 = 0;
      if (!output_shape_.empty() || attrs_.auto_pad == AutoPad::kSameUpper ||
          attrs_.auto_pad == AutoPad::kSameLower) {
        int64_t target =
            !output_shape_.empty() ? output_shape_[output_shape_.size() - sp + i] : in[a] * s[a];
        int64_t total = full - target;
        if (total < 0) {
          return ctx.Error("output_shape ", target, " on spatial axis ", i,
                           " is larger than the largest possible output ", full);
        }
        // As the ONNX specification: SAME_UPPER puts the odd unit of padding at the end.
        if (attrs_.auto_pad == AutoPad::kSameUpper) {
          p0 = total / 2;
        } else if (attrs_.auto_pad == AutoPad::kSameLower) {
          p0 = total - total / 2;
        } else {
          p0 = total / 2;
        }
        p1 = total - p0;
      } else if (attrs_.auto_pad == AutoPad::kNotSet && !attrs_.pads.empty()) {
        p0 = attrs_.pads[i];
        p1 = attrs_.pads[i + sp];
      }
      pb[a] = p0;
      out[a] = full - p0 - p1;
      if (out[a] <= 0) {
        return ctx.Error("pads remove the whole output on spatial axis ", i);
      }
    }
    Shape ys{n, m};
    for (int i = 0; i < sp; ++i) ys.push_back(out[i + 2 - sp]);
    FW_ASSIGN_OR_RETURN(Tensor * y, ctx.AllocateOutput(0, DataType::kFp32, ys));
    if (y->NumElements() == 0) return absl::OkStatus();
    const int64_t cg = c / group_, kk = k[0] * k[1], hw = in[0] * in[1], ohw = out[0] * out[1];
    const int64_t rows = mg * kk;  // rows of the column buffer per group
    float* col = static_cast<float*>(ctx.Scratch(sizeof(float) * rows * hw));
    const float* xd = x->data<float>();
    const float* wd = w->data<float>();
    float* yd = y->data<float>();
    SetDnnlThreads(ctx.num_threads());
    for (int64_t bn = 0; bn < n; ++bn) {
      for (int64_t ch = 0; ch < m; ++ch) {
        std::fill_n(yd + (bn * m + ch) * ohw, ohw, b != nullptr ? b->data<float>()[ch] : 0.0f);
      }
      for (int64_t g = 0; g < group_; ++g) {
        // col[rows, hw] = W_g^T [rows, cg] * X_g [cg, hw]
        if (cg == 0) continue;
        dnnl_status_t st = dnnl_sgemm('T', 'N', rows, hw, cg, 1.0f, wd + g * cg * rows, rows,
                                      xd + (bn * c + g * cg) * hw, hw, 0.0f, col, hw);
        if (st != dnnl_success) return ctx.Error("oneDNN sgemm failed with status ", st);
        float* dst = yd + (bn * m + g * mg) * ohw;
        ctx.pool().ParallelFor(mg, std::max<int64_t>(1, 4096 / std::max<int64_t>(kk * hw, 1)),
                               [&](int64_t begin, int64_t end) {
                                 for (int64_t oc = begin; oc < end; ++oc) {
                                   Col2Im(col + oc * kk * hw, in, k, s, d, pb, out, dst + oc * ohw);
                                 }
                               });
      }
    }
    return absl::OkStatus();
  }

 private:
  ConvTransposeKernel() = default;

  // Adds the kk rows of one output channel's column block into its output plane.
  static void Col2Im(const float* col, const int64_t* in, const int64_t* k, const int64_t* s,
                     const int64_t* d, const int64_t* pb, const int64_t* out, float* dst) {
    for (int64_t ky = 0; ky < k[0]; ++ky) {
      for (int64_t kx = 0; kx < k[1]; ++kx) {
        const float* src = col + (ky * k[1] + kx) * in[0] * in[1];
        for (int64_t iy = 0; iy < in[0]; ++iy) {
          const int64_t oy = iy * s[0] - pb[0] + ky * d[0];
          if (oy < 0 || oy >= out[0]) continue;
          float* row = dst + oy * out[1];
          const float* srow = src + iy * in[1];
          // Input columns whose output column lands inside [0, out[1]).
          const int64_t off = kx * d[1] - pb[1];
          int64_t lo = off >= 0 ? 0 : (-off + s[1] - 1) / s[1];
          int64_t hi = out[1] - 1 - off < 0 ? 0 : (out[1] - 1 - off) / s[1] + 1;
          hi = std::min(hi, in[1]);
          for (int64_t ix = lo; ix < hi; ++ix) row[ix * s[1] + off] += srow[ix];
        }
      }
    }
  }

  WindowAttrs attrs_;
  int64_t group_ = 1;
  IntList output_padding_, output_shape_;
  bool has_bias_ = false;
};

absl::StatusOr<std::unique_ptr<Kernel>> MakeConvTranspose(const Node& node, const Graph& graph) {
  return ConvTransposeKernel::Create(node, graph);
}

}  // namespace

void RegisterConvTransposeKernels(KernelRegistry& registry) {
  registry.Register("", "ConvTranspose", MakeConvTranspose);
}

}  // namespace flywheel::engine
