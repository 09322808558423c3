// Splitting a request target into percent-decoded path segments. Internal to api/http.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace flywheel::api::http {

// "/v2/models/my%20model/ready?x=1" -> {"v2", "models", "my model", "ready"}. The query is
// ignored; one trailing slash is tolerated. Splitting happens before decoding, so "%2F" stays
// inside its segment (and model-name validation refuses it). Malformed escapes and NUL bytes are
// INVALID_ARGUMENT; a target that is not an origin-form path is too.
absl::StatusOr<std::vector<std::string>> SplitPath(absl::string_view target);

}  // namespace flywheel::api::http
