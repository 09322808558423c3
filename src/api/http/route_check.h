// The checks every /v1 admin-style handler runs before its work: the request target, 404 for a
// path no endpoint answers, 405 (with Allow) for a method the path does not allow, and the admin
// token for methods that change something. Internal to api/http.
#pragma once

#include <optional>

#include "absl/strings/string_view.h"
#include "api/http/http_message.h"

namespace flywheel::api::http {

// The request target ("/v1/rollouts/rank?x=1") as a view into the request.
absl::string_view Target(const Request& request);

// 404: "no endpoint at <target>; <endpoints>". `endpoints` says what the API answers (may be
// empty).
Reply NoEndpointReply(const Request& request, absl::string_view endpoints);

// 405 naming the method and `allowed` ("GET, POST"), with `Allow: <allowed>`.
Reply MethodNotAllowedReply(const Request& request, absl::string_view allowed);

// What a handler knows about the path it matched.
struct RouteRules {
  // The methods the path allows, ", "-separated ("GET", "GET, POST"); empty when no endpoint
  // matched the path.
  absl::string_view allowed;
  // The endpoints the API answers, for the 404 message.
  absl::string_view endpoints;
  // Methods other than GET need this token (none when empty); `api` names the endpoints in the
  // refusal ("the rollout API").
  absl::string_view admin_token;
  absl::string_view api;
};

// The reply for the first check the request fails (404, 405, then 401/403 for a method other
// than GET), or nullopt when the handler should serve it.
std::optional<Reply> CheckRoute(const Request& request, const RouteRules& rules);

}  // namespace flywheel::api::http
