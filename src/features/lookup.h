// Online feature lookups: entity rows + "view:feature" references -> one value and status per
// row and feature, served from the pipeline's memory (or the store for entities not held). Bad
// references and rows without the keys a view needs are reported per item; the request as a
// whole fails only when the store cannot be read. Also the JSON forms the HTTP API uses.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "features/definitions.h"
#include "features/feature_value.h"
#include "features/pipeline.h"
#include "rapidjson/document.h"

namespace flywheel::features {

// The keys of one entity row: key field -> value as text (an integer key as its decimal digits).
// A row may carry the keys of several entities ({user_id, item_id}); each view takes its own.
using EntityRow = std::vector<std::pair<std::string, std::string>>;

struct LookupRequest {
  std::vector<std::string> features;  // "view:feature"
  std::vector<EntityRow> entities;
  // The time the values are read at (windows ending at or before it, ttl measured to it);
  // the pipeline's clock (the wall clock) when absent.
  std::optional<absl::Time> now;
};

struct LookupResult {
  std::vector<std::string> features;            // as requested
  std::vector<std::string> feature_errors;      // per feature: "" or why the reference is unknown
  std::vector<ValueType> types;                 // per feature (int64 for unknown ones)
  std::vector<std::vector<FeatureValue>> rows;  // [entity row][feature]
};

absl::StatusOr<LookupResult> GetOnlineFeatures(const FeaturePipeline& pipeline,
                                               const LookupRequest& request);

// For serving::FeatureSource (the feature_lookup step of an ensemble): checks that every
// feature exists, is numeric (int64, float64 or bool; not a list) and belongs to a view whose
// entity has a single key field, since such a step passes one key per row. The error names every
// feature that does not qualify.
absl::Status ValidateNumericFeatures(const FeatureRegistry& registry,
                                     absl::Span<const std::string> features);

// Fills values[row * features.size() + column] with the feature as a float (booleans 0/1) and
// present[...] with 1, or `missing_value` and 0 when it is not PRESENT. `keys` are the entity
// keys (one per row). REQUIRES: ValidateNumericFeatures(features) is OK.
absl::Status LookupNumericFeatures(const FeaturePipeline& pipeline,
                                   absl::Span<const std::string> keys,
                                   absl::Span<const std::string> features, absl::Time now,
                                   float missing_value, float* values, uint8_t* present);

// Reads {"features": ["view:feature", ...], "entities": [{"user_id": "u1"}, {"user_id": 7}],
// "now": "2024-05-01T12:00:00Z" | <unix seconds> (optional)}. Errors name the bad part.
absl::StatusOr<LookupRequest> LookupRequestFromJson(const rapidjson::Value& body);

// {"features": [...], "results": [{"entity": {...}, "values": [v|null, ...],
//  "statuses": ["PRESENT", ...]}, ...], "errors": {"ref": "why", ...} (only when any)}.
// last_n values are arrays; values that are absent are null.
std::string LookupResultToJson(const LookupRequest& request, const LookupResult& result);

// The views for /v1/features/views: {"entities": [...], "sources": [...], "views": [{"name",
// "entity", "keys", "source", "ttl", "features": [{"name", "type", "function", "field",
// "window", "every", "n"}]}]}.
std::string ViewsToJson(const FeatureRegistry& registry);

// A value as JSON text ("12", "0.5", "\"fr\"", "[\"a\",\"b\"]", "null").
std::string ValueToJson(const Value& value);

}  // namespace flywheel::features
