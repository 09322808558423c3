// The online feature store as an inference sees it. The `feature_lookup` backend (a model whose
// execution is an online feature lookup, used as a step of an ensemble) calls this interface; the
// features module implements it, and `flywheel serve --features DIR` hands it to the server.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace flywheel::serving {

class FeatureSource {
 public:
  virtual ~FeatureSource() = default;

  // Checks, when a feature_lookup model loads, that every feature ("view:feature") exists and is
  // numeric; the error names each one that is not.
  virtual absl::Status Validate(absl::Span<const std::string> features) const = 0;

  // Looks up `features` for each entity key. Writes keys.size() x features.size() values, row by
  // row, to `values`, and to `present` 1 where the value is PRESENT, 0 where it is NOT_FOUND or
  // OUTSIDE_TTL (its value then is `missing_value`). Safe to call from many threads at once.
  virtual absl::Status Lookup(absl::Span<const std::string> keys,
                              absl::Span<const std::string> features, float missing_value,
                              float* values, uint8_t* present) const = 0;
};

}  // namespace flywheel::serving
