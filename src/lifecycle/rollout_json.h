// A rollout spec as JSON: what POST /v1/rollouts/{model} takes and what rollout.json keeps, one
// schema for both (docs/lifecycle.md), and the checks every spec passes before it routes traffic.
#pragma once

#include <initializer_list>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lifecycle/rollout.h"
#include "rapidjson/document.h"

namespace flywheel::lifecycle {

// {"policy", "stable", "candidate", "weight", "sticky_parameter", "shadow_fraction",
//  "thresholds": {"max_error_rate", "max_p99_ms", "max_disagreement", "max_quality_drop",
//  "quality_metric", "min_requests", "min_labels", "window_secs"}, "promote_after_secs", "alias"}.
// Absent members keep the RolloutSpec defaults; null clears an optional one. Members in
// `also_allowed` are skipped (the API's "by" and "note"); any other unknown member is an error
// naming it. Errors are InvalidArgument and name the member.
absl::StatusOr<RolloutSpec> RolloutSpecFromJson(
    const rapidjson::Value& object, std::initializer_list<absl::string_view> also_allowed = {});

// Range checks of a spec on its own (versions against the server are Start's business): the
// policy's fields present, weight and fractions in range, thresholds valid. Errors name the field.
absl::Status ValidateRolloutSpec(const RolloutSpec& spec);

}  // namespace flywheel::lifecycle
