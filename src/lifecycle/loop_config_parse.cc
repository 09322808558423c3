// The YAML reader of retraining loop definitions (loop_config.h): every field checked for its type
// and range, unknown and duplicate fields refused, each error naming the file, line and field.
#include "lifecycle/loop_config_parse.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <initializer_list>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "core/status.h"
#include "lifecycle/registry.h"
#include "lifecycle/registry_names.h"
#include "lifecycle/train_command.h"

namespace flywheel::lifecycle {
namespace {

constexpr char kDurationHint[] = "(use 30s, 10m, 2h, 7d)";
// What train.command and train.env may name; the loop fills them in for each run.
constexpr const char* kPlaceholderNames[] = {"train",    "holdout", "output",
                                             "champion", "model",   "run"};

constexpr GateMetric kMetrics[] = {GateMetric::kAuc, GateMetric::kAccuracy, GateMetric::kLogLoss,
                                   GateMetric::kMae, GateMetric::kRmse};
constexpr LoopRolloutPolicy kPolicies[] = {LoopRolloutPolicy::kCanary, LoopRolloutPolicy::kAbTest,
                                           LoopRolloutPolicy::kShadow};

// "30s", "10m", "1h30m", "250ms": one or more <digits><unit> with units ms, s, m, h, d.
bool ParseDurationText(absl::string_view text, absl::Duration* out) {
  if (text.empty()) return false;
  absl::Duration total = absl::ZeroDuration();
  size_t i = 0;
  while (i < text.size()) {
    const size_t start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    int64_t value = 0;
    if (i == start || i - start > 12 || !absl::SimpleAtoi(text.substr(start, i - start), &value)) {
      return false;
    }
    absl::Duration unit;
    if (text.substr(i, 2) == "ms") {
      unit = absl::Milliseconds(1);
      i += 2;
    } else if (i < text.size() && text[i] == 's') {
      unit = absl::Seconds(1);
      ++i;
    } else if (i < text.size() && text[i] == 'm') {
      unit = absl::Minutes(1);
      ++i;
    } else if (i < text.size() && text[i] == 'h') {
      unit = absl::Hours(1);
      ++i;
    } else if (i < text.size() && text[i] == 'd') {
      unit = absl::Hours(24);
      ++i;
    } else {
      return false;
    }
    total += value * unit;
  }
  *out = total;
  return true;
}

struct Entry {
  YAML::Node key;
  YAML::Node value;
};
using Fields = std::map<std::string, Entry>;

class DefinitionParser {
 public:
  explicit DefinitionParser(std::string file) : file_(std::move(file)) {}

  absl::StatusOr<ParsedLoopDefinition> Parse(const std::string& text) {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(absl::StrCat(
          file_, ":", e.mark.is_null() ? 0 : e.mark.line + 1, ": invalid YAML: ", e.msg));
    }
    if (!root.IsDefined() || root.IsNull()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file_,
                       ":1: the file is empty (expected a loop definition: name, model, "
                       "trigger, train, ...)"));
    }
    if (!root.IsMap()) {
      return Error(Line(root), "(top level)",
                   "expected a map of fields (name, model, trigger, data, train, evaluate, "
                   "rollout)");
    }
    try {
      return ParseRoot(root);
    } catch (const YAML::Exception& e) {  // a node shape the checks above did not foresee
      return absl::InvalidArgumentError(absl::StrCat(
          file_, ":", e.mark.is_null() ? 0 : e.mark.line + 1, ": invalid definition: ", e.msg));
    }
  }

 private:
  static int Line(const YAML::Node& node) {
    const YAML::Mark mark = node.Mark();
    return mark.is_null() ? 0 : mark.line + 1;
  }

  absl::Status Error(int line, absl::string_view field, absl::string_view problem) const {
    return absl::InvalidArgumentError(absl::StrCat(file_, ":", line, ": ", field, ": ", problem));
  }

  static std::string Path(absl::string_view section, absl::string_view name) {
    return section.empty() ? std::string(name) : absl::StrCat(section, ".", name);
  }

  // The fields of a map, refusing keys outside `allowed`, repeated keys and non-scalar keys.
  absl::StatusOr<Fields> MapFields(const YAML::Node& map, absl::string_view section,
                                   int section_line,
                                   std::initializer_list<const char*> allowed) const {
    if (!map.IsMap()) {
      return Error(section_line, section,
                   absl::StrCat("expected a map of fields (", absl::StrJoin(allowed, ", "), ")"));
    }
    Fields fields;
    for (auto it = map.begin(); it != map.end(); ++it) {
      const YAML::Node key = it->first;
      if (!key.IsScalar()) {
        return Error(Line(key), section, "field names must be plain words");
      }
      const std::string& name = key.Scalar();
      const bool known =
          std::any_of(allowed.begin(), allowed.end(), [&](const char* a) { return name == a; });
      if (!known) {
        return Error(Line(key), Path(section, name),
                     absl::StrCat("unknown field (", section.empty() ? "known" : section,
                                  " fields: ", absl::StrJoin(allowed, ", "), ")"));
      }
      if (fields.count(name) != 0) {
        return Error(Line(key), Path(section, name),
                     absl::StrCat("given twice (first at line ", Line(fields[name].key), ")"));
      }
      fields[name] = Entry{key, it->second};
    }
    return fields;
  }

  absl::StatusOr<std::string> String(const Entry& e, absl::string_view field) const {
    if (e.value.IsNull()) return Error(Line(e.key), field, "is empty");
    if (!e.value.IsScalar()) return Error(Line(e.key), field, "expected a string");
    return e.value.Scalar();
  }

  // Numbers must be plain scalars: a quoted "0.1" is a string, most likely a mistake.
  absl::StatusOr<std::string> NumberText(const Entry& e, absl::string_view field,
                                         absl::string_view kind) const {
    if (e.value.IsNull())
      return Error(Line(e.key), field, absl::StrCat("is empty (expected ", kind, ")"));
    if (!e.value.IsScalar()) return Error(Line(e.key), field, absl::StrCat("expected ", kind));
    if (e.value.Tag() == "!") {
      return Error(
          Line(e.key), field,
          absl::StrCat("expected ", kind, ", got the quoted string '", e.value.Scalar(), "'"));
    }
    return e.value.Scalar();
  }

  absl::StatusOr<int64_t> Int(const Entry& e, absl::string_view field) const {
    FW_ASSIGN_OR_RETURN(std::string text, NumberText(e, field, "an integer"));
    int64_t v = 0;
    if (!absl::SimpleAtoi(text, &v)) {
      return Error(Line(e.key), field, absl::StrCat("'", text, "' is not an integer"));
    }
    return v;
  }

  absl::StatusOr<double> Double(const Entry& e, absl::string_view field) const {
    FW_ASSIGN_OR_RETURN(std::string text, NumberText(e, field, "a number"));
    double v = 0;
    if (!absl::SimpleAtod(text, &v) || !std::isfinite(v)) {
      return Error(Line(e.key), field, absl::StrCat("'", text, "' is not a finite number"));
    }
    return v;
  }

  absl::StatusOr<absl::Duration> Duration(const Entry& e, absl::string_view field) const {
    if (e.value.IsNull() || !e.value.IsScalar()) {
      return Error(Line(e.key), field, absl::StrCat("expected a duration ", kDurationHint));
    }
    const std::string& text = e.value.Scalar();
    absl::Duration d;
    if (!ParseDurationText(text, &d)) {
      return Error(Line(e.key), field,
                   absl::StrCat("'", text, "' is not a duration ", kDurationHint));
    }
    if (d >= absl::Hours(24 * 365 * 100)) {
      return Error(Line(e.key), field,
                   absl::StrCat("'", text, "' is too long (100 years at most)"));
    }
    return d;
  }

  absl::Status Positive(const Entry& e, absl::string_view field, double v) const {
    if (v > 0) return absl::OkStatus();
    return Error(Line(e.key), field, absl::StrCat("must be > 0, got ", v));
  }
  absl::Status NotNegative(const Entry& e, absl::string_view field, double v) const {
    if (v >= 0) return absl::OkStatus();
    return Error(Line(e.key), field, absl::StrCat("must be >= 0, got ", v));
  }
  absl::Status OpenUnit(const Entry& e, absl::string_view field, double v) const {
    if (v > 0 && v < 1) return absl::OkStatus();
    return Error(Line(e.key), field, absl::StrCat("must be between 0 and 1 (exclusive), got ", v));
  }
  absl::Status ClosedUnit(const Entry& e, absl::string_view field, double v) const {
    if (v >= 0 && v <= 1) return absl::OkStatus();
    return Error(Line(e.key), field, absl::StrCat("must be between 0 and 1, got ", v));
  }
  absl::Status PositiveDuration(const Entry& e, absl::string_view field, absl::Duration d) const {
    if (d > absl::ZeroDuration()) return absl::OkStatus();
    return Error(Line(e.key), field, "must be longer than 0");
  }

  // Placeholders are checked against the names the loop provides, so a typo fails here rather
  // than at the first run.
  absl::Status CheckPlaceholders(int line, absl::string_view field, const std::string& text) const {
    std::map<std::string, std::string> known;
    for (const char* name : kPlaceholderNames) known[name] = "";
    absl::StatusOr<std::string> filled = SubstitutePlaceholders(text, known);
    if (!filled.ok()) return Error(line, field, filled.status().message());
    return absl::OkStatus();
  }

  absl::StatusOr<ParsedLoopDefinition> ParseRoot(const YAML::Node& root) {
    const int root_line = Line(root);
    FW_ASSIGN_OR_RETURN(Fields fields, MapFields(root, "", root_line,
                                                 {"name", "model", "trigger", "data", "train",
                                                  "evaluate", "rollout"}));
    ParsedLoopDefinition out;
    LoopDefinition& def = out.def;
    def.source_file = file_;

    auto name = fields.find("name");
    if (name == fields.end()) {
      return Error(root_line, "name", "missing (the loop's name, e.g. name: fraud-retrain)");
    }
    FW_ASSIGN_OR_RETURN(def.name, String(name->second, "name"));
    out.name_line = Line(name->second.key);
    const bool good_name =
        !def.name.empty() && std::all_of(def.name.begin(), def.name.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        });
    if (!good_name) {
      return Error(out.name_line, "name",
                   absl::StrCat("'", def.name,
                                "' is not a valid loop name (lower-case letters, digits, '_' and "
                                "'-' only)"));
    }

    auto model = fields.find("model");
    if (model == fields.end()) {
      return Error(root_line, "model", "missing (the model the loop retrains)");
    }
    FW_ASSIGN_OR_RETURN(def.model, String(model->second, "model"));
    if (absl::Status s = ValidateModelName(def.model); !s.ok()) {
      return Error(Line(model->second.key), "model", s.message());
    }

    FW_RETURN_IF_ERROR(ParseTrigger(fields, root_line, def.trigger));
    if (auto it = fields.find("data"); it != fields.end()) {
      FW_RETURN_IF_ERROR(ParseData(it->second, def.data));
    }
    FW_RETURN_IF_ERROR(ParseTrain(fields, root_line, def.train));
    if (auto it = fields.find("evaluate"); it != fields.end()) {
      FW_RETURN_IF_ERROR(ParseEvaluate(it->second, def.evaluate));
    }
    if (auto it = fields.find("rollout"); it != fields.end()) {
      FW_RETURN_IF_ERROR(ParseRollout(it->second, def.rollout));
    }
    return out;
  }

  absl::Status ParseTrigger(const Fields& root, int root_line, LoopTrigger& t) const {
    constexpr char kNone[] = "no trigger (set at least one of new_labels, every, drift_psi)";
    auto section = root.find("trigger");
    if (section == root.end()) return Error(root_line, "trigger", absl::StrCat("missing: ", kNone));
    const int line = Line(section->second.key);
    FW_ASSIGN_OR_RETURN(Fields f, MapFields(section->second.value, "trigger", line,
                                            {"new_labels", "every", "drift_psi", "min_interval"}));
    if (auto it = f.find("new_labels"); it != f.end()) {
      FW_ASSIGN_OR_RETURN(int64_t v, Int(it->second, "trigger.new_labels"));
      FW_RETURN_IF_ERROR(Positive(it->second, "trigger.new_labels", static_cast<double>(v)));
      t.new_labels = v;
    }
    if (auto it = f.find("every"); it != f.end()) {
      FW_ASSIGN_OR_RETURN(absl::Duration v, Duration(it->second, "trigger.every"));
      FW_RETURN_IF_ERROR(PositiveDuration(it->second, "trigger.every", v));
      t.every = v;
    }
    if (auto it = f.find("drift_psi"); it != f.end()) {
      FW_ASSIGN_OR_RETURN(double v, Double(it->second, "trigger.drift_psi"));
      FW_RETURN_IF_ERROR(Positive(it->second, "trigger.drift_psi", v));
      t.drift_psi = v;
    }
    if (auto it = f.find("min_interval"); it != f.end()) {
      FW_ASSIGN_OR_RETURN(t.min_interval, Duration(it->second, "trigger.min_interval"));
    }
    if (!t.new_labels && !t.every && !t.drift_psi) return Error(line, "trigger", kNone);
    return absl::OkStatus();
  }

  absl::Status ParseData(const Entry& section, LoopData& d) const {
    FW_ASSIGN_OR_RETURN(Fields f, MapFields(section.value, "data", Line(section.key),
                                            {"window", "holdout", "min_rows"}));
    if (auto it = f.find("window"); it != f.end()) {
      FW_ASSIGN_OR_RETURN(d.window, Duration(it->second, "data.window"));
      FW_RETURN_IF_ERROR(PositiveDuration(it->second, "data.window", d.window));
    }
    if (auto it = f.find("holdout"); it != f.end()) {
      FW_ASSIGN_OR_RETURN(d.holdout, Double(it->second, "data.holdout"));
      FW_RETURN_IF_ERROR(OpenUnit(it->second, "data.holdout", d.holdout));
    }
    if (auto it = f.find("min_rows"); it != f.end()) {
      FW_ASSIGN_OR_RETURN(d.min_rows, Int(it->second, "data.min_rows"));
      FW_RETURN_IF_ERROR(Positive(it->second, "data.min_rows", static_cast<double>(d.min_rows)));
    }
    return absl::OkStatus();
  }

  absl::Status ParseTrain(const Fields& root, int root_line, LoopTrain& t) const {
    auto section = root.find("train");
    if (section == root.end()) {
      return Error(root_line, "train.command",
                   "missing (train: with command: [executable, args...] and model_file:)");
    }
    const int line = Line(section->second.key);
    FW_ASSIGN_OR_RETURN(Fields f, MapFields(section->second.value, "train", line,
                                            {"command", "timeout", "model_file", "env"}));
    auto command = f.find("command");
    if (command == f.end()) {
      return Error(line, "train.command",
                   "missing (the training executable and its arguments, e.g. "
                   "[\"/usr/bin/python3\", \"train.py\", \"--train\", \"{train}\"])");
    }
    const YAML::Node& list = command->second.value;
    if (!list.IsSequence() || list.size() == 0) {
      return Error(Line(command->second.key), "train.command",
                   "expected a non-empty list of strings (the executable, then its arguments)");
    }
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node item = list[i];
      const std::string field = absl::StrCat("train.command[", i, "]");
      const int item_line = Line(item) != 0 ? Line(item) : Line(command->second.key);
      if (!item.IsScalar()) return Error(item_line, field, "expected a string");
      if (i == 0 && item.Scalar().empty())
        return Error(item_line, field, "the executable is empty");
      FW_RETURN_IF_ERROR(CheckPlaceholders(item_line, field, item.Scalar()));
      t.command.push_back(item.Scalar());
    }
    if (auto it = f.find("timeout"); it != f.end()) {
      FW_ASSIGN_OR_RETURN(t.timeout, Duration(it->second, "train.timeout"));
      FW_RETURN_IF_ERROR(PositiveDuration(it->second, "train.timeout", t.timeout));
    }
    auto model_file = f.find("model_file");
    if (model_file == f.end()) {
      return Error(line, "train.model_file",
                   "missing (the file the command writes into {output}, e.g. xgboost.json)");
    }
    FW_ASSIGN_OR_RETURN(t.model_file, String(model_file->second, "train.model_file"));
    if (t.model_file.empty() || t.model_file == "." || t.model_file == ".." ||
        absl::StrContains(t.model_file, '/') || absl::StrContains(t.model_file, '\0')) {
      return Error(Line(model_file->second.key), "train.model_file",
                   absl::StrCat("'", t.model_file,
                                "' must be a plain file name (no '/'): the file inside {output}"));
    }
    if (auto it = f.find("env"); it != f.end()) {
      const int env_line = Line(it->second.key);
      if (!it->second.value.IsMap()) {
        return Error(env_line, "train.env", "expected a map of NAME: value");
      }
      for (auto e = it->second.value.begin(); e != it->second.value.end(); ++e) {
        const YAML::Node key = e->first;
        const std::string name = key.IsScalar() ? key.Scalar() : "";
        const std::string field = absl::StrCat("train.env.", name);
        const bool good = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
                          std::all_of(name.begin(), name.end(), [](char c) {
                            return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                          });
        if (!good) {
          return Error(Line(key), field,
                       "not a valid environment variable name (letters, digits, '_')");
        }
        if (t.env.count(name) != 0) return Error(Line(key), field, "given twice");
        if (!e->second.IsScalar()) {
          return Error(Line(key), field, "expected a string value");
        }
        FW_RETURN_IF_ERROR(CheckPlaceholders(Line(key), field, e->second.Scalar()));
        t.env[name] = e->second.Scalar();
      }
    }
    return absl::OkStatus();
  }

  absl::Status ParseEvaluate(const Entry& section, LoopEvaluate& ev) const {
    FW_ASSIGN_OR_RETURN(
        Fields f, MapFields(section.value, "evaluate", Line(section.key), {"metric", "margin"}));
    if (auto it = f.find("metric"); it != f.end()) {
      FW_ASSIGN_OR_RETURN(std::string name, String(it->second, "evaluate.metric"));
      bool found = false;
      std::vector<std::string> names;
      for (GateMetric m : kMetrics) {
        names.push_back(GateMetricName(m));
        if (name == GateMetricName(m)) {
          ev.metric = m;
          found = true;
        }
      }
      if (!found) {
        return Error(
            Line(it->second.key), "evaluate.metric",
            absl::StrCat("unknown metric '", name, "' (use ", absl::StrJoin(names, ", "), ")"));
      }
    }
    if (auto it = f.find("margin"); it != f.end()) {
      FW_ASSIGN_OR_RETURN(ev.margin, Double(it->second, "evaluate.margin"));
      FW_RETURN_IF_ERROR(NotNegative(it->second, "evaluate.margin", ev.margin));
    }
    return absl::OkStatus();
  }

  absl::Status ParseRollout(const Entry& section, LoopRollout& r) const {
    const int line = Line(section.key);
    FW_ASSIGN_OR_RETURN(Fields f,
                        MapFields(section.value, "rollout", line,
                                  {"policy", "weight", "sticky_parameter", "shadow_fraction",
                                   "healthy_for", "min_requests", "max_error_rate", "max_p99_ms",
                                   "max_disagreement", "max_quality_drop", "alias"}));
    if (auto it = f.find("policy"); it != f.end()) {
      FW_ASSIGN_OR_RETURN(std::string name, String(it->second, "rollout.policy"));
      bool found = false;
      for (LoopRolloutPolicy p : kPolicies) {
        if (name == LoopRolloutPolicyName(p)) {
          r.policy = p;
          found = true;
        }
      }
      if (!found) {
        return Error(Line(it->second.key), "rollout.policy",
                     absl::StrCat("unknown policy '", name, "' (use canary, ab, shadow)"));
      }
    }
    if (auto it = f.find("weight"); it != f.end()) {
      FW_ASSIGN_OR_RETURN(r.weight, Double(it->second, "rollout.weight"));
      FW_RETURN_IF_ERROR(OpenUnit(it->second, "rollout.weight", r.weight));
    }
    if (auto it = f.find("sticky_parameter"); it != f.end()) {
      FW_ASSIGN_OR_RETURN(r.sticky_parameter, String(it->second, "rollout.sticky_parameter"));
      if (r.sticky_parameter.empty()) {
        return Error(Line(it->second.key), "rollout.sticky_parameter", "is empty");
      }
    }
    bool has_shadow_fraction = false;
    if (auto it = f.find("shadow_fraction"); it != f.end()) {
      FW_ASSIGN_OR_RETURN(r.shadow_fraction, Double(it->second, "rollout.shadow_fraction"));
      if (!(r.shadow_fraction > 0 && r.shadow_fraction <= 1)) {
        return Error(Line(it->second.key), "rollout.shadow_fraction",
                     absl::StrCat("must be in (0, 1], got ", r.shadow_fraction));
      }
      has_shadow_fraction = true;
    }
    if (auto it = f.find("healthy_for"); it != f.end()) {
      FW_ASSIGN_OR_RETURN(r.healthy_for, Duration(it->second, "rollout.healthy_for"));
    }
    if (auto it = f.find("min_requests"); it != f.end()) {
      FW_ASSIGN_OR_RETURN(r.min_requests, Int(it->second, "rollout.min_requests"));
      FW_RETURN_IF_ERROR(
          NotNegative(it->second, "rollout.min_requests", static_cast<double>(r.min_requests)));
    }
    if (auto it = f.find("max_error_rate"); it != f.end()) {
      FW_ASSIGN_OR_RETURN(r.max_error_rate, Double(it->second, "rollout.max_error_rate"));
      FW_RETURN_IF_ERROR(ClosedUnit(it->second, "rollout.max_error_rate", r.max_error_rate));
    }
    if (auto it = f.find("max_p99_ms"); it != f.end()) {
      FW_ASSIGN_OR_RETURN(double v, Double(it->second, "rollout.max_p99_ms"));
      FW_RETURN_IF_ERROR(Positive(it->second, "rollout.max_p99_ms", v));
      r.max_p99_ms = v;
    }
    if (auto it = f.find("max_disagreement"); it != f.end()) {
      FW_ASSIGN_OR_RETURN(double v, Double(it->second, "rollout.max_disagreement"));
      FW_RETURN_IF_ERROR(ClosedUnit(it->second, "rollout.max_disagreement", v));
      r.max_disagreement = v;
    }
    if (auto it = f.find("max_quality_drop"); it != f.end()) {
      FW_ASSIGN_OR_RETURN(double v, Double(it->second, "rollout.max_quality_drop"));
      FW_RETURN_IF_ERROR(NotNegative(it->second, "rollout.max_quality_drop", v));
      r.max_quality_drop = v;
    }
    if (auto it = f.find("alias"); it != f.end()) {
      FW_ASSIGN_OR_RETURN(r.alias, String(it->second, "rollout.alias"));
      if (absl::Status s = ValidateAliasName(r.alias); !s.ok()) {
        return Error(Line(it->second.key), "rollout.alias", s.message());
      }
    }
    if (r.policy == LoopRolloutPolicy::kAbTest && r.sticky_parameter.empty()) {
      return Error(line, "rollout.sticky_parameter",
                   "missing: policy ab needs the request parameter that keeps a user on one arm");
    }
    if (r.policy == LoopRolloutPolicy::kShadow && !has_shadow_fraction) {
      return Error(line, "rollout.shadow_fraction",
                   "missing: policy shadow needs the share of requests copied to the candidate");
    }
    return absl::OkStatus();
  }

  std::string file_;
};
}  // namespace

absl::StatusOr<ParsedLoopDefinition> ParseLoopYaml(const std::string& yaml_text,
                                                   const std::string& source_file) {
  return DefinitionParser(source_file).Parse(yaml_text);
}

}  // namespace flywheel::lifecycle
