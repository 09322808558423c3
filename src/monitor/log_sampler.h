// Which requests the prediction log keeps: one LogSampler per model, with the model's sampling
// rate in [0, 1]. Deterministic and cheap enough to ask on every request.
#pragma once

#include <atomic>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace flywheel::monitor {

class LogSampler {
 public:
  // `rate` is clamped to [0, 1]; NaN means 0.
  explicit LogSampler(double rate);

  // A request with an id is kept when a fixed 64-bit hash of the id (FNV-1a, then a SplitMix64
  // finish) falls below rate * 2^64: the same id gets the same answer in every process and
  // replica, so a retried or shadowed request is logged everywhere or nowhere. Requests without
  // an id are counted: exactly floor(n * rate) of the first n are kept (one relaxed atomic
  // add). Rates 0 and 1 decide without hashing or counting. Thread-safe.
  bool Sample(absl::string_view request_id);

  double rate() const { return rate_; }

  // The hash Sample uses, for tests and for tools that predict which ids were logged.
  static uint64_t HashId(absl::string_view request_id);

 private:
  double rate_;
  uint64_t threshold_;  // keep ids whose hash is below this (rate < 1)
  std::atomic<uint64_t> count_{0};
};

}  // namespace flywheel::monitor
