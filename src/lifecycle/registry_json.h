// JSON views of the registry for people and programs: what `flywheel models ... --json` prints
// and what the admin API returns. The field names are those of the registry file
// (docs/lifecycle.md).
#pragma once

#include <string>
#include <vector>

#include "lifecycle/registry.h"

namespace flywheel::lifecycle {

// {"model", "registry_file", "versions": [{"version", "on_disk", "registered", "aliases",
//  "metadata"}], "aliases": {...}, "history": [...]}
std::string ModelInfoJson(const ModelInfo& info, bool pretty);
// {"models": [ModelInfoJson...]}
std::string ModelListJson(const std::vector<ModelInfo>& models, bool pretty);
// {"model", "version", "on_disk", "registered", "aliases", "metadata"}; metadata null when the
// version is not registered.
std::string VersionInfoJson(absl::string_view model, const VersionInfo& version, bool pretty);
// {"model", "change": {"time", "alias", "action", "from", "to", "by", "note"}}
std::string AliasChangeJson(absl::string_view model, const AliasChange& change, bool pretty);
// {"model", "metadata": {...}}
std::string VersionMetadataJson(absl::string_view model, const VersionMetadata& metadata,
                                bool pretty);

}  // namespace flywheel::lifecycle
