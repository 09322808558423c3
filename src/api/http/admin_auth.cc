#include "api/http/admin_auth.h"

#include <cstddef>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "api/http/v2_json.h"

namespace flywheel::api::http {
namespace {

// Compares without an early exit, so that response timing does not reveal the token.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

}  // namespace

absl::Status CheckAdminToken(const Request& request, absl::string_view token,
                             absl::string_view api) {
  if (token.empty()) return absl::OkStatus();
  auto it = request.find(boost::beast::http::field::authorization);
  absl::string_view auth = it == request.end()
                               ? absl::string_view()
                               : absl::string_view(it->value().data(), it->value().size());
  if (auth.empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat(api, " needs the header 'Authorization: Bearer <admin token>'"));
  }
  absl::string_view given = auth;
  if (!absl::ConsumePrefix(&given, "Bearer ") && !absl::ConsumePrefix(&given, "bearer ")) {
    return absl::UnauthenticatedError("the Authorization header must read 'Bearer <admin token>'");
  }
  if (!ConstantTimeEquals(absl::StripAsciiWhitespace(given), token)) {
    return absl::PermissionDeniedError("the admin token does not match");
  }
  return absl::OkStatus();
}

Reply AdminErrorReply(const absl::Status& status) {
  Reply reply = ErrorReply(status);
  if (absl::IsUnauthenticated(status)) reply.headers.emplace_back("WWW-Authenticate", "Bearer");
  return reply;
}

}  // namespace flywheel::api::http
