// Names in the registry: model names (folders of the repository), alias names and version
// numbers. Private to lifecycle/ (ValidateAliasName and ParseVersionNumber are public in
// registry.h).
#pragma once

#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "lifecycle/registry.h"

namespace flywheel::lifecycle {

// Model names are folder names of the repository; these rules keep a path built from one inside
// it: not empty, no leading '.', no path separator or control character.
absl::Status ValidateModelName(absl::string_view model);
// "production, staging" or "none", for messages.
std::string AliasNames(const std::map<std::string, Alias, std::less<>>& aliases);

}  // namespace flywheel::lifecycle
