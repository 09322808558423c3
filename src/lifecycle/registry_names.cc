// Name rules of the registry (see registry_names.h and registry.h).
#include "lifecycle/registry_names.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace flywheel::lifecycle {
namespace {

constexpr size_t kMaxAliasLength = 64;

}  // namespace

absl::Status ValidateModelName(absl::string_view model) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("model name '", absl::CHexEscape(model), "' ", why));
  };
  if (model.empty()) return absl::InvalidArgumentError("model name is empty");
  if (model.front() == '.') return bad("starts with '.'");
  for (unsigned char c : model) {
    if (c == '/' || c == '\\') return bad("contains a path separator");
    if (c < 0x20 || c == 0x7f) return bad("contains a control character");
  }
  return absl::OkStatus();
}

std::string AliasNames(const std::map<std::string, Alias, std::less<>>& aliases) {
  if (aliases.empty()) return "none";
  std::vector<std::string> names;
  for (const auto& [name, alias] : aliases) names.push_back(name);
  return absl::StrJoin(names, ", ");
}

absl::Status ValidateAliasName(absl::string_view alias) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("alias '", absl::CHexEscape(alias), "' ", why));
  };
  if (alias.empty()) return absl::InvalidArgumentError("alias name is empty");
  if (alias.size() > kMaxAliasLength) {
    return bad(absl::StrCat("is longer than ", kMaxAliasLength, " characters"));
  }
  for (char c : alias) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '_' && c != '-') {
      return bad("may contain only a-z, 0-9, '_' and '-'");
    }
  }
  if (std::all_of(alias.begin(), alias.end(), [](char c) { return absl::ascii_isdigit(c); })) {
    return bad("is a number; aliases need a letter so that they never read as a version");
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ParseVersionNumber(absl::string_view text) {
  int64_t version = 0;
  if (text.empty() || text.size() > 18 || text.front() == '0' ||
      !std::all_of(text.begin(), text.end(), [](char c) { return absl::ascii_isdigit(c); }) ||
      !absl::SimpleAtoi(text, &version)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", absl::CHexEscape(text), "' is not a version number (a positive integer)"));
  }
  return version;
}

}  // namespace flywheel::lifecycle
