// Request bodies sent with Content-Encoding gzip or deflate (Triton clients' request compression),
// inflated into the same aligned buffer type as plain bodies. Internal to api/http.
#pragma once

#include <cstddef>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "api/http/http_message.h"

namespace flywheel::api::http {

enum class ContentCoding { kIdentity, kGzip, kDeflate };

// Parses a Content-Encoding value ("gzip", "x-gzip", "deflate", "identity" or empty); anything
// else is UNIMPLEMENTED naming the coding.
absl::StatusOr<ContentCoding> ParseContentCoding(absl::string_view value);

// Inflates `compressed`. Output above `limit` bytes is RESOURCE_EXHAUSTED (the caller answers
// 413) and is refused as soon as it passes the limit, so a small bomb never allocates much; a
// corrupt or truncated stream is INVALID_ARGUMENT. `aligned_at` places the result like
// BodyBytes does.
absl::StatusOr<std::shared_ptr<BodyBytes>> Inflate(absl::string_view compressed,
                                                   ContentCoding coding, size_t limit,
                                                   size_t aligned_at);

}  // namespace flywheel::api::http
