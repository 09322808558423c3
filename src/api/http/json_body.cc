#include "api/http/json_body.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "api/http/content_coding.h"
#include "api/http/v2_json.h"
#include "rapidjson/error/en.h"

namespace flywheel::api::http {

namespace rj = rapidjson;

absl::string_view HeaderValue(const Request& request, absl::string_view name) {
  auto it = request.find(boost::beast::string_view(name.data(), name.size()));
  if (it == request.end()) return {};
  return {it->value().data(), it->value().size()};
}

absl::Status ParseJsonObjectBody(const Request& request, size_t max_bytes, rj::Document* doc,
                                 std::shared_ptr<BodyBytes>* holder, EmptyBody empty) {
  absl::string_view body = request.body() ? request.body()->view() : absl::string_view();
  absl::StatusOr<ContentCoding> coding =
      ParseContentCoding(HeaderValue(request, "Content-Encoding"));
  if (!coding.ok()) return coding.status();
  if (*coding != ContentCoding::kIdentity && !body.empty()) {
    absl::StatusOr<std::shared_ptr<BodyBytes>> inflated = Inflate(body, *coding, max_bytes, 0);
    if (!inflated.ok()) return inflated.status();
    *holder = std::move(*inflated);
    body = (*holder)->view();
  }
  if (body.size() > max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the request body has ", body.size(), " bytes; the limit is ", max_bytes));
  }
  if (empty == EmptyBody::kEmptyObject && absl::StripAsciiWhitespace(body).empty()) {
    doc->SetObject();
    return absl::OkStatus();
  }
  if (body.empty()) return absl::InvalidArgumentError("the request body is empty; expected JSON");
  doc->Parse<rj::kParseFullPrecisionFlag | rj::kParseIterativeFlag>(body.data(), body.size());
  if (doc->HasParseError()) {
    return absl::InvalidArgumentError(absl::StrCat("the request body is not valid JSON at byte ",
                                                   doc->GetErrorOffset(), ": ",
                                                   rj::GetParseError_En(doc->GetParseError())));
  }
  if (!doc->IsObject()) return absl::InvalidArgumentError("the request body must be a JSON object");
  return absl::OkStatus();
}

Reply BodyErrorReply(const absl::Status& status) {
  if (status.code() == absl::StatusCode::kResourceExhausted) {
    return ErrorReply(bhttp::status::payload_too_large, status.message());
  }
  if (status.code() == absl::StatusCode::kUnimplemented) {
    return ErrorReply(bhttp::status::unsupported_media_type, status.message());
  }
  return ErrorReply(status);
}

}  // namespace flywheel::api::http
