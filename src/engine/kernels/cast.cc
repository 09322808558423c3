// Cast: converts between every numeric type, bool, float16 and bfloat16. Float to integer
// truncates toward zero (numpy's astype); NaN becomes 0 and out-of-range values saturate instead
// of being undefined. Anything to bool is x != 0.
#include <cmath>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "engine/kernels/broadcast.h"
#include "engine/kernels/elementwise_util.h"

namespace flywheel::engine {
namespace {

// IEEE half <-> float, round to nearest even.
float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000 | (mant << 13);
  } else if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {
      // Subnormal half: normalise.
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400) == 0);
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
    }
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t abs = x & 0x7fffffff;
  if (abs >= 0x7f800000) {  // inf or NaN
    return sign | 0x7c00 | (abs > 0x7f800000 ? 0x200 : 0);
  }
  if (abs >= 0x477ff000) return sign | 0x7c00;  // rounds past 65504: inf
  if (abs < 0x38800000) {                       // below the smallest normal half
    if (abs < 0x33000000) return sign;          // below half of the smallest subnormal: 0
    const uint32_t e = abs >> 23;
    const uint32_t mant = (abs & 0x7fffff) | 0x800000;
    const uint32_t shift = 126 - e;  // 14..24
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (h & 1))) ++h;
    return sign | static_cast<uint16_t>(h);
  }
  uint32_t h = ((abs >> 13) - ((127 - 15) << 10));
  const uint32_t rem = abs & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;
  return sign | static_cast<uint16_t>(h);
}

float Bf16ToFloat(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t FloatToBf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((x >> 16) | 0x40);  // NaN
  x += 0x7fff + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

// One element from `From` to `To`.
template <typename To, typename From>
To Convert(From v) {
  if constexpr (std::is_same_v<To, bool>) {
    return v != From{0};
  } else if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>) {
    // Through int64 so that small types wrap like numpy (e.g. -1.0 -> uint8 255).
    if constexpr (sizeof(To) < 8) {
      return static_cast<To>(SaturatingCast<int64_t>(v));
    } else {
      return SaturatingCast<To>(v);
    }
  } else {
    return static_cast<To>(v);
  }
}

// Element type as a C++ type, with fp16/bf16 standing in as float (converted at the edges).
template <typename F>
bool VisitCastType(DataType t, F&& f) {
  if (t == DataType::kFp16 || t == DataType::kBf16) {
    f(float{});
    return true;
  }
  return VisitNumericOrBool(t, f);
}

template <typename To, typename From>
void ConvertRange(DataType from_t, DataType to_t, const void* in, void* out, int64_t begin,
                  int64_t end) {
  const bool from_half = from_t == DataType::kFp16 || from_t == DataType::kBf16;
  const bool to_half = to_t == DataType::kFp16 || to_t == DataType::kBf16;
  if (!from_half && !to_half) {
    const From* x = static_cast<const From*>(in);
    To* y = static_cast<To*>(out);
    for (int64_t i = begin; i < end; ++i) y[i] = Convert<To>(x[i]);
    return;
  }
  for (int64_t i = begin; i < end; ++i) {
    From v;
    if (from_half) {
      const uint16_t h = static_cast<const uint16_t*>(in)[i];
      v = static_cast<From>(from_t == DataType::kFp16 ? HalfToFloat(h) : Bf16ToFloat(h));
    } else {
      v = static_cast<const From*>(in)[i];
    }
    if (to_half) {
      const float f = Convert<float>(v);
      static_cast<uint16_t*>(out)[i] = to_t == DataType::kFp16 ? FloatToHalf(f) : FloatToBf16(f);
    } else {
      static_cast<To*>(out)[i] = Convert<To>(v);
    }
  }
}

class CastKernel : public Kernel {
 public:
  explicit CastKernel(DataType to) : to_(to) {}

  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* in, ctx.RequiredInput(0));
    const DataType from = in->dtype();
    if (from == to_) return ctx.ForwardInput(0, 0, in->shape());
    FW_ASSIGN_OR_RETURN(Tensor * out, ctx.AllocateOutput(0, to_, in->shape()));
    bool ok = false;
    VisitCastType(from, [&](auto from_tag) {
      using From = decltype(from_tag);
      VisitCastType(to_, [&](auto to_tag) {
        using To = decltype(to_tag);
        ok = true;
        ParallelElements(ctx, in->NumElements(), [&](int64_t begin, int64_t end) {
          ConvertRange<To, From>(from, to_, in->raw_data(), out->raw_data(), begin, end);
        });
      });
    });
    if (!ok) {
      return ctx.Error("cannot cast ", DataTypeName(from), " to ", DataTypeName(to_));
    }
    return absl::OkStatus();
  }

 private:
  DataType to_;
};

// ONNX TensorProto.DataType numbers.
absl::StatusOr<DataType> FromOnnxDataType(int64_t t) {
  switch (t) {
    case 1:
      return DataType::kFp32;
    case 2:
      return DataType::kUint8;
    case 3:
      return DataType::kInt8;
    case 4:
      return DataType::kUint16;
    case 5:
      return DataType::kInt16;
    case 6:
      return DataType::kInt32;
    case 7:
      return DataType::kInt64;
    case 9:
      return DataType::kBool;
    case 10:
      return DataType::kFp16;
    case 11:
      return DataType::kFp64;
    case 12:
      return DataType::kUint32;
    case 13:
      return DataType::kUint64;
    case 16:
      return DataType::kBf16;
    default:
      return absl::InvalidArgumentError(absl::StrCat("unsupported target type ", t));
  }
}

absl::StatusOr<std::unique_ptr<Kernel>> MakeCast(const Node& node, const Graph&) {
  if (!node.HasAttr("to")) {
    return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": attribute 'to' is missing"));
  }
  absl::StatusOr<DataType> to = FromOnnxDataType(node.GetInt("to", 0));
  if (!to.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": ", to.status().message()));
  }
  return std::make_unique<CastKernel>(*to);
}

// CastLike: the target type is the type of input 1.
class CastLikeKernel : public Kernel {
 public:
  absl::Status Run(KernelContext& ctx) const override {
    FW_ASSIGN_OR_RETURN(const Tensor* like, ctx.RequiredInput(1));
    return CastKernel(like->dtype()).Run(ctx);
  }
};

absl::StatusOr<std::unique_ptr<Kernel>> MakeCastLike(const Node&, const Graph&) {
  return std::make_unique<CastLikeKernel>();
}

}  // namespace

void RegisterCastKernels(KernelRegistry& r) {
  r.Register("", "Cast", MakeCast);
  r.Register("", "CastLike", MakeCastLike);
}

}  // namespace flywheel::engine
