// JSON bodies of the KServe v2 endpoints other than /infer (server and model metadata,
// statistics, repository index), the {"error": ...} body, and the mapping from absl status codes
// to HTTP statuses that Triton clients expect. Internal to api/http.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "api/http/http_message.h"
#include "serving/server.h"

namespace flywheel::api::http {

// Triton's mapping where Triton has one (INVALID_ARGUMENT 400, NOT_FOUND 404, UNAVAILABLE 503,
// UNIMPLEMENTED 501, INTERNAL 500), HTTP's canonical one for the rest.
bhttp::status HttpStatusFor(absl::StatusCode code);

Reply JsonReply(bhttp::status status, std::string json);
// {"error": message} with the mapped status.
Reply ErrorReply(const absl::Status& status);
Reply ErrorReply(bhttp::status status, absl::string_view message);
// A reply with no body.
Reply EmptyReply(bhttp::status status);

std::string ErrorJson(absl::string_view message);
std::string ServerMetadataJson(const serving::ServerMetadata& metadata);
std::string ModelMetadataJson(const serving::ModelMetadata& metadata);
// Triton's statistics extension: {"model_stats": [...]}.
std::string StatisticsJson(const std::vector<serving::ModelStatistics>& stats);
// The repository extension's index: [{"name", "version", "state", "reason"}...].
std::string RepositoryIndexJson(const std::vector<serving::ModelIndexEntry>& index);

}  // namespace flywheel::api::http
