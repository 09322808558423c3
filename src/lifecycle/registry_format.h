// The registry file's JSON form (docs/lifecycle.md): one object per model with its versions'
// metadata, its aliases and their history. Private to lifecycle/.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lifecycle/registry.h"

namespace flywheel::lifecycle {

inline constexpr const char* kRegistryFormat = "flywheel.registry/1";

// Pretty-printed, keys in a fixed order, so that diffs of the file read well.
std::string EncodeRecord(const ModelRecord& record);
// `file` names the source in errors. Unknown fields and a different format are errors.
absl::StatusOr<ModelRecord> DecodeRecord(absl::string_view json, absl::string_view file);

}  // namespace flywheel::lifecycle
