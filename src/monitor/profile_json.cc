// profile.json: reading and writing reference profiles (monitor/profile.h).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "monitor/profile.h"
#include "rapidjson/document.h"
#include "rapidjson/error/en.h"
#include "rapidjson/prettywriter.h"
#include "rapidjson/stringbuffer.h"

namespace flywheel::monitor {
namespace {

namespace rj = rapidjson;
using Writer = rj::PrettyWriter<rj::StringBuffer>;

// A larger file is not a profile: 10,000 numeric features take about 30 MiB.
constexpr unsigned kMaxFileBytes = 256u << 20;

void Str(Writer& w, absl::string_view s) {
  w.String(s.data(), static_cast<rj::SizeType>(s.size()));
}
void Key(Writer& w, absl::string_view s) { w.Key(s.data(), static_cast<rj::SizeType>(s.size())); }

void Num(Writer& w, double v) {
  // JSON has no NaN or infinity; the reader then rejects the member instead of misreading it.
  if (std::isfinite(v)) {
    w.Double(v);
  } else {
    w.Null();
  }
}

// Numbers one array to a line: a profile of a wide model stays readable.
template <typename T>
void Array(Writer& w, absl::string_view key, const std::vector<T>& values) {
  Key(w, key);
  w.SetFormatOptions(rj::kFormatSingleLineArray);
  w.StartArray();
  for (const T& v : values) {
    if constexpr (std::is_same_v<T, double>) {
      Num(w, v);
    } else {
      w.Int64(v);
    }
  }
  w.EndArray();
  w.SetFormatOptions(rj::kFormatDefault);
}

void WriteFeature(Writer& w, const FeatureProfile& f) {
  w.StartObject();
  Key(w, "name");
  Str(w, f.name);
  Key(w, "role");
  Str(w, FeatureRoleName(f.role));
  Key(w, "tensor");
  Str(w, f.tensor);
  Key(w, "column");
  w.Int64(f.column);
  Key(w, "kind");
  Str(w, FeatureKindName(f.kind));
  Key(w, "count");
  w.Int64(f.count);
  Key(w, "missing");
  w.Int64(f.missing);
  Key(w, "missing_rate");
  w.Double(f.missing_rate());
  Key(w, "distinct");
  w.Int64(f.distinct);
  if (f.kind == FeatureKind::kNumeric) {
    for (auto [key, value] : {std::pair{"min", f.min}, std::pair{"max", f.max},
                              std::pair{"mean", f.mean}, std::pair{"stddev", f.stddev}}) {
      Key(w, key);
      Num(w, value);
    }
    Array(w, "quantiles", f.quantiles);
    Array(w, "bin_edges", f.bin_edges);
    Array(w, "bin_counts", f.bin_counts);
  } else {
    Key(w, "categories");
    w.StartArray();
    for (const CategoryCount& c : f.categories) {
      w.StartObject();
      Key(w, "value");
      Str(w, c.value);
      Key(w, "count");
      w.Int64(c.count);
      w.EndObject();
    }
    w.EndArray();
    Key(w, "other_count");
    w.Int64(f.other_count);
  }
  w.EndObject();
}

// Reads members with errors that name the file and the member's path.
class Reader {
 public:
  explicit Reader(absl::string_view what) : what_(what) {}

  absl::Status Error(absl::string_view path, absl::string_view message) const {
    return absl::InvalidArgumentError(absl::StrCat(what_, ": ", path, ": ", message));
  }
  absl::StatusOr<const rj::Value*> Member(const rj::Value& object, absl::string_view path,
                                          const char* key, bool required = true) const {
    auto it = object.FindMember(key);
    if (it == object.MemberEnd()) {
      if (!required) return nullptr;
      return Error(absl::StrCat(path, key), "missing");
    }
    return &it->value;
  }
  absl::StatusOr<std::string> String(const rj::Value& object, absl::string_view path,
                                     const char* key) const {
    FW_ASSIGN_OR_RETURN(const rj::Value* v, Member(object, path, key));
    if (!v->IsString()) return Error(absl::StrCat(path, key), "expected a string");
    return std::string(v->GetString(), v->GetStringLength());
  }
  absl::StatusOr<int64_t> Int(const rj::Value& object, absl::string_view path,
                              const char* key) const {
    FW_ASSIGN_OR_RETURN(const rj::Value* v, Member(object, path, key));
    if (!v->IsInt64()) return Error(absl::StrCat(path, key), "expected an integer");
    return v->GetInt64();
  }
  absl::StatusOr<double> Number(const rj::Value& object, absl::string_view path,
                                const char* key) const {
    FW_ASSIGN_OR_RETURN(const rj::Value* v, Member(object, path, key));
    if (!v->IsNumber()) return Error(absl::StrCat(path, key), "expected a number");
    return v->GetDouble();
  }
  template <typename T>
  absl::StatusOr<std::vector<T>> Numbers(const rj::Value& object, absl::string_view path,
                                         const char* key) const {
    FW_ASSIGN_OR_RETURN(const rj::Value* v, Member(object, path, key));
    if (!v->IsArray()) return Error(absl::StrCat(path, key), "expected an array of numbers");
    std::vector<T> out;
    out.reserve(v->Size());
    for (rj::SizeType i = 0; i < v->Size(); ++i) {
      const rj::Value& e = (*v)[i];
      if constexpr (std::is_same_v<T, double>) {
        if (!e.IsNumber()) return Error(absl::StrCat(path, key, "[", i, "]"), "expected a number");
        out.push_back(e.GetDouble());
      } else {
        if (!e.IsInt64()) {
          return Error(absl::StrCat(path, key, "[", i, "]"), "expected an integer");
        }
        out.push_back(e.GetInt64());
      }
    }
    return out;
  }

 private:
  std::string what_;
};

absl::StatusOr<FeatureProfile> ReadFeature(const Reader& r, const rj::Value& v,
                                           const std::string& path) {
  if (!v.IsObject()) return r.Error(path, "expected an object");
  const std::string p = path + ".";
  FeatureProfile f;
  FW_ASSIGN_OR_RETURN(f.name, r.String(v, p, "name"));
  FW_ASSIGN_OR_RETURN(std::string role, r.String(v, p, "role"));
  if (role == "input") {
    f.role = FeatureRole::kInput;
  } else if (role == "output") {
    f.role = FeatureRole::kOutput;
  } else {
    return r.Error(p + "role",
                   absl::StrCat("expected \"input\" or \"output\", got \"", role, "\""));
  }
  FW_ASSIGN_OR_RETURN(f.tensor, r.String(v, p, "tensor"));
  FW_ASSIGN_OR_RETURN(f.column, r.Int(v, p, "column"));
  FW_ASSIGN_OR_RETURN(std::string kind, r.String(v, p, "kind"));
  if (kind == "numeric") {
    f.kind = FeatureKind::kNumeric;
  } else if (kind == "categorical") {
    f.kind = FeatureKind::kCategorical;
  } else {
    return r.Error(p + "kind",
                   absl::StrCat("expected \"numeric\" or \"categorical\", got \"", kind, "\""));
  }
  FW_ASSIGN_OR_RETURN(f.count, r.Int(v, p, "count"));
  FW_ASSIGN_OR_RETURN(f.missing, r.Int(v, p, "missing"));
  FW_ASSIGN_OR_RETURN(f.distinct, r.Int(v, p, "distinct"));
  if (f.kind == FeatureKind::kNumeric) {
    FW_ASSIGN_OR_RETURN(f.min, r.Number(v, p, "min"));
    FW_ASSIGN_OR_RETURN(f.max, r.Number(v, p, "max"));
    FW_ASSIGN_OR_RETURN(f.mean, r.Number(v, p, "mean"));
    FW_ASSIGN_OR_RETURN(f.stddev, r.Number(v, p, "stddev"));
    FW_ASSIGN_OR_RETURN(f.quantiles, r.Numbers<double>(v, p, "quantiles"));
    FW_ASSIGN_OR_RETURN(f.bin_edges, r.Numbers<double>(v, p, "bin_edges"));
    FW_ASSIGN_OR_RETURN(f.bin_counts, r.Numbers<int64_t>(v, p, "bin_counts"));
    return f;
  }
  FW_ASSIGN_OR_RETURN(const rj::Value* categories, r.Member(v, p, "categories"));
  if (!categories->IsArray()) return r.Error(p + "categories", "expected an array");
  for (rj::SizeType i = 0; i < categories->Size(); ++i) {
    const std::string cp = absl::StrCat(p, "categories[", i, "]");
    const rj::Value& c = (*categories)[i];
    if (!c.IsObject()) return r.Error(cp, "expected an object {\"value\", \"count\"}");
    CategoryCount entry;
    FW_ASSIGN_OR_RETURN(entry.value, r.String(c, cp + ".", "value"));
    FW_ASSIGN_OR_RETURN(entry.count, r.Int(c, cp + ".", "count"));
    f.categories.push_back(std::move(entry));
  }
  FW_ASSIGN_OR_RETURN(f.other_count, r.Int(v, p, "other_count"));
  return f;
}

}  // namespace

std::string ProfileToJson(const ReferenceProfile& profile) {
  rj::StringBuffer sb;
  Writer w(sb);
  w.SetIndent(' ', 2);
  w.StartObject();
  Key(w, "format");
  Str(w, kProfileFormat);
  Key(w, "format_version");
  w.Int(kProfileFormatVersion);
  Key(w, "model");
  Str(w, profile.model);
  Key(w, "version");
  w.Int64(profile.version);
  Key(w, "source");
  Str(w, profile.source);
  Key(w, "created");
  Str(w, profile.created);
  Key(w, "rows");
  w.Int64(profile.rows);
  Key(w, "features");
  w.StartArray();
  for (const FeatureProfile& f : profile.features) WriteFeature(w, f);
  w.EndArray();
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize()) + "\n";
}

absl::StatusOr<ReferenceProfile> ProfileFromJson(absl::string_view json, absl::string_view what) {
  rj::Document doc;
  // Full precision: numbers read back exactly as written.
  doc.Parse<rj::kParseFullPrecisionFlag>(json.data(), json.size());
  if (doc.HasParseError()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not valid JSON at offset ",
                                                   doc.GetErrorOffset(), ": ",
                                                   rj::GetParseError_En(doc.GetParseError())));
  }
  const Reader r(what);
  if (!doc.IsObject()) return r.Error("(top level)", "expected an object");
  FW_ASSIGN_OR_RETURN(std::string format, r.String(doc, "", "format"));
  if (format != kProfileFormat) {
    return r.Error("format",
                   absl::StrCat("expected \"", kProfileFormat, "\", got \"", format, "\""));
  }
  FW_ASSIGN_OR_RETURN(int64_t format_version, r.Int(doc, "", "format_version"));
  if (format_version != kProfileFormatVersion) {
    return r.Error("format_version", absl::StrCat("this flywheel reads version ",
                                                  kProfileFormatVersion, ", got ", format_version));
  }
  ReferenceProfile profile;
  FW_ASSIGN_OR_RETURN(profile.model, r.String(doc, "", "model"));
  FW_ASSIGN_OR_RETURN(profile.version, r.Int(doc, "", "version"));
  FW_ASSIGN_OR_RETURN(profile.source, r.String(doc, "", "source"));
  FW_ASSIGN_OR_RETURN(profile.created, r.String(doc, "", "created"));
  FW_ASSIGN_OR_RETURN(profile.rows, r.Int(doc, "", "rows"));
  FW_ASSIGN_OR_RETURN(const rj::Value* features, r.Member(doc, "", "features"));
  if (!features->IsArray()) return r.Error("features", "expected an array");
  for (rj::SizeType i = 0; i < features->Size(); ++i) {
    FW_ASSIGN_OR_RETURN(FeatureProfile f,
                        ReadFeature(r, (*features)[i], absl::StrCat("features[", i, "]")));
    profile.features.push_back(std::move(f));
  }
  FW_RETURN_IF_ERROR(ValidateProfile(profile, what));
  return profile;
}

absl::Status SaveProfile(const ReferenceProfile& profile, const std::string& path) {
  FW_RETURN_IF_ERROR(ValidateProfile(profile, path));
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot create ", temp));
    out << ProfileToJson(profile);
    out.flush();
    if (!out) return absl::InternalError(absl::StrCat(path, ": cannot write ", temp));
  }
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) {
    std::filesystem::remove(temp, ec);
    return absl::InternalError(absl::StrCat(path, ": cannot replace the file: ", ec.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<ReferenceProfile> LoadProfile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such profile file"));
  }
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec || size > kMaxFileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", ec ? ec.message() : "larger than 256 MiB, not a profile"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot open"));
  std::ostringstream text;
  text << in.rdbuf();
  return ProfileFromJson(text.str(), path);
}

}  // namespace flywheel::monitor
