// Feature definitions: the YAML files of a features folder (`flywheel serve --features DIR`)
// parsed into a validated FeatureRegistry of entities, sources and feature views. A wrong
// definition is refused at start with `file:line: what is wrong`.
//
// The YAML schema. Every *.yaml / *.yml file of the folder may hold any of three top-level maps;
// names are unique across the folder and are made of letters, digits, '_', '-' and '.'.
//
//   entities:
//     user:
//       keys: [user_id]          # event fields that identify one entity, in order (or `key: x`)
//
//   sources:
//     clicks:
//       kind: push               # push (HTTP /v1/features/push) or redis_stream
//       stream: clicks-events    # redis_stream only: the stream's key (default: the source name)
//       timestamp: ts            # the event-time field (default: timestamp)
//       timestamp_unit: s        # numeric timestamps: s, ms, us or ns (default s);
//                                # string timestamps are RFC 3339 ("2024-05-01T12:00:00Z")
//       lateness: 30s            # how late (behind the newest event time) an event may arrive
//                                # and still be counted (default 0s)
//
//   views:
//     user_clicks:
//       entity: user
//       source: clicks
//       ttl: 2h                  # values older than this read as OUTSIDE_TTL (optional)
//       schema:                  # types of event fields that aggregations read
//         amount: float64        # int64, float64, string or bool
//         page: string
//       fields:                  # raw features: the latest value of an event field
//         country: string        # short form: the feature reads the field of the same name
//         plan: {field: plan_name, type: string}
//       aggregations:            # <function>[(<field>[, <n>])] over <window>[, every <slide>]
//         clicks_1h: count over 1h, every 1m
//         spend_1h: sum(amount) over 1h, every 5m
//         avg_spend_1d: mean(amount) over 1d
//         max_spend_1d: max(amount) over 1d, every 1h
//         last_page: last(page) over 1h, every 1m
//         recent_pages: last_n(page, 5) over 1h, every 1m
//         pages_1d:              # long form; `precision` is distinct's HyperLogLog precision
//           function: distinct   # (4..16, default 12: about 1.6% standard error)
//           field: page
//           window: 1d
//           every: 1h
//
// Functions: count (events), count(f) (events carrying f), sum, mean, min, max (int64 or
// float64 fields), last(f), last_n(f, n) (the n newest values, newest first), distinct(f)
// (approximate number of distinct values). Without `every` a window is tumbling (every =
// window); `window` must be a multiple of `every`. Durations are integers with a unit, ms, s,
// m, h or d, and may be chained ("1h30m"). In a flow map ({a: ..., b: ...}) quote an expression
// that holds a comma: {clicks_1h: "count over 1h, every 1m"}.
//
// Event fields: the entity's key fields (string or integer) and the timestamp are required; the
// value fields a view reads may be absent or null (that event then leaves those features as
// they were, and count(f) does not count it); a value of the wrong type refuses the event.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace flywheel::features {

enum class FieldType : uint8_t { kInt64, kFloat64, kString, kBool };
enum class SourceKind : uint8_t { kPush, kRedisStream };
enum class AggFunction : uint8_t {
  kCount,       // events
  kCountField,  // events that carry the field
  kSum,
  kMean,
  kMin,
  kMax,
  kLast,
  kLastN,
  kDistinct,
};

// "int64", "float64", "string", "bool".
absl::string_view FieldTypeName(FieldType type);
// "count", "sum", ... as written in definitions ("count" for both count forms).
absl::string_view AggFunctionName(AggFunction function);
// Parses "1h", "30s", "1h30m", "250ms", "0s"; errors name the text.
absl::StatusOr<absl::Duration> ParseFeatureDuration(absl::string_view text);
// Shortest readable form: "1h", "90s" -> "1m30s", "1d".
std::string FormatFeatureDuration(absl::Duration d);

// Where a definition was written, for error messages.
struct DefLocation {
  std::string file;
  int line = 0;  // 1-based

  std::string Prefix() const;  // "file:line: "
};

struct EntityDef {
  std::string name;
  std::vector<std::string> keys;
  DefLocation location;
};

struct SourceDef {
  std::string name;
  SourceKind kind = SourceKind::kPush;
  std::string stream;  // redis_stream: the stream key
  std::string timestamp_field = "timestamp";
  // Numeric timestamps are multiples of this unit since the Unix epoch.
  absl::Duration timestamp_unit = absl::Seconds(1);
  absl::Duration lateness = absl::ZeroDuration();
  DefLocation location;

  // Derived by validation: what events of this source must or may carry.
  std::vector<std::string> key_fields;                          // union of its views' entity keys
  std::vector<std::pair<std::string, FieldType>> value_fields;  // fields its views read
  std::vector<int> views;  // indices in FeatureRegistry::views()
};

// The type of a feature's values: a scalar or (last_n) a list of scalars.
struct ValueType {
  FieldType type = FieldType::kInt64;
  bool list = false;

  std::string Name() const;  // "int64", "list<string>"
  bool operator==(const ValueType&) const = default;
};

struct FeatureDef {
  std::string name;
  // Raw features read `field` as is; aggregations fold it (empty for plain count).
  bool aggregation = false;
  AggFunction function = AggFunction::kLast;
  std::string field;
  FieldType field_type = FieldType::kInt64;
  int field_index = -1;  // into the source's value_fields; -1 for plain count
  absl::Duration window = absl::ZeroDuration();
  absl::Duration every = absl::ZeroDuration();
  int n = 0;             // last_n
  int precision = 12;    // distinct
  ValueType value_type;  // what lookups return
  DefLocation location;
};

struct ViewDef {
  std::string name;
  std::string entity;
  std::string source;
  std::optional<absl::Duration> ttl;
  std::vector<FeatureDef> features;
  DefLocation location;

  // Derived by validation.
  int entity_index = -1;
  int source_index = -1;
  std::vector<int> key_field_indices;  // the entity's keys, into the source's key_fields
  // How long an entity's state stays readable after its newest event: the ttl, or for views
  // without one: forever when the view has raw fields, else the longest window plus its slide
  // (after that every window is empty).
  std::optional<absl::Duration> effective_ttl;

  const FeatureDef* FindFeature(absl::string_view name) const;
  int FeatureIndex(absl::string_view name) const;  // -1 when absent
};

// A resolved "view:feature" reference.
struct FeatureRef {
  int view = -1;
  int feature = -1;
};

class FeatureRegistry {
 public:
  // Reads every *.yaml / *.yml file of `dir` (sorted by name; not recursive).
  static absl::StatusOr<FeatureRegistry> LoadDir(const std::string& dir);
  // Parses (file name, YAML text) pairs; the names appear in error messages.
  static absl::StatusOr<FeatureRegistry> Parse(
      const std::vector<std::pair<std::string, std::string>>& files);

  const std::vector<EntityDef>& entities() const { return entities_; }
  const std::vector<SourceDef>& sources() const { return sources_; }
  const std::vector<ViewDef>& views() const { return views_; }

  const EntityDef* FindEntity(absl::string_view name) const;
  const SourceDef* FindSource(absl::string_view name) const;
  const ViewDef* FindView(absl::string_view name) const;
  int SourceIndex(absl::string_view name) const;  // -1 when absent
  int ViewIndex(absl::string_view name) const;    // -1 when absent

  // Resolves "view:feature"; the error says which part is unknown.
  absl::StatusOr<FeatureRef> Resolve(absl::string_view ref) const;
  const FeatureDef& feature(FeatureRef ref) const { return views_[ref.view].features[ref.feature]; }

 private:
  friend class RegistryBuilder;

  std::vector<EntityDef> entities_;
  std::vector<SourceDef> sources_;
  std::vector<ViewDef> views_;
  absl::flat_hash_map<std::string, int> entity_index_;
  absl::flat_hash_map<std::string, int> source_index_;
  absl::flat_hash_map<std::string, int> view_index_;
};

}  // namespace flywheel::features
