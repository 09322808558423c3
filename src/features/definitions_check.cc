// YAML -> FeatureRegistry, part two: aggregations (short and long form) and the checks across
// definitions (references, field types per source, tile counts).
#include <algorithm>
#include <numeric>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "features/definitions.h"
#include "features/definitions_builder.h"

namespace flywheel::features {
std::optional<AggSpec> RegistryBuilder::ParseAggExpression(const YAML::Node& node,
                                                           const std::string& ctx) {
  const std::string& text = node.Scalar();
  auto bad = [&](absl::string_view why) {
    Error(node, ctx,
          absl::StrCat(why, " in '", text,
                       "' (expected '<function>[(<field>)] over <window>[, every <slide>]')"));
    return std::nullopt;
  };
  std::vector<absl::string_view> words =
      absl::StrSplit(text, absl::ByAnyChar(" \t"), absl::SkipWhitespace());
  auto over = std::find(words.begin(), words.end(), "over");
  if (over == words.end()) return bad("missing 'over'");
  // Everything before "over" is the call, e.g. "last_n(page," "5)".
  std::string call = absl::StrJoin(words.begin(), over, "");
  std::string rest = absl::StrJoin(over + 1, words.end(), " ");
  AggSpec spec;
  size_t paren = call.find('(');
  spec.function = call.substr(0, paren);
  if (paren != std::string::npos) {
    if (call.back() != ')') return bad("unbalanced parentheses");
    std::vector<std::string> args =
        absl::StrSplit(call.substr(paren + 1, call.size() - paren - 2), ',');
    if (args.empty() || args[0].empty() || args.size() > 2) return bad("bad arguments");
    spec.field = args[0];
    if (args.size() == 2) {
      int64_t n = 0;
      if (!absl::SimpleAtoi(args[1], &n)) return bad(absl::StrCat("bad count '", args[1], "'"));
      spec.n = n;
    }
  }
  std::vector<std::string> parts = absl::StrSplit(rest, ',');
  if (parts.empty() || parts.size() > 2) return bad("bad window");
  spec.window = std::string(absl::StripAsciiWhitespace(parts[0]));
  if (parts.size() == 2) {
    absl::string_view every = absl::StripAsciiWhitespace(parts[1]);
    if (!absl::ConsumePrefix(&every, "every")) return bad("expected 'every <slide>' after ','");
    spec.every = std::string(absl::StripAsciiWhitespace(every));
  }
  return spec;
}

void RegistryBuilder::ParseAggregation(ViewDef& view, const std::string& ctx, const YAML::Node& key,
                                       const YAML::Node& value) {
  FeatureDef feature;
  feature.aggregation = true;
  feature.name = key.Scalar();
  feature.location = Loc(key);
  std::string fctx = absl::StrCat(ctx, "aggregation '", feature.name, "': ");
  if (!ValidName(feature.name)) {
    Error(key, fctx, "not a valid feature name");
    return;
  }
  std::optional<AggSpec> spec;
  if (value.IsScalar()) {
    spec = ParseAggExpression(value, fctx);
  } else if (CheckMap(value, fctx,
                      {"function", "field", "n", "window", "every", "precision", "description"})) {
    spec.emplace();
    auto get = [&](const char* name, std::string* out) {
      if (YAML::Node node = value[name]) {
        if (std::optional<std::string> text = Scalar(node, fctx, name)) *out = *text;
      }
    };
    get("function", &spec->function);
    get("field", &spec->field);
    get("window", &spec->window);
    get("every", &spec->every);
    for (const char* name : {"n", "precision"}) {
      if (YAML::Node node = value[name]) {
        int64_t number = 0;
        if (!node.IsScalar() || !absl::SimpleAtoi(node.Scalar(), &number)) {
          Error(node, fctx, absl::StrCat("'", name, "' must be an integer"));
          return;
        }
        (absl::string_view(name) == "n" ? spec->n : spec->precision) = number;
      }
    }
    if (spec->function.empty()) {
      Error(value, fctx, "missing 'function'");
      return;
    }
    if (spec->window.empty()) {
      Error(value, fctx, "missing 'window'");
      return;
    }
  }
  if (!spec) return;
  const YAML::Node& at = value.IsMap() && value["function"] ? value["function"] : value;
  static const std::pair<absl::string_view, AggFunction> kFunctions[] = {
      {"count", AggFunction::kCount},  {"sum", AggFunction::kSum},
      {"mean", AggFunction::kMean},    {"min", AggFunction::kMin},
      {"max", AggFunction::kMax},      {"last", AggFunction::kLast},
      {"last_n", AggFunction::kLastN}, {"distinct", AggFunction::kDistinct}};
  auto fn = std::find_if(std::begin(kFunctions), std::end(kFunctions),
                         [&](const auto& f) { return f.first == spec->function; });
  if (fn == std::end(kFunctions)) {
    Error(at, fctx,
          absl::StrCat("unknown function '", spec->function,
                       "' (expected count, sum, mean, min, max, last, last_n, distinct)"));
    return;
  }
  feature.function = fn->second;
  feature.field = spec->field;
  if (feature.function == AggFunction::kCount && !feature.field.empty()) {
    feature.function = AggFunction::kCountField;
  }
  if (feature.function != AggFunction::kCount && feature.field.empty()) {
    Error(at, fctx,
          absl::StrCat(spec->function, " needs a field, e.g. ", spec->function, "(amount)"));
    return;
  }
  if (feature.function == AggFunction::kLastN) {
    if (!spec->n || *spec->n < 1 || *spec->n > kMaxLastN) {
      Error(at, fctx,
            absl::StrCat("last_n needs a count n in 1..", kMaxLastN, ", e.g. last_n(page, 5)"));
      return;
    }
    feature.n = static_cast<int>(*spec->n);
  } else if (spec->n) {
    Error(at, fctx, absl::StrCat("only last_n takes a count; ", spec->function, " does not"));
    return;
  }
  if (spec->precision) {
    if (feature.function != AggFunction::kDistinct || *spec->precision < 4 ||
        *spec->precision > 16) {
      Error(at, fctx, "'precision' applies to distinct only and must be in 4..16");
      return;
    }
    feature.precision = static_cast<int>(*spec->precision);
  }
  YAML::Node window_at = value.IsMap() && value["window"] ? value["window"] : value;
  absl::StatusOr<absl::Duration> window = ParseFeatureDuration(spec->window);
  if (!window.ok() || *window <= absl::ZeroDuration()) {
    Error(window_at, fctx,
          window.ok() ? "window must be positive"
                      : absl::StrCat("window: ", window.status().message()));
    return;
  }
  feature.window = *window;
  feature.every = *window;
  if (!spec->every.empty()) {
    YAML::Node every_at = value.IsMap() && value["every"] ? value["every"] : value;
    absl::StatusOr<absl::Duration> every = ParseFeatureDuration(spec->every);
    if (!every.ok() || *every <= absl::ZeroDuration()) {
      Error(every_at, fctx,
            every.ok() ? "every must be positive"
                       : absl::StrCat("every: ", every.status().message()));
      return;
    }
    absl::Duration remainder;
    absl::IDivDuration(feature.window, *every, &remainder);
    if (*every > feature.window || remainder != absl::ZeroDuration()) {
      Error(every_at, fctx,
            absl::StrCat("window ", FormatFeatureDuration(feature.window),
                         " must be a multiple of every ", FormatFeatureDuration(*every)));
      return;
    }
    feature.every = *every;
  }
  if (view.FindFeature(feature.name)) {
    Error(key, fctx, "a feature of this name is already defined in the view");
    return;
  }
  view.features.push_back(std::move(feature));
}

namespace {

ValueType AggregationType(AggFunction function, FieldType field_type) {
  switch (function) {
    case AggFunction::kCount:
    case AggFunction::kCountField:
    case AggFunction::kDistinct:
      return {FieldType::kInt64, false};
    case AggFunction::kMean:
      return {FieldType::kFloat64, false};
    case AggFunction::kLastN:
      return {field_type, true};
    case AggFunction::kSum:
    case AggFunction::kMin:
    case AggFunction::kMax:
    case AggFunction::kLast:
      break;
  }
  return {field_type, false};
}

std::string Names(const absl::flat_hash_map<std::string, int>& index) {
  std::vector<std::string> names;
  for (const auto& [name, i] : index) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names.empty() ? "none defined" : absl::StrCat("defined: ", absl::StrJoin(names, ", "));
}

}  // namespace

void RegistryBuilder::Link() {
  FeatureRegistry& r = registry_;
  // The view that first gave each (source, field) its type, to name both in a conflict.
  absl::flat_hash_map<std::pair<int, std::string>, std::pair<FieldType, std::string>> field_owner;
  for (size_t v = 0; v < r.views_.size(); ++v) {
    ViewDef& view = r.views_[v];
    std::string ctx = absl::StrCat("view '", view.name, "': ");
    auto entity = r.entity_index_.find(view.entity);
    if (entity == r.entity_index_.end()) {
      Error(view_refs_[v].first, ctx,
            absl::StrCat("unknown entity '", view.entity, "' (", Names(r.entity_index_), ")"));
    }
    auto source = r.source_index_.find(view.source);
    if (source == r.source_index_.end()) {
      Error(view_refs_[v].second, ctx,
            absl::StrCat("unknown source '", view.source, "' (", Names(r.source_index_), ")"));
    }
    if (entity == r.entity_index_.end() || source == r.source_index_.end()) continue;
    view.entity_index = entity->second;
    view.source_index = source->second;
    SourceDef& src = r.sources_[view.source_index];
    const EntityDef& ent = r.entities_[view.entity_index];
    for (const std::string& key : ent.keys) {
      if (key == src.timestamp_field) {
        Error(view_refs_[v].first, ctx,
              absl::StrCat("key field '", key, "' of entity '", ent.name,
                           "' is the timestamp field of source '", src.name, "'"));
      }
      auto it = std::find(src.key_fields.begin(), src.key_fields.end(), key);
      view.key_field_indices.push_back(static_cast<int>(it - src.key_fields.begin()));
      if (it == src.key_fields.end()) src.key_fields.push_back(key);
    }
    bool has_raw = false;
    absl::Duration longest = absl::ZeroDuration();
    for (FeatureDef& feature : view.features) {
      std::string fctx =
          absl::StrCat(ctx, feature.aggregation ? "aggregation '" : "field '", feature.name, "': ");
      has_raw |= !feature.aggregation;
      if (feature.aggregation) longest = std::max(longest, feature.window + feature.every);
      if (feature.aggregation) {
        // As features/tiles.h sizes the ring: window/every + ceil(lateness/every) + 1.
        absl::Duration unused;
        int64_t every_ns = absl::ToInt64Nanoseconds(feature.every);
        int64_t tiles = absl::IDivDuration(feature.window, feature.every, &unused) +
                        (absl::ToInt64Nanoseconds(src.lateness) + every_ns - 1) / every_ns + 1;
        if (tiles > kMaxTilesPerAggregation) {
          Error(feature.location, fctx,
                absl::StrCat("window ", FormatFeatureDuration(feature.window), " every ",
                             FormatFeatureDuration(feature.every), " with lateness ",
                             FormatFeatureDuration(src.lateness), " needs ", tiles,
                             " tiles per entity (at most ", kMaxTilesPerAggregation,
                             "): use a coarser 'every'"));
          continue;
        }
      }
      if (feature.field.empty()) continue;  // plain count
      if (feature.field == src.timestamp_field) {
        Error(feature.location, fctx,
              absl::StrCat("field '", feature.field, "' is the timestamp field of source '",
                           src.name, "'"));
        continue;
      }
      auto declared = view_schema_[v].find(feature.field);
      if (declared == view_schema_[v].end()) {
        Error(feature.location, fctx,
              absl::StrCat("field '", feature.field,
                           "' has no type: declare it under the view's 'schema'"));
        continue;
      }
      feature.field_type = declared->second.first;
      if (feature.aggregation) {
        bool numeric_only =
            feature.function == AggFunction::kSum || feature.function == AggFunction::kMean ||
            feature.function == AggFunction::kMin || feature.function == AggFunction::kMax;
        if (numeric_only && !IsNumeric(feature.field_type)) {
          Error(
              feature.location, fctx,
              absl::StrCat(AggFunctionName(feature.function), " needs an int64 or float64 field; '",
                           feature.field, "' is ", FieldTypeName(feature.field_type)));
          continue;
        }
        feature.value_type = AggregationType(feature.function, feature.field_type);
      }
      auto [owner, inserted] = field_owner.try_emplace(
          std::make_pair(view.source_index, feature.field), feature.field_type, view.name);
      if (!inserted && owner->second.first != feature.field_type) {
        Error(feature.location, fctx,
              absl::StrCat("field '", feature.field, "' is ", FieldTypeName(feature.field_type),
                           " here but ", FieldTypeName(owner->second.first), " in view '",
                           owner->second.second, "' (both read source '", src.name, "')"));
        continue;
      }
      auto field = std::find_if(src.value_fields.begin(), src.value_fields.end(),
                                [&](const auto& f) { return f.first == feature.field; });
      feature.field_index = static_cast<int>(field - src.value_fields.begin());
      if (field == src.value_fields.end()) {
        src.value_fields.emplace_back(feature.field, feature.field_type);
      }
    }
    if (view.ttl) {
      view.effective_ttl = view.ttl;
    } else if (!has_raw) {
      view.effective_ttl = longest;
    }
    src.views.push_back(static_cast<int>(v));
  }
}

absl::StatusOr<FeatureRegistry> RegistryBuilder::Finish() {
  if (errors_.empty()) Link();
  if (!errors_.empty()) {
    return absl::InvalidArgumentError(absl::StrJoin(errors_, "\n"));
  }
  return std::move(registry_);
}

absl::StatusOr<FeatureRegistry> FeatureRegistry::Parse(
    const std::vector<std::pair<std::string, std::string>>& files) {
  RegistryBuilder builder;
  for (const auto& [file, text] : files) builder.ParseFile(file, text);
  return builder.Finish();
}

}  // namespace flywheel::features
