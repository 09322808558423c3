// Reads a Universal Binary JSON model file (XGBoost's `save_model("m.ubj")`) into a ModelDoc:
// every length is checked against the bytes left, nesting is limited to kMaxDocDepth, and typed
// numeric arrays ('[$d#...') stay packed in the file bytes.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "trees/model_doc.h"

namespace flywheel::trees {

// Parses `bytes` (UBJSON draft 12, big-endian, including optimised containers). Errors name the
// byte offset.
absl::StatusOr<ModelDoc> ParseUbjsonDoc(std::string bytes);

}  // namespace flywheel::trees
