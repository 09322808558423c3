// Turns a parsed XGBoost model document (JSON or UBJSON, XGBoost 1.0+ schema) into a validated
// TreeEnsemble: gbtree and dart boosters, every supported objective, categorical splits.
// Anything malformed or unsupported is an error naming the tree, node and field.
#pragma once

#include "absl/status/statusor.h"
#include "trees/model_doc.h"
#include "trees/tree_ensemble.h"

namespace flywheel::trees {

// Upper bounds that keep a hostile file from asking for absurd memory.
struct EnsembleLimits {
  int64_t max_features = int64_t{1} << 24;
  int64_t max_total_nodes = int64_t{1} << 28;
  // Category sets are bitsets up to each split's largest category (as in XGBoost): 64 MiB.
  int64_t max_category_words = int64_t{1} << 24;
};

absl::StatusOr<TreeEnsemble> BuildXgboostEnsemble(const Value& root,
                                                  const EnsembleLimits& limits = {});

}  // namespace flywheel::trees
