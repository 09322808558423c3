// Unary elementwise operators: math (Sqrt, Exp, Log, Erf, ...), activations (Relu, Sigmoid, Elu,
// Gelu, ...), Clip in both its attribute (opset < 11) and input (opset >= 11) forms, and Not.
// float32 runs through simd_math; double and integer types use scalar loops.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "engine/kernels/broadcast.h"
#include "engine/kernels/elementwise_util.h"
#include "engine/kernels/simd_math.h"

namespace flywheel::engine {
namespace {

using simd::UnaryOp;

// Which element types an operator accepts besides float32/float64.
bool AcceptsIntegers(UnaryOp op) {
  return op == UnaryOp::kNeg || op == UnaryOp::kAbs || op == UnaryOp::kRelu ||
         op == UnaryOp::kClip || op == UnaryOp::kIdentity;
}

template <typename T, typename F>
void MapScalar(const T* in, T* out, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) out[i] = f(in[i]);
}

// Scalar version of simd::Unary for double and the integer types.
template <typename T>
void UnaryScalar(UnaryOp op, const T* in, T* out, int64_t n, T lo, T hi, double alpha,
                 double beta) {
  if constexpr (std::is_integral_v<T>) {
    switch (op) {
      case UnaryOp::kNeg:
        return MapScalar(in, out, n, [](T x) { return WrapSub(T{0}, x); });
      case UnaryOp::kAbs:
        return MapScalar(in, out, n, [](T x) { return x < 0 ? WrapSub(T{0}, x) : x; });
      case UnaryOp::kRelu:
        return MapScalar(in, out, n, [](T x) { return x < 0 ? T{0} : x; });
      case UnaryOp::kClip:
        return MapScalar(in, out, n, [lo, hi](T x) { return std::min(std::max(x, lo), hi); });
      default:
        return MapScalar(in, out, n, [](T x) { return x; });
    }
  } else {
    const T a = static_cast<T>(alpha), b = static_cast<T>(beta);
    switch (op) {
      case UnaryOp::kIdentity:
        return MapScalar(in, out, n, [](T x) { return x; });
      case UnaryOp::kNeg:
        return MapScalar(in, out, n, [](T x) { return -x; });
      case UnaryOp::kAbs:
        return MapScalar(in, out, n, [](T x) { return std::abs(x); });
      case UnaryOp::kSqrt:
        return MapScalar(in, out, n, [](T x) { return std::sqrt(x); });
      case UnaryOp::kExp:
        return MapScalar(in, out, n, [](T x) { return std::exp(x); });
      case UnaryOp::kLog:
        return MapScalar(in, out, n, [](T x) { return std::log(x); });
      case UnaryOp::kErf:
        return MapScalar(in, out, n, [](T x) { return std::erf(x); });
      case UnaryOp::kTanh:
        return MapScalar(in, out, n, [](T x) { return std::tanh(x); });
      case UnaryOp::kSigmoid:
        return MapScalar(in, out, n, [](T x) { return T{1} / (T{1} + std::exp(-x)); });
      case UnaryOp::kRelu:
        return MapScalar(in, out, n, [](T x) { return x < 0 ? T{0} : x; });
      case UnaryOp::kLeakyRelu:
        return MapScalar(in, out, n, [a](T x) { return x < 0 ? a * x : x; });
      case UnaryOp::kElu:
        return MapScalar(in, out, n, [a](T x) { return x < 0 ? a * std::expm1(x) : x; });
      case UnaryOp::kHardSigmoid:
        return MapScalar(in, out, n,
                         [a, b](T x) { return std::min(T{1}, std::max(T{0}, a * x + b)); });
      case UnaryOp::kClip:
        return MapScalar(in, out, n, [lo, hi](T x) { return std::min(std::max(x, lo), hi); });
      case UnaryOp::kGelu:
        return MapScalar(in, out, n, [](T x) {
          return T{0.5} * x * (T{1} + std::erf(x * T{0.70710678118654752440}));
        });
      case UnaryOp::kGeluTanh:
        return MapScalar(in, out, n, [](T x) {
          return T{0.5} * x *
                 (T{1} + std::tanh(T{0.79788456080286535588} * (x + T{0.044715} * x * x * x)));
        });
      case UnaryOp::kSquare:
        return MapScalar(in, out, n, [](T x) { return x * x; });
      case UnaryOp::kReciprocal:
        return MapScalar(in, out, n, [](T x) { return T{1} / x; });
      case UnaryOp::kFloor:
        return MapScalar(in, out, n, [](T x) { return std::floor(x); });
      case UnaryOp::kCeil:
        return MapScalar(in, out, n, [](T x) { return std::ceil(x); });
      case UnaryOp::kRound:
        return MapScalar(in, out, n, [](T x) { return std::nearbyint(x); });
      case UnaryOp::kSoftplus:
        return MapScalar(
            in, out, n, [](T x) { return std::max(x, T{0}) + std::log1p(std::exp(-std::abs(x))); });
      case UnaryOp::kSin:
        return MapScalar(in, out, n, [](T x) { return std::sin(x); });
      case UnaryOp::kCos:
        return MapScalar(in, out, n, [](T x) { return std::cos(x); });
    }
  }
}

class UnaryKernel : public Kernel {
 public:
  UnaryKernel(UnaryOp op, float alpha, float beta) : op_(op), alpha_(alpha), beta_(beta) {}

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* in, ctx.RequiredInput(0));
    const DataType dtype = in->dtype();
    const bool is_float = dtype == DataType::kFp32 || dtype == DataType::kFp64;
    if (!(is_float || (AcceptsIntegers(op_) && IsInteger(dtype)))) {
      return ctx.Error("unsupported input type ", DataTypeName(dtype));
    }
    FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(0, dtype, in->shape()));
    const int64_t n = in->NumElements();
    if (dtype == DataType::kFp32) {
      const float* x = in->data<float>();
      float* y = out->data<float>();
      ParallelElements(ctx, n, [&](int64_t begin, int64_t end) {
        simd::Unary(op_, x + begin, y + begin, end - begin, alpha_, beta_);
      });
      return absl::OkStatus();
    }
    VisitNumeric(dtype, [&](auto tag) {
      using T = decltype(tag);
      const T* x = in->data<T>();
      T* y = out->data<T>();
      ParallelElements(ctx, n, [&](int64_t begin, int64_t end) {
        UnaryScalar<T>(op_, x + begin, y + begin, end - begin, T{}, T{}, alpha_, beta_);
      });
    });
    return absl::OkStatus();
  }

 private:
  UnaryOp op_;
  float alpha_, beta_;
};

template <UnaryOp kOp>
absl::StatusOr<std::unique_ptr<Kernel>> MakeUnary(const Node& node, const Graph&) {
  float alpha = 0, beta = 0;
  if constexpr (kOp == UnaryOp::kLeakyRelu) alpha = node.GetFloat("alpha", 0.01f);
  if constexpr (kOp == UnaryOp::kElu) alpha = node.GetFloat("alpha", 1.0f);
  if constexpr (kOp == UnaryOp::kHardSigmoid) {
    alpha = node.GetFloat("alpha", 0.2f);
    beta = node.GetFloat("beta", 0.5f);
  }
  return std::make_unique<UnaryKernel>(kOp, alpha, beta);
}

// Gelu: com.flywheel's fused op (and ONNX opset 20's), exact unless approximate = "tanh".
absl::StatusOr<std::unique_ptr<Kernel>> MakeGelu(const Node& node, const Graph&) {
  const std::string approx = node.GetString("approximate", "none");
  if (approx != "none" && approx != "tanh") {
    return absl::InvalidArgumentError(absl::StrCat(
        node.Describe(), ": approximate must be 'none' or 'tanh', got '", approx, "'"));
  }
  return std::make_unique<UnaryKernel>(approx == "tanh" ? UnaryOp::kGeluTanh : UnaryOp::kGelu, 0,
                                       0);
}

// ---------------------------------------------------------------- Clip

class ClipKernel : public Kernel {
 public:
  // Bounds from attributes (opset < 11); inputs 1 and 2 take precedence when present.
  ClipKernel(float min, float max) : attr_min_(min), attr_max_(max) {}

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* in, ctx.RequiredInput(0));
    const DataType dtype = in->dtype();
    const Tensor* lo_t = ctx.input(1);
    const Tensor* hi_t = ctx.input(2);
    for (const Tensor* t : {lo_t, hi_t}) {
      if (t == nullptr) continue;
      if (t->dtype() != dtype || t->NumElements() != 1) {
        return ctx.Error("min and max must be scalars of the input's type ", DataTypeName(dtype),
                         ", got ", t->DebugString());
      }
    }
    FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(0, dtype, in->shape()));
    const int64_t n = in->NumElements();
    bool ok = VisitNumeric(dtype, [&](auto tag) {
      using T = decltype(tag);
      T lo = std::numeric_limits<T>::lowest(), hi = std::numeric_limits<T>::max();
      if constexpr (std::is_floating_point_v<T>) {
        lo = static_cast<T>(attr_min_);
        hi = static_cast<T>(attr_max_);
      }
      if (lo_t != nullptr) lo = lo_t->data<T>()[0];
      if (hi_t != nullptr) hi = hi_t->data<T>()[0];
      const T* x = in->data<T>();
      T* y = out->data<T>();
      ParallelElements(ctx, n, [&](int64_t begin, int64_t end) {
        if constexpr (std::is_same_v<T, float>) {
          simd::Unary(UnaryOp::kClip, x + begin, y + begin, end - begin, lo, hi);
        } else {
          UnaryScalar<T>(UnaryOp::kClip, x + begin, y + begin, end - begin, lo, hi, 0, 0);
        }
      });
    });
    if (!ok) return ctx.Error("unsupported input type ", DataTypeName(dtype));
    return absl::OkStatus();
  }

 private:
  float attr_min_, attr_max_;
};

absl::StatusOr<std::unique_ptr<Kernel>> MakeClip(const Node& node, const Graph&) {
  const float kInf = std::numeric_limits<float>::infinity();
  return std::make_unique<ClipKernel>(node.GetFloat("min", -kInf), node.GetFloat("max", kInf));
}

// ---------------------------------------------------------------- Not

class NotKernel : public Kernel {
 public:
  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* in, ctx.RequiredInput(0));
    if (in->dtype() != DataType::kBool) {
      return ctx.Error("input must be BOOL, got ", DataTypeName(in->dtype()));
    }
    FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(0, DataType::kBool, in->shape()));
    // Read as bytes: a bool tensor holds 0 or 1 per byte.
    const uint8_t* x = static_cast<const uint8_t*>(in->raw_data());
    uint8_t* y = static_cast<uint8_t*>(out->raw_data());
    ParallelElements(ctx, in->NumElements(), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) y[i] = x[i] == 0 ? 1 : 0;
    });
    return absl::OkStatus();
  }
};

absl::StatusOr<std::unique_ptr<Kernel>> MakeNot(const Node&, const Graph&) {
  return std::make_unique<NotKernel>();
}

// ---------------------------------------------------------------- Sign

class SignKernel : public Kernel {
 public:
  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* in, ctx.RequiredInput(0));
    FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(0, in->dtype(), in->shape()));
    bool ok = VisitNumeric(in->dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* x = in->data<T>();
      T* y = out->data<T>();
      ParallelElements(ctx, in->NumElements(), [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          if constexpr (std::is_floating_point_v<T>) {
            y[i] = x[i] > 0 ? T{1} : (x[i] < 0 ? T{-1} : x[i]);  // keeps 0 and NaN
          } else {
            y[i] = static_cast<T>((x[i] > 0) - (x[i] < 0));
          }
        }
      });
    });
    if (!ok) return ctx.Error("unsupported input type ", DataTypeName(in->dtype()));
    return absl::OkStatus();
  }
};

absl::StatusOr<std::unique_ptr<Kernel>> MakeSign(const Node&, const Graph&) {
  return std::make_unique<SignKernel>();
}

}  // namespace

void RegisterUnaryKernels(KernelRegistry& r) {
  r.Register("", "Neg", MakeUnary<UnaryOp::kNeg>);
  r.Register("", "Abs", MakeUnary<UnaryOp::kAbs>);
  r.Register("", "Sqrt", MakeUnary<UnaryOp::kSqrt>);
  r.Register("", "Exp", MakeUnary<UnaryOp::kExp>);
  r.Register("", "Log", MakeUnary<UnaryOp::kLog>);
  r.Register("", "Erf", MakeUnary<UnaryOp::kErf>);
  r.Register("", "Tanh", MakeUnary<UnaryOp::kTanh>);
  r.Register("", "Sigmoid", MakeUnary<UnaryOp::kSigmoid>);
  r.Register("", "Relu", MakeUnary<UnaryOp::kRelu>);
  r.Register("", "LeakyRelu", MakeUnary<UnaryOp::kLeakyRelu>);
  r.Register("", "Elu", MakeUnary<UnaryOp::kElu>);
  r.Register("", "HardSigmoid", MakeUnary<UnaryOp::kHardSigmoid>);
  r.Register("", "Reciprocal", MakeUnary<UnaryOp::kReciprocal>);
  r.Register("", "Floor", MakeUnary<UnaryOp::kFloor>);
  r.Register("", "Ceil", MakeUnary<UnaryOp::kCeil>);
  r.Register("", "Round", MakeUnary<UnaryOp::kRound>);
  r.Register("", "Softplus", MakeUnary<UnaryOp::kSoftplus>);
  r.Register("", "Sin", MakeUnary<UnaryOp::kSin>);
  r.Register("", "Cos", MakeUnary<UnaryOp::kCos>);
  r.Register("", "Sign", MakeSign);
  r.Register("", "Clip", MakeClip);
  r.Register("", "Not", MakeNot);
  r.Register(kFlywheelDomain, "Gelu", MakeGelu);
  r.Register("", "Gelu", MakeGelu);
}

}  // namespace flywheel::engine
