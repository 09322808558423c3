// JSON views of registry structures (see registry_json.h), compact or indented.
#include "lifecycle/registry_json.h"

#include <string>

#include "lifecycle/registry_json_write.h"
#include "rapidjson/prettywriter.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace flywheel::lifecycle {
namespace {

template <typename W>
void WriteModelInfo(W& w, const ModelInfo& info) {
  w.StartObject();
  w.Key("model");
  JsonStr(w, info.model);
  w.Key("registry_file");
  JsonStr(w, info.registry_file);
  w.Key("versions");
  w.StartArray();
  for (const VersionInfo& v : info.versions) {
    w.StartObject();
    w.Key("version");
    w.Int64(v.version);
    w.Key("on_disk");
    w.Bool(v.on_disk);
    w.Key("registered");
    w.Bool(v.registered);
    w.Key("aliases");
    w.StartArray();
    for (const std::string& alias : v.aliases) JsonStr(w, alias);
    w.EndArray();
    w.Key("metadata");
    if (v.registered) {
      WriteVersionJson(w, v.metadata);
    } else {
      w.Null();
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("aliases");
  w.StartObject();
  for (const auto& [name, alias] : info.aliases) {
    JsonStr(w, name);
    WriteAliasJson(w, alias);
  }
  w.EndObject();
  w.Key("history");
  w.StartArray();
  for (const AliasChange& change : info.history) WriteChangeJson(w, change);
  w.EndArray();
  w.EndObject();
}

// Runs `body` on a compact or an indented writer and returns the text.
template <typename F>
std::string Render(bool pretty, F&& body) {
  rapidjson::StringBuffer buffer;
  if (pretty) {
    rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
    w.SetIndent(' ', 2);
    body(w);
  } else {
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    body(w);
  }
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace

std::string ModelInfoJson(const ModelInfo& info, bool pretty) {
  return Render(pretty, [&](auto& w) { WriteModelInfo(w, info); });
}

std::string ModelListJson(const std::vector<ModelInfo>& models, bool pretty) {
  return Render(pretty, [&](auto& w) {
    w.StartObject();
    w.Key("models");
    w.StartArray();
    for (const ModelInfo& info : models) WriteModelInfo(w, info);
    w.EndArray();
    w.EndObject();
  });
}

std::string VersionInfoJson(absl::string_view model, const VersionInfo& v, bool pretty) {
  return Render(pretty, [&](auto& w) {
    w.StartObject();
    w.Key("model");
    JsonStr(w, std::string(model));
    w.Key("version");
    w.Int64(v.version);
    w.Key("on_disk");
    w.Bool(v.on_disk);
    w.Key("registered");
    w.Bool(v.registered);
    w.Key("aliases");
    w.StartArray();
    for (const std::string& alias : v.aliases) JsonStr(w, alias);
    w.EndArray();
    w.Key("metadata");
    if (v.registered) {
      WriteVersionJson(w, v.metadata);
    } else {
      w.Null();
    }
    w.EndObject();
  });
}

std::string AliasChangeJson(absl::string_view model, const AliasChange& c, bool pretty) {
  return Render(pretty, [&](auto& w) {
    w.StartObject();
    w.Key("model");
    JsonStr(w, std::string(model));
    w.Key("change");
    WriteChangeJson(w, c);
    w.EndObject();
  });
}

std::string VersionMetadataJson(absl::string_view model, const VersionMetadata& metadata,
                                bool pretty) {
  return Render(pretty, [&](auto& w) {
    w.StartObject();
    w.Key("model");
    JsonStr(w, std::string(model));
    w.Key("metadata");
    WriteVersionJson(w, metadata);
    w.EndObject();
  });
}

}  // namespace flywheel::lifecycle
