// rollout.json, the durable state of one model's rollout (docs/lifecycle.md): its spec, state,
// times, reason and its last events. Private to lifecycle/.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lifecycle/rollout.h"

namespace flywheel::lifecycle {

inline constexpr const char* kRolloutFormat = "flywheel.rollout/1";
inline constexpr const char* kRolloutFileName = "rollout.json";
// Events kept per model; older ones are dropped.
inline constexpr size_t kMaxRolloutEvents = 1000;

// Pretty-printed, keys in a fixed order. The figures are not kept: they are the window's.
std::string EncodeRollout(const RolloutStatus& status);
// `file` names the source in errors (DataLoss). Unknown members and another format are errors.
absl::StatusOr<RolloutStatus> DecodeRollout(absl::string_view json, absl::string_view file);

}  // namespace flywheel::lifecycle
