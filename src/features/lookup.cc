#include "features/lookup.h"

#include <algorithm>
#include <cmath>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"
#include "features/event_parse.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace flywheel::features {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void WriteString(JsonWriter& w, absl::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void WriteScalar(JsonWriter& w, const Scalar& s) {
  if (const int64_t* i = std::get_if<int64_t>(&s)) {
    w.Int64(*i);
  } else if (const double* d = std::get_if<double>(&s)) {
    if (std::isfinite(*d)) {
      w.Double(*d);
    } else {
      w.Null();  // a sum that overflowed; JSON has no infinity
    }
  } else if (const std::string* str = std::get_if<std::string>(&s)) {
    WriteString(w, *str);
  } else {
    w.Bool(std::get<bool>(s));
  }
}

void WriteValue(JsonWriter& w, const Value& value) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          w.Null();
        } else if constexpr (std::is_same_v<T, std::vector<Scalar>>) {
          w.StartArray();
          for (const Scalar& s : v) WriteScalar(w, s);
          w.EndArray();
        } else {
          WriteScalar(w, Scalar(v));
        }
      },
      value);
}

// The key text of a JSON key value: strings as they are, integers as decimal digits.
absl::StatusOr<std::string> KeyText(const rapidjson::Value& v, absl::string_view field) {
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  if (v.IsInt64()) return absl::StrCat(v.GetInt64());
  return absl::InvalidArgumentError(
      absl::StrCat("entity key '", field, "': expected a string or an integer"));
}

}  // namespace

absl::StatusOr<LookupResult> GetOnlineFeatures(const FeaturePipeline& pipeline,
                                               const LookupRequest& request) {
  const FeatureRegistry& registry = pipeline.registry();
  LookupResult result;
  const size_t width = request.features.size();
  result.features = request.features;
  result.feature_errors.resize(width);
  result.types.resize(width);
  result.rows.assign(request.entities.size(), std::vector<FeatureValue>(width));
  // Requested columns grouped by view, so each view reads each entity once.
  absl::flat_hash_map<int, std::vector<std::pair<int, int>>> by_view;  // view -> (column, feature)
  std::vector<int> view_order;
  for (size_t c = 0; c < width; ++c) {
    absl::StatusOr<FeatureRef> ref = registry.Resolve(request.features[c]);
    if (!ref.ok()) {
      result.feature_errors[c] = std::string(ref.status().message());
      for (auto& row : result.rows) row[c].status = FeatureStatus::kUnknownFeature;
      continue;
    }
    result.types[c] = registry.feature(*ref).value_type;
    auto [it, inserted] = by_view.try_emplace(ref->view);
    if (inserted) view_order.push_back(ref->view);
    it->second.emplace_back(static_cast<int>(c), ref->feature);
  }
  absl::Time now = request.now ? *request.now : pipeline.Now();
  // Every view's keys first, then one read for all of them: the entities the memory does not
  // hold come from the store in a single round trip.
  const size_t num_views = view_order.size();
  std::vector<std::vector<std::string>> keys(num_views);
  std::vector<std::vector<size_t>> key_rows(num_views);
  std::vector<std::vector<int>> features(num_views);
  std::vector<std::vector<FeatureValue>> values(num_views);
  std::vector<FeaturePipeline::ViewRead> reads;
  std::vector<size_t> read_views;  // index into view_order of each read
  std::vector<absl::string_view> parts;
  for (size_t vi = 0; vi < num_views; ++vi) {
    const int v = view_order[vi];
    const auto& columns = by_view[v];
    const ViewDef& view = registry.views()[v];
    const EntityDef& entity = registry.entities()[view.entity_index];
    for (size_t r = 0; r < request.entities.size(); ++r) {
      parts.clear();
      for (const std::string& field : entity.keys) {
        for (const auto& [name, value] : request.entities[r]) {
          if (name == field) {
            parts.push_back(value);
            break;
          }
        }
      }
      std::string key;
      if (parts.size() != entity.keys.size() || !EntityKeyFromParts(parts, &key).ok()) {
        for (const auto& [column, feature] : columns) {
          result.rows[r][column].status = FeatureStatus::kMissingKey;
        }
        continue;
      }
      keys[vi].push_back(std::move(key));
      key_rows[vi].push_back(r);
    }
    if (keys[vi].empty()) continue;
    for (const auto& [column, feature] : columns) features[vi].push_back(feature);
    reads.push_back({v, keys[vi], features[vi], &values[vi]});
    read_views.push_back(vi);
  }
  if (reads.empty()) return result;
  FW_RETURN_IF_ERROR(pipeline.ReadViews(reads, now));
  for (size_t vi : read_views) {
    const auto& columns = by_view[view_order[vi]];
    for (size_t k = 0; k < keys[vi].size(); ++k) {
      for (size_t j = 0; j < columns.size(); ++j) {
        result.rows[key_rows[vi][k]][columns[j].first] =
            std::move(values[vi][k * columns.size() + j]);
      }
    }
  }
  return result;
}

absl::Status ValidateNumericFeatures(const FeatureRegistry& registry,
                                     absl::Span<const std::string> features) {
  std::vector<std::string> problems;
  for (const std::string& name : features) {
    absl::StatusOr<FeatureRef> ref = registry.Resolve(name);
    if (!ref.ok()) {
      problems.push_back(std::string(ref.status().message()));
      continue;
    }
    const FeatureDef& f = registry.feature(*ref);
    const ViewDef& view = registry.views()[ref->view];
    const EntityDef& entity = registry.entities()[view.entity_index];
    if (f.value_type.list || f.value_type.type == FieldType::kString) {
      problems.push_back(
          absl::StrCat("feature '", name, "' is ", f.value_type.Name(), ", not a number"));
    } else if (entity.keys.size() != 1) {
      problems.push_back(absl::StrCat("feature '", name, "': entity '", entity.name, "' has ",
                                      entity.keys.size(),
                                      " key fields; one key per row needs one"));
    }
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(problems, "; "));
}

absl::Status LookupNumericFeatures(const FeaturePipeline& pipeline,
                                   absl::Span<const std::string> keys,
                                   absl::Span<const std::string> features, absl::Time now,
                                   float missing_value, float* values, uint8_t* present) {
  const FeatureRegistry& registry = pipeline.registry();
  const size_t width = features.size();
  std::fill(values, values + keys.size() * width, missing_value);
  std::fill(present, present + keys.size() * width, 0);
  // Columns grouped by view: each view reads every key once.
  std::vector<std::pair<int, std::vector<std::pair<size_t, int>>>> by_view;
  for (size_t c = 0; c < width; ++c) {
    FW_ASSIGN_OR_RETURN(FeatureRef ref, registry.Resolve(features[c]));
    auto it = std::find_if(by_view.begin(), by_view.end(),
                           [&](const auto& v) { return v.first == ref.view; });
    if (it == by_view.end()) it = by_view.insert(by_view.end(), {ref.view, {}});
    it->second.emplace_back(c, ref.feature);
  }
  // All views in one read: one store round trip for the entities not held in memory.
  std::vector<std::vector<int>> columns(by_view.size());
  std::vector<std::vector<FeatureValue>> read(by_view.size());
  std::vector<FeaturePipeline::ViewRead> reads;
  for (size_t i = 0; i < by_view.size(); ++i) {
    for (const auto& [column, feature] : by_view[i].second) columns[i].push_back(feature);
    reads.push_back({by_view[i].first, keys, columns[i], &read[i]});
  }
  FW_RETURN_IF_ERROR(pipeline.ReadViews(reads, now));
  for (size_t i = 0; i < by_view.size(); ++i) {
    const auto& cols = by_view[i].second;
    for (size_t k = 0; k < keys.size(); ++k) {
      for (size_t j = 0; j < cols.size(); ++j) {
        const FeatureValue& v = read[i][k * cols.size() + j];
        if (!v.present()) continue;
        float number;
        if (const int64_t* n = std::get_if<int64_t>(&v.value)) {
          number = static_cast<float>(*n);
        } else if (const double* d = std::get_if<double>(&v.value)) {
          number = static_cast<float>(*d);
        } else if (const bool* b = std::get_if<bool>(&v.value)) {
          number = *b ? 1.0f : 0.0f;
        } else {
          continue;
        }
        values[k * width + cols[j].first] = number;
        present[k * width + cols[j].first] = 1;
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<LookupRequest> LookupRequestFromJson(const rapidjson::Value& body) {
  if (!body.IsObject()) return absl::InvalidArgumentError("expected a JSON object");
  LookupRequest request;
  auto features = body.FindMember("features");
  if (features == body.MemberEnd() || !features->value.IsArray()) {
    return absl::InvalidArgumentError("'features' must be an array of \"view:feature\" strings");
  }
  for (const rapidjson::Value& f : features->value.GetArray()) {
    if (!f.IsString()) {
      return absl::InvalidArgumentError("'features' must be an array of \"view:feature\" strings");
    }
    request.features.emplace_back(f.GetString(), f.GetStringLength());
  }
  auto entities = body.FindMember("entities");
  if (entities == body.MemberEnd() || !entities->value.IsArray()) {
    return absl::InvalidArgumentError(
        "'entities' must be an array of objects of key fields, e.g. [{\"user_id\": \"u1\"}]");
  }
  for (rapidjson::SizeType i = 0; i < entities->value.Size(); ++i) {
    const rapidjson::Value& e = entities->value[i];
    if (!e.IsObject()) {
      return absl::InvalidArgumentError(absl::StrCat("entities[", i, "]: expected an object"));
    }
    EntityRow row;
    for (const auto& member : e.GetObject()) {
      absl::string_view name(member.name.GetString(), member.name.GetStringLength());
      absl::StatusOr<std::string> text = KeyText(member.value, name);
      if (!text.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("entities[", i, "]: ", text.status().message()));
      }
      row.emplace_back(std::string(name), std::move(*text));
    }
    request.entities.push_back(std::move(row));
  }
  auto now = body.FindMember("now");
  if (now != body.MemberEnd() && !now->value.IsNull()) {
    int64_t ns = 0;
    absl::Status status = EventParser::ParseTime(now->value, absl::Seconds(1), &ns);
    if (!status.ok()) return absl::InvalidArgumentError(absl::StrCat("'now': ", status.message()));
    request.now = absl::FromUnixNanos(ns);
  }
  return request;
}

std::string ValueToJson(const Value& value) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  WriteValue(w, value);
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string LookupResultToJson(const LookupRequest& request, const LookupResult& result) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("features");
  w.StartArray();
  for (const std::string& f : result.features) WriteString(w, f);
  w.EndArray();
  w.Key("results");
  w.StartArray();
  for (size_t r = 0; r < result.rows.size(); ++r) {
    w.StartObject();
    w.Key("entity");
    w.StartObject();
    if (r < request.entities.size()) {
      for (const auto& [name, value] : request.entities[r]) {
        WriteString(w, name);
        WriteString(w, value);
      }
    }
    w.EndObject();
    w.Key("values");
    w.StartArray();
    for (const FeatureValue& v : result.rows[r]) WriteValue(w, v.value);
    w.EndArray();
    w.Key("statuses");
    w.StartArray();
    for (const FeatureValue& v : result.rows[r]) WriteString(w, FeatureStatusName(v.status));
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  bool any_error = false;
  for (const std::string& e : result.feature_errors) any_error |= !e.empty();
  if (any_error) {
    w.Key("errors");
    w.StartObject();
    for (size_t c = 0; c < result.features.size(); ++c) {
      if (result.feature_errors[c].empty()) continue;
      WriteString(w, result.features[c]);
      WriteString(w, result.feature_errors[c]);
    }
    w.EndObject();
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string ViewsToJson(const FeatureRegistry& registry) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("entities");
  w.StartArray();
  for (const EntityDef& e : registry.entities()) {
    w.StartObject();
    w.Key("name");
    WriteString(w, e.name);
    w.Key("keys");
    w.StartArray();
    for (const std::string& k : e.keys) WriteString(w, k);
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.Key("sources");
  w.StartArray();
  for (const SourceDef& s : registry.sources()) {
    w.StartObject();
    w.Key("name");
    WriteString(w, s.name);
    w.Key("kind");
    w.String(s.kind == SourceKind::kPush ? "push" : "redis_stream");
    if (s.kind == SourceKind::kRedisStream) {
      w.Key("stream");
      WriteString(w, s.stream);
    }
    w.Key("timestamp");
    WriteString(w, s.timestamp_field);
    w.Key("lateness");
    WriteString(w, FormatFeatureDuration(s.lateness));
    w.EndObject();
  }
  w.EndArray();
  w.Key("views");
  w.StartArray();
  for (const ViewDef& v : registry.views()) {
    w.StartObject();
    w.Key("name");
    WriteString(w, v.name);
    w.Key("entity");
    WriteString(w, v.entity);
    w.Key("keys");
    w.StartArray();
    for (const std::string& k : registry.entities()[v.entity_index].keys) WriteString(w, k);
    w.EndArray();
    w.Key("source");
    WriteString(w, v.source);
    w.Key("ttl");
    if (v.ttl) {
      WriteString(w, FormatFeatureDuration(*v.ttl));
    } else {
      w.Null();
    }
    w.Key("features");
    w.StartArray();
    for (const FeatureDef& f : v.features) {
      w.StartObject();
      w.Key("name");
      WriteString(w, f.name);
      w.Key("type");
      WriteString(w, f.value_type.Name());
      if (!f.field.empty()) {
        w.Key("field");
        WriteString(w, f.field);
      }
      if (f.aggregation) {
        w.Key("function");
        WriteString(w, AggFunctionName(f.function));
        w.Key("window");
        WriteString(w, FormatFeatureDuration(f.window));
        w.Key("every");
        WriteString(w, FormatFeatureDuration(f.every));
        if (f.function == AggFunction::kLastN) {
          w.Key("n");
          w.Int(f.n);
        }
      }
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace flywheel::features
