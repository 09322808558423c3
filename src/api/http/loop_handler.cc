#include "api/http/loop_handler.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "api/http/http_message.h"
#include "api/http/json_body.h"
#include "api/http/route_check.h"
#include "api/http/url_path.h"
#include "api/http/v2_json.h"
#include "lifecycle/loop.h"
#include "rapidjson/document.h"

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
    std::string reason = "started through POST /v1/loops/" + name + "/run";
    for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
      const std::string key(it->name.GetString(), it->name.GetStringLength());
      if (key != "reason" || !it->value.IsString()) {
        return ErrorReply(bhttp::status::bad_request,
                          key == "reason" ? "'reason' must be a string"
                                          : absl::StrCat("unknown field '", key,
                                                         "' in the body; known fields: reason"));
      }
      reason = absl::StrCat(it->value.GetString(), " (", reason, ")");
    }
    absl::Status started = runner_->RunNow(name, reason);
    if (!started.ok()) return LoopErrorReply(started);
    absl::StatusOr<lifecycle::LoopState> state = runner_->State(name);
    if (!state.ok()) return LoopErrorReply(state.status());
    return JsonReply(bhttp::status::accepted, lifecycle::LoopStateToJson(*state));
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
