// Compares a shadow version's answer with the served one (serving/router_impl.h: AnswersAgree).
#include <cmath>
#include <cstring>

#include "serving/router_impl.h"

namespace flywheel::serving {
namespace {

float Bf16Value(uint16_t bits) {
  const uint32_t word = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &word, sizeof(f));
  return f;
}

float HalfValue(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t word;
  if (exponent == 0x1f) {
    word = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    word = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    word = sign;
  } else {
    // A subnormal half is a normal float: shift the mantissa up into place.
    exponent = 113;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    word = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &word, sizeof(f));
  return f;
}

// Element i of a numeric tensor as a double. REQUIRES: t is numeric (not BYTES, not invalid).
double ElementAt(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DataType::kBool:
      return t.data<bool>()[i] ? 1.0 : 0.0;
    case DataType::kUint8:
      return t.data<uint8_t>()[i];
    case DataType::kUint16:
      return t.data<uint16_t>()[i];
    case DataType::kUint32:
      return t.data<uint32_t>()[i];
    case DataType::kUint64:
      return static_cast<double>(t.data<uint64_t>()[i]);
    case DataType::kInt8:
      return t.data<int8_t>()[i];
    case DataType::kInt16:
      return t.data<int16_t>()[i];
    case DataType::kInt32:
      return t.data<int32_t>()[i];
    case DataType::kInt64:
      return static_cast<double>(t.data<int64_t>()[i]);
    case DataType::kFp16:
      return HalfValue(t.data<uint16_t>()[i]);
    case DataType::kBf16:
      return Bf16Value(t.data<uint16_t>()[i]);
    case DataType::kFp32:
      return t.data<float>()[i];
    case DataType::kFp64:
      return t.data<double>()[i];
    default:
      return std::nan("");
  }
}

bool Numeric(DataType type) { return type != DataType::kBytes && type != DataType::kInvalid; }

bool Close(double served, double shadow, double atol, double rtol) {
  if (std::isnan(served) || std::isnan(shadow)) return std::isnan(served) && std::isnan(shadow);
  if (served == shadow) return true;  // equal infinities too
  return std::fabs(shadow - served) <= atol + rtol * std::fabs(served);
}

bool TensorsAgree(const Tensor& served, const Tensor& shadow, double atol, double rtol) {
  if (served.shape() != shadow.shape()) return false;
  if (served.dtype() == DataType::kBytes || shadow.dtype() == DataType::kBytes) {
    return served.dtype() == shadow.dtype() && served.strings() == shadow.strings();
  }
  if (!Numeric(served.dtype()) || !Numeric(shadow.dtype())) return false;
  const int64_t n = served.NumElements();
  if (served.dtype() == shadow.dtype() &&
      (served.dtype() == DataType::kInt64 || served.dtype() == DataType::kUint64)) {
    // Beyond 2^53 doubles lose the low digits; equal 64-bit integers need no arithmetic.
    if (n > 0 && std::memcmp(served.raw_data(), shadow.raw_data(), served.ByteSize()) == 0) {
      return true;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    if (!Close(ElementAt(served, i), ElementAt(shadow, i), atol, rtol)) return false;
  }
  return true;
}

}  // namespace

bool AnswersAgree(const std::vector<InferOutput>& served, const std::vector<InferOutput>& shadow,
                  double atol, double rtol) {
  for (const InferOutput& out : served) {
    const InferOutput* match = nullptr;
    for (const InferOutput& candidate : shadow) {
      if (candidate.name == out.name) {
        match = &candidate;
        break;
      }
    }
    if (match == nullptr || !TensorsAgree(out.data, match->data, atol, rtol)) return false;
  }
  return true;
}

}  // namespace flywheel::serving
