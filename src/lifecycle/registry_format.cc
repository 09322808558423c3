// JSON encoding of ModelRecord with RapidJSON. Decoding is strict: the file is written by us, so
// anything unexpected means a hand edit gone wrong or a newer flywheel, and is reported with the
// file and the field rather than dropped on the next write.
#include "lifecycle/registry_format.h"

#include "lifecycle/registry_json_write.h"

#include <cmath>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/status.h"
#include "rapidjson/document.h"
#include "rapidjson/error/en.h"
#include "rapidjson/prettywriter.h"
#include "rapidjson/stringbuffer.h"

namespace flywheel::lifecycle {
namespace {

using Writer = rapidjson::PrettyWriter<rapidjson::StringBuffer>;
using Value = rapidjson::Value;

// Decoding context: the file and the path of the value, for messages.
struct Ctx {
  absl::string_view file;
  std::string where;

  absl::Status Error(absl::string_view what) const {
    return absl::DataLossError(absl::StrCat("registry file ", file, ": ", where, ": ", what));
  }
  Ctx At(absl::string_view key) const { return {file, absl::StrCat(where, ".", key)}; }
  Ctx At(size_t i) const { return {file, absl::StrCat(where, "[", i, "]")}; }
};

absl::Status ExpectObject(const Value& v, const Ctx& ctx) {
  return v.IsObject() ? absl::OkStatus() : ctx.Error("expected an object");
}

// Calls `field(name, value)` for each member; a member `field` does not know is an error.
template <typename F>
absl::Status ForEachMember(const Value& obj, const Ctx& ctx, F&& field) {
  FW_RETURN_IF_ERROR(ExpectObject(obj, ctx));
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
    const std::string name(it->name.GetString(), it->name.GetStringLength());
    FW_RETURN_IF_ERROR(field(name, it->value, ctx.At(name)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> GetString(const Value& v, const Ctx& ctx) {
  if (!v.IsString()) return ctx.Error("expected a string");
  return std::string(v.GetString(), v.GetStringLength());
}

absl::StatusOr<int64_t> GetVersion(const Value& v, const Ctx& ctx, bool allow_zero) {
  if (!v.IsInt64() || v.GetInt64() < 0 || (!allow_zero && v.GetInt64() == 0)) {
    return ctx.Error(allow_zero ? "expected a version number or 0" : "expected a version number");
  }
  return v.GetInt64();
}

absl::StatusOr<absl::Time> GetTime(const Value& v, const Ctx& ctx) {
  if (v.IsNull()) return absl::InfinitePast();
  FW_ASSIGN_OR_RETURN(std::string text, GetString(v, ctx));
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
    return ctx.Error(absl::StrCat("'", text, "' is not an RFC 3339 time (", err, ")"));
  }
  return t;
}

absl::Status Unknown(const std::string& name, const Ctx& ctx) {
  return ctx.Error(absl::StrCat("unknown field '", name, "'"));
}

absl::StatusOr<VersionMetadata> ReadVersion(const Value& obj, const Ctx& ctx) {
  VersionMetadata m;
  bool has_version = false;
  FW_RETURN_IF_ERROR(ForEachMember(
      obj, ctx, [&](const std::string& name, const Value& v, const Ctx& at) -> absl::Status {
        if (name == "version") {
          FW_ASSIGN_OR_RETURN(m.version, GetVersion(v, at, false));
          has_version = true;
        } else if (name == "created") {
          FW_ASSIGN_OR_RETURN(m.created, GetTime(v, at));
        } else if (name == "registered_by") {
          FW_ASSIGN_OR_RETURN(m.registered_by, GetString(v, at));
        } else if (name == "training_data") {
          FW_ASSIGN_OR_RETURN(m.training_data, GetString(v, at));
        } else if (name == "code_revision") {
          FW_ASSIGN_OR_RETURN(m.code_revision, GetString(v, at));
        } else if (name == "parent") {
          FW_ASSIGN_OR_RETURN(m.parent, GetVersion(v, at, true));
        } else if (name == "description") {
          FW_ASSIGN_OR_RETURN(m.description, GetString(v, at));
        } else if (name == "parameters") {
          return ForEachMember(v, at, [&](const std::string& k, const Value& pv, const Ctx& pat) {
            auto s = GetString(pv, pat);
            if (!s.ok()) return s.status();
            m.parameters[k] = *std::move(s);
            return absl::OkStatus();
          });
        } else if (name == "metrics") {
          return ForEachMember(v, at, [&](const std::string& k, const Value& mv, const Ctx& mat) {
            if (!mv.IsNumber()) return mat.Error("expected a number");
            m.metrics[k] = mv.GetDouble();
            return absl::OkStatus();
          });
        } else {
          return Unknown(name, ctx);
        }
        return absl::OkStatus();
      }));
  if (!has_version) return ctx.Error("missing 'version'");
  return m;
}

absl::StatusOr<Alias> ReadAlias(const Value& obj, const Ctx& ctx) {
  Alias a;
  bool has_version = false;
  FW_RETURN_IF_ERROR(ForEachMember(
      obj, ctx, [&](const std::string& name, const Value& v, const Ctx& at) -> absl::Status {
        if (name == "version") {
          FW_ASSIGN_OR_RETURN(a.version, GetVersion(v, at, false));
          has_version = true;
        } else if (name == "previous") {
          if (!v.IsArray()) return at.Error("expected an array of version numbers");
          for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
            FW_ASSIGN_OR_RETURN(int64_t p, GetVersion(v[i], at.At(i), false));
            a.previous.push_back(p);
          }
        } else if (name == "updated") {
          FW_ASSIGN_OR_RETURN(a.updated, GetTime(v, at));
        } else if (name == "updated_by") {
          FW_ASSIGN_OR_RETURN(a.updated_by, GetString(v, at));
        } else {
          return Unknown(name, ctx);
        }
        return absl::OkStatus();
      }));
  if (!has_version) return ctx.Error("missing 'version'");
  return a;
}

absl::StatusOr<AliasChange> ReadChange(const Value& obj, const Ctx& ctx) {
  AliasChange c;
  FW_RETURN_IF_ERROR(ForEachMember(
      obj, ctx, [&](const std::string& name, const Value& v, const Ctx& at) -> absl::Status {
        if (name == "time") {
          FW_ASSIGN_OR_RETURN(c.time, GetTime(v, at));
        } else if (name == "alias") {
          FW_ASSIGN_OR_RETURN(c.alias, GetString(v, at));
        } else if (name == "action") {
          FW_ASSIGN_OR_RETURN(c.action, GetString(v, at));
        } else if (name == "from") {
          FW_ASSIGN_OR_RETURN(c.from, GetVersion(v, at, true));
        } else if (name == "to") {
          FW_ASSIGN_OR_RETURN(c.to, GetVersion(v, at, true));
        } else if (name == "by") {
          FW_ASSIGN_OR_RETURN(c.by, GetString(v, at));
        } else if (name == "note") {
          FW_ASSIGN_OR_RETURN(c.note, GetString(v, at));
        } else {
          return Unknown(name, ctx);
        }
        return absl::OkStatus();
      }));
  return c;
}

}  // namespace

std::string FormatTimestamp(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

std::string EncodeRecord(const ModelRecord& record) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.SetIndent(' ', 2);
  w.StartObject();
  w.Key("format");
  w.String(kRegistryFormat);
  w.Key("model");
  JsonStr(w, record.model);
  w.Key("versions");
  w.StartArray();
  for (const auto& [version, metadata] : record.versions) WriteVersionJson(w, metadata);
  w.EndArray();
  w.Key("aliases");
  w.StartObject();
  for (const auto& [name, alias] : record.aliases) {
    JsonStr(w, name);
    WriteAliasJson(w, alias);
  }
  w.EndObject();
  w.Key("history");
  w.StartArray();
  for (const AliasChange& change : record.history) WriteChangeJson(w, change);
  w.EndArray();
  w.EndObject();
  std::string out(buffer.GetString(), buffer.GetSize());
  out.push_back('\n');
  return out;
}

absl::StatusOr<ModelRecord> DecodeRecord(absl::string_view json, absl::string_view file) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(json.data(), json.size());
  if (doc.HasParseError()) {
    return absl::DataLossError(absl::StrCat("registry file ", file, ": not valid JSON at offset ",
                                            doc.GetErrorOffset(), ": ",
                                            rapidjson::GetParseError_En(doc.GetParseError())));
  }
  const Ctx root{file, "$"};
  ModelRecord record;
  bool has_format = false;
  FW_RETURN_IF_ERROR(ForEachMember(
      doc, root, [&](const std::string& name, const Value& v, const Ctx& at) -> absl::Status {
        if (name == "format") {
          FW_ASSIGN_OR_RETURN(std::string format, GetString(v, at));
          if (format != kRegistryFormat) {
            return at.Error(absl::StrCat("format '", format, "' is not '", kRegistryFormat,
                                         "' (written by a newer flywheel?)"));
          }
          has_format = true;
        } else if (name == "model") {
          FW_ASSIGN_OR_RETURN(record.model, GetString(v, at));
        } else if (name == "versions") {
          if (!v.IsArray()) return at.Error("expected an array");
          for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
            FW_ASSIGN_OR_RETURN(VersionMetadata m, ReadVersion(v[i], at.At(i)));
            const int64_t version = m.version;
            if (!record.versions.emplace(version, std::move(m)).second) {
              return at.At(i).Error(absl::StrCat("version ", version, " appears twice"));
            }
          }
        } else if (name == "aliases") {
          return ForEachMember(v, at,
                               [&](const std::string& alias, const Value& av, const Ctx& aat) {
                                 if (absl::Status valid = ValidateAliasName(alias); !valid.ok()) {
                                   return aat.Error(valid.message());
                                 }
                                 auto a = ReadAlias(av, aat);
                                 if (!a.ok()) return a.status();
                                 record.aliases[alias] = *std::move(a);
                                 return absl::OkStatus();
                               });
        } else if (name == "history") {
          if (!v.IsArray()) return at.Error("expected an array");
          for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
            FW_ASSIGN_OR_RETURN(AliasChange c, ReadChange(v[i], at.At(i)));
            record.history.push_back(std::move(c));
          }
        } else {
          return Unknown(name, root);
        }
        return absl::OkStatus();
      }));
  if (!has_format) return root.Error("missing 'format' (not a flywheel registry file?)");
  return record;
}

}  // namespace flywheel::lifecycle
