// rollout.json and the API's status JSON with RapidJSON: one writer for both (the file leaves out
// the figures); the file reader is strict, like the registry file's.
#include "lifecycle/rollout_format.h"

#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "lifecycle/registry_json_write.h"
#include "lifecycle/rollout_json.h"
#include "rapidjson/document.h"
#include "rapidjson/error/en.h"
#include "rapidjson/prettywriter.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace flywheel::lifecycle {
namespace {

using Value = rapidjson::Value;

template <typename W>
void OptionalDouble(W& w, const std::optional<double>& v) {
  if (v.has_value()) {
    w.Double(*v);
  } else {
    w.Null();
  }
}

template <typename W>
void WriteSpec(W& w, const RolloutSpec& spec) {
  w.StartObject();
  w.Key("policy");
  w.String(RolloutPolicyName(spec.policy));
  w.Key("stable");
  w.Int64(spec.stable);
  w.Key("candidate");
  w.Int64(spec.candidate);
  w.Key("weight");
  w.Double(spec.weight);
  w.Key("sticky_parameter");
  JsonStr(w, spec.sticky_parameter);
  w.Key("shadow_fraction");
  w.Double(spec.shadow_fraction);
  const RolloutThresholds& t = spec.thresholds;
  w.Key("thresholds");
  w.StartObject();
  w.Key("max_error_rate");
  w.Double(t.max_error_rate);
  w.Key("max_p99_ms");
  OptionalDouble(w, t.max_p99_ms);
  w.Key("max_disagreement");
  OptionalDouble(w, t.max_disagreement);
  w.Key("max_quality_drop");
  OptionalDouble(w, t.max_quality_drop);
  w.Key("quality_metric");
  JsonStr(w, t.quality_metric);
  w.Key("min_requests");
  w.Int64(t.min_requests);
  w.Key("min_labels");
  w.Int64(t.min_labels);
  w.Key("window_secs");
  w.Double(absl::ToDoubleSeconds(t.window));
  w.EndObject();
  w.Key("promote_after_secs");
  if (spec.promote_after.has_value()) {
    w.Double(absl::ToDoubleSeconds(*spec.promote_after));
  } else {
    w.Null();
  }
  w.Key("alias");
  JsonStr(w, spec.alias);
  w.EndObject();
}

template <typename W>
void WriteFigures(W& w, const RolloutFigures& f) {
  w.StartObject();
  w.Key("candidate_requests");
  w.Int64(f.candidate_requests);
  w.Key("candidate_failed");
  w.Int64(f.candidate_failed);
  w.Key("candidate_error_rate");
  OptionalDouble(w, f.candidate_error_rate);
  w.Key("candidate_p99_ms");
  OptionalDouble(w, f.candidate_p99_ms);
  w.Key("stable_requests");
  w.Int64(f.stable_requests);
  w.Key("stable_error_rate");
  OptionalDouble(w, f.stable_error_rate);
  w.Key("stable_p99_ms");
  OptionalDouble(w, f.stable_p99_ms);
  w.Key("shadow_compared");
  w.Int64(f.shadow_compared);
  w.Key("shadow_disagreement");
  OptionalDouble(w, f.shadow_disagreement);
  w.Key("candidate_quality");
  OptionalDouble(w, f.candidate_quality);
  w.Key("stable_quality");
  OptionalDouble(w, f.stable_quality);
  w.Key("candidate_labels");
  w.Int64(f.candidate_labels);
  w.Key("stable_labels");
  w.Int64(f.stable_labels);
  w.EndObject();
}

// The members both forms share, inside an object the caller opened.
template <typename W>
void WriteStatusMembers(W& w, const RolloutStatus& s) {
  w.Key("model");
  JsonStr(w, s.spec.model);
  w.Key("spec");
  WriteSpec(w, s.spec);
  w.Key("state");
  w.String(RolloutStateName(s.state));
  w.Key("started");
  JsonTime(w, s.started);
  w.Key("ended");
  JsonTime(w, s.ended);
  w.Key("healthy_since");
  JsonTime(w, s.healthy_since);
  w.Key("reason");
  JsonStr(w, s.reason);
  w.Key("events");
  w.StartArray();
  for (const RolloutEvent& e : s.events) {
    w.StartObject();
    w.Key("time");
    JsonTime(w, e.time);
    w.Key("kind");
    JsonStr(w, e.kind);
    w.Key("detail");
    JsonStr(w, e.detail);
    w.Key("by");
    JsonStr(w, e.by);
    w.EndObject();
  }
  w.EndArray();
}

struct Ctx {
  absl::string_view file;
  absl::Status Error(absl::string_view where, absl::string_view what) const {
    return absl::DataLossError(absl::StrCat("rollout file ", file, ": ", where, ": ", what));
  }
};

absl::StatusOr<std::string> GetString(const Value& v, const Ctx& ctx, absl::string_view where) {
  if (!v.IsString()) return ctx.Error(where, "expected a string");
  return std::string(v.GetString(), v.GetStringLength());
}

absl::StatusOr<absl::Time> GetTime(const Value& v, const Ctx& ctx, absl::string_view where) {
  if (v.IsNull()) return absl::InfinitePast();
  FW_ASSIGN_OR_RETURN(std::string text, GetString(v, ctx, where));
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
    return ctx.Error(where, absl::StrCat("'", text, "' is not an RFC 3339 time (", err, ")"));
  }
  return t;
}

absl::StatusOr<RolloutState> GetState(const Value& v, const Ctx& ctx) {
  FW_ASSIGN_OR_RETURN(std::string name, GetString(v, ctx, "$.state"));
  for (RolloutState s : {RolloutState::kActive, RolloutState::kPromoted, RolloutState::kRolledBack,
                         RolloutState::kStopped}) {
    if (name == RolloutStateName(s)) return s;
  }
  return ctx.Error("$.state", absl::StrCat("'", name, "' is not a rollout state"));
}

absl::StatusOr<RolloutEvent> GetEvent(const Value& v, const Ctx& ctx, absl::string_view where) {
  if (!v.IsObject()) return ctx.Error(where, "expected an object");
  RolloutEvent e;
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
    const std::string name(it->name.GetString(), it->name.GetStringLength());
    const std::string at = absl::StrCat(where, ".", name);
    if (name == "time") {
      FW_ASSIGN_OR_RETURN(e.time, GetTime(it->value, ctx, at));
    } else if (name == "kind") {
      FW_ASSIGN_OR_RETURN(e.kind, GetString(it->value, ctx, at));
    } else if (name == "detail") {
      FW_ASSIGN_OR_RETURN(e.detail, GetString(it->value, ctx, at));
    } else if (name == "by") {
      FW_ASSIGN_OR_RETURN(e.by, GetString(it->value, ctx, at));
    } else {
      return ctx.Error(where, absl::StrCat("unknown field '", name, "'"));
    }
  }
  return e;
}

}  // namespace

std::string EncodeRollout(const RolloutStatus& status) {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
  w.SetIndent(' ', 2);
  w.StartObject();
  w.Key("format");
  w.String(kRolloutFormat);
  WriteStatusMembers(w, status);
  w.EndObject();
  std::string out(buffer.GetString(), buffer.GetSize());
  out.push_back('\n');
  return out;
}

absl::StatusOr<RolloutStatus> DecodeRollout(absl::string_view json, absl::string_view file) {
  const Ctx ctx{file};
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(json.data(), json.size());
  if (doc.HasParseError()) {
    return absl::DataLossError(absl::StrCat("rollout file ", file, ": not valid JSON at offset ",
                                            doc.GetErrorOffset(), ": ",
                                            rapidjson::GetParseError_En(doc.GetParseError())));
  }
  if (!doc.IsObject()) return ctx.Error("$", "expected an object");
  const Value& root = doc;
  RolloutStatus status;
  bool has_format = false, has_spec = false, has_state = false;
  for (auto it = root.MemberBegin(); it != root.MemberEnd(); ++it) {
    const std::string name(it->name.GetString(), it->name.GetStringLength());
    const std::string at = absl::StrCat("$.", name);
    const Value& v = it->value;
    if (name == "format") {
      FW_ASSIGN_OR_RETURN(std::string format, GetString(v, ctx, at));
      if (format != kRolloutFormat) {
        return ctx.Error(at, absl::StrCat("format '", format, "' is not '", kRolloutFormat,
                                          "' (written by a newer flywheel?)"));
      }
      has_format = true;
    } else if (name == "model") {
      FW_ASSIGN_OR_RETURN(status.spec.model, GetString(v, ctx, at));
    } else if (name == "spec") {
      absl::StatusOr<RolloutSpec> spec = RolloutSpecFromJson(v);
      if (!spec.ok()) return ctx.Error(at, spec.status().message());
      const std::string model = std::move(status.spec.model);
      status.spec = *std::move(spec);
      status.spec.model = model;
      has_spec = true;
    } else if (name == "state") {
      FW_ASSIGN_OR_RETURN(status.state, GetState(v, ctx));
      has_state = true;
    } else if (name == "started") {
      FW_ASSIGN_OR_RETURN(status.started, GetTime(v, ctx, at));
    } else if (name == "ended") {
      FW_ASSIGN_OR_RETURN(status.ended, GetTime(v, ctx, at));
    } else if (name == "healthy_since") {
      FW_ASSIGN_OR_RETURN(status.healthy_since, GetTime(v, ctx, at));
    } else if (name == "reason") {
      FW_ASSIGN_OR_RETURN(status.reason, GetString(v, ctx, at));
    } else if (name == "events") {
      if (!v.IsArray()) return ctx.Error(at, "expected an array");
      for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
        FW_ASSIGN_OR_RETURN(RolloutEvent e, GetEvent(v[i], ctx, absl::StrCat(at, "[", i, "]")));
        status.events.push_back(std::move(e));
      }
    } else {
      return ctx.Error("$", absl::StrCat("unknown field '", name, "'"));
    }
  }
  if (!has_format) return ctx.Error("$", "missing 'format' (not a flywheel rollout file?)");
  if (!has_spec) return ctx.Error("$", "missing 'spec'");
  if (!has_state) return ctx.Error("$", "missing 'state'");
  return status;
}

std::string RolloutStatusToJson(const RolloutStatus& status) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  WriteStatusMembers(w, status);
  w.Key("figures");
  WriteFigures(w, status.figures);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace flywheel::lifecycle
