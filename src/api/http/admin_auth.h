// The admin token check shared by the HTTP endpoints that change the server or its registry
// (model repository load/unload, the registry API): `Authorization: Bearer <token>`. Internal to
// api/http.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "api/http/http_message.h"

namespace flywheel::api::http {

// OK when `token` is empty (no admin token configured) or the request carries it; otherwise
// UNAUTHENTICATED (no or malformed Authorization header) or PERMISSION_DENIED (another token).
// `api` names the endpoints in the message ("the model repository API").
absl::Status CheckAdminToken(const Request& request, absl::string_view token,
                             absl::string_view api);

// 401 (with `WWW-Authenticate: Bearer`) or 403 for a failed CheckAdminToken.
Reply AdminErrorReply(const absl::Status& status);

}  // namespace flywheel::api::http
