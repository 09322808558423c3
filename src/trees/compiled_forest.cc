#include "trees/compiled_forest.h"

#include <bit>
#include <limits>

#include "absl/strings/str_cat.h"

namespace flywheel::trees {
namespace {

// Appends the category set of categorical node `n` of `tree` and returns its index.
uint32_t AddCategorySet(const RawTree& tree, int n, std::vector<CategorySet>* sets,
                        std::vector<uint32_t>* bits) {
  const int32_t begin = tree.cat_begin[n], end = tree.cat_end[n];
  const uint32_t words = end > begin ? static_cast<uint32_t>(tree.categories[end - 1]) / 32 + 1 : 0;
  CategorySet set{static_cast<uint32_t>(bits->size()), words};
  bits->resize(bits->size() + words, 0);
  for (int32_t i = begin; i < end; ++i) {
    const uint32_t c = static_cast<uint32_t>(tree.categories[i]);
    (*bits)[set.word + c / 32] |= 1u << (c % 32);
  }
  sets->push_back(set);
  return static_cast<uint32_t>(sets->size() - 1);
}

// Writes the subtree of `tree` at node n as position `pos` (level order) of a perfect tree of
// depth `depth` starting at out[0].
// Where PlacePerfect writes: nodes and default-left flags of one perfect tree.
struct PerfectOut {
  PerfectNode* nodes;
  uint8_t* default_left;
  uint32_t pad_offset;  // the padding column's offset
  float weight;
  bool weighted;
};

void PlacePerfect(const RawTree& tree, int n, int level, int depth, int64_t pos,
                  const PerfectOut& out) {
  if (level == depth) {
    out.nodes[pos] = {out.pad_offset, out.weighted ? tree.value[n] * out.weight : tree.value[n]};
    return;
  }
  if (tree.is_leaf(n)) {
    // Both subtrees end at this leaf's value, so the step's direction does not matter (the
    // walks need not special-case these nodes, nor NaN in the padding column they read).
    out.nodes[pos] = {out.pad_offset, 0.0f};
    PlacePerfect(tree, n, level + 1, depth, 2 * pos + 1, out);
    PlacePerfect(tree, n, level + 1, depth, 2 * pos + 2, out);
    return;
  }
  out.nodes[pos] = {static_cast<uint32_t>(tree.feature[n]) * kGroupRows, tree.value[n]};
  out.default_left[pos] = tree.default_left[n];
  PlacePerfect(tree, tree.left[n], level + 1, depth, 2 * pos + 1, out);
  PlacePerfect(tree, tree.right[n], level + 1, depth, 2 * pos + 2, out);
}

}  // namespace

absl::StatusOr<CompiledForest> CompiledForest::Build(const TreeEnsemble& ensemble) {
  CompiledForest f;
  f.num_features_ = ensemble.num_feature;
  f.num_groups_ = ensemble.num_groups;
  f.base_margin_ = ensemble.base_margin;
  if (static_cast<uint32_t>(ensemble.num_feature) > kFeatureMask) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model has ", ensemble.num_feature, " features; at most ", kFeatureMask, " are supported"));
  }
  const uint32_t pad_feature = static_cast<uint32_t>(ensemble.num_feature);
  int64_t total = 0;
  for (const RawTree& t : ensemble.trees) total += t.num_nodes();
  if (total >= std::numeric_limits<int32_t>::max() / 2) {
    return absl::InvalidArgumentError(absl::StrCat("model has ", total, " nodes; too many"));
  }
  f.nodes_.reserve(total);
  f.trees_.reserve(ensemble.trees.size());

  std::vector<int32_t> queue;
  for (size_t t = 0; t < ensemble.trees.size(); ++t) {
    const RawTree& tree = ensemble.trees[t];
    const float weight = ensemble.tree_weight.empty() ? 1.0f : ensemble.tree_weight[t];
    CompiledTree ct;
    ct.root = static_cast<int32_t>(f.nodes_.size());
    ct.depth = tree.depth;
    ct.group = ensemble.tree_group[t];
    ct.has_categorical = false;
    // Breadth-first: queue[k] is the source node placed at global index root + k, so the two
    // children of a node are appended together.
    queue.assign(1, 0);
    f.nodes_.emplace_back();
    for (size_t k = 0; k < queue.size(); ++k) {
      const int n = queue[k];
      const int32_t self = ct.root + static_cast<int32_t>(k);
      Node node;
      if (tree.is_leaf(n)) {
        // dart scales each tree's output; XGBoost multiplies the leaf value by the weight in
        // float before adding it, which is what this pre-scaled value reproduces.
        node.feature_flags = pad_feature;
        node.value = ensemble.tree_weight.empty() ? tree.value[n] : tree.value[n] * weight;
        node.left = self - 1;
      } else {
        node.feature_flags = static_cast<uint32_t>(tree.feature[n]);
        if (tree.default_left[n]) node.feature_flags |= kDefaultLeftBit;
        if (tree.categorical[n]) {
          node.feature_flags |= kCategoricalBit;
          node.value =
              std::bit_cast<float>(AddCategorySet(tree, n, &f.category_sets_, &f.category_bits_));
          ct.has_categorical = true;
        } else {
          node.value = tree.value[n];
        }
        node.left = static_cast<int32_t>(f.nodes_.size());
        queue.push_back(tree.left[n]);
        queue.push_back(tree.right[n]);
        f.nodes_.emplace_back();
        f.nodes_.emplace_back();
      }
      f.nodes_[self] = node;
    }
    const int64_t size = (int64_t{2} << ct.depth) - 1;
    // Padding a sparse tree (a long chain, say) costs more memory than it saves time.
    if (!ct.has_categorical && ct.depth <= kMaxPerfectDepth &&
        size <= std::max<int64_t>(256, 8 * int64_t{tree.num_nodes()})) {
      ct.perfect = static_cast<int64_t>(f.perfect_nodes_.size());
      const uint32_t pad_offset = pad_feature * kGroupRows;
      f.perfect_nodes_.resize(f.perfect_nodes_.size() + size, PerfectNode{pad_offset, 0.0f});
      f.perfect_default_left_.resize(f.perfect_nodes_.size(), 0);
      PlacePerfect(tree, 0, 0, ct.depth, 0,
                   PerfectOut{f.perfect_nodes_.data() + ct.perfect,
                              f.perfect_default_left_.data() + ct.perfect, pad_offset, weight,
                              !ensemble.tree_weight.empty()});
    }
    f.max_depth_ = std::max(f.max_depth_, ct.depth);
    f.total_depth_ += ct.depth;
    f.trees_.push_back(ct);
  }
  return f;
}

}  // namespace flywheel::trees
