// The validated, format-independent form of a tree ensemble, between a model reader
// (xgboost_loader.h) and the compiled layout the predictor runs (compiled_forest.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trees/objective.h"

namespace flywheel::trees {

// One regression tree in XGBoost's node numbering: node 0 is the root; a leaf has left == -1.
// Every internal node's children are valid, distinct node indices reached once from the root;
// nodes not reachable from the root (deleted by pruning) may remain and are ignored.
struct RawTree {
  std::vector<int32_t> left;
  std::vector<int32_t> right;
  std::vector<int32_t> feature;  // internal nodes: split feature, < num_feature
  std::vector<float>
      value;  // internal nodes: threshold (go left when x < value); leaves: leaf value
  std::vector<uint8_t> default_left;  // missing (NaN) goes left
  std::vector<uint8_t> categorical;   // split on categories instead of a threshold
  // Categorical nodes: categories [cat_begin[n], cat_end[n]) of `categories` go RIGHT; every
  // other category, negative or out-of-range values go left (XGBoost 1.6+ semantics).
  std::vector<int32_t> cat_begin;
  std::vector<int32_t> cat_end;
  std::vector<int32_t> categories;  // sorted, distinct, in [0, 2^24) within a node
  int depth = 0;                    // edges on the longest root-to-leaf path

  int num_nodes() const { return static_cast<int>(left.size()); }
  bool is_leaf(int n) const { return left[n] < 0; }
  bool has_categorical() const;
};

struct TreeEnsemble {
  std::string booster;  // "gbtree" or "dart"
  Objective objective;
  int num_feature = 0;
  // Output columns of the raw margin: classes for multi-class models, targets for multi-target
  // regression, else 1. Tree t adds to column tree_group[t].
  int num_groups = 1;
  int num_class = 0;         // as the model states it (0 for non-classifiers)
  float base_score = 0.5f;   // as stored: in the objective's output space
  float base_margin = 0.0f;  // base_score mapped to margin space; every margin starts here
  std::vector<RawTree> trees;
  std::vector<int32_t> tree_group;
  // dart: each tree's output is scaled by its weight; empty for gbtree.
  std::vector<float> tree_weight;
  std::vector<std::string> feature_names;
  std::vector<std::string> feature_types;  // "q" numeric, "c" categorical, ... (may be empty)
  std::vector<int> version;                // XGBoost version that wrote the model, e.g. {1, 7, 4}
};

}  // namespace flywheel::trees
