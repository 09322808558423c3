// Retraining loop definitions (loop_config.h): reading files and folders of them, and the names of
// metrics and policies. The YAML itself is read by loop_config_parse.cc.
#include "lifecycle/loop_config.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "lifecycle/loop_config_parse.h"

namespace flywheel::lifecycle {
namespace {

absl::StatusOr<std::string> ReadText(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat("loop definition '", path, "' is a folder, not a YAML file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read loop definition '", path, "': ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat("error reading loop definition '", path, "'"));
  }
  return text.str();
}

absl::StatusOr<ParsedLoopDefinition> ReadParsed(const std::string& path) {
  FW_ASSIGN_OR_RETURN(std::string text, ReadText(path));
  return ParseLoopYaml(text, path);
}

}  // namespace

bool HigherIsBetter(GateMetric metric) {
  return metric == GateMetric::kAuc || metric == GateMetric::kAccuracy;
}

const char* GateMetricName(GateMetric metric) {
  switch (metric) {
    case GateMetric::kAuc:
      return "auc";
    case GateMetric::kAccuracy:
      return "accuracy";
    case GateMetric::kLogLoss:
      return "log_loss";
    case GateMetric::kMae:
      return "mae";
    case GateMetric::kRmse:
      return "rmse";
  }
  return "unknown";
}

const char* LoopRolloutPolicyName(LoopRolloutPolicy policy) {
  switch (policy) {
    case LoopRolloutPolicy::kCanary:
      return "canary";
    case LoopRolloutPolicy::kAbTest:
      return "ab";
    case LoopRolloutPolicy::kShadow:
      return "shadow";
  }
  return "unknown";
}

absl::StatusOr<LoopDefinition> ParseLoopDefinition(const std::string& yaml_text,
                                                   const std::string& source_file) {
  FW_ASSIGN_OR_RETURN(ParsedLoopDefinition parsed, ParseLoopYaml(yaml_text, source_file));
  return std::move(parsed.def);
}

absl::StatusOr<LoopDefinition> ReadLoopDefinition(const std::string& path) {
  FW_ASSIGN_OR_RETURN(ParsedLoopDefinition parsed, ReadParsed(path));
  return std::move(parsed.def);
}

absl::StatusOr<std::vector<LoopDefinition>> ReadLoopDefinitions(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(
        absl::StrCat("loop definitions folder '", dir, "': not a folder (or it does not exist)"));
  }
  std::vector<std::string> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;  // editors' swap and backup files
    if (!absl::EndsWith(name, ".yaml") && !absl::EndsWith(name, ".yml")) continue;
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    files.push_back(it->path().string());
  }
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot list loop definitions folder '", dir, "': ", ec.message()));
  }
  std::sort(files.begin(), files.end());
  std::vector<LoopDefinition> defs;
  std::map<std::string, std::string> seen;  // name -> file
  for (const std::string& file : files) {
    FW_ASSIGN_OR_RETURN(ParsedLoopDefinition parsed, ReadParsed(file));
    auto [where, inserted] = seen.emplace(parsed.def.name, file);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(file, ":", parsed.name_line, ": name: loop '",
                                                     parsed.def.name, "' is defined in ",
                                                     where->second, " already"));
    }
    defs.push_back(std::move(parsed.def));
  }
  return defs;
}

}  // namespace flywheel::lifecycle
