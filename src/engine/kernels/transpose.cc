#include "engine/kernels/transpose.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/kernels/kernel_util.h"
#include "engine/kernels/tensor_ops.h"

namespace flywheel::engine {
namespace {

// Work per ParallelFor chunk: below this a copy runs on the calling thread.
constexpr int64_t kGrainBytes = 32 * 1024;
// Side of the square tiles of a 2-D transpose: 16 rows of 16 elements stay in L1.
constexpr int64_t kTile = 16;

struct Layout {
  int rank = 0;
  int64_t dims[kMaxStridedRank];
  int64_t ss[kMaxStridedRank];  // source strides
  int64_t ds[kMaxStridedRank];  // destination strides
};

// Multi-index of flat position `pos` over the first n axes, and its source/destination offsets.
void Unflatten(const Layout& l, int n, int64_t pos, int64_t* idx, int64_t* so, int64_t* dof) {
  *so = 0;
  *dof = 0;
  for (int k = n - 1; k >= 0; --k) {
    idx[k] = pos % l.dims[k];
    pos /= l.dims[k];
    *so += idx[k] * l.ss[k];
    *dof += idx[k] * l.ds[k];
  }
}

// Steps the multi-index over the first n axes to the next position.
void Advance(const Layout& l, int n, int64_t* idx, int64_t* so, int64_t* dof) {
  for (int k = n - 1; k >= 0; --k) {
    ++idx[k];
    *so += l.ss[k];
    *dof += l.ds[k];
    if (idx[k] < l.dims[k]) return;
    *so -= idx[k] * l.ss[k];
    *dof -= idx[k] * l.ds[k];
    idx[k] = 0;
  }
}

// Copies rows [begin, end) of the axes before the last; each row is the whole last axis.
template <typename U>
void CopyRows(const Layout& l, const U* src, U* dst, int64_t begin, int64_t end) {
  const int last = l.rank - 1;
  const int64_t n = l.dims[last], s = l.ss[last], d = l.ds[last];
  int64_t idx[kMaxStridedRank];
  int64_t so, dof;
  Unflatten(l, last, begin, idx, &so, &dof);
  for (int64_t r = begin; r < end; ++r) {
    const U* a = src + so;
    U* b = dst + dof;
    if (s == 1 && d == 1) {
      std::memcpy(b, a, static_cast<size_t>(n) * sizeof(U));
    } else if (s == 0 && d == 1) {
      std::fill(b, b + n, *a);
    } else if (d == 1) {
      for (int64_t j = 0; j < n; ++j) b[j] = a[j * s];
    } else {
      for (int64_t j = 0; j < n; ++j) b[j * d] = a[j * s];
    }
    Advance(l, last, idx, &so, &dof);
  }
}

// Transposes in tiles: `outer` holds every axis but the two being swapped; axis `a` is
// contiguous in the source (stride 1), the last axis contiguous in the destination.
template <typename U>
void CopyTiles(const Layout& outer, int64_t na, int64_t da, int64_t nl, int64_t sl, const U* src,
               U* dst, int64_t begin, int64_t end) {
  const int64_t row_tiles = (na + kTile - 1) / kTile;
  int64_t idx[kMaxStridedRank];
  for (int64_t u = begin; u < end; ++u) {
    int64_t so, dof;
    Unflatten(outer, outer.rank, u / row_tiles, idx, &so, &dof);
    const int64_t i0 = (u % row_tiles) * kTile, i1 = std::min(na, i0 + kTile);
    const U* a = src + so;
    U* b = dst + dof;
    for (int64_t j0 = 0; j0 < nl; j0 += kTile) {
      const int64_t j1 = std::min(nl, j0 + kTile);
      for (int64_t i = i0; i < i1; ++i) {
        U* row = b + i * da;
        for (int64_t j = j0; j < j1; ++j) row[j] = a[i + j * sl];
      }
    }
  }
}

template <typename U>
void CopyTyped(const Layout& l, const void* src_v, void* dst_v, ThreadPool* pool) {
  const U* src = static_cast<const U*>(src_v);
  U* dst = static_cast<U*>(dst_v);
  const int last = l.rank - 1;
  // A transpose: the destination's last axis reads with a stride, and some other axis is the
  // source's contiguous one. Tile those two axes so both sides touch whole cache lines.
  int a = -1;
  if (l.ds[last] == 1 && l.ss[last] != 1 && l.ss[last] != 0 && l.dims[last] >= 4) {
    for (int k = 0; k < last; ++k) {
      if (l.ss[k] == 1 && l.dims[k] >= 4) a = k;
    }
  }
  if (a >= 0) {
    Layout outer;
    int64_t outer_count = 1;
    for (int k = 0; k < last; ++k) {
      if (k == a) continue;
      outer.dims[outer.rank] = l.dims[k];
      outer.ss[outer.rank] = l.ss[k];
      outer.ds[outer.rank] = l.ds[k];
      ++outer.rank;
      outer_count *= l.dims[k];
    }
    const int64_t units = outer_count * ((l.dims[a] + kTile - 1) / kTile);
    const int64_t unit_bytes = kTile * l.dims[last] * static_cast<int64_t>(sizeof(U));
    auto fn = [&](int64_t b, int64_t e) {
      CopyTiles<U>(outer, l.dims[a], l.ds[a], l.dims[last], l.ss[last], src, dst, b, e);
    };
    if (pool == nullptr) {
      fn(0, units);
    } else {
      pool->ParallelFor(units, std::max<int64_t>(1, kGrainBytes / unit_bytes), fn);
    }
    return;
  }
  int64_t rows = 1;
  for (int k = 0; k < last; ++k) rows *= l.dims[k];
  const int64_t row_bytes = l.dims[last] * static_cast<int64_t>(sizeof(U));
  auto fn = [&](int64_t b, int64_t e) { CopyRows<U>(l, src, dst, b, e); };
  if (pool == nullptr) {
    fn(0, rows);
  } else {
    pool->ParallelFor(rows, std::max<int64_t>(1, kGrainBytes / std::max<int64_t>(row_bytes, 1)),
                      fn);
  }
}

}  // namespace

void StridedCopy(const void* src, void* dst, size_t elem_size, absl::Span<const int64_t> dims,
                 absl::Span<const int64_t> src_strides, absl::Span<const int64_t> dst_strides,
                 ThreadPool* pool) {
  // Drop axes of size 1 and merge each axis into the one before it when both sides are
  // contiguous across the pair.
  Layout l;
  for (size_t k = 0; k < dims.size(); ++k) {
    if (dims[k] == 0) return;
    if (dims[k] == 1) continue;
    if (l.rank > 0) {
      const int p = l.rank - 1;
      if (l.ss[p] == src_strides[k] * dims[k] && l.ds[p] == dst_strides[k] * dims[k]) {
        l.dims[p] *= dims[k];
        l.ss[p] = src_strides[k];
        l.ds[p] = dst_strides[k];
        continue;
      }
    }
    l.dims[l.rank] = dims[k];
    l.ss[l.rank] = src_strides[k];
    l.ds[l.rank] = dst_strides[k];
    ++l.rank;
  }
  if (l.rank == 0) {
    std::memcpy(dst, src, elem_size);
    return;
  }
  DispatchBySize(elem_size, [&](auto tag) { CopyTyped<decltype(tag)>(l, src, dst, pool); });
}

void TransposeData(const void* src, void* dst, size_t elem_size, const Shape& in_shape,
                   absl::Span<const int64_t> perm, ThreadPool* pool) {
  const int rank = in_shape.rank();
  const IntList in_strides = Strides(in_shape);
  StrideList dims(rank), ss(rank), ds(rank);
  for (int k = 0; k < rank; ++k) {
    dims[k] = in_shape[static_cast<int>(perm[k])];
    ss[k] = in_strides[perm[k]];
  }
  int64_t s = 1;
  for (int k = rank - 1; k >= 0; --k) {
    ds[k] = s;
    s *= dims[k];
  }
  StridedCopy(src, dst, elem_size, dims, ss, ds, pool);
}

}  // namespace flywheel::engine

namespace flywheel::engine {
namespace {

class TransposeKernel : public Kernel {
 public:
  static absl::StatusOr<std::unique_ptr<Kernel>> Create(const Node& node, const Graph&) {
    auto k = std::make_unique<TransposeKernel>();
    if (node.HasAttr("perm")) {
      std::vector<int64_t> perm = node.GetInts("perm");
      if (perm.size() > static_cast<size_t>(kMaxStridedRank)) {
        return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": perm has ", perm.size(),
                                                       " axes; at most ", kMaxStridedRank,
                                                       " are supported"));
      }
      std::vector<bool> seen(perm.size(), false);
      for (int64_t p : perm) {
        if (p < 0 || p >= static_cast<int64_t>(perm.size()) || seen[p]) {
          return absl::InvalidArgumentError(
              absl::StrCat(node.Describe(), ": perm [", absl::StrJoin(perm, ","),
                           "] is not a permutation of 0..", perm.size() - 1));
        }
        seen[p] = true;
      }
      k->perm_.emplace(perm.begin(), perm.end());
    }
    return k;
  }

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* in, ctx.RequiredInput(0));
    FW_RETURN_IF_ERROR(CheckCopyable(ctx, *in, "input"));
    const int rank = in->rank();
    if (rank > kMaxStridedRank)
      return ctx.Error("rank ", rank, " is above the supported ", kMaxStridedRank);
    StrideList perm(rank);
    if (perm_.has_value()) {
      if (static_cast<int>(perm_->size()) != rank) {
        return ctx.Error("perm has ", perm_->size(), " axes but the input ", in->shape().ToString(),
                         " has rank ", rank);
      }
      std::copy(perm_->begin(), perm_->end(), perm.begin());
    } else {
      for (int k = 0; k < rank; ++k) perm[k] = rank - 1 - k;
    }
    Shape out_shape = in->shape();
    for (int k = 0; k < rank; ++k) out_shape.set_dim(k, in->dim(static_cast<int>(perm[k])));
    FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(0, in->dtype(), out_shape));
    if (out->NumElements() == 0) return absl::OkStatus();
    TransposeData(in->raw_data(), out->raw_data(), DataTypeSize(in->dtype()), in->shape(), perm,
                  &ctx.pool());
    return absl::OkStatus();
  }

 private:
  std::optional<StrideList> perm_;
};

}  // namespace

void RegisterTransposeKernels(KernelRegistry& registry) {
  registry.Register("", "Transpose", &TransposeKernel::Create);
}

}  // namespace flywheel::engine
