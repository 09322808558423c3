// The shared pieces of configuration checking: the problem collector and the small checks both
// ValidateModelConfig and CompleteModelConfig use.
#include "serving/model_config_checks.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "serving/model_config.h"

namespace flywheel::serving {

namespace config_internal {

namespace {
// One error listing hundreds of problems helps nobody; the first ones show the pattern.
constexpr size_t kMaxReported = 20;
}  // namespace

void Problems::Invalid(const std::string& field, const std::string& problem) {
  errors_.push_back(absl::StrCat(field, ": ", problem));
}

void Problems::Unsupported(const std::string& field, const std::string& why) {
  errors_.push_back(absl::StrCat(field, ": not supported by flywheel (", why, ")"));
}

void Problems::Warn(const std::string& field, const std::string& note) {
  warnings_.push_back(absl::StrCat(path_, ": ", field, ": ", note));
}

absl::Status Problems::ToStatus() const {
  if (errors_.empty()) return absl::OkStatus();
  std::string message = path_ + ": ";
  const size_t shown = std::min(errors_.size(), kMaxReported);
  absl::StrAppend(&message, absl::StrJoin(errors_.begin(),
                                          errors_.begin() + static_cast<ptrdiff_t>(shown), "; "));
  if (errors_.size() > shown) {
    absl::StrAppend(&message, "; and ", errors_.size() - shown, " more problems");
  }
  return absl::InvalidArgumentError(message);
}

std::string DimsString(absl::Span<const int64_t> dims) {
  return absl::StrCat("[", absl::StrJoin(dims, ","), "]");
}

std::string TensorField(const char* kind, int index, const std::string& name) {
  if (name.empty()) return absl::StrCat(kind, "[", index, "]");
  return absl::StrCat(kind, " '", name, "'");
}

bool IsSafeRelativePath(const std::string& path) {
  if (path.empty() || path.front() == '/' || path.find('\0') != std::string::npos ||
      path.find('\\') != std::string::npos) {
    return false;
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

void CheckDims(const std::string& field, absl::Span<const int64_t> dims, bool allow_variable,
               Problems* problems) {
  int64_t elements = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = dims[i];
    if (d == -1 && allow_variable) continue;
    if (d < 1) {
      problems->Invalid(absl::StrCat(field, "[", i, "]"),
                        absl::StrCat(d, " is not a valid dimension (",
                                     allow_variable ? "a positive size, or -1 for a variable one"
                                                    : "a positive size",
                                     ")"));
      return;
    }
    if (d > kMaxElements / elements) {
      problems->Invalid(field, absl::StrCat(DimsString(dims), " has more than 2^40 elements"));
      return;
    }
    elements *= d;
  }
}

void CheckDataType(const std::string& field, inference::DataType type, bool allow_unset,
                   Problems* problems) {
  if (type == inference::TYPE_INVALID && allow_unset) return;
  if (!DataTypeFromConfig(type).ok()) {
    problems->Invalid(field, absl::StrCat(ConfigDataTypeName(type), " is not a valid data type"));
  }
}

int Utf8SequenceLength(absl::string_view s) {
  if (s.empty()) return 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  if (p[0] < 0x80) return 1;
  int length;
  uint32_t code;
  if ((p[0] & 0xe0) == 0xc0) {
    length = 2;
    code = p[0] & 0x1f;
  } else if ((p[0] & 0xf0) == 0xe0) {
    length = 3;
    code = p[0] & 0x0f;
  } else if ((p[0] & 0xf8) == 0xf0) {
    length = 4;
    code = p[0] & 0x07;
  } else {
    return 0;
  }
  if (s.size() < static_cast<size_t>(length)) return 0;
  for (int i = 1; i < length; ++i) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    code = (code << 6) | (p[i] & 0x3f);
  }
  static constexpr uint32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code < kMinimum[length] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return 0;
  return length;
}

bool IsValidUtf8(absl::string_view s) {
  while (!s.empty()) {
    const int n = Utf8SequenceLength(s);
    if (n == 0) return false;
    s.remove_prefix(n);
  }
  return true;
}

}  // namespace config_internal

}  // namespace flywheel::serving
