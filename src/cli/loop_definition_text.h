// Loop definitions for people and for scripts: the text and the JSON that `flywheel loop check`
// prints, every default filled in.
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "lifecycle/loop_config.h"

namespace flywheel::cli {

// In the units a definition is written in: "7d", "1h30m", "90s" as "1m30s", "250ms".
std::string LoopDurationText(absl::Duration d);
// A few indented lines, the first naming the loop, its file and its model.
std::string LoopDefinitionText(const lifecycle::LoopDefinition& d);
// {"loops": [DEFINITION...]}, indented.
std::string LoopDefinitionsJson(const std::vector<lifecycle::LoopDefinition>& defs);

}  // namespace flywheel::cli
