// HyperLogLog: approximate distinct counts in a few kilobytes for the `distinct` aggregation.
// Small sets stay in a sparse list of registers; a sketch turns dense (2^precision bytes) when the
// list would take more room. Hashes are stable across processes because sketches are persisted.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace flywheel::features {

// 64-bit hashes that never change between runs or machines (absl::Hash is seeded per process).
uint64_t StableHash(absl::string_view bytes);
uint64_t StableHash(uint64_t value);

class HyperLogLog {
 public:
  static constexpr int kMinPrecision = 4;
  static constexpr int kMaxPrecision = 16;

  // REQUIRES: kMinPrecision <= precision <= kMaxPrecision.
  explicit HyperLogLog(int precision = 12);

  int precision() const { return precision_; }
  bool empty() const { return sparse_.empty() && dense_.empty(); }
  bool dense() const { return !dense_.empty(); }

  void Add(uint64_t hash);
  // Forgets every value, keeping the allocated room (tiles are reused).
  void Clear();
  // Takes the register-wise maximum into `registers` (2^precision bytes), to merge many sketches.
  void MaxInto(std::vector<uint8_t>& registers) const;
  // The estimated number of distinct values.
  double Estimate() const;
  // The estimate for merged registers (see MaxInto).
  static double EstimateRegisters(const std::vector<uint8_t>& registers);

  void AppendTo(std::string* out) const;
  // Reads what AppendTo wrote from the front of `in`; false on malformed input.
  bool ReadFrom(absl::string_view* in);

 private:
  // Sparse entries are (register index << 8 | rank), sorted by index, one per index.
  static uint32_t Entry(uint32_t index, uint8_t rank) { return index << 8 | rank; }
  void Densify();

  int precision_;
  std::vector<uint32_t> sparse_;
  std::vector<uint8_t> dense_;
};

}  // namespace flywheel::features
