#include "features/store.h"

#include "absl/strings/str_cat.h"

namespace flywheel::features {

// The unit separator never appears in view names (validated) and keeps prefix scans per view
// exact: "clicks\x1f" cannot match the view "clicks_1h".
std::string StateKey(absl::string_view view, absl::string_view entity_key) {
  return absl::StrCat(view, "\x1f", entity_key);
}

}  // namespace flywheel::features
