#include "api/http/inference_handler.h"

#include <chrono>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "api/http/admin_auth.h"
#include "api/http/content_coding.h"
#include "api/http/infer_codec.h"
#include "api/http/json_body.h"
#include "api/http/route_check.h"
#include "api/http/url_path.h"
#include "api/http/v2_json.h"
#include "boost/asio/post.hpp"
#include "model_config.pb.h"
#include "rapidjson/document.h"
#include "rapidjson/error/en.h"
#include "serving/model_config.h"

namespace flywheel::api::http {
namespace {

namespace rj = rapidjson;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool HasHeader(const Request& request, absl::string_view name) {
  return request.find(boost::beast::string_view(name.data(), name.size())) != request.end();
}

absl::string_view Body(const Request& request) {
  return request.body() ? request.body()->view() : absl::string_view();
}

Reply InferReply(EncodedInferResponse encoded) {
  if (!encoded.has_binary()) return JsonReply(bhttp::status::ok, std::move(encoded.json));
  Reply reply;
  reply.content_type = "application/octet-stream";
  reply.headers.emplace_back(std::string(kInferHeaderLengthHeader),
                             std::to_string(encoded.json.size()));
  reply.body.text = std::move(encoded.json);
  auto owned = std::make_shared<EncodedInferResponse>(std::move(encoded));
  for (const EncodedInferResponse::Chunk& c : owned->binary) {
    reply.body.tail.emplace_back(c.data, c.size);
  }
  reply.body.keep_alive = std::move(owned);
  return reply;
}

// The optional JSON body of the repository endpoints: an object, or nothing.
absl::StatusOr<rj::Document> ParseOptionalObject(absl::string_view body) {
  rj::Document doc;
  if (absl::StripAsciiWhitespace(body).empty()) {
    doc.SetObject();
    return doc;
  }
  doc.Parse<rj::kParseIterativeFlag>(body.data(), body.size());
  if (doc.HasParseError()) {
    return absl::InvalidArgumentError(absl::StrCat("malformed JSON at offset ",
                                                   doc.GetErrorOffset(), ": ",
                                                   rj::GetParseError_En(doc.GetParseError())));
  }
  if (!doc.IsObject()) return absl::InvalidArgumentError("the request body must be a JSON object");
  return doc;
}

}  // namespace

enum class Endpoint {
  kNone,
  kServerMetadata,
  kLive,
  kReady,
  kAllStats,
  kModelMetadata,
  kModelReady,
  kModelConfig,
  kModelStats,
  kInfer,
  kRepositoryIndex,
  kLoad,
  kUnload,
};

struct InferenceHandler::Route {
  Endpoint endpoint = Endpoint::kNone;
  bhttp::verb method = bhttp::verb::get;
  std::string model;
  std::string version;
};

InferenceHandler::InferenceHandler(
    serving::Server* server, std::string admin_token, size_t max_request_bytes,
    boost::asio::thread_pool* blocking,
    std::vector<std::pair<std::string, std::shared_ptr<Handler>>> routes)
    : server_(server),
      admin_token_(std::move(admin_token)),
      max_request_bytes_(max_request_bytes),
      blocking_(blocking),
      routes_(std::move(routes)) {}

InferenceHandler::Route InferenceHandler::Match(const std::vector<std::string>& s) const {
  Route r;
  size_t n = s.size();
  if (n == 0 || s[0] != "v2") return r;
  if (n == 1) {
    r.endpoint = Endpoint::kServerMetadata;
  } else if (s[1] == "health" && n == 3 && (s[2] == "live" || s[2] == "ready")) {
    r.endpoint = s[2] == "live" ? Endpoint::kLive : Endpoint::kReady;
  } else if (s[1] == "models" && n == 3 && s[2] == "stats") {
    r.endpoint = Endpoint::kAllStats;
  } else if (s[1] == "models" && n >= 3) {
    r.model = s[2];
    size_t i = 3;
    if (n >= 5 && s[3] == "versions") {
      r.version = s[4];
      i = 5;
    }
    if (i == n) {
      r.endpoint = Endpoint::kModelMetadata;
    } else if (i + 1 == n) {
      const std::string& action = s[i];
      if (action == "ready") r.endpoint = Endpoint::kModelReady;
      if (action == "config") r.endpoint = Endpoint::kModelConfig;
      if (action == "stats") r.endpoint = Endpoint::kModelStats;
      if (action == "infer") {
        r.endpoint = Endpoint::kInfer;
        r.method = bhttp::verb::post;
      }
    }
  } else if (s[1] == "repository" && n == 3 && s[2] == "index") {
    r.endpoint = Endpoint::kRepositoryIndex;
    r.method = bhttp::verb::post;
  } else if (s[1] == "repository" && n == 5 && s[2] == "models" &&
             (s[4] == "load" || s[4] == "unload")) {
    r.endpoint = s[4] == "load" ? Endpoint::kLoad : Endpoint::kUnload;
    r.method = bhttp::verb::post;
    r.model = s[3];
  }
  return r;
}

void InferenceHandler::Handle(Request request, Respond respond) {
  auto segments = SplitPath(Target(request));
  if (!segments.ok()) return respond(ErrorReply(segments.status()));
  if (segments->size() >= 2 && (*segments)[0] == "v1") {
    for (auto& [prefix, handler] : routes_) {
      if ((*segments)[1] == prefix) return handler->Handle(std::move(request), std::move(respond));
    }
  }
  Route route = Match(*segments);
  if (route.endpoint == Endpoint::kNone) return respond(NoEndpointReply(request, ""));
  if (request.method() != route.method) {
    const auto allowed = bhttp::to_string(route.method);
    return respond(MethodNotAllowedReply(request, {allowed.data(), allowed.size()}));
  }
  auto coding = ParseContentCoding(HeaderValue(request, "Content-Encoding"));
  if (!coding.ok()) {
    return respond(ErrorReply(bhttp::status::unsupported_media_type, coding.status().message()));
  }
  if (*coding != ContentCoding::kIdentity && !Body(request).empty()) {
    // Inference-Header-Content-Length counts the decompressed body: align by it as the
    // transport does for plain bodies.
    // A missing or malformed header only loses the alignment; the decoder reports it.
    size_t aligned_at = 0;
    if (!absl::SimpleAtoi(HeaderValue(request, kInferHeaderLengthHeader), &aligned_at)) {
      aligned_at = 0;
    }
    auto inflated = Inflate(Body(request), *coding, max_request_bytes_, aligned_at);
    if (!inflated.ok()) {
      return respond(absl::IsResourceExhausted(inflated.status())
                         ? ErrorReply(bhttp::status::payload_too_large, inflated.status().message())
                         : ErrorReply(inflated.status()));
    }
    request.body() = *std::move(inflated);
  }
  switch (route.endpoint) {
    case Endpoint::kServerMetadata:
      return respond(JsonReply(bhttp::status::ok, ServerMetadataJson(server_->Metadata())));
    case Endpoint::kLive:
      // Triton answers health probes with an empty body: 200 when true, 400 when false.
      return respond(EmptyReply(server_->Live() ? bhttp::status::ok : bhttp::status::bad_request));
    case Endpoint::kReady:
      return respond(EmptyReply(server_->Ready() ? bhttp::status::ok : bhttp::status::bad_request));
    case Endpoint::kModelMetadata: {
      auto metadata = server_->GetModelMetadata(route.model, route.version);
      if (!metadata.ok()) return respond(ErrorReply(metadata.status()));
      return respond(JsonReply(bhttp::status::ok, ModelMetadataJson(*metadata)));
    }
    case Endpoint::kModelReady:
      return respond(ModelReady(route));
    case Endpoint::kModelConfig:
      return respond(ModelConfig(route));
    case Endpoint::kAllStats:
    case Endpoint::kModelStats:
      return respond(Statistics(route));
    case Endpoint::kInfer:
      return Infer(request, route, std::move(respond));
    case Endpoint::kRepositoryIndex:
    case Endpoint::kLoad:
    case Endpoint::kUnload:
      return Repository(request, route, std::move(respond));
    case Endpoint::kNone:
      break;
  }
}

void InferenceHandler::Infer(const Request& request, const Route& route, Respond respond) {
  auto infer = std::make_unique<serving::InferRequest>();
  infer->model_name = route.model;
  infer->model_version = route.version;
  infer->arrival_ns = NowNs();
  std::shared_ptr<BodyBytes> body = request.body();
  absl::string_view bytes = Body(request);
  std::optional<size_t> json_size;
  if (HasHeader(request, kInferHeaderLengthHeader)) {
    auto n = ParseInferHeaderLength(HeaderValue(request, kInferHeaderLengthHeader), bytes.size());
    if (!n.ok()) return respond(ErrorReply(n.status()));
    json_size = *n;
  }
  InferEncodeOptions options;
  absl::Status decoded = DecodeInferRequest(bytes.data(), bytes.size(), json_size, std::move(body),
                                            infer.get(), &options);
  if (!decoded.ok()) {
    return respond(ErrorReply(absl::Status(
        decoded.code(), absl::StrCat("model '", route.model, "': ", decoded.message()))));
  }
  // The callback runs on a scheduler thread (or here, for a request refused at once): encoding
  // happens there, never on an I/O thread.
  server_->Infer(std::move(infer), [respond = std::move(respond),
                                    options](absl::StatusOr<serving::InferResponse> response) {
    if (!response.ok()) return respond(ErrorReply(response.status()));
    auto encoded = EncodeInferResponse(*response, options);
    if (!encoded.ok()) return respond(ErrorReply(encoded.status()));
    respond(InferReply(*std::move(encoded)));
  });
}

Reply InferenceHandler::ModelReady(const Route& route) {
  auto ready = server_->ModelReady(route.model, route.version);
  if (!ready.ok()) return ErrorReply(ready.status());
  if (*ready) return EmptyReply(bhttp::status::ok);
  // Triton answers 400 for a known model that is not ready.
  return ErrorReply(
      bhttp::status::bad_request,
      absl::StrCat("model '", route.model, "'",
                   route.version.empty() ? "" : " version " + route.version, " is not ready"));
}

Reply InferenceHandler::ModelConfig(const Route& route) {
  inference::ModelConfig config;
  absl::Status status = server_->GetModelConfig(route.model, route.version, &config);
  if (!status.ok()) return ErrorReply(status);
  return JsonReply(bhttp::status::ok, serving::ModelConfigToJson(config));
}

Reply InferenceHandler::Statistics(const Route& route) {
  auto stats = server_->Statistics(route.model, route.version);
  if (!stats.ok()) return ErrorReply(stats.status());
  return JsonReply(bhttp::status::ok, StatisticsJson(*stats));
}

absl::Status InferenceHandler::CheckAdmin(const Request& request) const {
  return CheckAdminToken(request, admin_token_, "the model repository API");
}

void InferenceHandler::Repository(const Request& request, const Route& route, Respond respond) {
  absl::Status allowed = CheckAdmin(request);
  if (!allowed.ok()) {
    return respond(AdminErrorReply(allowed));
  }
  auto doc = ParseOptionalObject(Body(request));
  if (!doc.ok()) return respond(ErrorReply(doc.status()));
  if (route.endpoint == Endpoint::kRepositoryIndex) {
    bool ready_only = false;
    auto it = doc->FindMember("ready");
    if (it != doc->MemberEnd()) {
      if (!it->value.IsBool()) {
        return respond(ErrorReply(bhttp::status::bad_request, "'ready' must be a boolean"));
      }
      ready_only = it->value.GetBool();
    }
    return respond(
        JsonReply(bhttp::status::ok, RepositoryIndexJson(server_->RepositoryIndex(ready_only))));
  }
  std::optional<std::string> config;
  auto params = doc->FindMember("parameters");
  if (params != doc->MemberEnd()) {
    if (!params->value.IsObject()) {
      return respond(ErrorReply(bhttp::status::bad_request, "'parameters' must be a JSON object"));
    }
    for (auto m = params->value.MemberBegin(); m != params->value.MemberEnd(); ++m) {
      absl::string_view key(m->name.GetString(), m->name.GetStringLength());
      if (absl::StartsWith(key, "file:")) {
        return respond(ErrorReply(absl::UnimplementedError(absl::StrCat(
            "parameter '", key, "': loading model files from the request is not supported"))));
      }
      if (key == "config" && route.endpoint == Endpoint::kLoad) {
        if (!m->value.IsString()) {
          return respond(ErrorReply(bhttp::status::bad_request,
                                    "parameter 'config' must be a string holding the model "
                                    "configuration as JSON"));
        }
        config.emplace(m->value.GetString(), m->value.GetStringLength());
      }
    }
  }
  // Loads and unloads wait for the model: never on an I/O thread.
  boost::asio::post(*blocking_,
                    [this, route, config = std::move(config), respond = std::move(respond)] {
                      absl::Status status = route.endpoint == Endpoint::kLoad
                                                ? server_->LoadModel(route.model, config)
                                                : server_->UnloadModel(route.model);
                      respond(status.ok() ? EmptyReply(bhttp::status::ok) : ErrorReply(status));
                    });
}

}  // namespace flywheel::api::http
