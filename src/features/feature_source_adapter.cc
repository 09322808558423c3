#include "features/feature_source_adapter.h"

namespace flywheel::features {

absl::Status ServiceFeatureSource::Validate(absl::Span<const std::string> features) const {
  return service_->ValidateNumeric(features);
}

absl::Status ServiceFeatureSource::Lookup(absl::Span<const std::string> keys,
                                          absl::Span<const std::string> features,
                                          float missing_value, float* values,
                                          uint8_t* present) const {
  return service_->LookupNumeric(keys, features, missing_value, values, present);
}

}  // namespace flywheel::features
