// MatMul (numpy semantics: N-D batch broadcasting, 1-D operands) and the fused com.flywheel
// FusedMatMul (A @ B + bias, then an activation), both on the shared GEMM. A constant 2-D B is
// packed once at load and only the packed copy is kept.
#include <algorithm>
#include <memory>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "engine/kernels/activation.h"
#include "engine/kernels/gemm.h"
#include "engine/kernels/kernel_util.h"
#include "engine/kernels/registry.h"

namespace flywheel::engine {
namespace {

// Below this many multiply-adds per thread, a parallel loop over batches is not worth it.
constexpr int64_t kMinBatchFmasPerThread = 64 * 1024;

// Matrix offset of batch t in an operand with batch strides `st` (0 where it broadcasts).
inline int64_t BatchOffset(int64_t t, const IntList& batch, const IntList& st) {
  int64_t off = 0;
  for (int i = static_cast<int>(batch.size()) - 1; i >= 0; --i) {
    off += (t % batch[i]) * st[i];
    t /= batch[i];
  }
  return off;
}

// Integer and double MatMul (rare: shape arithmetic, tests): plain loops, wrapping on overflow
// for integers like numpy.
template <typename T>
void NaiveBatches(const Tensor& a, const Tensor& b, Tensor* y, int64_t m, int64_t n, int64_t k,
                  const IntList& batch, const IntList& sa, const IntList& sb) {
  using U = typename std::conditional_t<std::is_integral_v<T>, std::make_unsigned<T>,
                                        std::type_identity<T>>::type;
  int64_t batches = 1;
  for (int64_t d : batch) batches *= d;
  const T* ad = a.data<T>();
  const T* bd = b.data<T>();
  T* yd = y->data<T>();
  for (int64_t t = 0; t < batches; ++t) {
    const T* am = ad + BatchOffset(t, batch, sa) * m * k;
    const T* bm = bd + BatchOffset(t, batch, sb) * k * n;
    T* ym = yd + t * m * n;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        U acc = 0;
        for (int64_t p = 0; p < k; ++p) {
          acc = static_cast<U>(acc + static_cast<U>(am[i * k + p]) * static_cast<U>(bm[p * n + j]));
        }
        ym[i * n + j] = static_cast<T>(acc);
      }
    }
  }
}

class MatMulKernel : public Kernel {
 public:
  static absl::StatusOr<std::unique_ptr<Kernel>> Create(const Node& node, const Graph& graph,
                                                        bool fused) {
    std::unique_ptr<MatMulKernel> k(new MatMulKernel());
    k->fused_ = fused;
    if (node.input(0) < 0 || node.input(1) < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(node.Describe(), ": inputs A and B are required"));
    }
    if (fused) {
      FW_ASSIGN_OR_RETURN(k->epilogue_.act, ActivationFromNode(node));
      k->has_bias_ = node.input(2) >= 0;
    } else if (node.input(2) >= 0) {
      return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": MatMul takes 2 inputs"));
    }
    if (const Tensor* b = graph.ConstantOf(node.input(1))) {
      if (b->dtype() != DataType::kFp32 && fused) {
        return absl::InvalidArgumentError(
            absl::StrCat(node.Describe(), ": B must be FP32, got ", b->DebugString()));
      }
      if (b->dtype() == DataType::kFp32 && (b->rank() == 1 || b->rank() == 2)) {
        const int64_t kk = b->dim(0), n = b->rank() == 2 ? b->dim(1) : 1;
        k->packed_ = PackB(false, kk, n, b->data<float>(), n);
        k->b_rank_ = b->rank();
      }
    }
    if (fused && k->packed_.empty() && node.input(1) >= 0) {
      const Value& bv = graph.values[node.input(1)];
      if (bv.shape && bv.shape->rank() != 2) {
        return absl::InvalidArgumentError(absl::StrCat(
            node.Describe(), ": FusedMatMul needs a 2-D B, got ", bv.shape->ToString()));
      }
    }
    return std::unique_ptr<Kernel>(std::move(k));
  }

  bool ReadsConstantInput(int i) const override { return !(i == 1 && !packed_.empty()); }

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* a, ctx.RequiredInput(0));
    if (a->rank() < 1) return ctx.Error("A must have rank >= 1, got a scalar");
    if (a->dtype() != DataType::kFp32) {
      const DataType t = a->dtype();
      if (fused_ || (t != DataType::kFp64 && t != DataType::kInt32 && t != DataType::kInt64 &&
                     t != DataType::kUint32 && t != DataType::kUint64)) {
        return ctx.Error("unsupported element type ", a->DebugString());
      }
      FW_ASSIGN_OR_RETURN(const Tensor* b, ctx.RequiredInput(1));
      if (b->dtype() != t || b->rank() < 1) {
        return ctx.Error("B must be a ", DataTypeName(t), " tensor of rank >= 1 like A, got ",
                         b->DebugString());
      }
      return RunGeneral(ctx, *a, *b, nullptr, 0);
    }
    const float* bias = nullptr;
    int64_t bias_len = 0;
    if (has_bias_) {
      FW_ASSIGN_OR_RETURN(const Tensor* bt, ctx.RequiredInput(2));
      if (bt->dtype() != DataType::kFp32) {
        return ctx.Error("bias must be FP32, got ", bt->DebugString());
      }
      bias = bt->data<float>();
      bias_len = bt->NumElements();  // checked against N below
    }
    if (!packed_.empty()) return RunPacked(ctx, *a, bias, bias_len);
    FW_ASSIGN_OR_RETURN(const Tensor* b, ctx.RequiredInput(1));
    if (b->dtype() != DataType::kFp32) return ctx.Error("B must be FP32, got ", b->DebugString());
    if (b->rank() < 1) return ctx.Error("B must have rank >= 1, got a scalar");
    if (fused_ && b->rank() != 2) return ctx.Error("B must be 2-D, got ", b->shape().ToString());
    return RunGeneral(ctx, *a, *b, bias, bias_len);
  }

 private:
  MatMulKernel() = default;

  absl::Status CheckBias(KernelContext& ctx, int64_t n, int64_t bias_len) const {
    if (has_bias_ && bias_len != n) {
      return ctx.Error("bias must have N = ", n, " elements, got ", bias_len);
    }
    return absl::OkStatus();
  }

  // A [..., M, K] (or [K]) times the packed 2-D (or 1-D) B: one GEMM over all rows of A.
  absl::Status RunPacked(KernelContext& ctx, const Tensor& a, const float* bias,
                         int64_t bias_len) const {
    const int64_t k = packed_.k, n = packed_.n;
    const Shape& as = a.shape();
    if (as[as.rank() - 1] != k) {
      return ctx.Error("A ", as.ToString(), " and B [", k, b_rank_ == 2 ? absl::StrCat(",", n) : "",
                       "] have mismatched inner dimensions");
    }
    FW_RETURN_IF_ERROR(CheckBias(ctx, n, bias_len));
    Shape out;
    for (int i = 0; i + 1 < as.rank(); ++i) out.push_back(as[i]);
    if (b_rank_ == 2) out.push_back(n);
    FW_ASSIGN_OR_RETURN(Tensor * y, ctx.AllocateOutput(0, DataType::kFp32, out));
    const int64_t m = as.Product(0, as.rank() - 1);
    GemmEpilogue epi = epilogue_;
    epi.bias = bias;
    SgemmPacked(false, m, 1.0f, a.data<float>(), k, packed_, 0.0f, y->data<float>(), n, epi,
                &ctx.pool());
    return absl::OkStatus();
  }

  absl::Status RunGeneral(KernelContext& ctx, const Tensor& a, const Tensor& b, const float* bias,
                          int64_t bias_len) const {
    const Shape& as = a.shape();
    const Shape& bs = b.shape();
    const bool a_vec = as.rank() == 1, b_vec = bs.rank() == 1;
    const int64_t m = a_vec ? 1 : as[as.rank() - 2];
    const int64_t k = as[as.rank() - 1];
    const int64_t kb = b_vec ? bs[0] : bs[bs.rank() - 2];
    const int64_t n = b_vec ? 1 : bs[bs.rank() - 1];
    if (k != kb) {
      return ctx.Error("A ", as.ToString(), " and B ", bs.ToString(),
                       " have mismatched inner dimensions");
    }
    FW_RETURN_IF_ERROR(CheckBias(ctx, n, bias_len));
    // Batch dims, right-aligned and broadcast.
    const int ab = std::max(0, as.rank() - 2), bb = std::max(0, bs.rank() - 2);
    const int nb = std::max(ab, bb);
    IntList batch(nb), sa(nb), sb(nb);  // output batch dims; A/B batch strides in matrices
    int64_t stride_a = 1, stride_b = 1;
    for (int i = nb - 1; i >= 0; --i) {
      const int ia = i - (nb - ab), ib = i - (nb - bb);
      const int64_t da = ia >= 0 ? as[ia] : 1, db = ib >= 0 ? bs[ib] : 1;
      if (da != db && da != 1 && db != 1) {
        return ctx.Error("A ", as.ToString(), " and B ", bs.ToString(),
                         " have batch dimensions that do not broadcast");
      }
      batch[i] = std::max(da, db);
      if (da == 0 || db == 0) batch[i] = 0;
      sa[i] = da == 1 ? 0 : stride_a;
      sb[i] = db == 1 ? 0 : stride_b;
      stride_a *= da;
      stride_b *= db;
    }
    Shape out;
    int64_t batches = 1;
    for (int i = 0; i < nb; ++i) {
      out.push_back(batch[i]);
      batches *= batch[i];
    }
    if (!a_vec) out.push_back(m);
    if (!b_vec) out.push_back(n);
    FW_ASSIGN_OR_RETURN(Tensor * y, ctx.AllocateOutput(0, a.dtype(), out));
    if (batches == 0 || m == 0 || n == 0) return absl::OkStatus();
    if (a.dtype() != DataType::kFp32) {
      switch (a.dtype()) {
        case DataType::kFp64:
          NaiveBatches<double>(a, b, y, m, n, k, batch, sa, sb);
          break;
        case DataType::kInt32:
          NaiveBatches<int32_t>(a, b, y, m, n, k, batch, sa, sb);
          break;
        case DataType::kInt64:
          NaiveBatches<int64_t>(a, b, y, m, n, k, batch, sa, sb);
          break;
        case DataType::kUint32:
          NaiveBatches<uint32_t>(a, b, y, m, n, k, batch, sa, sb);
          break;
        default:
          NaiveBatches<uint64_t>(a, b, y, m, n, k, batch, sa, sb);
          break;
      }
      return absl::OkStatus();
    }
    GemmEpilogue epi = epilogue_;
    epi.bias = bias;
    const float* ad = a.data<float>();
    const float* bd = b.data<float>();
    float* yd = y->data<float>();
    const int64_t pack_floats = std::max<int64_t>(PackedBSize(k, n), 1);
    bool b_shared = true;  // every batch uses the same B matrix
    for (int i = 0; i < nb; ++i) b_shared = b_shared && (sb[i] == 0 || batch[i] == 1);
    bool a_flat = true;  // A's batches are laid out densely in output order
    for (int i = 0; i < nb; ++i) a_flat = a_flat && (sa[i] != 0 || batch[i] == 1);
    if (b_shared && a_flat) {
      // One GEMM over every row of A.
      float* packed = static_cast<float*>(ctx.Scratch(pack_floats * sizeof(float)));
      PackBInto(false, k, n, bd, n, packed);
      SgemmPanels(false, batches * m, n, k, 1.0f, ad, k, packed, 0.0f, yd, n, epi, &ctx.pool());
      return absl::OkStatus();
    }
    // Element offsets of batch t in A and B.
    auto offsets = [&](int64_t t, int64_t* oa, int64_t* ob) {
      *oa = BatchOffset(t, batch, sa) * m * k;
      *ob = BatchOffset(t, batch, sb) * k * n;
    };
    const int64_t per_batch = m * n * std::max<int64_t>(k, 1);
    const int threads = ctx.num_threads();
    const int64_t slots = std::clamp<int64_t>(
        std::min<int64_t>(batches * per_batch / kMinBatchFmasPerThread, batches), 1, threads);
    // Few big batches: one after the other, each GEMM parallel inside. Many small ones: batches
    // in parallel, each GEMM single-threaded with its own packing buffer.
    const bool inner_parallel = slots == 1 || per_batch >= kMinBatchFmasPerThread * threads;
    const int64_t used_slots = inner_parallel ? 1 : slots;
    float* scratch = static_cast<float*>(ctx.Scratch(used_slots * pack_floats * sizeof(float)));
    auto run_range = [&](int64_t slot, int64_t begin, int64_t end, ThreadPool* pool) {
      float* packed = scratch + slot * pack_floats;
      int64_t prev_b = -1;
      for (int64_t t = begin; t < end; ++t) {
        int64_t oa, ob;
        offsets(t, &oa, &ob);
        if (ob != prev_b) {
          PackBInto(false, k, n, bd + ob, n, packed);
          prev_b = ob;
        }
        SgemmPanels(false, m, n, k, 1.0f, ad + oa, k, packed, 0.0f, yd + t * m * n, n, epi, pool);
      }
    };
    if (inner_parallel) {
      run_range(0, 0, batches, &ctx.pool());
    } else {
      ctx.pool().ParallelFor(used_slots, 1, [&](int64_t s0, int64_t s1) {
        for (int64_t s = s0; s < s1; ++s) {
          run_range(s, s * batches / used_slots, (s + 1) * batches / used_slots, nullptr);
        }
      });
    }
    return absl::OkStatus();
  }

  bool fused_ = false;
  bool has_bias_ = false;
  GemmEpilogue epilogue_;
  PackedB packed_;  // constant B, packed at load; empty otherwise
  int b_rank_ = 2;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> MakeMatMul(const Node& node, const Graph& graph) {
  return MatMulKernel::Create(node, graph, /*fused=*/false);
}

absl::StatusOr<std::unique_ptr<Kernel>> MakeFusedMatMul(const Node& node, const Graph& graph) {
  return MatMulKernel::Create(node, graph, /*fused=*/true);
}

}  // namespace flywheel::engine
