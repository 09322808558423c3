// ReduceSum, ReduceMean, ReduceMax and ReduceMin. Axes come from the attribute (ReduceSum before
// opset 13, the others before 18) or from input 1. Adjacent axes are merged first, so most
// reductions become rows ([K, R]: reduce the contiguous last axis) or columns ([K1, R, K2]).
// Float sums add blocks of float partials into a double total, which keeps them well within
// 1e-4 relative at float speed.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "engine/kernels/tensor_ops.h"

namespace flywheel::engine {
namespace {

enum class ReduceOp { kSum, kMean, kMax, kMin };

constexpr int64_t kGrainElements = 32 * 1024;
constexpr int64_t kRowBlock = 4096;  // elements summed in float before going into the total
constexpr int64_t kColBlock = 256;   // columns reduced together in the column case
constexpr int64_t kColRows = 64;     // rows summed in float before going into the total
constexpr int kMaxReduceRank = 64;

// The unsigned type of an integer's width (integer sums wrap without undefined behaviour); other
// types unchanged.
template <typename T, bool = std::is_integral_v<T>>
struct WrapType {
  using type = T;
};
template <typename T>
struct WrapType<T, true> {
  using type = std::make_unsigned_t<T>;
};

template <typename T, ReduceOp op>
struct Reducer {
  static constexpr bool kIsSum = op == ReduceOp::kSum || op == ReduceOp::kMean;
  // Sums: float/double add into double; integers into the unsigned type of their width (defined
  // wrap-around). Max/Min: the type itself.
  using Partial = std::conditional_t<kIsSum, typename WrapType<T>::type, T>;
  using Acc = std::conditional_t<kIsSum && std::is_floating_point_v<T>, double, Partial>;

  static Acc Identity() {
    if constexpr (kIsSum) {
      return Acc(0);
    } else if constexpr (op == ReduceOp::kMax) {
      return std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity()
                                                  : std::numeric_limits<T>::lowest();
    } else {
      return std::numeric_limits<T>::has_infinity ? std::numeric_limits<T>::infinity()
                                                  : std::numeric_limits<T>::max();
    }
  }
  template <typename A, typename B>
  static A Combine(A a, B b) {
    if constexpr (kIsSum) {
      return static_cast<A>(a + static_cast<A>(b));
    } else if constexpr (op == ReduceOp::kMax) {
      return b > a ? static_cast<A>(b) : a;
    } else {
      return b < a ? static_cast<A>(b) : a;
    }
  }
  static T Finalize(Acc a, int64_t count) {
    if constexpr (op == ReduceOp::kMean) {
      if constexpr (std::is_floating_point_v<T>) {
        return static_cast<T>(a / static_cast<double>(count));
      } else {
        return count == 0 ? T(0) : static_cast<T>(static_cast<T>(a) / static_cast<T>(count));
      }
    } else {
      return static_cast<T>(a);
    }
  }

  // Reduces p[0, n) contiguous.
  static Acc Row(const T* p, int64_t n) {
    Acc total = Identity();
    for (int64_t b = 0; b < n; b += kRowBlock) {
      const int64_t e = std::min(n, b + kRowBlock);
      // Eight independent lanes: the compiler can vectorise them and they shorten the chains.
      Partial lane[8];
      for (Partial& l : lane) l = static_cast<Partial>(Identity());
      int64_t i = b;
      for (; i + 8 <= e; i += 8) {
        for (int j = 0; j < 8; ++j) lane[j] = Combine(lane[j], p[i + j]);
      }
      for (; i < e; ++i) lane[0] = Combine(lane[0], p[i]);
      Partial block = Combine(Combine(Combine(lane[0], lane[1]), Combine(lane[2], lane[3])),
                              Combine(Combine(lane[4], lane[5]), Combine(lane[6], lane[7])));
      total = Combine(total, block);
    }
    return total;
  }
};

class ReduceKernel : public Kernel {
 public:
  ReduceKernel(const Node& node, ReduceOp op)
      : op_(op),
        axes_(node, "axes", 1),
        keepdims_(node.GetInt("keepdims", 1) != 0),
        noop_with_empty_axes_(node.GetInt("noop_with_empty_axes", 0) != 0) {}

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* x, ctx.RequiredInput(0));
    const int rank = x->rank();
    if (rank > kMaxReduceRank)
      return ctx.Error("rank ", rank, " is above the supported ", kMaxReduceRank);
    FW_ASSIGN_OR_RETURN(IntList axes, axes_.Get(ctx, "axes"));
    uint64_t mask = 0;
    if (axes.empty()) {
      if (noop_with_empty_axes_) return ctx.ForwardInput(0, 0, x->shape());
      mask = rank == 64 ? ~uint64_t{0} : (uint64_t{1} << rank) - 1;
    }
    for (int64_t a : axes) {
      FW_ASSIGN_OR_RETURN(int axis, NormalizeAxis(a, rank, ctx.node()));
      mask |= uint64_t{1} << axis;
    }
    Shape out_shape;
    int64_t count = 1;
    // Merged groups of adjacent axes of one kind; axes of size 1 are left out.
    int64_t group_size[kMaxReduceRank];
    bool group_reduced[kMaxReduceRank];
    int groups = 0, reduced_groups = 0;
    for (int k = 0; k < rank; ++k) {
      const bool reduced = (mask >> k) & 1;
      const int64_t d = x->dim(k);
      if (reduced) {
        count *= d;
        if (keepdims_) out_shape.push_back(1);
      } else {
        out_shape.push_back(d);
      }
      if (d == 1) continue;
      if (groups > 0 && group_reduced[groups - 1] == reduced) {
        group_size[groups - 1] *= d;
      } else {
        group_size[groups] = d;
        group_reduced[groups] = reduced;
        reduced_groups += reduced;
        ++groups;
      }
    }
    absl::Status status;
    bool known = DispatchNumeric(x->dtype(), [&](auto tag) {
      using T = decltype(tag);
      switch (op_) {
        case ReduceOp::kSum:
          status = Compute<T, ReduceOp::kSum>(ctx, *x, out_shape, count, group_size, group_reduced,
                                              groups, reduced_groups, mask);
          break;
        case ReduceOp::kMean:
          status = Compute<T, ReduceOp::kMean>(ctx, *x, out_shape, count, group_size, group_reduced,
                                               groups, reduced_groups, mask);
          break;
        case ReduceOp::kMax:
          status = Compute<T, ReduceOp::kMax>(ctx, *x, out_shape, count, group_size, group_reduced,
                                              groups, reduced_groups, mask);
          break;
        case ReduceOp::kMin:
          status = Compute<T, ReduceOp::kMin>(ctx, *x, out_shape, count, group_size, group_reduced,
                                              groups, reduced_groups, mask);
          break;
      }
    });
    if (!known) return ctx.Error("type ", DataTypeName(x->dtype()), " is not supported");
    return status;
  }

 private:
  template <typename T, ReduceOp op>
  static absl::Status Compute(KernelContext& ctx, const Tensor& x, const Shape& out_shape,
                              int64_t count, const int64_t* group_size, const bool* group_reduced,
                              int groups, int reduced_groups, uint64_t mask) {
    using R = Reducer<T, op>;
    using Acc = typename R::Acc;
    FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(0, x.dtype(), out_shape));
    const int64_t n_out = out->NumElements();
    if (n_out == 0) return absl::OkStatus();
    const T* src = x.data<T>();
    T* dst = out->data<T>();
    if (x.NumElements() == 0) {
      // Reducing an empty set: the identity (Sum 0, Mean NaN or 0, Max -inf or lowest).
      std::fill(dst, dst + n_out, R::Finalize(R::Identity(), 0));
      return absl::OkStatus();
    }
    if (reduced_groups == 0) {
      std::memcpy(dst, src, static_cast<size_t>(n_out) * sizeof(T));
      if constexpr (op == ReduceOp::kMean) {
        for (int64_t i = 0; i < n_out; ++i) dst[i] = R::Finalize(static_cast<Acc>(src[i]), 1);
      }
      return absl::OkStatus();
    }
    if (reduced_groups == 1 && group_reduced[groups - 1]) {
      // Rows: [K, R] with R contiguous.
      const int64_t len = group_size[groups - 1];
      const int64_t rows = n_out;
      if (rows == 1 && len >= 8 * kGrainElements && ctx.num_threads() > 1) {
        // One long row: partial results per chunk, combined in order.
        const int64_t chunks = std::min<int64_t>(4 * ctx.num_threads(), len / kGrainElements);
        Acc* partial = static_cast<Acc*>(ctx.Scratch(chunks * sizeof(Acc)));
        ctx.pool().ParallelFor(chunks, 1, [&](int64_t b, int64_t e) {
          for (int64_t c = b; c < e; ++c) {
            const int64_t lo = c * len / chunks, hi = (c + 1) * len / chunks;
            partial[c] = R::Row(src + lo, hi - lo);
          }
        });
        Acc total = R::Identity();
        for (int64_t c = 0; c < chunks; ++c) total = R::Combine(total, partial[c]);
        dst[0] = R::Finalize(total, count);
        return absl::OkStatus();
      }
      ctx.pool().ParallelFor(rows, std::max<int64_t>(1, kGrainElements / len),
                             [&](int64_t b, int64_t e) {
                               for (int64_t r = b; r < e; ++r) {
                                 dst[r] = R::Finalize(R::Row(src + r * len, len), count);
                               }
                             });
      return absl::OkStatus();
    }
    if (reduced_groups == 1) {
      // Columns: [K1, R, K2] with K2 contiguous.
      int g = 0;
      while (!group_reduced[g]) ++g;
      const int64_t outer = g > 0 ? group_size[0] : 1;
      const int64_t r = group_size[g];
      const int64_t inner = group_size[groups - 1];
      const int64_t blocks = (inner + kColBlock - 1) / kColBlock;
      ctx.pool().ParallelFor(outer * blocks, std::max<int64_t>(1, kGrainElements / (r * kColBlock)),
                             [&](int64_t b, int64_t e) {
                               Acc total[kColBlock];
                               typename R::Partial part[kColBlock];
                               for (int64_t u = b; u < e; ++u) {
                                 const int64_t o = u / blocks, i0 = (u % blocks) * kColBlock;
                                 const int64_t m = std::min(kColBlock, inner - i0);
                                 const T* base = src + o * r * inner + i0;
                                 for (int64_t i = 0; i < m; ++i) total[i] = R::Identity();
                                 for (int64_t j0 = 0; j0 < r; j0 += kColRows) {
                                   const int64_t j1 = std::min(r, j0 + kColRows);
                                   for (int64_t i = 0; i < m; ++i)
                                     part[i] = static_cast<typename R::Partial>(R::Identity());
                                   for (int64_t j = j0; j < j1; ++j) {
                                     const T* row = base + j * inner;
                                     for (int64_t i = 0; i < m; ++i)
                                       part[i] = R::Combine(part[i], row[i]);
                                   }
                                   for (int64_t i = 0; i < m; ++i)
                                     total[i] = R::Combine(total[i], part[i]);
                                 }
                                 T* d = dst + o * inner + i0;
                                 for (int64_t i = 0; i < m; ++i)
                                   d[i] = R::Finalize(total[i], count);
                               }
                             });
      return absl::OkStatus();
    }
    // Several separate reduced groups: walk the input in order, accumulating into a scratch
    // copy of the output (single-threaded; rare in real models).
    Acc* acc = static_cast<Acc*>(ctx.Scratch(static_cast<size_t>(n_out) * sizeof(Acc)));
    std::fill(acc, acc + n_out, R::Identity());
    int64_t dims[kMaxReduceRank], ostride[kMaxReduceRank], idx[kMaxReduceRank] = {};
    int64_t s = 1;
    for (int k = groups - 1; k >= 0; --k) {
      dims[k] = group_size[k];
      ostride[k] = group_reduced[k] ? 0 : s;
      if (!group_reduced[k]) s *= group_size[k];
    }
    (void)mask;
    const int64_t total = x.NumElements();
    const int64_t last_len = dims[groups - 1], last_stride = ostride[groups - 1];
    int64_t o = 0;
    for (int64_t p = 0; p < total; p += last_len) {
      for (int64_t j = 0; j < last_len; ++j) {
        acc[o + j * last_stride] = R::Combine(acc[o + j * last_stride], src[p + j]);
      }
      for (int k = groups - 2; k >= 0; --k) {
        ++idx[k];
        o += ostride[k];
        if (idx[k] < dims[k]) break;
        o -= idx[k] * ostride[k];
        idx[k] = 0;
      }
    }
    for (int64_t i = 0; i < n_out; ++i) dst[i] = R::Finalize(acc[i], count);
    return absl::OkStatus();
  }

  ReduceOp op_;
  IntsAttrOrInput axes_;
  bool keepdims_;
  bool noop_with_empty_axes_;
};

template <ReduceOp op>
absl::StatusOr<std::unique_ptr<Kernel>> MakeReduce(const Node& node, const Graph&) {
  return std::unique_ptr<Kernel>(new ReduceKernel(node, op));
}

}  // namespace

void RegisterReduceKernels(KernelRegistry& registry) {
  registry.Register("", "ReduceSum", &MakeReduce<ReduceOp::kSum>);
  registry.Register("", "ReduceMean", &MakeReduce<ReduceOp::kMean>);
  registry.Register("", "ReduceMax", &MakeReduce<ReduceOp::kMax>);
  registry.Register("", "ReduceMin", &MakeReduce<ReduceOp::kMin>);
}

}  // namespace flywheel::engine
