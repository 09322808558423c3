// Private to the features module: the YAML reader behind FeatureRegistry::Parse, split over
// definitions_parse.cc (entities, sources, views, raw fields) and definitions_check.cc
// (aggregations, cross references).
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "features/definitions.h"

namespace flywheel::features {

// An aggregation needs (window + lateness) / every tiles per entity; more than this is almost
// certainly a mistake (window 30d every 1s) and would exhaust memory with many entities.
constexpr int64_t kMaxTilesPerAggregation = 10000;
constexpr int kMaxLastN = 1000;

inline bool ValidName(absl::string_view name) {
  if (name.empty() || !(absl::ascii_isalpha(name[0]) || name[0] == '_')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '_' || c == '-' || c == '.';
  });
}

inline std::optional<FieldType> ParseFieldType(absl::string_view text) {
  if (text == "int64") return FieldType::kInt64;
  if (text == "float64") return FieldType::kFloat64;
  if (text == "string") return FieldType::kString;
  if (text == "bool") return FieldType::kBool;
  return std::nullopt;
}

inline bool IsNumeric(FieldType type) {
  return type == FieldType::kInt64 || type == FieldType::kFloat64;
}

// One aggregation as written, before its field is checked against the view's schema.
struct AggSpec {
  std::string function;
  std::string field;
  std::optional<int64_t> n;
  std::string window;
  std::string every;
  std::optional<int64_t> precision;
};

class RegistryBuilder {
 public:
  void ParseFile(const std::string& file, const std::string& text);
  absl::StatusOr<FeatureRegistry> Finish();

 private:
  DefLocation Loc(const YAML::Node& node) const {
    YAML::Mark mark = node.Mark();
    return DefLocation{file_, mark.is_null() ? 0 : mark.line + 1};
  }
  void Error(const DefLocation& loc, absl::string_view context, absl::string_view what) {
    errors_.push_back(absl::StrCat(loc.Prefix(), context, what));
  }
  void Error(const YAML::Node& node, absl::string_view context, absl::string_view what) {
    Error(Loc(node), context, what);
  }
  // Reports keys of `node` that are not in `allowed`; false when `node` is not a map.
  bool CheckMap(const YAML::Node& node, absl::string_view context,
                std::initializer_list<absl::string_view> allowed);
  std::optional<std::string> Scalar(const YAML::Node& node, absl::string_view context,
                                    absl::string_view what);
  std::optional<absl::Duration> Duration(const YAML::Node& node, absl::string_view context,
                                         absl::string_view what, bool positive);
  bool ClaimName(const YAML::Node& key, absl::string_view kind,
                 absl::flat_hash_map<std::string, DefLocation>& seen);

  void ParseRoot(const YAML::Node& root);
  void ParseEntity(const YAML::Node& key, const YAML::Node& value);
  void ParseSource(const YAML::Node& key, const YAML::Node& value);
  void ParseView(const YAML::Node& key, const YAML::Node& value);
  void ParseRawField(ViewDef& view, const std::string& ctx, const YAML::Node& key,
                     const YAML::Node& value);
  void ParseAggregation(ViewDef& view, const std::string& ctx, const YAML::Node& key,
                        const YAML::Node& value);
  std::optional<AggSpec> ParseAggExpression(const YAML::Node& node, const std::string& ctx);
  void Link();

  std::string file_;
  std::vector<std::string> errors_;
  FeatureRegistry registry_;
  absl::flat_hash_map<std::string, DefLocation> entity_names_, source_names_, view_names_;
  // Where each view named its entity and its source, by view index.
  std::vector<std::pair<DefLocation, DefLocation>> view_refs_;
  // Field types each view declared (schema and raw fields), by view index.
  std::vector<absl::flat_hash_map<std::string, std::pair<FieldType, DefLocation>>> view_schema_;
};

}  // namespace flywheel::features
