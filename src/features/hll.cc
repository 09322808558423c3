#include "features/hll.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "features/varint.h"

namespace flywheel::features {
namespace {

// The 64-bit finalizer of MurmurHash3: every input bit affects every output bit.
uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

}  // namespace

uint64_t StableHash(absl::string_view bytes) {
  // FNV-1a over the bytes, then mixed: FNV alone leaves the high bits weak for short strings.
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return Mix(h ^ bytes.size());
}

uint64_t StableHash(uint64_t value) { return Mix(value + 0x9e3779b97f4a7c15ULL); }

HyperLogLog::HyperLogLog(int precision)
    : precision_(std::clamp(precision, kMinPrecision, kMaxPrecision)) {}

void HyperLogLog::Add(uint64_t hash) {
  uint32_t index = static_cast<uint32_t>(hash >> (64 - precision_));
  uint64_t rest = hash << precision_;
  // Rank: position of the first 1 bit in the remaining 64 - p bits (all zero: 64 - p + 1).
  int max_rank = 64 - precision_ + 1;
  uint8_t rank = static_cast<uint8_t>(rest == 0 ? max_rank : std::countl_zero(rest) + 1);
  if (!dense_.empty()) {
    dense_[index] = std::max(dense_[index], rank);
    return;
  }
  auto it = std::lower_bound(sparse_.begin(), sparse_.end(), Entry(index, 0));
  if (it != sparse_.end() && (*it >> 8) == index) {
    if ((*it & 0xff) < rank) *it = Entry(index, rank);
    return;
  }
  sparse_.insert(it, Entry(index, rank));
  // A sparse entry takes 4 bytes and a dense register 1: switch when sparse stops being smaller.
  if (sparse_.size() * 4 > (size_t{1} << precision_)) Densify();
}

void HyperLogLog::Densify() {
  dense_.assign(size_t{1} << precision_, 0);
  for (uint32_t e : sparse_) dense_[e >> 8] = static_cast<uint8_t>(e & 0xff);
  sparse_.clear();
}

void HyperLogLog::Clear() {
  sparse_.clear();
  // A dense sketch goes back to sparse so an idle tile does not keep 2^p bytes busy; the vector
  // keeps its capacity for the next busy period.
  dense_.clear();
}

void HyperLogLog::MaxInto(std::vector<uint8_t>& registers) const {
  registers.resize(size_t{1} << precision_, 0);
  if (!dense_.empty()) {
    for (size_t i = 0; i < dense_.size(); ++i) registers[i] = std::max(registers[i], dense_[i]);
    return;
  }
  for (uint32_t e : sparse_) {
    uint8_t& r = registers[e >> 8];
    r = std::max<uint8_t>(r, e & 0xff);
  }
}

double HyperLogLog::EstimateRegisters(const std::vector<uint8_t>& registers) {
  const double m = static_cast<double>(registers.size());
  if (registers.empty()) return 0;
  double sum = 0;
  int zeros = 0;
  for (uint8_t r : registers) {
    sum += std::ldexp(1.0, -r);
    zeros += r == 0;
  }
  double alpha;
  if (registers.size() == 16) {
    alpha = 0.673;
  } else if (registers.size() == 32) {
    alpha = 0.697;
  } else if (registers.size() == 64) {
    alpha = 0.709;
  } else {
    alpha = 0.7213 / (1 + 1.079 / m);
  }
  double estimate = alpha * m * m / sum;
  // Linear counting is far more accurate while many registers are still empty.
  if (estimate <= 2.5 * m && zeros > 0) estimate = m * std::log(m / zeros);
  return estimate;
}

double HyperLogLog::Estimate() const {
  if (empty()) return 0;
  std::vector<uint8_t> registers;
  MaxInto(registers);
  return EstimateRegisters(registers);
}

void HyperLogLog::AppendTo(std::string* out) const {
  out->push_back(static_cast<char>(precision_));
  if (!dense_.empty()) {
    out->push_back(1);
    out->append(reinterpret_cast<const char*>(dense_.data()), dense_.size());
    return;
  }
  out->push_back(0);
  AppendVarint(out, sparse_.size());
  uint32_t previous = 0;
  for (uint32_t e : sparse_) {  // sorted: store deltas
    AppendVarint(out, e - previous);
    previous = e;
  }
}

bool HyperLogLog::ReadFrom(absl::string_view* in) {
  if (in->size() < 2) return false;
  int precision = static_cast<uint8_t>((*in)[0]);
  bool is_dense = (*in)[1] != 0;
  in->remove_prefix(2);
  if (precision < kMinPrecision || precision > kMaxPrecision) return false;
  precision_ = precision;
  sparse_.clear();
  dense_.clear();
  size_t m = size_t{1} << precision_;
  if (is_dense) {
    if (in->size() < m) return false;
    dense_.assign(in->begin(), in->begin() + m);
    in->remove_prefix(m);
    return true;
  }
  uint64_t count = 0;
  if (!ReadVarint(in, &count) || count > m) return false;
  uint32_t previous = 0;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t delta = 0;
    if (!ReadVarint(in, &delta) || (i > 0 && delta == 0)) return false;
    uint64_t e = previous + delta;
    if ((e >> 8) >= m || e > UINT32_MAX) return false;
    previous = static_cast<uint32_t>(e);
    sparse_.push_back(previous);
  }
  return true;
}

}  // namespace flywheel::features
