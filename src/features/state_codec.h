// The stored form of one entity's state in one view (the OnlineStore value under
// StateKey(view, entity key)). Compact (varints, only non-empty tiles) and self-describing per
// series, so state written before a definition changed still loads: series and raw fields are
// matched by what they mean, rings are cut to their new length, unknown parts are skipped.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "features/tiles.h"

namespace flywheel::features {

void EncodeState(const ViewLayout& layout, const ViewState& state, std::string* out);

// REQUIRES: `state` was initialised by layout.Init (DecodeState fills it in).
absl::Status DecodeState(const ViewLayout& layout, absl::string_view in, ViewState* state);

}  // namespace flywheel::features
