// The feature store as the inference server sees it: serving::FeatureSource (what a
// feature_lookup step of an ensemble calls) answered by a FeatureService, in process.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "features/service.h"
#include "serving/feature_source.h"

namespace flywheel::features {

class ServiceFeatureSource final : public serving::FeatureSource {
 public:
  // REQUIRES: `service` outlives this object.
  explicit ServiceFeatureSource(const FeatureService* service) : service_(service) {}

  absl::Status Validate(absl::Span<const std::string> features) const override;
  absl::Status Lookup(absl::Span<const std::string> keys, absl::Span<const std::string> features,
                      float missing_value, float* values, uint8_t* present) const override;

 private:
  const FeatureService* service_;
};

}  // namespace flywheel::features
