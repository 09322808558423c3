// The text and JSON of `flywheel loop check` (loop_definition_text.h).
#include "cli/loop_definition_text.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "rapidjson/prettywriter.h"
#include "rapidjson/stringbuffer.h"

namespace flywheel::cli {

using lifecycle::LoopDefinition;

// "7d", "1h30m", "90s" -> "1m30s", "250ms": the units a definition is written in.
std::string LoopDurationText(absl::Duration d) {
  if (d == absl::ZeroDuration()) return "0s";
  if (d < absl::ZeroDuration()) return absl::StrCat("-", LoopDurationText(-d));
  std::string out;
  const std::pair<absl::Duration, const char*> units[] = {{absl::Hours(24), "d"},
                                                          {absl::Hours(1), "h"},
                                                          {absl::Minutes(1), "m"},
                                                          {absl::Seconds(1), "s"},
                                                          {absl::Milliseconds(1), "ms"}};
  for (const auto& [unit, name] : units) {
    const int64_t n = absl::IDivDuration(d, unit, &d);
    if (n > 0) absl::StrAppend(&out, n, name);
  }
  return out.empty() ? "<1ms" : out;
}

namespace {

std::string Number(double v) { return absl::StrFormat("%g", v); }

template <typename W>
void Str(W& w, const std::string& s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

std::string TriggerText(const lifecycle::LoopTrigger& t) {
  std::vector<std::string> parts;
  if (t.new_labels) parts.push_back(absl::StrCat("new_labels ", *t.new_labels));
  if (t.every) parts.push_back(absl::StrCat("every ", LoopDurationText(*t.every)));
  if (t.drift_psi) parts.push_back(absl::StrCat("drift_psi ", Number(*t.drift_psi)));
  parts.push_back(absl::StrCat("min_interval ", LoopDurationText(t.min_interval)));
  return absl::StrJoin(parts, ", ");
}

std::string RolloutText(const lifecycle::LoopRollout& r) {
  using lifecycle::LoopRolloutPolicy;
  std::vector<std::string> parts = {lifecycle::LoopRolloutPolicyName(r.policy)};
  if (r.policy == LoopRolloutPolicy::kShadow) {
    parts.push_back(absl::StrCat("shadow_fraction ", Number(r.shadow_fraction)));
  } else {
    parts.push_back(absl::StrCat("weight ", Number(r.weight)));
  }
  if (r.policy == LoopRolloutPolicy::kAbTest) {
    parts.push_back(absl::StrCat("sticky_parameter ", r.sticky_parameter));
  }
  parts.push_back(absl::StrCat("healthy_for ", LoopDurationText(r.healthy_for)));
  parts.push_back(absl::StrCat("min_requests ", r.min_requests));
  parts.push_back(absl::StrCat("max_error_rate ", Number(r.max_error_rate)));
  if (r.max_p99_ms) parts.push_back(absl::StrCat("max_p99_ms ", Number(*r.max_p99_ms)));
  if (r.max_disagreement) {
    parts.push_back(absl::StrCat("max_disagreement ", Number(*r.max_disagreement)));
  }
  if (r.max_quality_drop) {
    parts.push_back(absl::StrCat("max_quality_drop ", Number(*r.max_quality_drop)));
  }
  parts.push_back(absl::StrCat("alias ", r.alias));
  return absl::StrJoin(parts, ", ");
}

}  // namespace

std::string LoopDefinitionText(const LoopDefinition& d) {
  std::string out = absl::StrFormat("%s (%s): retrains model %s\n", d.name, d.source_file, d.model);
  absl::StrAppend(&out, "  trigger:  ", TriggerText(d.trigger), "\n");
  absl::StrAppendFormat(&out, "  data:     window %s, holdout %s, min_rows %d\n",
                        LoopDurationText(d.data.window), Number(d.data.holdout), d.data.min_rows);
  absl::StrAppend(&out, "  train:    ", absl::StrJoin(d.train.command, " "), "\n");
  absl::StrAppendFormat(&out, "            timeout %s, model_file %s",
                        LoopDurationText(d.train.timeout), d.train.model_file);
  if (!d.train.env.empty()) {
    absl::StrAppend(&out, ", env ", absl::StrJoin(d.train.env, " ", absl::PairFormatter("=")));
  }
  absl::StrAppendFormat(&out, "\n  evaluate: %s, margin %s (%s is better)\n",
                        lifecycle::GateMetricName(d.evaluate.metric), Number(d.evaluate.margin),
                        lifecycle::HigherIsBetter(d.evaluate.metric) ? "higher" : "lower");
  absl::StrAppend(&out, "  rollout:  ", RolloutText(d.rollout), "\n");
  return out;
}

namespace {

template <typename W>
void WriteDefinitionJson(W& w, const LoopDefinition& d) {
  auto duration = [&](const char* key, absl::Duration v) {
    w.Key(key);
    Str(w, LoopDurationText(v));
  };
  w.StartObject();
  w.Key("name");
  Str(w, d.name);
  w.Key("model");
  Str(w, d.model);
  w.Key("source_file");
  Str(w, d.source_file);
  w.Key("trigger");
  w.StartObject();
  if (d.trigger.new_labels) {
    w.Key("new_labels");
    w.Int64(*d.trigger.new_labels);
  }
  if (d.trigger.every) duration("every", *d.trigger.every);
  if (d.trigger.drift_psi) {
    w.Key("drift_psi");
    w.Double(*d.trigger.drift_psi);
  }
  duration("min_interval", d.trigger.min_interval);
  w.EndObject();
  w.Key("data");
  w.StartObject();
  duration("window", d.data.window);
  w.Key("holdout");
  w.Double(d.data.holdout);
  w.Key("min_rows");
  w.Int64(d.data.min_rows);
  w.EndObject();
  w.Key("train");
  w.StartObject();
  w.Key("command");
  w.StartArray();
  for (const std::string& arg : d.train.command) Str(w, arg);
  w.EndArray();
  duration("timeout", d.train.timeout);
  w.Key("model_file");
  Str(w, d.train.model_file);
  w.Key("env");
  w.StartObject();
  for (const auto& [k, v] : d.train.env) {
    Str(w, k);
    Str(w, v);
  }
  w.EndObject();
  w.EndObject();
  w.Key("evaluate");
  w.StartObject();
  w.Key("metric");
  w.String(lifecycle::GateMetricName(d.evaluate.metric));
  w.Key("margin");
  w.Double(d.evaluate.margin);
  w.EndObject();
  const lifecycle::LoopRollout& r = d.rollout;
  w.Key("rollout");
  w.StartObject();
  w.Key("policy");
  w.String(lifecycle::LoopRolloutPolicyName(r.policy));
  w.Key("weight");
  w.Double(r.weight);
  w.Key("sticky_parameter");
  Str(w, r.sticky_parameter);
  w.Key("shadow_fraction");
  w.Double(r.shadow_fraction);
  duration("healthy_for", r.healthy_for);
  w.Key("min_requests");
  w.Int64(r.min_requests);
  w.Key("max_error_rate");
  w.Double(r.max_error_rate);
  auto optional = [&](const char* key, const std::optional<double>& v) {
    w.Key(key);
    if (v) {
      w.Double(*v);
    } else {
      w.Null();
    }
  };
  optional("max_p99_ms", r.max_p99_ms);
  optional("max_disagreement", r.max_disagreement);
  optional("max_quality_drop", r.max_quality_drop);
  w.Key("alias");
  Str(w, r.alias);
  w.EndObject();
  w.EndObject();
}

}  // namespace

std::string LoopDefinitionsJson(const std::vector<LoopDefinition>& defs) {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
  w.SetIndent(' ', 2);
  w.StartObject();
  w.Key("loops");
  w.StartArray();
  for (const LoopDefinition& d : defs) WriteDefinitionJson(w, d);
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace flywheel::cli
