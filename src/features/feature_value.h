// One feature value as lookups and exports return it: the value (a scalar or, for last_n, a
// list) and a status saying whether there is one and why not.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/string_view.h"

namespace flywheel::features {

enum class FeatureStatus : uint8_t {
  kPresent,     // `value` holds the feature's value
  kNotFound,    // no state for the entity, or an empty window of mean/min/max/last
  kOutsideTtl,  // the entity's newest value is older than the view's ttl
  // Per-item lookup errors (the request as a whole still succeeds):
  kUnknownFeature,  // the "view:feature" reference names nothing
  kMissingKey,      // the entity row lacks a key field of the view's entity
};

// "PRESENT", "NOT_FOUND", "OUTSIDE_TTL", "UNKNOWN_FEATURE", "MISSING_KEY".
absl::string_view FeatureStatusName(FeatureStatus status);

using Scalar = std::variant<int64_t, double, std::string, bool>;
// std::monostate when there is no value; std::vector<Scalar> for last_n (newest first).
using Value = std::variant<std::monostate, int64_t, double, std::string, bool, std::vector<Scalar>>;

struct FeatureValue {
  FeatureStatus status = FeatureStatus::kNotFound;
  Value value;

  bool present() const { return status == FeatureStatus::kPresent; }
  bool operator==(const FeatureValue&) const = default;
};

}  // namespace flywheel::features
