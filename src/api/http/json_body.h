// Request bodies of the JSON APIs under /v1/ (features, monitoring): one JSON object, possibly
// gzip/deflate encoded, and the replies for bodies that cannot be read. Internal to api/http.
#pragma once

#include <cstddef>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "api/http/http_message.h"
#include "rapidjson/document.h"

namespace flywheel::api::http {

// A header's value, or "" when the request has none.
absl::string_view HeaderValue(const Request& request, absl::string_view name);

// What an empty (or all-whitespace) body means.
enum class EmptyBody { kError, kEmptyObject };

// Parses the request body (inflated when gzip/deflate, up to `max_bytes`) as one JSON object into
// `doc`. `holder` keeps an inflated body alive while `doc`'s strings point into it. With
// kEmptyObject an empty body reads as `{}` (for APIs whose body is optional).
absl::Status ParseJsonObjectBody(const Request& request, size_t max_bytes, rapidjson::Document* doc,
                                 std::shared_ptr<BodyBytes>* holder,
                                 EmptyBody empty = EmptyBody::kError);

// The reply for a body ParseJsonObjectBody refused: 413 too large, 415 unknown coding, else 400.
Reply BodyErrorReply(const absl::Status& status);

}  // namespace flywheel::api::http
