// HyperLogLog distinct-count sketches (Flajolet et al. 2007, with linear counting for small
// cardinalities and 64-bit hashes, so no large-range correction). The register functions work on
// caller-owned memory so that the drift window can keep many sketches in one flat buffer.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"

namespace flywheel::monitor {

// Precisions (log2 of the register count) a sketch accepts; 12 gives 4096 one-byte registers and
// a standard error of about 1.04 / sqrt(4096) = 1.6%.
inline constexpr int kHllMinPrecision = 4;
inline constexpr int kHllMaxPrecision = 16;

// 64-bit hashes with good low and high bits, for feeding sketches.
uint64_t HashBytes(absl::string_view bytes);
// Hashes a number by value: -0.0 and 0.0 hash alike.
uint64_t HashNumber(double value);

// REQUIRES: `registers` holds 1 << precision bytes.
inline void HllAdd(uint8_t* registers, int precision, uint64_t hash) {
  const uint64_t index = hash >> (64 - precision);
  // The rank of the first set bit of the remaining bits; a sentinel bit bounds it.
  const uint64_t rest = (hash << precision) | (uint64_t{1} << (precision - 1));
  const uint8_t rank = static_cast<uint8_t>(__builtin_clzll(rest) + 1);
  if (rank > registers[index]) registers[index] = rank;
}
// dst = max(dst, src) register-wise: the sketch of the union.
void HllMerge(uint8_t* dst, const uint8_t* src, int precision);
double HllEstimate(const uint8_t* registers, int precision);

// An owning sketch.
class HyperLogLog {
 public:
  // REQUIRES: kHllMinPrecision <= precision <= kHllMaxPrecision.
  explicit HyperLogLog(int precision = 12);
  void AddHash(uint64_t hash) { HllAdd(registers_.data(), precision_, hash); }
  void Add(absl::string_view bytes) { AddHash(HashBytes(bytes)); }
  void Add(double value) { AddHash(HashNumber(value)); }
  // REQUIRES: other.precision() == precision().
  void Merge(const HyperLogLog& other);
  double Estimate() const { return HllEstimate(registers_.data(), precision_); }
  void Clear();
  int precision() const { return precision_; }

 private:
  int precision_;
  std::vector<uint8_t> registers_;
};

}  // namespace flywheel::monitor
