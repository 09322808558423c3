// `flywheel rollout start|status|promote|rollback|clear --url http://HOST:8000 MODEL`: drives the
// rollouts of a running server through its /v1/rollouts API (canary, A-B and shadow rollouts
// with automatic rollback; docs/lifecycle.md).
#include <cctype>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/commands.h"
#include "cli/http_client.h"
#include "cli/load_bench.h"
#include "rapidjson/document.h"
#include "rapidjson/prettywriter.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace flywheel::cli {
namespace {

namespace bhttp = boost::beast::http;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr std::chrono::seconds kTimeout(30);

struct RolloutOptions {
  std::string url = "http://127.0.0.1:8000";
  std::string admin_token;
  std::string model;
  bool json = false;
  std::string by;
  std::string note;
  // start
  std::string policy = "canary";
  int64_t stable = 0;
  int64_t candidate = 0;
  std::optional<double> weight;
  std::string sticky_parameter;
  std::optional<double> shadow_fraction;
  std::optional<double> max_error_rate, max_p99_ms, max_disagreement, max_quality_drop;
  std::string quality_metric;
  std::optional<int64_t> min_requests, min_labels;
  std::optional<double> window_secs, promote_after_secs;
  std::string alias;
};

// Percent-encodes a path segment (model names are folder names: anything but '/').
std::string Segment(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += absl::StrFormat("%%%02X", c);
    }
  }
  return out;
}

std::string ErrorOf(const std::string& body) {
  rapidjson::Document doc;
  doc.Parse(body.c_str());
  if (!doc.HasParseError() && doc.IsObject() && doc.HasMember("error") && doc["error"].IsString()) {
    return doc["error"].GetString();
  }
  return body.empty() ? "(empty body)" : body.substr(0, 300);
}

// One call; the reply body on 2xx, else a message (printed by the caller).
absl::StatusOr<std::string> Call(const RolloutOptions& opt, bhttp::verb method,
                                 const std::string& target, const std::string& body) {
  absl::StatusOr<ServerAddress> address = ParseServerUrl(opt.url, "http");
  if (!address.ok()) return address.status();
  auto connection = HttpConnection::Open(address->host, address->port, kTimeout);
  if (!connection.ok()) return connection.status();
  HttpRequest request{method, target, 11};
  request.set(bhttp::field::host, absl::StrCat(address->host, ":", address->port));
  if (!opt.admin_token.empty()) {
    request.set(bhttp::field::authorization, absl::StrCat("Bearer ", opt.admin_token));
  }
  if (!body.empty()) {
    request.set(bhttp::field::content_type, "application/json");
    request.body() = body;
  }
  request.prepare_payload();
  HttpResponse response;
  if (absl::Status sent = (*connection)->RoundTrip(request, &response); !sent.ok()) return sent;
  const int code = static_cast<int>(response.result_int());
  if (code / 100 != 2) {
    return absl::UnknownError(absl::StrCat("HTTP ", code, ": ", ErrorOf(response.body())));
  }
  return response.body();
}

std::string Num(const rapidjson::Value& v, const char* unit = "") {
  if (!v.IsNumber()) return "-";
  return absl::StrFormat("%.4g%s", v.GetDouble(), unit);
}

std::string Str(const rapidjson::Value& v) { return v.IsString() ? v.GetString() : "-"; }

// A rollout for people: what routes where, its state, its window's figures, its last events.
void PrintStatus(const rapidjson::Value& s) {
  const rapidjson::Value& spec = s["spec"];
  const std::string policy = Str(spec["policy"]);
  std::string share;
  if (policy == "shadow") {
    share = absl::StrCat("copy of ", Num(spec["shadow_fraction"]), " of requests");
  } else {
    share = absl::StrCat("weight ", Num(spec["weight"]));
    if (policy == "ab")
      absl::StrAppend(&share, ", sticky by '", Str(spec["sticky_parameter"]), "'");
  }
  std::printf("%s: %s %s, version %lld -> %lld (%s)\n", Str(s["model"]).c_str(), policy.c_str(),
              Str(s["state"]).c_str(), static_cast<long long>(spec["stable"].GetInt64()),
              static_cast<long long>(spec["candidate"].GetInt64()), share.c_str());
  std::printf("  started %s", Str(s["started"]).c_str());
  if (s["ended"].IsString()) std::printf(", ended %s", s["ended"].GetString());
  if (s["healthy_since"].IsString())
    std::printf(", healthy since %s", s["healthy_since"].GetString());
  std::printf("\n");
  if (s["reason"].IsString() && s["reason"].GetStringLength() > 0) {
    std::printf("  reason: %s\n", s["reason"].GetString());
  }
  if (s.HasMember("figures") && Str(s["state"]) == "active") {
    const rapidjson::Value& f = s["figures"];
    std::printf(
        "  window %ss: candidate %lld requests, error rate %s, p99 %s; stable %lld "
        "requests, error rate %s, p99 %s\n",
        Num(spec["thresholds"]["window_secs"]).c_str(),
        static_cast<long long>(f["candidate_requests"].GetInt64()),
        Num(f["candidate_error_rate"]).c_str(), Num(f["candidate_p99_ms"], " ms").c_str(),
        static_cast<long long>(f["stable_requests"].GetInt64()),
        Num(f["stable_error_rate"]).c_str(), Num(f["stable_p99_ms"], " ms").c_str());
    if (policy == "shadow") {
      std::printf("  shadow: %lld compared, disagreement %s\n",
                  static_cast<long long>(f["shadow_compared"].GetInt64()),
                  Num(f["shadow_disagreement"]).c_str());
    }
    if (f["candidate_quality"].IsNumber() || f["stable_quality"].IsNumber()) {
      std::printf(
          "  %s: candidate %s (%lld labels), stable %s (%lld labels)\n",
          Str(spec["thresholds"]["quality_metric"]).c_str(), Num(f["candidate_quality"]).c_str(),
          static_cast<long long>(f["candidate_labels"].GetInt64()),
          Num(f["stable_quality"]).c_str(), static_cast<long long>(f["stable_labels"].GetInt64()));
    }
  }
  const rapidjson::Value& events = s["events"];
  constexpr rapidjson::SizeType kShown = 5;
  const rapidjson::SizeType from = events.Size() > kShown ? events.Size() - kShown : 0;
  for (rapidjson::SizeType i = from; i < events.Size(); ++i) {
    const rapidjson::Value& e = events[i];
    std::printf("  %s %-8s %s (%s)\n", Str(e["time"]).c_str(), Str(e["kind"]).c_str(),
                Str(e["detail"]).c_str(), Str(e["by"]).c_str());
  }
}

int Print(const RolloutOptions& opt, const std::string& body) {
  rapidjson::Document doc;
  doc.Parse(body.c_str());
  if (doc.HasParseError() || !doc.IsObject()) {
    std::fprintf(stderr, "flywheel rollout: the server's reply is not a JSON object\n");
    return 1;
  }
  if (opt.json) {
    rapidjson::StringBuffer buffer;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
    w.SetIndent(' ', 2);
    doc.Accept(w);
    std::printf("%s\n", buffer.GetString());
    return 0;
  }
  if (doc.HasMember("rollouts")) {
    if (doc["rollouts"].Empty()) std::printf("no rollouts\n");
    for (const rapidjson::Value& s : doc["rollouts"].GetArray()) PrintStatus(s);
  } else if (doc.HasMember("cleared")) {
    std::printf("%s: rollout cleared; unversioned requests go to the default version\n",
                Str(doc["model"]).c_str());
  } else {
    PrintStatus(doc);
  }
  return 0;
}

void Author(Writer& w, const RolloutOptions& opt) {
  if (!opt.by.empty()) {
    w.Key("by");
    w.String(opt.by.c_str());
  }
  if (!opt.note.empty()) {
    w.Key("note");
    w.String(opt.note.c_str());
  }
}

std::string StartBody(const RolloutOptions& opt) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  auto number = [&w](const char* key, const auto& value) {
    if (!value.has_value()) return;
    w.Key(key);
    if constexpr (std::is_same_v<std::decay_t<decltype(*value)>, int64_t>) {
      w.Int64(*value);
    } else {
      w.Double(*value);
    }
  };
  auto text = [&w](const char* key, const std::string& value) {
    if (value.empty()) return;
    w.Key(key);
    w.String(value.c_str());
  };
  w.StartObject();
  text("policy", opt.policy);
  w.Key("stable");
  w.Int64(opt.stable);
  w.Key("candidate");
  w.Int64(opt.candidate);
  number("weight", opt.weight);
  text("sticky_parameter", opt.sticky_parameter);
  number("shadow_fraction", opt.shadow_fraction);
  w.Key("thresholds");
  w.StartObject();
  number("max_error_rate", opt.max_error_rate);
  number("max_p99_ms", opt.max_p99_ms);
  number("max_disagreement", opt.max_disagreement);
  number("max_quality_drop", opt.max_quality_drop);
  text("quality_metric", opt.quality_metric);
  number("min_requests", opt.min_requests);
  number("min_labels", opt.min_labels);
  number("window_secs", opt.window_secs);
  w.EndObject();
  number("promote_after_secs", opt.promote_after_secs);
  text("alias", opt.alias);
  Author(w, opt);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string AuthorBody(const RolloutOptions& opt) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  Author(w, opt);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

int Run(const RolloutOptions& opt, bhttp::verb method, const std::string& target,
        const std::string& body) {
  absl::StatusOr<std::string> reply = Call(opt, method, target, body);
  if (!reply.ok()) {
    std::fprintf(stderr, "flywheel rollout: %s %s: %s\n",
                 std::string(bhttp::to_string(method)).c_str(), target.c_str(),
                 std::string(reply.status().message()).c_str());
    return 1;
  }
  return Print(opt, *reply);
}

void AddServer(CLI::App* sub, RolloutOptions* opt) {
  sub->add_option("--url", opt->url, "the server's HTTP address")->capture_default_str();
  sub->add_option("--admin-token", opt->admin_token,
                  "the server's --admin-token (changes need it when it has one)");
  sub->add_flag("--json", opt->json, "print the server's JSON instead of text");
}

void AddAuthor(CLI::App* sub, RolloutOptions* opt) {
  sub->add_option("--by", opt->by, "who makes the change (default: http)");
  sub->add_option("--note", opt->note, "why, kept in the rollout's events");
}

}  // namespace

Command AddRolloutCommand(CLI::App& app) {
  auto opt = std::make_shared<RolloutOptions>();
  CLI::App* rollout = app.add_subcommand(
      "rollout", "Canary, A-B and shadow rollouts with automatic rollback, on a running server");
  rollout->require_subcommand(1);

  CLI::App* start = rollout->add_subcommand("start", "Start a rollout of a candidate version");
  AddServer(start, opt.get());
  start->add_option("model", opt->model, "model name")->required();
  start->add_option("--candidate,-c", opt->candidate, "the new version")
      ->required()
      ->check(CLI::PositiveNumber);
  start
      ->add_option("--stable,-s", opt->stable,
                   "the version it is compared with (default: the one serving now)")
      ->check(CLI::NonNegativeNumber);
  start->add_option("--policy,-p", opt->policy, "canary, ab or shadow")
      ->check(CLI::IsMember({"canary", "ab", "shadow"}))
      ->capture_default_str();
  start->add_option("--weight,-w", opt->weight, "canary/ab: the candidate's share in (0, 1]");
  start->add_option("--sticky-parameter", opt->sticky_parameter,
                    "ab: the request parameter that assigns users (e.g. user_id)");
  start->add_option("--shadow-fraction", opt->shadow_fraction,
                    "shadow: the share of requests copied to the candidate, (0, 1]");
  start->add_option("--max-error-rate", opt->max_error_rate,
                    "roll back above this error rate (default 0.01)");
  start->add_option("--max-p99-ms", opt->max_p99_ms, "roll back above this p99 latency");
  start->add_option("--max-disagreement", opt->max_disagreement,
                    "shadow: roll back above this share of disagreeing answers");
  start->add_option("--max-quality-drop", opt->max_quality_drop,
                    "roll back when the candidate's live label quality is this much worse");
  start->add_option("--quality-metric", opt->quality_metric,
                    "auc (default), accuracy, log_loss, mae or rmse");
  start->add_option("--min-requests", opt->min_requests,
                    "candidate requests in the window before judging (default 100)");
  start->add_option("--min-labels", opt->min_labels,
                    "joined labels per version before judging quality (default 50)");
  start->add_option("--window-secs", opt->window_secs, "the judging window (default 300)");
  start->add_option("--promote-after-secs", opt->promote_after_secs,
                    "promote by itself after this long healthy (default: wait for promote)");
  start->add_option("--alias", opt->alias, "the registry alias a promotion moves (production)");
  AddAuthor(start, opt.get());

  CLI::App* status = rollout->add_subcommand("status", "Show one model's rollout, or all");
  AddServer(status, opt.get());
  status->add_option("model", opt->model, "model name (default: every rollout)");

  CLI::App* promote =
      rollout->add_subcommand("promote", "Give the candidate all traffic and move the alias");
  AddServer(promote, opt.get());
  promote->add_option("model", opt->model, "model name")->required();
  AddAuthor(promote, opt.get());

  CLI::App* rollback =
      rollout->add_subcommand("rollback", "Drop the candidate's weight to 0 (stable takes all)");
  AddServer(rollback, opt.get());
  rollback->add_option("model", opt->model, "model name")->required();
  AddAuthor(rollback, opt.get());

  CLI::App* clear = rollout->add_subcommand(
      "clear", "Forget the model's rollout: unversioned requests go to the default version");
  AddServer(clear, opt.get());
  clear->add_option("model", opt->model, "model name")->required();
  AddAuthor(clear, opt.get());

  return {rollout, [=]() {
            const std::string base = "/v1/rollouts";
            const std::string one = absl::StrCat(base, "/", Segment(opt->model));
            if (start->parsed()) return Run(*opt, bhttp::verb::post, one, StartBody(*opt));
            if (status->parsed()) {
              return Run(*opt, bhttp::verb::get, opt->model.empty() ? base : one, "");
            }
            if (promote->parsed()) {
              return Run(*opt, bhttp::verb::post, one + "/promote", AuthorBody(*opt));
            }
            if (rollback->parsed()) {
              return Run(*opt, bhttp::verb::post, one + "/rollback", AuthorBody(*opt));
            }
            if (clear->parsed()) return Run(*opt, bhttp::verb::delete_, one, AuthorBody(*opt));
            return 2;
          }};
}

}  // namespace flywheel::cli
