// The in-memory layout the predictor walks, built once at load from a TreeEnsemble. All trees'
// nodes live in one array of 12-byte nodes: each internal node's two children sit side by side
// (right = left + 1) in breadth-first order, so a step is `idx = left + go_right` with no branch.
// A leaf is a node that steps to itself, so every walk of a tree takes exactly its depth in
// steps, whatever leaf it ends at, and lanes of a batch never diverge in control flow.
//
// Shallow numeric trees also get a "perfect" copy: padded to a complete binary tree of their
// depth, stored level by level, so the children of node i are 2i+1 and 2i+2 and a node needs no
// child index (8 bytes). A leaf above the last level becomes nodes whose two subtrees both end
// at its value on the last level, where the values sit: whichever way a walk steps there, the
// result is right.
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

// The predictor walks perfect trees over feature-major groups of rows: element
// [f * kGroupRows + r] of a group is feature f of row r.
inline constexpr int kGroupRows = 16;

// A node of a perfect tree. On the last level `value` is the leaf's output.
struct PerfectNode {
  uint32_t offset;  // feature * kGroupRows: where the feature's column starts in a group
  float value;      // threshold: go left when x < value
};
static_assert(sizeof(PerfectNode) == 8);

struct CompiledTree {
  int32_t root;   // global node index
  int32_t depth;  // steps from the root to the deepest leaf
  int32_t group;  // output column it adds to
  bool has_categorical;
  // Index of the tree's first node in perfect_nodes(), or -1 when it has no perfect copy
  // (categorical splits, or too deep to pad).
  int64_t perfect = -1;
};

// Trees up to this depth get a perfect copy (2^(depth+1) - 1 nodes of 8 bytes).
inline constexpr int kMaxPerfectDepth = 10;

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
  const std::vector<PerfectNode>& perfect_nodes() const { return perfect_nodes_; }
  // Per perfect node: 1 when missing values go left.
  const std::vector<uint8_t>& perfect_default_left() const { return perfect_default_left_; }
  const std::vector<CompiledTree>& trees() const { return trees_; }
  const std::vector<CategorySet>& category_sets() const { return category_sets_; }
  const std::vector<uint32_t>& category_bits() const { return category_bits_; }
  int num_features() const { return num_features_; }
  int num_groups() const { return num_groups_; }
  float base_margin() const { return base_margin_; }
  int max_depth() const { return max_depth_; }
  // Steps one row takes through all trees: the sum of their depths (a measure of work).
  int64_t total_depth() const { return total_depth_; }

 private:
  std::vector<Node> nodes_;
  std::vector<PerfectNode> perfect_nodes_;
  std::vector<uint8_t> perfect_default_left_;
  std::vector<CompiledTree> trees_;
  std::vector<CategorySet> category_sets_;
  std::vector<uint32_t> category_bits_;
  int num_features_ = 0;
  int num_groups_ = 1;
  float base_margin_ = 0.0f;
  int max_depth_ = 0;
  int64_t total_depth_ = 0;
};

}  // namespace flywheel::trees
