// Binary elementwise operators with numpy broadcasting: arithmetic (Add, Sub, Mul, Div, Pow, Mod,
// and the variadic Sum, Mean, Max, Min), comparisons (Equal, Less, Greater, LessOrEqual,
// GreaterOrEqual), logic (And, Or, Xor) and Where. float32 arithmetic runs through the SIMD loops
// of simd_math.h.
#include <cmath>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "engine/kernels/broadcast.h"
#include "engine/kernels/elementwise_util.h"
#include "engine/kernels/simd_math.h"

namespace flywheel::engine {
namespace {

enum class Op {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMax,
  kMin,
  kMod,
  kEqual,
  kLess,
  kGreater,
  kLessOrEqual,
  kGreaterOrEqual,
  kAnd,
  kOr,
  kXor,
};

bool IsComparison(Op op) { return op >= Op::kEqual && op <= Op::kGreaterOrEqual; }
bool IsLogic(Op op) { return op >= Op::kAnd; }

// Applies f(a, b) over the broadcast plan for output elements [begin, end).
template <typename A, typename B, typename O, typename F>
void ApplyBinary(const BroadcastPlan& p, const A* a, const B* b, O* o, int64_t begin, int64_t end,
                 F f) {
  const bool sa = p.inner_stride(0) != 0, sb = p.inner_stride(1) != 0;
  ForEachRun(p, begin, end, [&](int64_t out, const int64_t* in, int64_t len) {
    const A* pa = a + in[0];
    const B* pb = b + in[1];
    O* po = o + out;
    if (sa && sb) {
      for (int64_t i = 0; i < len; ++i) po[i] = f(pa[i], pb[i]);
    } else if (sa) {
      const B vb = *pb;
      for (int64_t i = 0; i < len; ++i) po[i] = f(pa[i], vb);
    } else if (sb) {
      const A va = *pa;
      for (int64_t i = 0; i < len; ++i) po[i] = f(va, pb[i]);
    } else {
      const O v = f(*pa, *pb);
      for (int64_t i = 0; i < len; ++i) po[i] = v;
    }
  });
}

// float32 arithmetic through the SIMD loops.
void ApplyFloatSimd(simd::BinaryOp op, const BroadcastPlan& p, const float* a, const float* b,
                    float* o, int64_t begin, int64_t end) {
  const bool sa = p.inner_stride(0) != 0, sb = p.inner_stride(1) != 0;
  ForEachRun(p, begin, end, [&](int64_t out, const int64_t* in, int64_t len) {
    if (sa && sb) {
      simd::Binary(op, a + in[0], b + in[1], o + out, len);
    } else if (sa) {
      simd::BinaryVS(op, a + in[0], b[in[1]], o + out, len);
    } else if (sb) {
      simd::BinarySV(op, a[in[0]], b + in[1], o + out, len);
    } else {
      simd::Binary(op, a + in[0], b + in[1], o + out, 1);
      for (int64_t i = 1; i < len; ++i) o[out + i] = o[out];
    }
  });
}

template <typename T>
T ModOf(T a, T b, bool fmod) {
  if constexpr (std::is_floating_point_v<T>) {
    T r = std::fmod(a, b);
    if (!fmod && r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
  } else {
    if (b == 0) return 0;
    if constexpr (std::is_signed_v<T>) {
      if (b == -1) return 0;
      T r = static_cast<T>(a % b);
      if (!fmod && r != 0 && ((r < 0) != (b < 0))) r = static_cast<T>(r + b);
      return r;
    } else {
      return static_cast<T>(a % b);
    }
  }
}

template <typename T>
void ApplyTyped(Op op, bool fmod, const BroadcastPlan& p, const T* a, const T* b, void* out,
                int64_t begin, int64_t end) {
  T* o = static_cast<T*>(out);
  bool* ob = static_cast<bool*>(out);
  switch (op) {
    case Op::kAdd:
      return ApplyBinary(p, a, b, o, begin, end, [](T x, T y) { return WrapAdd(x, y); });
    case Op::kSub:
      return ApplyBinary(p, a, b, o, begin, end, [](T x, T y) { return WrapSub(x, y); });
    case Op::kMul:
      return ApplyBinary(p, a, b, o, begin, end, [](T x, T y) { return WrapMul(x, y); });
    case Op::kDiv:
      return ApplyBinary(p, a, b, o, begin, end, [](T x, T y) { return SafeDiv(x, y); });
    case Op::kMax:
      return ApplyBinary(p, a, b, o, begin, end, [](T x, T y) {
        if constexpr (std::is_floating_point_v<T>) {
          if (x != x || y != y) return x + y;  // NaN propagates
        }
        return x < y ? y : x;
      });
    case Op::kMin:
      return ApplyBinary(p, a, b, o, begin, end, [](T x, T y) {
        if constexpr (std::is_floating_point_v<T>) {
          if (x != x || y != y) return x + y;
        }
        return y < x ? y : x;
      });
    case Op::kMod:
      return ApplyBinary(p, a, b, o, begin, end, [fmod](T x, T y) { return ModOf(x, y, fmod); });
    case Op::kEqual:
      return ApplyBinary(p, a, b, ob, begin, end, [](T x, T y) { return x == y; });
    case Op::kLess:
      return ApplyBinary(p, a, b, ob, begin, end, [](T x, T y) { return x < y; });
    case Op::kGreater:
      return ApplyBinary(p, a, b, ob, begin, end, [](T x, T y) { return x > y; });
    case Op::kLessOrEqual:
      return ApplyBinary(p, a, b, ob, begin, end, [](T x, T y) { return x <= y; });
    case Op::kGreaterOrEqual:
      return ApplyBinary(p, a, b, ob, begin, end, [](T x, T y) { return x >= y; });
    case Op::kAnd:
      return ApplyBinary(p, a, b, ob, begin, end, [](T x, T y) { return x && y; });
    case Op::kOr:
      return ApplyBinary(p, a, b, ob, begin, end, [](T x, T y) { return x || y; });
    case Op::kXor:
      return ApplyBinary(p, a, b, ob, begin, end, [](T x, T y) { return x != y; });
  }
}

class BinaryKernel : public Kernel {
 public:
  BinaryKernel(Op op, bool fmod) : op_(op), fmod_(fmod) {}

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* a, ctx.RequiredInput(0));
    FW_ASSIGN_OR_RETURN(const Tensor* b, ctx.RequiredInput(1));
    if (a->dtype() != b->dtype()) {
      return ctx.Error("input types ", DataTypeName(a->dtype()), " and ", DataTypeName(b->dtype()),
                       " differ");
    }
    const DataType dtype = a->dtype();
    const bool logic = IsLogic(op_);
    const bool type_ok = logic               ? dtype == DataType::kBool
                         : op_ == Op::kEqual ? VisitNumericOrBool(dtype, [](auto) {})
                                             : VisitNumeric(dtype, [](auto) {});
    if (!type_ok) return ctx.Error("unsupported input type ", DataTypeName(dtype));
    const Shape* shapes[2] = {&a->shape(), &b->shape()};
    FW_ASSIGN_OR_RETURN(Shape out_shape, BroadcastOutputShape(ctx.node(), shapes, 2));
    const DataType out_type = IsComparison(op_) || logic ? DataType::kBool : dtype;
    FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(0, out_type, out_shape));
    if (out->NumElements() == 0) return absl::OkStatus();
    BroadcastPlan plan;
    MakeBroadcastPlan(shapes, 2, out_shape, &plan);
    void* o = out->raw_data();
    if (dtype == DataType::kFp32 && op_ <= Op::kMin) {
      const simd::BinaryOp sop = static_cast<simd::BinaryOp>(static_cast<int>(op_));
      ParallelElements(ctx, plan.total, [&](int64_t begin, int64_t end) {
        ApplyFloatSimd(sop, plan, a->data<float>(), b->data<float>(), static_cast<float*>(o), begin,
                       end);
      });
      return absl::OkStatus();
    }
    VisitNumericOrBool(dtype, [&](auto tag) {
      using T = decltype(tag);
      ParallelElements(ctx, plan.total, [&](int64_t begin, int64_t end) {
        ApplyTyped<T>(op_, fmod_, plan, a->data<T>(), b->data<T>(), o, begin, end);
      });
    });
    return absl::OkStatus();
  }

 private:
  Op op_;
  bool fmod_;
};

template <Op kOp>
absl::StatusOr<std::unique_ptr<Kernel>> MakeBinary(const Node& node, const Graph&) {
  bool fmod = false;
  if constexpr (kOp == Op::kMod) {
    const int64_t f = node.GetInt("fmod", 0);
    if (f != 0 && f != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(node.Describe(), ": attribute fmod must be 0 or 1, got ", f));
    }
    fmod = f == 1;
  }
  return std::make_unique<BinaryKernel>(kOp, fmod);
}

// ---------------------------------------------------------------- Sum, Mean, Max, Min

// Variadic elementwise ops over 1..N broadcast inputs: out = in0 op in1, then out = out op in_k.
class VariadicKernel : public Kernel {
 public:
  VariadicKernel(Op op, bool mean) : op_(op), mean_(mean) {}

  absl::Status Run(KernelContext& ctx) const override {
    const int n = ctx.num_inputs();
    FW_ASSIGN_OR_RETURN(const Tensor* first, ctx.RequiredInput(0));
    const DataType dtype = first->dtype();
    if (!VisitNumeric(dtype, [](auto) {}) || (mean_ && !IsFloatingPoint(dtype))) {
      return ctx.Error("unsupported input type ", DataTypeName(dtype));
    }
    Shape out_shape = first->shape();
    for (int k = 1; k < n; ++k) {
      FW_ASSIGN_OR_RETURN(const Tensor* in, ctx.RequiredInput(k));
      if (in->dtype() != dtype) {
        return ctx.Error("input types ", DataTypeName(dtype), " and ", DataTypeName(in->dtype()),
                         " differ");
      }
      const Shape* shapes[2] = {&out_shape, &in->shape()};
      FW_ASSIGN_OR_RETURN(out_shape, BroadcastOutputShape(ctx.node(), shapes, 2));
    }
    FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(0, dtype, out_shape));
    if (out->NumElements() == 0) return absl::OkStatus();
    const Tensor* a = first;
    for (int k = 1; k < n || k == 1; ++k) {
      // With one input, combine it with itself under Max/Min (a no-op) or copy it for Sum/Mean.
      const Tensor* b = n == 1 ? first : ctx.input(k);
      const Op op = n == 1 ? Op::kMax : op_;
      const Shape* shapes[2] = {&a->shape(), &b->shape()};
      BroadcastPlan plan;
      MakeBroadcastPlan(shapes, 2, out_shape, &plan);
      const void* pa = a->raw_data();
      if (dtype == DataType::kFp32) {
        const simd::BinaryOp sop = static_cast<simd::BinaryOp>(static_cast<int>(op));
        ParallelElements(ctx, plan.total, [&](int64_t begin, int64_t end) {
          ApplyFloatSimd(sop, plan, static_cast<const float*>(pa), b->data<float>(),
                         out->data<float>(), begin, end);
        });
      } else {
        VisitNumeric(dtype, [&](auto tag) {
          using T = decltype(tag);
          ParallelElements(ctx, plan.total, [&](int64_t begin, int64_t end) {
            ApplyTyped<T>(op, false, plan, static_cast<const T*>(pa), b->data<T>(), out->raw_data(),
                          begin, end);
          });
        });
      }
      a = out;  // later inputs accumulate in place
    }
    if (mean_ && n > 1) {
      const int64_t total = out->NumElements();
      if (dtype == DataType::kFp32) {
        float* y = out->data<float>();
        ParallelElements(ctx, total, [&](int64_t begin, int64_t end) {
          simd::BinaryVS(simd::BinaryOp::kMul, y + begin, 1.0f / n, y + begin, end - begin);
        });
      } else {
        double* y = out->data<double>();
        for (int64_t i = 0; i < total; ++i) y[i] /= n;
      }
    }
    return absl::OkStatus();
  }

 private:
  Op op_;
  bool mean_;
};

template <Op kOp, bool kMean>
absl::StatusOr<std::unique_ptr<Kernel>> MakeVariadic(const Node& node, const Graph&) {
  if (node.inputs.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": needs at least one input"));
  }
  return std::make_unique<VariadicKernel>(kOp, kMean);
}

// ---------------------------------------------------------------- Pow

template <typename T, typename E>
T PowOf(T x, E e) {
  if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(std::pow(x, static_cast<T>(e)));
  } else if constexpr (std::is_integral_v<E>) {
    // Exact integer power by squaring, wrapping on overflow.
    if (e < 0) return x == 1 ? 1 : (x == -1 ? ((e % 2) ? T(-1) : T(1)) : 0);
    T r = 1, base = x;
    for (E k = e; k > 0; k >>= 1) {
      if (k & 1) r = WrapMul(r, base);
      base = WrapMul(base, base);
    }
    return r;
  } else {
    return SaturatingCast<T>(std::pow(static_cast<double>(x), static_cast<double>(e)));
  }
}

class PowKernel : public Kernel {
 public:
  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* a, ctx.RequiredInput(0));
    FW_ASSIGN_OR_RETURN(const Tensor* b, ctx.RequiredInput(1));
    const Shape* shapes[2] = {&a->shape(), &b->shape()};
    FW_ASSIGN_OR_RETURN(Shape out_shape, BroadcastOutputShape(ctx.node(), shapes, 2));
    const bool base_ok = a->dtype() == DataType::kFp32 || a->dtype() == DataType::kFp64 ||
                         a->dtype() == DataType::kInt32 || a->dtype() == DataType::kInt64;
    const bool exp_ok = b->dtype() == DataType::kFp32 || b->dtype() == DataType::kFp64 ||
                        b->dtype() == DataType::kInt32 || b->dtype() == DataType::kInt64;
    if (!base_ok || !exp_ok) {
      return ctx.Error("unsupported input types ", DataTypeName(a->dtype()), " and ",
                       DataTypeName(b->dtype()));
    }
    FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(0, a->dtype(), out_shape));
    const int64_t n = out->NumElements();
    if (n == 0) return absl::OkStatus();
    // float base with one exponent value: the common x^2 and x^0.5 run as SIMD loops.
    if (a->dtype() == DataType::kFp32 && b->NumElements() == 1 && out_shape == a->shape()) {
      double e = 0;
      VisitNumeric(b->dtype(),
                   [&](auto tag) { e = static_cast<double>(b->data<decltype(tag)>()[0]); });
      simd::UnaryOp op = simd::UnaryOp::kIdentity;
      bool fast = true;
      if (e == 2) {
        op = simd::UnaryOp::kSquare;
      } else if (e == 0.5) {
        op = simd::UnaryOp::kSqrt;
      } else if (e == 1) {
        op = simd::UnaryOp::kIdentity;
      } else if (e == -1) {
        op = simd::UnaryOp::kReciprocal;
      } else {
        fast = false;
      }
      const bool cube = e == 3;  // x * x * x, in tanh-approximated GELU subgraphs
      if (fast || cube) {
        const float* x = a->data<float>();
        float* y = out->data<float>();
        ParallelElements(ctx, n, [&](int64_t begin, int64_t end) {
          if (cube) {
            simd::Unary(simd::UnaryOp::kSquare, x + begin, y + begin, end - begin);
            simd::Binary(simd::BinaryOp::kMul, y + begin, x + begin, y + begin, end - begin);
          } else {
            simd::Unary(op, x + begin, y + begin, end - begin);
          }
        });
        return absl::OkStatus();
      }
    }
    BroadcastPlan plan;
    MakeBroadcastPlan(shapes, 2, out_shape, &plan);
    VisitNumeric(a->dtype(), [&](auto base_tag) {
      using T = decltype(base_tag);
      VisitNumeric(b->dtype(), [&](auto exp_tag) {
        using E = decltype(exp_tag);
        if constexpr ((std::is_same_v<T, float> || std::is_same_v<T, double> ||
                       std::is_same_v<T, int32_t> ||
                       std::is_same_v<T, int64_t>)&&(std::is_same_v<E, float> ||
                                                     std::is_same_v<E, double> ||
                                                     std::is_same_v<E, int32_t> ||
                                                     std::is_same_v<E, int64_t>)) {
          ParallelElements(ctx, n, [&](int64_t begin, int64_t end) {
            ApplyBinary(plan, a->data<T>(), b->data<E>(), out->data<T>(), begin, end,
                        [](T x, E e) { return PowOf<T, E>(x, e); });
          });
        }
      });
    });
    return absl::OkStatus();
  }
};

absl::StatusOr<std::unique_ptr<Kernel>> MakePow(const Node&, const Graph&) {
  return std::make_unique<PowKernel>();
}

// ---------------------------------------------------------------- Where

template <typename T>
void ApplyWhere(const BroadcastPlan& p, const bool* c, const T* x, const T* y, T* o, int64_t begin,
                int64_t end) {
  const int64_t sc = p.inner_stride(0), sx = p.inner_stride(1), sy = p.inner_stride(2);
  ForEachRun(p, begin, end, [&](int64_t out, const int64_t* in, int64_t len) {
    const bool* pc = c + in[0];
    const T* px = x + in[1];
    const T* py = y + in[2];
    T* po = o + out;
    if (sc && sx && sy) {
      for (int64_t i = 0; i < len; ++i) po[i] = pc[i] ? px[i] : py[i];
    } else {
      for (int64_t i = 0; i < len; ++i) po[i] = pc[i * sc] ? px[i * sx] : py[i * sy];
    }
  });
}

class WhereKernel : public Kernel {
 public:
  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* c, ctx.RequiredInput(0));
    FW_ASSIGN_OR_RETURN(const Tensor* x, ctx.RequiredInput(1));
    FW_ASSIGN_OR_RETURN(const Tensor* y, ctx.RequiredInput(2));
    if (c->dtype() != DataType::kBool) {
      return ctx.Error("condition must be BOOL, got ", DataTypeName(c->dtype()));
    }
    if (x->dtype() != y->dtype()) {
      return ctx.Error("input types ", DataTypeName(x->dtype()), " and ", DataTypeName(y->dtype()),
                       " differ");
    }
    const size_t size = DataTypeSize(x->dtype());
    if (size == 0) return ctx.Error("unsupported input type ", DataTypeName(x->dtype()));
    const Shape* shapes[3] = {&c->shape(), &x->shape(), &y->shape()};
    FW_ASSIGN_OR_RETURN(Shape out_shape, BroadcastOutputShape(ctx.node(), shapes, 3));
    FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(0, x->dtype(), out_shape));
    if (out->NumElements() == 0) return absl::OkStatus();
    BroadcastPlan plan;
    MakeBroadcastPlan(shapes, 3, out_shape, &plan);
    // Only the element size matters for a select.
    auto run = [&](auto tag) {
      using T = decltype(tag);
      ParallelElements(ctx, plan.total, [&](int64_t begin, int64_t end) {
        ApplyWhere(plan, c->data<bool>(), static_cast<const T*>(x->raw_data()),
                   static_cast<const T*>(y->raw_data()), static_cast<T*>(out->raw_data()), begin,
                   end);
      });
    };
    switch (size) {
      case 1:
        run(uint8_t{});
        break;
      case 2:
        run(uint16_t{});
        break;
      case 4:
        run(uint32_t{});
        break;
      case 8:
        run(uint64_t{});
        break;
      default:
        return ctx.Error("unsupported input type ", DataTypeName(x->dtype()));
    }
    return absl::OkStatus();
  }
};

absl::StatusOr<std::unique_ptr<Kernel>> MakeWhere(const Node&, const Graph&) {
  return std::make_unique<WhereKernel>();
}

}  // namespace

void RegisterBinaryKernels(KernelRegistry& r) {
  r.Register("", "Add", MakeBinary<Op::kAdd>);
  r.Register("", "Sub", MakeBinary<Op::kSub>);
  r.Register("", "Mul", MakeBinary<Op::kMul>);
  r.Register("", "Div", MakeBinary<Op::kDiv>);
  r.Register("", "Mod", MakeBinary<Op::kMod>);
  r.Register("", "Equal", MakeBinary<Op::kEqual>);
  r.Register("", "Less", MakeBinary<Op::kLess>);
  r.Register("", "Greater", MakeBinary<Op::kGreater>);
  r.Register("", "LessOrEqual", MakeBinary<Op::kLessOrEqual>);
  r.Register("", "GreaterOrEqual", MakeBinary<Op::kGreaterOrEqual>);
  r.Register("", "And", MakeBinary<Op::kAnd>);
  r.Register("", "Or", MakeBinary<Op::kOr>);
  r.Register("", "Xor", MakeBinary<Op::kXor>);
  r.Register("", "Pow", MakePow);
  r.Register("", "Sum", MakeVariadic<Op::kAdd, false>);
  r.Register("", "Mean", MakeVariadic<Op::kAdd, true>);
  r.Register("", "Max", MakeVariadic<Op::kMax, false>);
  r.Register("", "Min", MakeVariadic<Op::kMin, false>);
  r.Register("", "Where", MakeWhere);
}

}  // namespace flywheel::engine
