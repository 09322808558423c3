// The in-memory layout the predictor walks, built once at load from a TreeEnsemble. All trees'
// nodes live in one array of 12-byte nodes: each internal node's two children sit side by side
// (right = left + 1) in breadth-first order, so a step is `idx = left + go_right` with no branch.
// A leaf is a node that steps to itself, so every walk of a tree takes exactly its depth in
// steps, whatever leaf it ends at, and lanes of a batch never diverge in control flow.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "trees/tree_ensemble.h"

namespace flywheel::trees {

struct Node {
  // Bits 0-29: the feature read (leaves read the padding column, always NaN);
  // bit 30: categorical split; bit 31: missing values go left.
  uint32_t feature_flags;
  // Threshold (go left when x < value); a leaf's output (already scaled by its dart weight);
  // for a categorical split, the index of its category set (bit pattern).
  float value;
  // Global index of the left child; the right child is left + 1. A leaf holds its own index - 1,
  // and every input steps right at a leaf.
  int32_t left;
};
static_assert(sizeof(Node) == 12);

inline constexpr uint32_t kFeatureMask = (1u << 30) - 1;
inline constexpr uint32_t kCategoricalBit = 1u << 30;
inline constexpr uint32_t kDefaultLeftBit = 1u << 31;

struct CompiledTree {
  int32_t root;   // global node index
  int32_t depth;  // steps from the root to the deepest leaf
  int32_t group;  // output column it adds to
  bool has_categorical;
};

// Categories that go right at one categorical split: bits [word, word + num_words) of the
// forest's bitset array.
struct CategorySet {
  uint32_t word;
  uint32_t num_words;
};

class CompiledForest {
 public:
  static absl::StatusOr<CompiledForest> Build(const TreeEnsemble& ensemble);

  const std::vector<Node>& nodes() const { return nodes_; }
  const std::vector<CompiledTree>& trees() const { return trees_; }
  const std::vector<CategorySet>& category_sets() const { return category_sets_; }
  const std::vector<uint32_t>& category_bits() const { return category_bits_; }
  int num_features() const { return num_features_; }
  int num_groups() const { return num_groups_; }
  float base_margin() const { return base_margin_; }
  int max_depth() const { return max_depth_; }

 private:
  std::vector<Node> nodes_;
  std::vector<CompiledTree> trees_;
  std::vector<CategorySet> category_sets_;
  std::vector<uint32_t> category_bits_;
  int num_features_ = 0;
  int num_groups_ = 1;
  float base_margin_ = 0.0f;
  int max_depth_ = 0;
};

}  // namespace flywheel::trees
