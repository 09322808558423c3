#include "monitor/hyperloglog.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace flywheel::monitor {
namespace {

// The splitmix64 finaliser: spreads every input bit over every output bit.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

double Alpha(int registers) {
  switch (registers) {
    case 16:
      return 0.673;
    case 32:
      return 0.697;
    case 64:
      return 0.709;
    default:
      return 0.7213 / (1.0 + 1.079 / registers);
  }
}

}  // namespace

uint64_t HashBytes(absl::string_view bytes) {
  // Eight bytes at a time through the mixer; the same on every run, unlike absl::Hash, so that
  // sketches (and their tests) are reproducible.
  uint64_t h = 0x243f6a8885a308d3ULL ^ (bytes.size() * 0x9e3779b97f4a7c15ULL);
  size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes.data() + i, sizeof(word));
    h = Mix(h ^ word);
  }
  uint64_t tail = 0;
  if (i < bytes.size()) std::memcpy(&tail, bytes.data() + i, bytes.size() - i);
  return Mix(h ^ tail ^ 0xa0761d6478bd642fULL);
}

uint64_t HashNumber(double value) {
  if (value == 0) value = 0;  // -0.0 == 0.0
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return Mix(bits + 0x9e3779b97f4a7c15ULL);
}

void HllMerge(uint8_t* dst, const uint8_t* src, int precision) {
  const size_t m = size_t{1} << precision;
  for (size_t i = 0; i < m; ++i) dst[i] = std::max(dst[i], src[i]);
}

double HllEstimate(const uint8_t* registers, int precision) {
  const int m = 1 << precision;
  double inverse_sum = 0;
  int zeros = 0;
  for (int i = 0; i < m; ++i) {
    inverse_sum += std::ldexp(1.0, -registers[i]);
    zeros += registers[i] == 0;
  }
  const double raw = Alpha(m) * m * m / inverse_sum;
  // Linear counting is the better estimator while many registers are still empty.
  if (raw <= 2.5 * m && zeros > 0) return m * std::log(static_cast<double>(m) / zeros);
  return raw;
}

HyperLogLog::HyperLogLog(int precision)
    : precision_(std::clamp(precision, kHllMinPrecision, kHllMaxPrecision)),
      registers_(size_t{1} << precision_, 0) {}

void HyperLogLog::Merge(const HyperLogLog& other) {
  if (other.precision_ != precision_) return;
  HllMerge(registers_.data(), other.registers_.data(), precision_);
}

void HyperLogLog::Clear() { std::fill(registers_.begin(), registers_.end(), 0); }

}  // namespace flywheel::monitor
