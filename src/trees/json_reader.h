// Reads a JSON model file (XGBoost's `save_model("m.json")`) into a ModelDoc: strict RFC 8259
// (plus NaN and Infinity, which XGBoost writes), bounds-checked, nesting limited to kMaxDocDepth,
// UTF-8 validated, arrays of numbers kept as text spans into the file.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "trees/model_doc.h"

namespace flywheel::trees {

// Parses `bytes` (consumed: strings are unescaped in place). Errors name the byte offset.
absl::StatusOr<ModelDoc> ParseJsonDoc(std::string bytes);

}  // namespace flywheel::trees
