#include "features/definitions.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace flywheel::features {

absl::string_view FieldTypeName(FieldType type) {
  switch (type) {
    case FieldType::kInt64:
      return "int64";
    case FieldType::kFloat64:
      return "float64";
    case FieldType::kString:
      return "string";
    case FieldType::kBool:
      return "bool";
  }
  return "?";
}

absl::string_view AggFunctionName(AggFunction function) {
  switch (function) {
    case AggFunction::kCount:
    case AggFunction::kCountField:
      return "count";
    case AggFunction::kSum:
      return "sum";
    case AggFunction::kMean:
      return "mean";
    case AggFunction::kMin:
      return "min";
    case AggFunction::kMax:
      return "max";
    case AggFunction::kLast:
      return "last";
    case AggFunction::kLastN:
      return "last_n";
    case AggFunction::kDistinct:
      return "distinct";
  }
  return "?";
}

absl::StatusOr<absl::Duration> ParseFeatureDuration(absl::string_view text) {
  absl::string_view rest = absl::StripAsciiWhitespace(text);
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("bad duration '", text, "': ", why,
                                                   " (expected e.g. 30s, 5m, 1h30m, 250ms, 1d)"));
  };
  if (rest.empty()) return bad("empty");
  if (rest == "0") return absl::ZeroDuration();
  absl::Duration total = absl::ZeroDuration();
  while (!rest.empty()) {
    size_t digits = 0;
    while (digits < rest.size() && absl::ascii_isdigit(rest[digits])) ++digits;
    if (digits == 0) return bad("expected a number");
    int64_t count = 0;
    if (digits > 12 || !absl::SimpleAtoi(rest.substr(0, digits), &count)) {
      return bad("number too large");
    }
    rest.remove_prefix(digits);
    size_t letters = 0;
    while (letters < rest.size() && absl::ascii_isalpha(rest[letters])) ++letters;
    absl::string_view unit = rest.substr(0, letters);
    rest.remove_prefix(letters);
    if (unit == "ms") {
      total += absl::Milliseconds(count);
    } else if (unit == "s") {
      total += absl::Seconds(count);
    } else if (unit == "m") {
      total += absl::Minutes(count);
    } else if (unit == "h") {
      total += absl::Hours(count);
    } else if (unit == "d") {
      total += absl::Hours(24 * count);
    } else if (unit.empty()) {
      return bad("missing unit");
    } else {
      return bad(absl::StrCat("unknown unit '", unit, "'"));
    }
  }
  return total;
}

std::string FormatFeatureDuration(absl::Duration d) {
  if (d == absl::ZeroDuration()) return "0s";
  std::string out;
  if (d < absl::ZeroDuration()) {
    out = "-";
    d = -d;
  }
  struct Unit {
    absl::Duration size;
    const char* name;
  };
  const Unit units[] = {{absl::Hours(24), "d"},
                        {absl::Hours(1), "h"},
                        {absl::Minutes(1), "m"},
                        {absl::Seconds(1), "s"},
                        {absl::Milliseconds(1), "ms"}};
  for (const Unit& unit : units) {
    int64_t count = absl::IDivDuration(d, unit.size, &d);
    if (count > 0) absl::StrAppend(&out, count, unit.name);
  }
  if (d > absl::ZeroDuration()) absl::StrAppend(&out, absl::ToInt64Nanoseconds(d), "ns");
  return out;
}

std::string DefLocation::Prefix() const { return absl::StrCat(file, ":", line, ": "); }

std::string ValueType::Name() const {
  if (list) return absl::StrCat("list<", FieldTypeName(type), ">");
  return std::string(FieldTypeName(type));
}

const FeatureDef* ViewDef::FindFeature(absl::string_view name) const {
  int index = FeatureIndex(name);
  return index < 0 ? nullptr : &features[index];
}

int ViewDef::FeatureIndex(absl::string_view name) const {
  for (size_t i = 0; i < features.size(); ++i) {
    if (features[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

absl::StatusOr<FeatureRegistry> FeatureRegistry::LoadDir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("features folder '", dir, "' is not a directory"));
  }
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    std::string ext = entry.path().extension().string();
    if ((ext == ".yaml" || ext == ".yml") && entry.is_regular_file(ec)) {
      names.push_back(entry.path().filename().string());
    }
  }
  if (ec) {
    return absl::InternalError(absl::StrCat("features folder '", dir, "': ", ec.message()));
  }
  std::sort(names.begin(), names.end());
  std::vector<std::pair<std::string, std::string>> files;
  std::string prefix = dir;
  if (!prefix.empty() && prefix.back() != '/') prefix += '/';
  for (const std::string& name : names) {
    std::string path = prefix + name;
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in.good() && !in.eof()) {
      return absl::InternalError(absl::StrCat(path, ": cannot read the file"));
    }
    files.emplace_back(path, text.str());
  }
  return Parse(files);
}

const EntityDef* FeatureRegistry::FindEntity(absl::string_view name) const {
  auto it = entity_index_.find(name);
  return it == entity_index_.end() ? nullptr : &entities_[it->second];
}

const SourceDef* FeatureRegistry::FindSource(absl::string_view name) const {
  int index = SourceIndex(name);
  return index < 0 ? nullptr : &sources_[index];
}

const ViewDef* FeatureRegistry::FindView(absl::string_view name) const {
  int index = ViewIndex(name);
  return index < 0 ? nullptr : &views_[index];
}

int FeatureRegistry::SourceIndex(absl::string_view name) const {
  auto it = source_index_.find(name);
  return it == source_index_.end() ? -1 : it->second;
}

int FeatureRegistry::ViewIndex(absl::string_view name) const {
  auto it = view_index_.find(name);
  return it == view_index_.end() ? -1 : it->second;
}

absl::StatusOr<FeatureRef> FeatureRegistry::Resolve(absl::string_view ref) const {
  size_t colon = ref.find(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("feature '", ref, "': expected 'view:feature'"));
  }
  absl::string_view view_name = ref.substr(0, colon);
  absl::string_view feature_name = ref.substr(colon + 1);
  FeatureRef out;
  out.view = ViewIndex(view_name);
  if (out.view < 0) {
    return absl::NotFoundError(absl::StrCat("feature '", ref, "': unknown view '", view_name, "'"));
  }
  out.feature = views_[out.view].FeatureIndex(feature_name);
  if (out.feature < 0) {
    return absl::NotFoundError(absl::StrCat("feature '", ref, "': view '", view_name,
                                            "' has no feature '", feature_name, "'"));
  }
  return out;
}

}  // namespace flywheel::features
