#include "monitor/log_sampler.h"

#include <cmath>

namespace flywheel::monitor {

LogSampler::LogSampler(double rate) {
  rate_ = std::isnan(rate) ? 0.0 : std::fmin(1.0, std::fmax(0.0, rate));
  // 2^64 * rate, below 2^64 since rate < 1 wherever the threshold is used.
  threshold_ = rate_ >= 1.0 ? ~uint64_t{0} : static_cast<uint64_t>(std::ldexp(rate_, 64));
}

uint64_t LogSampler::HashId(absl::string_view request_id) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : request_id) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  // FNV-1a alone leaves the high bits poorly mixed for short ids; SplitMix64's finish fixes it.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

bool LogSampler::Sample(absl::string_view request_id) {
  if (rate_ >= 1.0) return true;
  if (rate_ <= 0.0) return false;
  if (!request_id.empty()) return HashId(request_id) < threshold_;
  const uint64_t n = count_.fetch_add(1, std::memory_order_relaxed);
  return std::floor(static_cast<double>(n + 1) * rate_) >
         std::floor(static_cast<double>(n) * rate_);
}

}  // namespace flywheel::monitor
