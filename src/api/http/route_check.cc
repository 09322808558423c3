#include "api/http/route_check.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "api/http/admin_auth.h"
#include "api/http/v2_json.h"

namespace flywheel::api::http {

absl::string_view Target(const Request& request) {
  return {request.target().data(), request.target().size()};
}

Reply NoEndpointReply(const Request& request, absl::string_view endpoints) {
  return ErrorReply(
      bhttp::status::not_found,
      absl::StrCat("no endpoint at ", Target(request), endpoints.empty() ? "" : "; ", endpoints));
}

Reply MethodNotAllowedReply(const Request& request, absl::string_view allowed) {
  const absl::string_view method(request.method_string().data(), request.method_string().size());
  Reply reply = ErrorReply(
      bhttp::status::method_not_allowed,
      absl::StrCat("method ", method, " is not allowed on ", Target(request), "; use ", allowed));
  reply.headers.emplace_back("Allow", std::string(allowed));
  return reply;
}

std::optional<Reply> CheckRoute(const Request& request, const RouteRules& rules) {
  if (rules.allowed.empty()) return NoEndpointReply(request, rules.endpoints);
  const absl::string_view method(request.method_string().data(), request.method_string().size());
  // Whole names only: "POST" must not match inside a longer method name.
  if (!absl::StrContains(absl::StrCat(", ", rules.allowed, ","), absl::StrCat(", ", method, ","))) {
    return MethodNotAllowedReply(request, rules.allowed);
  }
  if (request.method() != bhttp::verb::get) {
    absl::Status admitted = CheckAdminToken(request, rules.admin_token, rules.api);
    if (!admitted.ok()) return AdminErrorReply(admitted);
  }
  return std::nullopt;
}

}  // namespace flywheel::api::http
