// YAML -> FeatureRegistry, part one: files, entities, sources, views and their raw fields.
#include <yaml-cpp/yaml.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "features/definitions.h"
#include "features/definitions_builder.h"

namespace flywheel::features {
bool RegistryBuilder::CheckMap(const YAML::Node& node, absl::string_view context,
                               std::initializer_list<absl::string_view> allowed) {
  if (!node.IsMap()) {
    Error(node, context, "expected a map");
    return false;
  }
  for (const auto& kv : node) {
    std::string key = kv.first.Scalar();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      Error(kv.first, context,
            absl::StrCat("unknown key '", key, "' (expected ", absl::StrJoin(allowed, ", "), ")"));
    }
  }
  return true;
}

std::optional<std::string> RegistryBuilder::Scalar(const YAML::Node& node,
                                                   absl::string_view context,
                                                   absl::string_view what) {
  if (!node.IsScalar()) {
    Error(node, context, absl::StrCat("'", what, "' must be a single value"));
    return std::nullopt;
  }
  return node.Scalar();
}

std::optional<absl::Duration> RegistryBuilder::Duration(const YAML::Node& node,
                                                        absl::string_view context,
                                                        absl::string_view what, bool positive) {
  std::optional<std::string> text = Scalar(node, context, what);
  if (!text) return std::nullopt;
  absl::StatusOr<absl::Duration> d = ParseFeatureDuration(*text);
  if (!d.ok()) {
    Error(node, context, absl::StrCat(what, ": ", d.status().message()));
    return std::nullopt;
  }
  if (positive && *d <= absl::ZeroDuration()) {
    Error(node, context, absl::StrCat(what, " must be positive"));
    return std::nullopt;
  }
  return *d;
}

bool RegistryBuilder::ClaimName(const YAML::Node& key, absl::string_view kind,
                                absl::flat_hash_map<std::string, DefLocation>& seen) {
  std::string name = key.Scalar();
  if (!ValidName(name)) {
    Error(key, "",
          absl::StrCat(kind, " name '", name,
                       "' is not valid (letters, digits, '_', '-', '.'; starting with a letter "
                       "or '_')"));
    return false;
  }
  auto [it, inserted] = seen.try_emplace(name, Loc(key));
  if (!inserted) {
    Error(key, "",
          absl::StrCat(kind, " '", name, "' is already defined at ", it->second.file, ":",
                       it->second.line));
    return false;
  }
  return true;
}

void RegistryBuilder::ParseFile(const std::string& file, const std::string& text) {
  file_ = file;
  try {
    ParseRoot(YAML::Load(text));
  } catch (const YAML::Exception& e) {
    // Syntax errors, and any node access yaml-cpp refuses on a document of unexpected shape.
    errors_.push_back(absl::StrCat(file, ":", e.mark.line + 1, ": invalid YAML: ", e.msg));
  }
}

void RegistryBuilder::ParseRoot(const YAML::Node& root) {
  if (root.IsNull()) return;  // an empty file
  if (!CheckMap(root, "", {"entities", "sources", "views"})) return;
  for (const auto& section : root) {
    std::string name = section.first.Scalar();
    if (section.second.IsNull()) continue;
    if (!section.second.IsMap()) {
      Error(section.second, "", absl::StrCat("'", name, "' must be a map of names to definitions"));
      continue;
    }
    for (const auto& kv : section.second) {
      if (name == "entities") ParseEntity(kv.first, kv.second);
      if (name == "sources") ParseSource(kv.first, kv.second);
      if (name == "views") ParseView(kv.first, kv.second);
    }
  }
}

void RegistryBuilder::ParseEntity(const YAML::Node& key, const YAML::Node& value) {
  if (!ClaimName(key, "entity", entity_names_)) return;
  EntityDef entity;
  entity.name = key.Scalar();
  entity.location = Loc(key);
  std::string ctx = absl::StrCat("entity '", entity.name, "': ");
  if (!CheckMap(value, ctx, {"keys", "key", "description"})) return;
  YAML::Node keys = value["keys"] ? value["keys"] : value["key"];
  if (!keys) {
    Error(value, ctx, "missing 'keys' (the event fields that identify an entity)");
    return;
  }
  if (keys.IsScalar()) {
    entity.keys.push_back(keys.Scalar());
  } else if (keys.IsSequence()) {
    for (const YAML::Node& k : keys) {
      if (!k.IsScalar()) {
        Error(k, ctx, "each key must be a field name");
        return;
      }
      entity.keys.push_back(k.Scalar());
    }
  }
  if (entity.keys.empty()) {
    Error(keys, ctx, "'keys' must list at least one field");
    return;
  }
  for (const std::string& k : entity.keys) {
    if (std::count(entity.keys.begin(), entity.keys.end(), k) > 1 || !ValidName(k)) {
      Error(keys, ctx, absl::StrCat("key field '", k, "' is repeated or not a valid name"));
      return;
    }
  }
  registry_.entity_index_[entity.name] = static_cast<int>(registry_.entities_.size());
  registry_.entities_.push_back(std::move(entity));
}

void RegistryBuilder::ParseSource(const YAML::Node& key, const YAML::Node& value) {
  if (!ClaimName(key, "source", source_names_)) return;
  SourceDef source;
  source.name = key.Scalar();
  source.stream = source.name;
  source.location = Loc(key);
  std::string ctx = absl::StrCat("source '", source.name, "': ");
  if (!CheckMap(value, ctx,
                {"kind", "stream", "timestamp", "timestamp_unit", "lateness", "description"})) {
    return;
  }
  bool ok = true;
  if (YAML::Node kind = value["kind"]) {
    std::optional<std::string> text = Scalar(kind, ctx, "kind");
    if (text == "push") {
      source.kind = SourceKind::kPush;
    } else if (text == "redis_stream") {
      source.kind = SourceKind::kRedisStream;
    } else if (text) {
      Error(kind, ctx, absl::StrCat("unknown kind '", *text, "' (expected push, redis_stream)"));
      ok = false;
    }
  } else {
    Error(value, ctx, "missing 'kind' (push or redis_stream)");
    ok = false;
  }
  if (YAML::Node stream = value["stream"]) {
    std::optional<std::string> text = Scalar(stream, ctx, "stream");
    if (text && source.kind != SourceKind::kRedisStream) {
      Error(stream, ctx, "'stream' applies to redis_stream sources only");
      ok = false;
    } else if (text && text->empty()) {
      Error(stream, ctx, "'stream' must not be empty");
      ok = false;
    } else if (text) {
      source.stream = *text;
    }
  }
  if (YAML::Node ts = value["timestamp"]) {
    std::optional<std::string> text = Scalar(ts, ctx, "timestamp");
    if (text && ValidName(*text)) {
      source.timestamp_field = *text;
    } else if (text) {
      Error(ts, ctx, absl::StrCat("timestamp field '", *text, "' is not a valid field name"));
      ok = false;
    }
  }
  if (YAML::Node unit = value["timestamp_unit"]) {
    std::optional<std::string> text = Scalar(unit, ctx, "timestamp_unit");
    if (text == "s") {
      source.timestamp_unit = absl::Seconds(1);
    } else if (text == "ms") {
      source.timestamp_unit = absl::Milliseconds(1);
    } else if (text == "us") {
      source.timestamp_unit = absl::Microseconds(1);
    } else if (text == "ns") {
      source.timestamp_unit = absl::Nanoseconds(1);
    } else if (text) {
      Error(unit, ctx,
            absl::StrCat("unknown timestamp_unit '", *text, "' (expected s, ms, us, ns)"));
      ok = false;
    }
  }
  if (YAML::Node lateness = value["lateness"]) {
    std::optional<absl::Duration> d = Duration(lateness, ctx, "lateness", false);
    if (d) source.lateness = *d;
    ok = ok && d.has_value();
  }
  if (!ok) return;
  registry_.source_index_[source.name] = static_cast<int>(registry_.sources_.size());
  registry_.sources_.push_back(std::move(source));
}

void RegistryBuilder::ParseView(const YAML::Node& key, const YAML::Node& value) {
  if (!ClaimName(key, "view", view_names_)) return;
  ViewDef view;
  view.name = key.Scalar();
  view.location = Loc(key);
  std::string ctx = absl::StrCat("view '", view.name, "': ");
  if (!CheckMap(value, ctx,
                {"entity", "source", "ttl", "schema", "fields", "aggregations", "description"})) {
    return;
  }
  size_t errors_before = errors_.size();
  for (const char* required : {"entity", "source"}) {
    YAML::Node node = value[required];
    if (!node) {
      Error(value, ctx, absl::StrCat("missing '", required, "'"));
      continue;
    }
    std::optional<std::string> text = Scalar(node, ctx, required);
    if (text) (absl::string_view(required) == "entity" ? view.entity : view.source) = *text;
  }
  if (YAML::Node ttl = value["ttl"]) view.ttl = Duration(ttl, ctx, "ttl", true);
  view_refs_.emplace_back(value["entity"] ? Loc(value["entity"]) : view.location,
                          value["source"] ? Loc(value["source"]) : view.location);
  view_schema_.emplace_back();
  auto& schema = view_schema_.back();
  if (YAML::Node node = value["schema"]; node && !node.IsNull()) {
    if (!node.IsMap()) {
      Error(node, ctx, "'schema' must map field names to types");
    } else {
      for (const auto& kv : node) {
        std::optional<std::string> text = Scalar(kv.second, ctx, kv.first.Scalar());
        std::optional<FieldType> type = text ? ParseFieldType(*text) : std::nullopt;
        if (text && !type) {
          Error(kv.second, ctx,
                absl::StrCat("field '", kv.first.Scalar(), "': unknown type '", *text,
                             "' (expected int64, float64, string, bool)"));
        } else if (type) {
          schema[kv.first.Scalar()] = {*type, Loc(kv.first)};
        }
      }
    }
  }
  if (YAML::Node node = value["fields"]; node && !node.IsNull()) {
    if (!node.IsMap()) {
      Error(node, ctx, "'fields' must map feature names to types");
    } else {
      for (const auto& kv : node) ParseRawField(view, ctx, kv.first, kv.second);
    }
  }
  if (YAML::Node node = value["aggregations"]; node && !node.IsNull()) {
    if (!node.IsMap()) {
      Error(node, ctx, "'aggregations' must map feature names to aggregations");
    } else {
      for (const auto& kv : node) ParseAggregation(view, ctx, kv.first, kv.second);
    }
  }
  if (errors_.size() == errors_before && view.features.empty()) {
    Error(value, ctx, "no features: add 'fields' or 'aggregations'");
  }
  if (errors_.size() != errors_before) {
    view_schema_.pop_back();
    view_refs_.pop_back();
    return;
  }
  registry_.view_index_[view.name] = static_cast<int>(registry_.views_.size());
  registry_.views_.push_back(std::move(view));
}

void RegistryBuilder::ParseRawField(ViewDef& view, const std::string& ctx, const YAML::Node& key,
                                    const YAML::Node& value) {
  FeatureDef feature;
  feature.name = key.Scalar();
  feature.field = feature.name;
  feature.location = Loc(key);
  std::string fctx = absl::StrCat(ctx, "field '", feature.name, "': ");
  if (!ValidName(feature.name)) {
    Error(key, fctx, "not a valid feature name");
    return;
  }
  YAML::Node type_node = value;  // yaml-cpp: `=` on a node would overwrite `value`; use reset
  if (value.IsMap()) {
    if (!CheckMap(value, fctx, {"type", "field", "description"})) return;
    type_node.reset(value["type"]);
    if (!type_node) {
      Error(value, fctx, "missing 'type' (int64, float64, string, bool)");
      return;
    }
    if (YAML::Node field = value["field"]) {
      std::optional<std::string> text = Scalar(field, fctx, "field");
      if (!text) return;
      feature.field = *text;
    }
  }
  std::optional<std::string> text = Scalar(type_node, fctx, "type");
  if (!text) return;
  std::optional<FieldType> type = ParseFieldType(*text);
  if (!type) {
    Error(type_node, fctx,
          absl::StrCat("unknown type '", *text, "' (expected int64, float64, string, bool)"));
    return;
  }
  feature.field_type = *type;
  feature.value_type = ValueType{*type, false};
  auto& schema = view_schema_.back();
  auto [it, inserted] = schema.try_emplace(feature.field, *type, feature.location);
  if (!inserted && it->second.first != *type) {
    Error(
        type_node, fctx,
        absl::StrCat("field '", feature.field, "' is declared ", FieldTypeName(*type), " here and ",
                     FieldTypeName(it->second.first), " at line ", it->second.second.line));
    return;
  }
  if (view.FindFeature(feature.name)) {
    Error(key, fctx, "a feature of this name is already defined in the view");
    return;
  }
  view.features.push_back(std::move(feature));
}

}  // namespace flywheel::features
