// /v1/rollouts: decodes the calls, runs them on the rollout controller off the I/O threads and
// encodes its statuses (see rollout_handler.h).
#include "api/http/rollout_handler.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "api/http/change_error.h"
#include "api/http/http_message.h"
#include "api/http/json_body.h"
#include "api/http/route_check.h"
#include "api/http/url_path.h"
#include "api/http/v2_json.h"
#include "boost/asio/post.hpp"
#include "boost/asio/thread_pool.hpp"
#include "core/status.h"
#include "lifecycle/registry.h"
#include "lifecycle/rollout.h"
#include "lifecycle/rollout_json.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace flywheel::api {
namespace http {
namespace {

namespace rj = rapidjson;
using lifecycle::ChangeAuthor;
using lifecycle::RolloutController;
using lifecycle::RolloutStatus;

constexpr char kApiName[] = "the rollout API";
constexpr char kDefaultAuthor[] = "http";

absl::StatusOr<ChangeAuthor> Author(const rj::Document& doc, bool only_author) {
  ChangeAuthor author;
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    const absl::string_view name(it->name.GetString(), it->name.GetStringLength());
    if (name != "by" && name != "note") {
      if (only_author) {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown field '", name, "' in the body; known fields: by, note"));
      }
      continue;
    }
    if (!it->value.IsString()) {
      return absl::InvalidArgumentError(absl::StrCat("'", name, "' must be a string"));
    }
    std::string value(it->value.GetString(), it->value.GetStringLength());
    (name == "by" ? author.by : author.note) = std::move(value);
  }
  if (author.by.empty()) author.by = kDefaultAuthor;
  return author;
}

Reply StatusReply(const absl::StatusOr<RolloutStatus>& status) {
  if (!status.ok()) return ChangeErrorReply(status.status());
  return JsonReply(bhttp::status::ok, lifecycle::RolloutStatusToJson(*status));
}

class RolloutHandler : public Handler {
 public:
  RolloutHandler(RolloutController* controller, RolloutHandlerOptions options)
      : controller_(controller),
        options_(std::move(options)),
        pool_(static_cast<size_t>(std::max(options_.worker_threads, 1))) {}

  ~RolloutHandler() override { pool_.join(); }

  void Handle(Request request, Respond respond) override {
    absl::StatusOr<std::vector<std::string>> segments = SplitPath(Target(request));
    if (!segments.ok()) return respond(ErrorReply(segments.status()));
    // {"v1", "rollouts", model, action}
    const std::vector<std::string>& s = *segments;
    const size_t n = s.size();
    std::string allowed;
    if (n == 2) {
      allowed = "GET";
    } else if (n == 3) {
      allowed = "GET, POST, DELETE";
    } else if (n == 4 && (s[3] == "promote" || s[3] == "rollback")) {
      allowed = "POST";
    }
    std::optional<Reply> refused = CheckRoute(
        request, {.allowed = allowed,
                  .endpoints = "rollouts are at /v1/rollouts[/{model}[/promote|/rollback]]",
                  .admin_token = options_.admin_token,
                  .api = kApiName});
    if (refused) return respond(*std::move(refused));
    // Changes write rollout files (lock, fsync) and registry files.
    boost::asio::post(pool_,
                      [this, s = std::move(*segments), request = std::move(request),
                       respond = std::move(respond)]() mutable { respond(Serve(s, request)); });
  }

 private:
  Reply Serve(const std::vector<std::string>& s, const Request& request) {
    if (s.size() == 2) return List();
    const std::string& model = s[2];
    if (request.method() == bhttp::verb::get) return StatusReply(controller_->Get(model));
    rj::Document doc;
    std::shared_ptr<BodyBytes> holder;
    const EmptyBody empty = s.size() == 3 && request.method() == bhttp::verb::post
                                ? EmptyBody::kError
                                : EmptyBody::kEmptyObject;
    absl::Status parsed =
        ParseJsonObjectBody(request, options_.max_request_bytes, &doc, &holder, empty);
    if (!parsed.ok()) return BodyErrorReply(parsed);
    const bool start = s.size() == 3 && request.method() == bhttp::verb::post;
    absl::StatusOr<ChangeAuthor> author = Author(doc, !start);
    if (!author.ok()) return ErrorReply(author.status());
    if (start) {
      absl::StatusOr<lifecycle::RolloutSpec> spec =
          lifecycle::RolloutSpecFromJson(doc, {"by", "note"});
      if (!spec.ok()) return ErrorReply(spec.status());
      spec->model = model;
      return StatusReply(controller_->Start(*std::move(spec), *author));
    }
    if (s.size() == 3) {
      absl::Status cleared = controller_->Clear(model, *author);
      if (!cleared.ok()) return ChangeErrorReply(cleared);
      return JsonReply(bhttp::status::ok,
                       absl::StrCat("{\"model\":", JsonString(model), ",\"cleared\":true}"));
    }
    if (s[3] == "promote") return StatusReply(controller_->Promote(model, *author));
    return StatusReply(controller_->Rollback(model, *author));
  }

  Reply List() {
    std::vector<std::string> items;
    for (const RolloutStatus& status : controller_->List()) {
      items.push_back(lifecycle::RolloutStatusToJson(status));
    }
    return JsonReply(bhttp::status::ok,
                     absl::StrCat("{\"rollouts\":[", absl::StrJoin(items, ","), "]}"));
  }

  // A JSON string literal of `text`.
  static std::string JsonString(absl::string_view text) {
    rj::StringBuffer buffer;
    rj::Writer<rj::StringBuffer> w(buffer);
    w.String(text.data(), static_cast<rj::SizeType>(text.size()));
    return std::string(buffer.GetString(), buffer.GetSize());
  }

  RolloutController* const controller_;
  const RolloutHandlerOptions options_;
  boost::asio::thread_pool pool_;
};

}  // namespace
}  // namespace http

std::shared_ptr<http::Handler> MakeRolloutHandler(lifecycle::RolloutController* controller,
                                                  RolloutHandlerOptions options) {
  return std::make_shared<http::RolloutHandler>(controller, std::move(options));
}

}  // namespace flywheel::api
