// RapidJSON writers for the registry's structures, shared by the registry file (registry_format)
// and the JSON that the CLI and the admin API print (registry_json). Private to lifecycle/.
#pragma once

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "lifecycle/registry.h"

namespace flywheel::lifecycle {

// RFC 3339 in UTC with microseconds: 2024-05-01T12:00:01.500000Z.
std::string FormatTimestamp(absl::Time t);

template <typename W>
void JsonStr(W& w, const std::string& s) {
  w.String(s.data(), static_cast<unsigned>(s.size()));
}

// An unset time (InfinitePast) is null.
template <typename W>
void JsonTime(W& w, absl::Time t) {
  if (t == absl::InfinitePast()) {
    w.Null();
  } else {
    JsonStr(w, FormatTimestamp(t));
  }
}

template <typename W>
void WriteVersionJson(W& w, const VersionMetadata& m) {
  w.StartObject();
  w.Key("version");
  w.Int64(m.version);
  w.Key("created");
  JsonTime(w, m.created);
  w.Key("registered_by");
  JsonStr(w, m.registered_by);
  w.Key("training_data");
  JsonStr(w, m.training_data);
  w.Key("code_revision");
  JsonStr(w, m.code_revision);
  w.Key("parent");
  w.Int64(m.parent);
  w.Key("description");
  JsonStr(w, m.description);
  w.Key("parameters");
  w.StartObject();
  for (const auto& [k, v] : m.parameters) {
    JsonStr(w, k);
    JsonStr(w, v);
  }
  w.EndObject();
  w.Key("metrics");
  w.StartObject();
  for (const auto& [k, v] : m.metrics) {
    JsonStr(w, k);
    w.Double(v);  // finite: Register and Update refuse others
  }
  w.EndObject();
  w.EndObject();
}

template <typename W>
void WriteAliasJson(W& w, const Alias& alias) {
  w.StartObject();
  w.Key("version");
  w.Int64(alias.version);
  w.Key("previous");
  w.StartArray();
  for (int64_t p : alias.previous) w.Int64(p);
  w.EndArray();
  w.Key("updated");
  JsonTime(w, alias.updated);
  w.Key("updated_by");
  JsonStr(w, alias.updated_by);
  w.EndObject();
}

template <typename W>
void WriteChangeJson(W& w, const AliasChange& c) {
  w.StartObject();
  w.Key("time");
  JsonTime(w, c.time);
  w.Key("alias");
  JsonStr(w, c.alias);
  w.Key("action");
  JsonStr(w, c.action);
  w.Key("from");
  w.Int64(c.from);
  w.Key("to");
  w.Int64(c.to);
  w.Key("by");
  JsonStr(w, c.by);
  w.Key("note");
  JsonStr(w, c.note);
  w.EndObject();
}

}  // namespace flywheel::lifecycle
