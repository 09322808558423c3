#include "api/http/features_handler.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "api/http/http_message.h"
#include "api/http/json_body.h"
#include "api/http/route_check.h"
#include "api/http/url_path.h"
#include "api/http/v2_json.h"
#include "boost/asio/post.hpp"
#include "boost/asio/thread_pool.hpp"
#include "features/lookup.h"
#include "features/service.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace flywheel::api {
namespace http {
namespace {

namespace rj = rapidjson;

// 400 with the refused batch's errors one by one, beside the summary a plain client prints.
Reply PushErrorReply(const absl::Status& status, const std::vector<features::EventError>& errors) {
  if (errors.empty()) return ErrorReply(status);
  rj::StringBuffer sb;
  rj::Writer<rj::StringBuffer> w(sb);
  w.StartObject();
  w.Key("error");
  w.String(status.message().data(), static_cast<rj::SizeType>(status.message().size()));
  w.Key("errors");
  w.StartArray();
  for (const features::EventError& e : errors) {
    w.StartObject();
    w.Key("event");
    w.Uint64(e.index);
    w.Key("message");
    w.String(e.message.data(), static_cast<rj::SizeType>(e.message.size()));
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return JsonReply(HttpStatusFor(status.code()), std::string(sb.GetString(), sb.GetSize()));
}

// Plain keys ("u1", 7) in "entities" become objects naming the key field of the requested views,
// so {"entities": ["u1"]} reads {"user_id": "u1"} when every requested view is keyed by user_id
// alone. Views of multi-key entities then report MISSING_KEY; views keyed by different fields
// make a plain key ambiguous (an error).
absl::Status ExpandPlainKeys(const features::FeatureRegistry& registry, rj::Document& body) {
  auto entities = body.FindMember("entities");
  auto features = body.FindMember("features");
  if (entities == body.MemberEnd() || !entities->value.IsArray()) return absl::OkStatus();
  std::vector<std::string> key_fields;
  if (features != body.MemberEnd() && features->value.IsArray()) {
    for (const rj::Value& f : features->value.GetArray()) {
      if (!f.IsString()) continue;
      absl::StatusOr<features::FeatureRef> ref =
          registry.Resolve(absl::string_view(f.GetString(), f.GetStringLength()));
      if (!ref.ok()) continue;
      const features::ViewDef& view = registry.views()[ref->view];
      const features::EntityDef& entity = registry.entities()[view.entity_index];
      if (entity.keys.size() != 1) continue;
      bool known = false;
      for (const std::string& k : key_fields) known |= k == entity.keys[0];
      if (!known) key_fields.push_back(entity.keys[0]);
    }
  }
  auto& allocator = body.GetAllocator();
  for (rj::SizeType i = 0; i < entities->value.Size(); ++i) {
    rj::Value& e = entities->value[i];
    if (e.IsObject()) continue;
    if (!e.IsString() && !e.IsInt64()) {
      return absl::InvalidArgumentError(
          absl::StrCat("entities[", i,
                       "]: expected an entity key (a string or an integer) or an object of key "
                       "fields such as {\"user_id\": \"u1\"}"));
    }
    // A user id is no item id: one plain key cannot serve views keyed by different fields.
    if (key_fields.size() > 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "entities[", i, "]: a plain key is ambiguous: the requested views are keyed by ",
          absl::StrJoin(key_fields, " and "), "; give objects of key fields such as {\"",
          key_fields[0], "\": ..., \"", key_fields[1], "\": ...}"));
    }
    rj::Value row(rj::kObjectType);
    for (const std::string& field : key_fields) {
      row.AddMember(rj::Value(field.c_str(), static_cast<rj::SizeType>(field.size()), allocator),
                    rj::Value(e, allocator), allocator);
    }
    e = std::move(row);
  }
  return absl::OkStatus();
}

class FeaturesHandler : public Handler {
 public:
  FeaturesHandler(features::FeatureService* service, const FeaturesHandlerOptions& options)
      : service_(service),
        max_request_bytes_(options.max_request_bytes),
        pool_(static_cast<size_t>(std::max(options.worker_threads, 1))) {}

  ~FeaturesHandler() override { pool_.join(); }

  void Handle(Request request, Respond respond) override {
    absl::StatusOr<std::vector<std::string>> segments = SplitPath(Target(request));
    if (!segments.ok()) return respond(ErrorReply(segments.status()));
    const std::string endpoint = segments->size() == 3 ? (*segments)[2] : std::string();
    absl::string_view allowed;
    if (endpoint == "views") {
      allowed = "GET";
    } else if (endpoint == "push" || endpoint == "online") {
      allowed = "POST";
    }
    std::optional<Reply> refused =
        CheckRoute(request, {.allowed = allowed,
                             .endpoints = "the feature store answers POST /v1/features/push, POST "
                                          "/v1/features/online and GET /v1/features/views"});
    if (refused) return respond(*std::move(refused));
    if (endpoint == "views") return respond(JsonReply(bhttp::status::ok, service_->views_json()));
    if (endpoint == "online" && !service_->lookups_may_block()) {
      return respond(Online(request));
    }
    // Pushes wait for the event log's fsync; lookups on a Redis store for its reply.
    boost::asio::post(pool_, [this, endpoint, request = std::move(request),
                              respond = std::move(respond)]() mutable {
      respond(endpoint == "push" ? Push(request) : Online(request));
    });
  }

 private:
  Reply Push(const Request& request) {
    rj::Document doc;
    std::shared_ptr<BodyBytes> holder;
    absl::Status parsed = ParseJsonObjectBody(request, max_request_bytes_, &doc, &holder);
    if (!parsed.ok()) return BodyErrorReply(parsed);
    auto source = doc.FindMember("source");
    if (source == doc.MemberEnd() || !source->value.IsString()) {
      return ErrorReply(bhttp::status::bad_request,
                        "'source' must name a push source (a string), e.g. \"clicks\"");
    }
    auto events = doc.FindMember("events");
    if (events == doc.MemberEnd() || !events->value.IsArray()) {
      return ErrorReply(bhttp::status::bad_request, "'events' must be an array of event objects");
    }
    absl::string_view name(source->value.GetString(), source->value.GetStringLength());
    std::vector<features::EventError> errors;
    absl::StatusOr<features::PushOutcome> outcome = service_->Push(name, events->value, &errors);
    if (!outcome.ok()) return PushErrorReply(outcome.status(), errors);
    rj::StringBuffer sb;
    rj::Writer<rj::StringBuffer> w(sb);
    w.StartObject();
    w.Key("source");
    w.String(name.data(), static_cast<rj::SizeType>(name.size()));
    w.Key("accepted");
    w.Uint64(outcome->accepted);
    w.Key("late");
    w.Uint64(outcome->late);
    w.EndObject();
    return JsonReply(bhttp::status::ok, std::string(sb.GetString(), sb.GetSize()));
  }

  Reply Online(const Request& request) {
    rj::Document doc;
    std::shared_ptr<BodyBytes> holder;
    absl::Status parsed = ParseJsonObjectBody(request, max_request_bytes_, &doc, &holder);
    if (!parsed.ok()) return BodyErrorReply(parsed);
    absl::Status expanded = ExpandPlainKeys(service_->registry(), doc);
    if (!expanded.ok()) return ErrorReply(expanded);
    absl::StatusOr<features::LookupRequest> lookup = features::LookupRequestFromJson(doc);
    if (!lookup.ok()) return ErrorReply(lookup.status());
    absl::StatusOr<features::LookupResult> result = service_->Lookup(*lookup);
    if (!result.ok()) return ErrorReply(result.status());
    return JsonReply(bhttp::status::ok, features::LookupResultToJson(*lookup, *result));
  }

  features::FeatureService* service_;
  size_t max_request_bytes_;
  boost::asio::thread_pool pool_;
};

}  // namespace
}  // namespace http

std::shared_ptr<http::Handler> MakeFeaturesHandler(features::FeatureService* service,
                                                   const FeaturesHandlerOptions& options) {
  return std::make_shared<http::FeaturesHandler>(service, options);
}

}  // namespace flywheel::api
