// Errors of the endpoints that change the model lifecycle (the registry and rollout APIs) as HTTP
// statuses, shared so that the same refusal reads the same from both. Internal to api/http.
#pragma once

#include "absl/status/status.h"
#include "api/http/http_message.h"

namespace flywheel::api::http {

// A state that forbids the change (ALREADY_EXISTS, FAILED_PRECONDITION, ABORTED: a version
// registered already, an active rollout already, a rollback without history) is a conflict
// (409), not a bad request; files that cannot be written or read (PERMISSION_DENIED, DATA_LOSS)
// are the server's problem (500), not the caller's permission. Other codes as ErrorReply.
Reply ChangeErrorReply(const absl::Status& status);

}  // namespace flywheel::api::http
