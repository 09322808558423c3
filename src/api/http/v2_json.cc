#include "api/http/v2_json.h"

#include <utility>

#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace flywheel::api::http {
namespace {

namespace rj = rapidjson;
using Writer = rj::Writer<rj::StringBuffer>;

void Str(Writer& w, absl::string_view s) {
  w.String(s.data(), static_cast<rj::SizeType>(s.size()));
}

void Key(Writer& w, absl::string_view s) { w.Key(s.data(), static_cast<rj::SizeType>(s.size())); }

std::string Take(const rj::StringBuffer& sb) { return std::string(sb.GetString(), sb.GetSize()); }

void Tensors(Writer& w, absl::string_view key,
             const std::vector<serving::TensorMetadata>& tensors) {
  Key(w, key);
  w.StartArray();
  for (const serving::TensorMetadata& t : tensors) {
    w.StartObject();
    Key(w, "name");
    Str(w, t.name);
    Key(w, "datatype");
    Str(w, t.datatype);
    Key(w, "shape");
    w.StartArray();
    for (int64_t d : t.shape) w.Int64(d);
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
}

void Duration(Writer& w, absl::string_view key, const serving::DurationFigure& f) {
  Key(w, key);
  w.StartObject();
  Key(w, "count");
  w.Uint64(f.count);
  Key(w, "ns");
  w.Uint64(f.ns);
  w.EndObject();
}

}  // namespace

bhttp::status HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return bhttp::status::ok;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kCancelled:
      return bhttp::status::bad_request;
    case absl::StatusCode::kNotFound:
      return bhttp::status::not_found;
    case absl::StatusCode::kUnauthenticated:
      return bhttp::status::unauthorized;
    case absl::StatusCode::kPermissionDenied:
      return bhttp::status::forbidden;
    case absl::StatusCode::kResourceExhausted:
      return bhttp::status::too_many_requests;
    // Triton reports a queue timeout as UNAVAILABLE: the client may retry.
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return bhttp::status::service_unavailable;
    case absl::StatusCode::kUnimplemented:
      return bhttp::status::not_implemented;
    case absl::StatusCode::kAborted:
      return bhttp::status::conflict;
    default:
      return bhttp::status::internal_server_error;
  }
}

Reply JsonReply(bhttp::status status, std::string json) {
  Reply r;
  r.status = status;
  r.content_type = "application/json";
  r.body.text = std::move(json);
  return r;
}

Reply ErrorReply(const absl::Status& status) {
  return ErrorReply(HttpStatusFor(status.code()), status.message());
}

Reply ErrorReply(bhttp::status status, absl::string_view message) {
  return JsonReply(status, ErrorJson(message));
}

Reply EmptyReply(bhttp::status status) {
  Reply r;
  r.status = status;
  return r;
}

std::string ErrorJson(absl::string_view message) {
  rj::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  Key(w, "error");
  Str(w, message);
  w.EndObject();
  return Take(sb);
}

std::string ServerMetadataJson(const serving::ServerMetadata& metadata) {
  rj::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  Key(w, "name");
  Str(w, metadata.name);
  Key(w, "version");
  Str(w, metadata.version);
  Key(w, "extensions");
  w.StartArray();
  for (const std::string& e : metadata.extensions) Str(w, e);
  w.EndArray();
  w.EndObject();
  return Take(sb);
}

std::string ModelMetadataJson(const serving::ModelMetadata& metadata) {
  rj::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  Key(w, "name");
  Str(w, metadata.name);
  Key(w, "versions");
  w.StartArray();
  for (const std::string& v : metadata.versions) Str(w, v);
  w.EndArray();
  Key(w, "platform");
  Str(w, metadata.platform);
  Tensors(w, "inputs", metadata.inputs);
  Tensors(w, "outputs", metadata.outputs);
  w.EndObject();
  return Take(sb);
}

std::string StatisticsJson(const std::vector<serving::ModelStatistics>& stats) {
  rj::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  Key(w, "model_stats");
  w.StartArray();
  for (const serving::ModelStatistics& s : stats) {
    w.StartObject();
    Key(w, "name");
    Str(w, s.name);
    Key(w, "version");
    Str(w, s.version);
    Key(w, "last_inference");
    w.Uint64(s.last_inference_ms);
    Key(w, "inference_count");
    w.Uint64(s.inference_count);
    Key(w, "execution_count");
    w.Uint64(s.execution_count);
    Key(w, "inference_stats");
    w.StartObject();
    Duration(w, "success", s.success);
    Duration(w, "fail", s.fail);
    Duration(w, "queue", s.queue);
    Duration(w, "compute_input", s.compute_input);
    Duration(w, "compute_infer", s.compute_infer);
    Duration(w, "compute_output", s.compute_output);
    // Triton clients read these too; flywheel has no response cache yet, so they stay zero.
    Duration(w, "cache_hit", {});
    Duration(w, "cache_miss", {});
    w.EndObject();
    Key(w, "batch_stats");
    w.StartArray();
    for (const serving::BatchFigures& b : s.batch_stats) {
      w.StartObject();
      Key(w, "batch_size");
      w.Int64(b.batch_size);
      Duration(w, "compute_input", b.compute_input);
      Duration(w, "compute_infer", b.compute_infer);
      Duration(w, "compute_output", b.compute_output);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return Take(sb);
}

std::string RepositoryIndexJson(const std::vector<serving::ModelIndexEntry>& index) {
  rj::StringBuffer sb;
  Writer w(sb);
  w.StartArray();
  for (const serving::ModelIndexEntry& e : index) {
    w.StartObject();
    Key(w, "name");
    Str(w, e.name);
    if (!e.version.empty()) {
      Key(w, "version");
      Str(w, e.version);
    }
    if (!e.state.empty()) {
      Key(w, "state");
      Str(w, e.state);
    }
    if (!e.reason.empty()) {
      Key(w, "reason");
      Str(w, e.reason);
    }
    w.EndObject();
  }
  w.EndArray();
  return Take(sb);
}

}  // namespace flywheel::api::http
