// Reads a JSON model file (XGBoost's `save_model("m.json")`) into a ModelDoc with RapidJSON's
// SAX reader: no recursion, nesting limited to kMaxDocDepth, NaN and Infinity accepted as XGBoost
// writes them, arrays of numbers kept as text spans into the file.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "trees/model_doc.h"

namespace flywheel::trees {

// Parses `bytes` (consumed: strings are unescaped in place). Errors name the byte offset.
absl::StatusOr<ModelDoc> ParseJsonDoc(std::string bytes);

}  // namespace flywheel::trees
