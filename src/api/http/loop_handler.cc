#include "api/http/loop_handler.h"

#include <algorithm>
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
#include "lifecycle/loop.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace flywheel::api {
namespace http {
namespace {

namespace rj = rapidjson;

Reply LoopErrorReply(const absl::Status& status) {
  if (status.code() == absl::StatusCode::kFailedPrecondition) {
    return ErrorReply(bhttp::status::conflict, status.message());
  }
  return ErrorReply(status);
}

class LoopHandler : public Handler {
 public:
  LoopHandler(lifecycle::LoopRunner* runner, LoopHandlerOptions options)
      : runner_(runner), options_(std::move(options)) {}

  // Every call only reads in-memory state or starts a thread, except the history read (one small
  // file), so it is answered on the I/O thread.
  void Handle(Request request, Respond respond) override {
    absl::StatusOr<std::vector<std::string>> segments = SplitPath(Target(request));
    if (!segments.ok()) return respond(ErrorReply(segments.status()));
    const std::vector<std::string>& s = *segments;  // {"v1", "loops", loop, "run"}
    const bool run = s.size() == 4 && s[3] == "run";
    absl::string_view allowed;
    if (s.size() == 2 || s.size() == 3) {
      allowed = "GET";
    } else if (run) {
      allowed = "POST";
    }
    std::optional<Reply> refused =
        CheckRoute(request, {.allowed = allowed,
                             .endpoints = "the loops API answers /v1/loops[/{loop}[/run]]",
                             .admin_token = options_.admin_token,
                             .api = "the loops API"});
    if (refused) return respond(*std::move(refused));
    if (run) return respond(Run(s[2], request));
    respond(s.size() == 2 ? List() : One(s[2]));
  }

 private:
  Reply List() const {
    std::string json = "{\"loops\":[";
    bool first = true;
    for (const lifecycle::LoopState& state : runner_->States()) {
      if (!first) json.push_back(',');
      first = false;
      json += lifecycle::LoopStateToJson(state);
    }
    json += "]}";
    return JsonReply(bhttp::status::ok, std::move(json));
  }

  Reply One(const std::string& name) const {
    absl::StatusOr<lifecycle::LoopState> state = runner_->State(name);
    if (!state.ok()) return LoopErrorReply(state.status());
    absl::StatusOr<std::vector<lifecycle::LoopEvent>> history = runner_->History(name);
    if (!history.ok()) return LoopErrorReply(history.status());
    std::string json =
        absl::StrCat("{\"loop\":", lifecycle::LoopStateToJson(*state), ",\"history\":[");
    for (size_t i = 0; i < history->size(); ++i) {
      if (i > 0) json.push_back(',');
      json += lifecycle::LoopEventToJson((*history)[i]);
    }
    json += "]}";
    return JsonReply(bhttp::status::ok, std::move(json));
  }

  Reply Run(const std::string& name, const Request& request) {
    rj::Document doc;
    std::shared_ptr<BodyBytes> holder;
    absl::Status parsed = ParseJsonObjectBody(request, options_.max_request_bytes, &doc, &holder,
                                              EmptyBody::kEmptyObject);
    if (!parsed.ok()) return ErrorReply(parsed);
    if (doc.HasMember("alerts")) return RunForAlerts(name, doc);
    std::string reason = "started through POST /v1/loops/" + name + "/run";
    for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
      const std::string key(it->name.GetString(), it->name.GetStringLength());
      if (key != "reason" || !it->value.IsString()) {
        return ErrorReply(bhttp::status::bad_request,
                          key == "reason" ? "'reason' must be a string"
                                          : absl::StrCat("unknown field '", key,
                                                         "' in the body; known fields: reason, or "
                                                         "an Alertmanager webhook's alerts"));
      }
      reason = absl::StrCat(it->value.GetString(), " (", reason, ")");
    }
    absl::Status started = runner_->RunNow(name, reason);
    if (!started.ok()) return LoopErrorReply(started);
    absl::StatusOr<lifecycle::LoopState> state = runner_->State(name);
    if (!state.ok()) return LoopErrorReply(state.status());
    return JsonReply(bhttp::status::accepted, lifecycle::LoopStateToJson(*state));
  }

  // An Alertmanager webhook notification (a receiver with `url: .../v1/loops/{loop}/run`): firing
  // alerts start a run, named in its reason; a resolved group, or a loop that is running already,
  // is answered 200 without a run, so that Alertmanager does not retry it.
  Reply RunForAlerts(const std::string& name, const rj::Document& doc) {
    const rj::Value& alerts = doc["alerts"];
    if (!alerts.IsArray()) {
      return ErrorReply(bhttp::status::bad_request,
                        "'alerts' must be an array (Alertmanager's "
                        "webhook format)");
    }
    std::vector<std::string> firing;
    for (const rj::Value& alert : alerts.GetArray()) {
      if (!alert.IsObject()) continue;
      auto status = alert.FindMember("status");
      if (status == alert.MemberEnd() || !status->value.IsString() ||
          std::string(status->value.GetString()) != "firing") {
        continue;
      }
      std::string alertname = "unnamed alert";
      auto labels = alert.FindMember("labels");
      if (labels != alert.MemberEnd() && labels->value.IsObject()) {
        auto n = labels->value.FindMember("alertname");
        if (n != labels->value.MemberEnd() && n->value.IsString()) alertname = n->value.GetString();
      }
      if (std::find(firing.begin(), firing.end(), alertname) == firing.end()) {
        firing.push_back(std::move(alertname));
      }
    }
    auto answer = [](bool started, const std::string& detail) {
      rj::StringBuffer buffer;
      rj::Writer<rj::StringBuffer> w(buffer);
      w.StartObject();
      w.Key("started");
      w.Bool(started);
      w.Key("detail");
      w.String(detail.data(), static_cast<rj::SizeType>(detail.size()));
      w.EndObject();
      return JsonReply(started ? bhttp::status::accepted : bhttp::status::ok,
                       std::string(buffer.GetString(), buffer.GetSize()));
    };
    if (firing.empty()) return answer(false, "no firing alert in the notification");
    const std::string reason =
        absl::StrCat("alert ", absl::StrJoin(firing, ", "), " firing (Alertmanager webhook)");
    absl::Status started = runner_->RunNow(name, reason);
    if (started.code() == absl::StatusCode::kFailedPrecondition) {
      return answer(false, "the loop is running already");
    }
    if (!started.ok()) return LoopErrorReply(started);
    return answer(true, "started: " + absl::StrJoin(firing, ", "));
  }

  lifecycle::LoopRunner* runner_;
  LoopHandlerOptions options_;
};

}  // namespace
}  // namespace http

std::shared_ptr<http::Handler> MakeLoopHandler(lifecycle::LoopRunner* runner,
                                               LoopHandlerOptions options) {
  return std::make_shared<http::LoopHandler>(runner, std::move(options));
}

}  // namespace flywheel::api
