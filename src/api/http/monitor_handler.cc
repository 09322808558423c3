#include "api/http/monitor_handler.h"

#include <algorithm>
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
#include "boost/asio/post.hpp"
#include "boost/asio/thread_pool.hpp"
#include "monitor/monitoring.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace flywheel::api {
namespace http {
namespace {

namespace rj = rapidjson;
using Writer = rj::Writer<rj::StringBuffer>;

// Errors listed one by one in a refused labels request; the rest are counted.
constexpr size_t kMaxListedErrors = 20;

void Str(Writer& w, absl::string_view s) {
  w.String(s.data(), static_cast<rj::SizeType>(s.size()));
}

std::string SettingsJson(const monitor::VersionSettings& s) {
  rj::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  w.Key("log_sample_rate");
  w.Double(s.log_sample_rate);
  w.Key("drift");
  w.Bool(s.drift);
  w.Key("labels");
  w.Bool(s.labels);
  w.Key("label_output");
  if (s.label_output.empty()) {
    w.Null();
  } else {
    Str(w, s.label_output);
  }
  w.Key("label_task");
  Str(w, monitor::TaskKindName(s.label_task));
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

// `report` (a JSON object) with a "settings" member added at its end.
void AppendWithSettings(const std::string& report, const monitor::VersionSettings& settings,
                        std::string* out) {
  if (report.size() < 2 || report.back() != '}') {  // not an object: never, but stay valid JSON
    absl::StrAppend(out, report);
    return;
  }
  absl::StrAppend(out, absl::string_view(report).substr(0, report.size() - 1),
                  report.size() > 2 ? "," : "", "\"settings\":", SettingsJson(settings), "}");
}

// {"model": "...", "versions": [report + settings, ...]}
template <typename Versions, typename ToJson>
std::string ModelReportsJson(absl::string_view model, const Versions& versions, ToJson to_json) {
  std::string out;
  {
    rj::StringBuffer sb;
    Writer w(sb);
    Str(w, model);
    absl::StrAppend(&out, "{\"model\":", absl::string_view(sb.GetString(), sb.GetSize()),
                    ",\"versions\":[");
  }
  bool first = true;
  for (const auto& v : versions) {
    if (!first) out += ',';
    first = false;
    AppendWithSettings(to_json(v.report), v.settings, &out);
  }
  out += "]}";
  return out;
}

struct Label {
  absl::string_view id;
  int64_t row = 0;
  double value = 0;
};

struct ItemError {
  size_t index = 0;
  std::string message;
};

// One item of "labels"; the error says what is wrong with it.
absl::StatusOr<Label> ParseLabel(const rj::Value& item) {
  if (!item.IsObject()) {
    return absl::InvalidArgumentError(
        "expected an object such as {\"id\": \"request-id\", \"label\": 1, \"row\": 0}");
  }
  Label label;
  bool has_id = false;
  bool has_label = false;
  for (const auto& m : item.GetObject()) {
    const absl::string_view key(m.name.GetString(), m.name.GetStringLength());
    if (key == "id") {
      if (!m.value.IsString() || m.value.GetStringLength() == 0) {
        return absl::InvalidArgumentError("'id' must be the request id (a non-empty string)");
      }
      label.id = absl::string_view(m.value.GetString(), m.value.GetStringLength());
      has_id = true;
    } else if (key == "label") {
      if (m.value.IsBool()) {
        label.value = m.value.GetBool() ? 1 : 0;
      } else if (m.value.IsNumber()) {
        label.value = m.value.GetDouble();
      } else {
        return absl::InvalidArgumentError(
            "'label' must be a number (a class index, 0/1, or a regression target) or a boolean");
      }
      has_label = true;
    } else if (key == "row") {
      if (!m.value.IsInt64() || m.value.GetInt64() < 0) {
        return absl::InvalidArgumentError(
            "'row' must be a non-negative integer (the row of the request's batch)");
      }
      label.row = m.value.GetInt64();
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown member '", key, "' (a label has id, label and row)"));
    }
  }
  if (!has_id) return absl::InvalidArgumentError("'id' is missing (the request id)");
  if (!has_label) return absl::InvalidArgumentError("'label' is missing");
  return label;
}

Reply LabelsErrorReply(size_t count, const std::vector<ItemError>& errors) {
  rj::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  w.Key("error");
  const ItemError& first = errors.front();
  Str(w, absl::StrCat(errors.size(), " of ", count, " labels are malformed (none was applied); ",
                      "labels[", first.index, "]: ", first.message));
  w.Key("errors");
  w.StartArray();
  for (size_t i = 0; i < errors.size() && i < kMaxListedErrors; ++i) {
    w.StartObject();
    w.Key("index");
    w.Uint64(errors[i].index);
    w.Key("message");
    Str(w, errors[i].message);
    w.EndObject();
  }
  w.EndArray();
  w.Key("malformed");
  w.Uint64(errors.size());
  w.EndObject();
  return JsonReply(bhttp::status::bad_request, std::string(sb.GetString(), sb.GetSize()));
}

class MonitorHandler : public Handler {
 public:
  MonitorHandler(monitor::Monitoring* monitoring, const MonitorHandlerOptions& options)
      : monitoring_(monitoring),
        max_request_bytes_(options.max_request_bytes),
        pool_(static_cast<size_t>(std::max(options.worker_threads, 1))) {}

  ~MonitorHandler() override { pool_.join(); }

  void Handle(Request request, Respond respond) override {
    absl::StatusOr<std::vector<std::string>> segments = SplitPath(Target(request));
    if (!segments.ok()) return respond(ErrorReply(segments.status()));
    const std::vector<std::string>& s = *segments;
    enum class Endpoint { kDrift, kQuality, kLabels } endpoint = Endpoint::kDrift;
    absl::string_view allowed;
    std::string model;
    if (s.size() == 5 && s[2] == "models" && (s[4] == "drift" || s[4] == "quality")) {
      endpoint = s[4] == "drift" ? Endpoint::kDrift : Endpoint::kQuality;
      model = s[3];
      allowed = "GET";
    } else if (s.size() == 3 && s[2] == "labels") {
      endpoint = Endpoint::kLabels;
      allowed = "GET, POST";
    }
    std::optional<Reply> refused = CheckRoute(
        request, {.allowed = allowed,
                  .endpoints = "monitoring answers GET /v1/monitor/models/{model}/drift, GET "
                               "/v1/monitor/models/{model}/quality and GET or POST "
                               "/v1/monitor/labels"});
    if (refused) return respond(*std::move(refused));
    // Reports merge whole windows and label batches may be large: off the I/O thread.
    boost::asio::post(pool_, [this, endpoint, model = std::move(model),
                              request = std::move(request), respond = std::move(respond)]() {
      switch (endpoint) {
        case Endpoint::kDrift:
          return respond(Drift(model));
        case Endpoint::kQuality:
          return respond(Quality(model));
        case Endpoint::kLabels:
          return respond(request.method() == bhttp::verb::post ? PostLabels(request)
                                                               : LabelCounts());
      }
    });
  }

 private:
  Reply Drift(const std::string& model) {
    absl::StatusOr<std::vector<monitor::VersionDrift>> drift = monitoring_->Drift(model);
    if (!drift.ok()) return ErrorReply(drift.status());
    return JsonReply(bhttp::status::ok,
                     ModelReportsJson(model, *drift, [](const monitor::DriftReport& r) {
                       return monitor::DriftReportToJson(r);
                     }));
  }

  Reply Quality(const std::string& model) {
    absl::StatusOr<std::vector<monitor::VersionQuality>> quality = monitoring_->Quality(model);
    if (!quality.ok()) return ErrorReply(quality.status());
    return JsonReply(bhttp::status::ok,
                     ModelReportsJson(model, *quality, [](const monitor::QualityReport& r) {
                       return monitor::QualityReportToJson(r);
                     }));
  }

  Reply LabelCounts() {
    return JsonReply(bhttp::status::ok, monitor::LabelCountsToJson(monitoring_->labels().Counts()));
  }

  Reply PostLabels(const Request& request) {
    rj::Document doc;
    std::shared_ptr<BodyBytes> holder;
    absl::Status parsed = ParseJsonObjectBody(request, max_request_bytes_, &doc, &holder);
    if (!parsed.ok()) return BodyErrorReply(parsed);
    for (const auto& m : doc.GetObject()) {
      const absl::string_view key(m.name.GetString(), m.name.GetStringLength());
      if (key != "labels") {
        return ErrorReply(bhttp::status::bad_request,
                          absl::StrCat("unknown member '", key,
                                       "'; the body is {\"labels\": [{\"id\": ..., \"label\": ..., "
                                       "\"row\": ...}, ...]}"));
      }
    }
    auto labels = doc.FindMember("labels");
    if (labels == doc.MemberEnd() || !labels->value.IsArray()) {
      return ErrorReply(bhttp::status::bad_request,
                        "'labels' must be an array of {\"id\": \"request-id\", \"label\": 1, "
                        "\"row\": 0} objects");
    }
    // All or nothing: a client that fixes its request and sends it again counts nothing twice.
    std::vector<Label> parsed_labels;
    std::vector<ItemError> errors;
    parsed_labels.reserve(labels->value.Size());
    for (rj::SizeType i = 0; i < labels->value.Size(); ++i) {
      absl::StatusOr<Label> label = ParseLabel(labels->value[i]);
      if (label.ok()) {
        parsed_labels.push_back(*label);
      } else {
        errors.push_back({i, std::string(label.status().message())});
      }
    }
    if (!errors.empty()) return LabelsErrorReply(labels->value.Size(), errors);

    int64_t counts[5] = {0, 0, 0, 0, 0};
    const absl::Time now = absl::Now();
    for (const Label& label : parsed_labels) {
      // Joins, and writes the label log when the server has one.
      ++counts[static_cast<int>(monitoring_->AddLabel(label.id, label.row, label.value, now))];
    }
    rj::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    w.Key("received");
    w.Uint64(parsed_labels.size());
    for (monitor::LabelOutcome outcome :
         {monitor::LabelOutcome::kJoined, monitor::LabelOutcome::kUnknown,
          monitor::LabelOutcome::kExpired, monitor::LabelOutcome::kDuplicate,
          monitor::LabelOutcome::kInvalid}) {
      Str(w, monitor::LabelOutcomeName(outcome));
      w.Int64(counts[static_cast<int>(outcome)]);
    }
    w.EndObject();
    return JsonReply(bhttp::status::ok, std::string(sb.GetString(), sb.GetSize()));
  }

  monitor::Monitoring* monitoring_;
  size_t max_request_bytes_;
  boost::asio::thread_pool pool_;
};

}  // namespace
}  // namespace http

std::shared_ptr<http::Handler> MakeMonitorHandler(monitor::Monitoring* monitoring,
                                                  const MonitorHandlerOptions& options) {
  return std::make_shared<http::MonitorHandler>(monitoring, options);
}

}  // namespace flywheel::api
