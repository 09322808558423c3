#include "api/http/change_error.h"

#include "api/http/v2_json.h"

namespace flywheel::api::http {

Reply ChangeErrorReply(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
      return ErrorReply(bhttp::status::conflict, status.message());
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kDataLoss:
      return ErrorReply(bhttp::status::internal_server_error, status.message());
    default:
      return ErrorReply(status);
  }
}

}  // namespace flywheel::api::http
