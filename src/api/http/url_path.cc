#include "api/http/url_path.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace flywheel::api::http {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

absl::StatusOr<std::string> Decode(absl::string_view segment) {
  std::string out;
  out.reserve(segment.size());
  for (size_t i = 0; i < segment.size(); ++i) {
    char c = segment[i];
    if (c == '%') {
      int h = i + 1 < segment.size() ? HexValue(segment[i + 1]) : -1;
      int l = i + 2 < segment.size() ? HexValue(segment[i + 2]) : -1;
      if (h < 0 || l < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("malformed percent-escape in path segment '", segment, "'"));
      }
      c = static_cast<char>(h * 16 + l);
      i += 2;
    }
    if (c == '\0') {
      return absl::InvalidArgumentError(
          absl::StrCat("path segment '", segment, "' contains a NUL byte"));
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> SplitPath(absl::string_view target) {
  absl::string_view path = target.substr(0, target.find_first_of("?#"));
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("request target '", target, "' is not an absolute path"));
  }
  path.remove_prefix(1);
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);
  std::vector<std::string> segments;
  if (path.empty()) return segments;
  segments.reserve(std::count(path.begin(), path.end(), '/') + 1);
  for (absl::string_view raw : absl::StrSplit(path, '/')) {
    auto decoded = Decode(raw);
    if (!decoded.ok()) return decoded.status();
    segments.push_back(*std::move(decoded));
  }
  return segments;
}

}  // namespace flywheel::api::http
