// Compares a shadow version's answer with the served one (serving/router_impl.h: AnswersAgree).
#include <cmath>
#include <cstring>

#include "core/tensor_values.h"
#include "serving/router_impl.h"

namespace flywheel::serving {
namespace {

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
  bool agree = true;
  VisitNumeric(served, [&](auto served_at) {
    VisitNumeric(shadow, [&](auto shadow_at) {
      for (int64_t i = 0; i < n && agree; ++i) {
        agree = Close(served_at(i), shadow_at(i), atol, rtol);
      }
    });
  });
  return agree;
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
