// Rollout policy and state names, the spec's JSON reader and its range checks.
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"
#include "lifecycle/registry.h"
#include "lifecycle/rollout.h"
#include "lifecycle/rollout_json.h"

namespace flywheel::lifecycle {
namespace {

using Value = rapidjson::Value;

constexpr absl::string_view kSpecMembers[] = {
    "policy",          "stable",     "candidate",          "weight", "sticky_parameter",
    "shadow_fraction", "thresholds", "promote_after_secs", "alias"};
constexpr absl::string_view kThresholdMembers[] = {
    "max_error_rate", "max_p99_ms",   "max_disagreement", "max_quality_drop",
    "quality_metric", "min_requests", "min_labels",       "window_secs"};
constexpr absl::string_view kQualityMetrics[] = {"auc", "accuracy", "log_loss", "mae", "rmse"};

absl::Status Bad(absl::string_view member, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("rollout spec '", member, "': ", what));
}

absl::StatusOr<double> Number(const Value& v, absl::string_view member) {
  if (!v.IsNumber() || !std::isfinite(v.GetDouble())) return Bad(member, "expected a number");
  return v.GetDouble();
}

absl::StatusOr<std::optional<double>> OptionalNumber(const Value& v, absl::string_view member) {
  if (v.IsNull()) return std::optional<double>();
  FW_ASSIGN_OR_RETURN(double d, Number(v, member));
  return std::optional<double>(d);
}

absl::StatusOr<int64_t> Integer(const Value& v, absl::string_view member) {
  if (!v.IsInt64()) return Bad(member, "expected an integer");
  return v.GetInt64();
}

absl::StatusOr<std::string> String(const Value& v, absl::string_view member) {
  if (!v.IsString()) return Bad(member, "expected a string");
  return std::string(v.GetString(), v.GetStringLength());
}

// Seconds as a duration; whole microseconds are kept.
absl::StatusOr<absl::Duration> Seconds(const Value& v, absl::string_view member) {
  FW_ASSIGN_OR_RETURN(double secs, Number(v, member));
  if (secs <= 0 || secs > 1e9) return Bad(member, "expected a number of seconds > 0");
  return absl::Microseconds(std::llround(secs * 1e6));
}

template <size_t N>
bool Known(const absl::string_view (&names)[N], absl::string_view name) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

absl::Status ReadThresholds(const Value& obj, RolloutThresholds& t) {
  if (!obj.IsObject()) return Bad("thresholds", "expected an object");
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
    const absl::string_view name(it->name.GetString(), it->name.GetStringLength());
    const std::string member = absl::StrCat("thresholds.", name);
    const Value& v = it->value;
    if (name == "max_error_rate") {
      FW_ASSIGN_OR_RETURN(t.max_error_rate, Number(v, member));
    } else if (name == "max_p99_ms") {
      FW_ASSIGN_OR_RETURN(t.max_p99_ms, OptionalNumber(v, member));
    } else if (name == "max_disagreement") {
      FW_ASSIGN_OR_RETURN(t.max_disagreement, OptionalNumber(v, member));
    } else if (name == "max_quality_drop") {
      FW_ASSIGN_OR_RETURN(t.max_quality_drop, OptionalNumber(v, member));
    } else if (name == "quality_metric") {
      FW_ASSIGN_OR_RETURN(t.quality_metric, String(v, member));
    } else if (name == "min_requests") {
      FW_ASSIGN_OR_RETURN(t.min_requests, Integer(v, member));
    } else if (name == "min_labels") {
      FW_ASSIGN_OR_RETURN(t.min_labels, Integer(v, member));
    } else if (name == "window_secs") {
      FW_ASSIGN_OR_RETURN(t.window, Seconds(v, member));
    } else {
      return Bad(member,
                 absl::StrCat("unknown member; known: ", absl::StrJoin(kThresholdMembers, ", ")));
    }
  }
  return absl::OkStatus();
}

}  // namespace

const char* RolloutPolicyName(RolloutPolicy policy) {
  switch (policy) {
    case RolloutPolicy::kCanary:
      return "canary";
    case RolloutPolicy::kAbTest:
      return "ab";
    case RolloutPolicy::kShadow:
      return "shadow";
  }
  return "canary";
}

absl::StatusOr<RolloutPolicy> ParseRolloutPolicy(absl::string_view name) {
  if (name == "canary") return RolloutPolicy::kCanary;
  if (name == "ab" || name == "ab_test") return RolloutPolicy::kAbTest;
  if (name == "shadow") return RolloutPolicy::kShadow;
  return absl::InvalidArgumentError(
      absl::StrCat("rollout policy '", name, "' is not one of canary, ab, shadow"));
}

const char* RolloutStateName(RolloutState state) {
  switch (state) {
    case RolloutState::kActive:
      return "active";
    case RolloutState::kPromoted:
      return "promoted";
    case RolloutState::kRolledBack:
      return "rolled_back";
    case RolloutState::kStopped:
      return "stopped";
  }
  return "active";
}

absl::StatusOr<RolloutSpec> RolloutSpecFromJson(
    const rapidjson::Value& object, std::initializer_list<absl::string_view> also_allowed) {
  if (!object.IsObject()) {
    return absl::InvalidArgumentError("a rollout spec must be a JSON object");
  }
  RolloutSpec spec;
  for (auto it = object.MemberBegin(); it != object.MemberEnd(); ++it) {
    const absl::string_view name(it->name.GetString(), it->name.GetStringLength());
    const Value& v = it->value;
    if (name == "policy") {
      FW_ASSIGN_OR_RETURN(std::string policy, String(v, name));
      absl::StatusOr<RolloutPolicy> parsed = ParseRolloutPolicy(policy);
      if (!parsed.ok()) return Bad(name, parsed.status().message());
      spec.policy = *parsed;
    } else if (name == "stable") {
      FW_ASSIGN_OR_RETURN(spec.stable, Integer(v, name));
    } else if (name == "candidate") {
      FW_ASSIGN_OR_RETURN(spec.candidate, Integer(v, name));
    } else if (name == "weight") {
      FW_ASSIGN_OR_RETURN(spec.weight, Number(v, name));
    } else if (name == "sticky_parameter") {
      FW_ASSIGN_OR_RETURN(spec.sticky_parameter, String(v, name));
    } else if (name == "shadow_fraction") {
      FW_ASSIGN_OR_RETURN(spec.shadow_fraction, Number(v, name));
    } else if (name == "thresholds") {
      FW_RETURN_IF_ERROR(ReadThresholds(v, spec.thresholds));
    } else if (name == "promote_after_secs") {
      if (v.IsNull()) {
        spec.promote_after.reset();
      } else {
        FW_ASSIGN_OR_RETURN(spec.promote_after, Seconds(v, name));
      }
    } else if (name == "alias") {
      FW_ASSIGN_OR_RETURN(spec.alias, String(v, name));
    } else if (std::find(also_allowed.begin(), also_allowed.end(), name) == also_allowed.end()) {
      std::string known = absl::StrJoin(kSpecMembers, ", ");
      for (absl::string_view extra : also_allowed) absl::StrAppend(&known, ", ", extra);
      return Bad(name, absl::StrCat("unknown member; known: ", known));
    }
  }
  return spec;
}

absl::Status ValidateRolloutSpec(const RolloutSpec& spec) {
  if (spec.candidate <= 0) return Bad("candidate", "expected a version number > 0");
  if (spec.stable < 0) return Bad("stable", "expected a version number (0: the current one)");
  if (spec.stable != 0 && spec.stable == spec.candidate) {
    return Bad("candidate",
               absl::StrCat("version ", spec.candidate, " is also the stable version"));
  }
  switch (spec.policy) {
    case RolloutPolicy::kAbTest:
      if (spec.sticky_parameter.empty()) {
        return Bad("sticky_parameter",
                   "an A-B rollout needs the request parameter that assigns users (e.g. user_id)");
      }
      [[fallthrough]];
    case RolloutPolicy::kCanary:
      if (!(spec.weight > 0 && spec.weight <= 1)) {
        return Bad("weight", absl::StrCat(spec.weight, " is not in (0, 1]"));
      }
      break;
    case RolloutPolicy::kShadow:
      if (!(spec.shadow_fraction > 0 && spec.shadow_fraction <= 1)) {
        return Bad("shadow_fraction",
                   absl::StrCat(spec.shadow_fraction,
                                " is not in (0, 1] (a shadow rollout copies this share)"));
      }
      break;
  }
  const RolloutThresholds& t = spec.thresholds;
  if (!(t.max_error_rate >= 0 && t.max_error_rate <= 1)) {
    return Bad("thresholds.max_error_rate", absl::StrCat(t.max_error_rate, " is not in [0, 1]"));
  }
  if (t.max_p99_ms.has_value() && !(*t.max_p99_ms > 0 && std::isfinite(*t.max_p99_ms))) {
    return Bad("thresholds.max_p99_ms", absl::StrCat(*t.max_p99_ms, " is not > 0"));
  }
  if (t.max_disagreement.has_value() && !(*t.max_disagreement >= 0 && *t.max_disagreement <= 1)) {
    return Bad("thresholds.max_disagreement",
               absl::StrCat(*t.max_disagreement, " is not in [0, 1]"));
  }
  if (t.max_quality_drop.has_value() &&
      !(*t.max_quality_drop >= 0 && std::isfinite(*t.max_quality_drop))) {
    return Bad("thresholds.max_quality_drop", absl::StrCat(*t.max_quality_drop, " is not >= 0"));
  }
  if (!Known(kQualityMetrics, t.quality_metric)) {
    return Bad("thresholds.quality_metric", absl::StrCat("'", t.quality_metric, "' is not one of ",
                                                         absl::StrJoin(kQualityMetrics, ", ")));
  }
  if (t.min_requests <= 0) {
    return Bad("thresholds.min_requests", absl::StrCat(t.min_requests, " is not > 0"));
  }
  if (t.min_labels <= 0) {
    return Bad("thresholds.min_labels", absl::StrCat(t.min_labels, " is not > 0"));
  }
  if (t.window <= absl::ZeroDuration()) {
    return Bad("thresholds.window_secs", "the window must be longer than 0 seconds");
  }
  if (spec.promote_after.has_value() && *spec.promote_after <= absl::ZeroDuration()) {
    return Bad("promote_after_secs", "must be longer than 0 seconds");
  }
  if (absl::Status alias = ValidateAliasName(spec.alias); !alias.ok()) {
    return Bad("alias", alias.message());
  }
  return absl::OkStatus();
}

}  // namespace flywheel::lifecycle
