// Private to lifecycle/: the YAML reader behind loop_config.h's Parse and Read functions. It also
// gives the line of `name:`, for the duplicate-name error of a folder of definitions.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "lifecycle/loop_config.h"

namespace flywheel::lifecycle {

struct ParsedLoopDefinition {
  LoopDefinition def;
  int name_line = 0;
};

absl::StatusOr<ParsedLoopDefinition> ParseLoopYaml(const std::string& yaml_text,
                                                   const std::string& source_file);

}  // namespace flywheel::lifecycle
