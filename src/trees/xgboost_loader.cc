#include "trees/xgboost_loader.h"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "trees/doc_fields.h"

namespace flywheel::trees {
namespace {

constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
// XGBoost treats categories at or above 2^24 as invalid (floats stop being exact there).
constexpr int64_t kMaxCategory = (int64_t{1} << 24) - 1;

absl::Status TreeError(absl::string_view where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

template <typename T>
absl::Status CheckLength(const std::vector<T>& v, absl::string_view field, int num_nodes,
                         absl::string_view where) {
  if (static_cast<int64_t>(v.size()) == num_nodes) return absl::OkStatus();
  return TreeError(where, absl::StrCat("field '", field, "' has ", v.size(),
                                       " entries but tree_param.num_nodes is ", num_nodes));
}

absl::Status CheckNoVectorLeaf(const Value& obj, absl::string_view where) {
  if (obj.Find("size_leaf_vector") == nullptr) return absl::OkStatus();
  FW_ASSIGN_OR_RETURN(int64_t n, ReadIntParam(obj, "size_leaf_vector", where, 0, kInt32Max));
  if (n > 1) {
    return absl::UnimplementedError(absl::StrCat(where, ": vector leaves (size_leaf_vector ", n,
                                                 ", multi_strategy trees) are not supported"));
  }
  return absl::OkStatus();
}

// Categorical split sets: node categories_nodes[k] sends the categories
// categories[categories_segments[k] .. + categories_sizes[k]) right.
absl::Status ReadCategories(const Value& t, absl::string_view where, RawTree* tree) {
  const int n = tree->num_nodes();
  tree->cat_begin.assign(n, 0);
  tree->cat_end.assign(n, 0);
  std::vector<int32_t> cats, nodes, segments, sizes;
  FW_RETURN_IF_ERROR(ReadIntArray(t, "categories", where, 0, kMaxCategory, &cats));
  FW_RETURN_IF_ERROR(ReadIntArray(t, "categories_nodes", where, 0, n - 1, &nodes));
  FW_RETURN_IF_ERROR(ReadIntArray(t, "categories_segments", where, 0, kInt32Max, &segments));
  FW_RETURN_IF_ERROR(ReadIntArray(t, "categories_sizes", where, 0, kInt32Max, &sizes));
  if (segments.size() != nodes.size() || sizes.size() != nodes.size()) {
    return TreeError(where,
                     absl::StrCat("'categories_nodes', 'categories_segments' and "
                                  "'categories_sizes' must have equal lengths, got ",
                                  nodes.size(), ", ", segments.size(), " and ", sizes.size()));
  }
  std::vector<uint8_t> seen(n, 0);
  for (size_t k = 0; k < nodes.size(); ++k) {
    const int node = nodes[k];
    if (!tree->categorical[node]) {
      return TreeError(where, absl::StrCat("categories_nodes[", k, "] is node ", node,
                                           ", which is not a categorical split"));
    }
    if (seen[node]) {
      return TreeError(where, absl::StrCat("node ", node, " appears twice in 'categories_nodes'"));
    }
    seen[node] = 1;
    const int64_t begin = segments[k], end = begin + sizes[k];
    if (end > static_cast<int64_t>(cats.size())) {
      return TreeError(
          where, absl::StrCat("categories of node ", node, " ([", begin, ", ", end,
                              ")) run past the end of 'categories' (", cats.size(), " entries)"));
    }
    std::vector<int32_t> set(cats.begin() + begin, cats.begin() + end);
    std::sort(set.begin(), set.end());
    set.erase(std::unique(set.begin(), set.end()), set.end());
    tree->cat_begin[node] = static_cast<int32_t>(tree->categories.size());
    tree->categories.insert(tree->categories.end(), set.begin(), set.end());
    tree->cat_end[node] = static_cast<int32_t>(tree->categories.size());
  }
  return absl::OkStatus();
}

// Every node reachable from the root is reached once; children are in range; leaves have no
// children; splits use known features. Computes the depth.
absl::Status CheckStructure(absl::string_view where, int num_feature, RawTree* tree) {
  const int n = tree->num_nodes();
  std::vector<uint8_t> visited(n, 0);
  std::vector<int32_t> depth(n, 0);
  std::vector<int32_t> queue = {0};
  visited[0] = 1;
  for (size_t q = 0; q < queue.size(); ++q) {
    const int node = queue[q];
    const int l = tree->left[node], r = tree->right[node];
    if (l < 0 || r < 0) {
      if (l != -1 || r != -1) {
        return TreeError(where,
                         absl::StrCat("node ", node, " has left child ", l, " and right child ", r,
                                      " (a node has two children or none)"));
      }
      continue;
    }
    const int f = tree->feature[node];
    if (f >= num_feature) {
      return TreeError(where, absl::StrCat("node ", node, ": field 'split_indices' is ", f,
                                           " but the model has ", num_feature, " features"));
    }
    for (int child : {l, r}) {
      if (visited[child]) {
        return TreeError(where, absl::StrCat("node ", child, " is reached twice (child of node ",
                                             node, "): the tree has a cycle or a shared node"));
      }
      visited[child] = 1;
      depth[child] = depth[node] + 1;
      tree->depth = std::max(tree->depth, depth[child]);
      queue.push_back(child);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<RawTree> ReadTree(const Value& t, absl::string_view where, int num_feature,
                                 int64_t max_nodes) {
  FW_ASSIGN_OR_RETURN(const Value* tp, RequireObject(t, "tree_param", where));
  const std::string tp_where = absl::StrCat(where, " tree_param");
  FW_ASSIGN_OR_RETURN(int64_t num_nodes, ReadIntParam(*tp, "num_nodes", tp_where, 1, max_nodes));
  FW_RETURN_IF_ERROR(CheckNoVectorLeaf(*tp, tp_where));
  const int n = static_cast<int>(num_nodes);

  RawTree tree;
  FW_RETURN_IF_ERROR(ReadIntArray(t, "left_children", where, -1, n - 1, &tree.left));
  FW_RETURN_IF_ERROR(CheckLength(tree.left, "left_children", n, where));
  FW_RETURN_IF_ERROR(ReadIntArray(t, "right_children", where, -1, n - 1, &tree.right));
  FW_RETURN_IF_ERROR(CheckLength(tree.right, "right_children", n, where));
  FW_RETURN_IF_ERROR(ReadIntArray(t, "split_indices", where, 0, kInt32Max, &tree.feature));
  FW_RETURN_IF_ERROR(CheckLength(tree.feature, "split_indices", n, where));
  FW_RETURN_IF_ERROR(ReadFloatArray(t, "split_conditions", where, &tree.value));
  FW_RETURN_IF_ERROR(CheckLength(tree.value, "split_conditions", n, where));
  std::vector<int32_t> flags;
  FW_RETURN_IF_ERROR(ReadIntArray(t, "default_left", where, 0, 1, &flags));
  FW_RETURN_IF_ERROR(CheckLength(flags, "default_left", n, where));
  tree.default_left.assign(flags.begin(), flags.end());
  // split_type arrived with categorical support (1.6); older models are all numeric.
  if (t.Find("split_type") != nullptr) {
    FW_RETURN_IF_ERROR(ReadIntArray(t, "split_type", where, 0, 1, &flags));
    FW_RETURN_IF_ERROR(CheckLength(flags, "split_type", n, where));
    tree.categorical.assign(flags.begin(), flags.end());
  } else {
    tree.categorical.assign(n, 0);
  }
  for (int i = 0; i < n; ++i) {
    if (tree.left[i] < 0) tree.categorical[i] = 0;  // leaves split on nothing
  }
  if (tree.has_categorical()) FW_RETURN_IF_ERROR(ReadCategories(t, where, &tree));
  FW_RETURN_IF_ERROR(CheckStructure(where, num_feature, &tree));
  return tree;
}

}  // namespace

bool RawTree::has_categorical() const {
  return std::find(categorical.begin(), categorical.end(), 1) != categorical.end();
}

absl::StatusOr<TreeEnsemble> BuildXgboostEnsemble(const Value& root, const EnsembleLimits& limits) {
  TreeEnsemble ens;
  if (!root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model: expected an object at the top level, got ", root.kind_name()));
  }
  if (root.Find("version") != nullptr) {
    std::vector<int32_t> version;
    FW_RETURN_IF_ERROR(ReadIntArray(root, "version", "model", 0, kInt32Max, &version));
    ens.version.assign(version.begin(), version.end());
  }
  FW_ASSIGN_OR_RETURN(const Value* learner, RequireObject(root, "learner", "model"));
  FW_ASSIGN_OR_RETURN(const Value* lmp, RequireObject(*learner, "learner_model_param", "learner"));
  constexpr absl::string_view kLmp = "learner.learner_model_param";
  FW_ASSIGN_OR_RETURN(int64_t num_feature,
                      ReadIntParam(*lmp, "num_feature", kLmp, 0, limits.max_features));
  FW_ASSIGN_OR_RETURN(int64_t num_class, ReadIntParam(*lmp, "num_class", kLmp, 0, 1 << 16));
  int64_t num_target = 1;
  if (lmp->Find("num_target") != nullptr) {
    FW_ASSIGN_OR_RETURN(num_target, ReadIntParam(*lmp, "num_target", kLmp, 1, 1 << 16));
  }
  FW_ASSIGN_OR_RETURN(ens.base_score, ReadFloatParam(*lmp, "base_score", kLmp));
  ens.num_feature = static_cast<int>(num_feature);
  ens.num_class = static_cast<int>(num_class);
  ens.num_groups = static_cast<int>(std::max<int64_t>({1, num_class, num_target}));

  FW_ASSIGN_OR_RETURN(const Value* obj, RequireObject(*learner, "objective", "learner"));
  FW_ASSIGN_OR_RETURN(absl::string_view obj_name, ReadString(*obj, "name", "learner.objective"));
  FW_ASSIGN_OR_RETURN(ens.objective, ParseObjective(obj_name));
  FW_ASSIGN_OR_RETURN(ens.base_margin, BaseScoreToMargin(ens.objective, ens.base_score));

  if (learner->Find("feature_names") != nullptr) {
    FW_RETURN_IF_ERROR(ReadStringArray(*learner, "feature_names", "learner", &ens.feature_names));
  }
  if (learner->Find("feature_types") != nullptr) {
    FW_RETURN_IF_ERROR(ReadStringArray(*learner, "feature_types", "learner", &ens.feature_types));
  }

  FW_ASSIGN_OR_RETURN(const Value* gb, RequireObject(*learner, "gradient_booster", "learner"));
  FW_ASSIGN_OR_RETURN(absl::string_view gb_name,
                      ReadString(*gb, "name", "learner.gradient_booster"));
  ens.booster = std::string(gb_name);
  const Value* model = nullptr;
  if (gb_name == "gbtree") {
    FW_ASSIGN_OR_RETURN(model, RequireObject(*gb, "model", "learner.gradient_booster"));
  } else if (gb_name == "dart") {
    FW_ASSIGN_OR_RETURN(const Value* inner,
                        RequireObject(*gb, "gbtree", "learner.gradient_booster"));
    FW_ASSIGN_OR_RETURN(model, RequireObject(*inner, "model", "learner.gradient_booster.gbtree"));
    FW_RETURN_IF_ERROR(
        ReadFloatArray(*gb, "weight_drop", "learner.gradient_booster", &ens.tree_weight));
  } else if (gb_name == "gblinear") {
    return absl::UnimplementedError(
        "gradient_booster 'gblinear' is not supported: only tree boosters (gbtree, dart) are");
  } else {
    return absl::UnimplementedError(
        absl::StrCat("unknown gradient_booster '", gb_name, "' (supported: gbtree, dart)"));
  }

  constexpr absl::string_view kModel = "learner.gradient_booster.model";
  FW_ASSIGN_OR_RETURN(const Value* gmp, RequireObject(*model, "gbtree_model_param", kModel));
  const std::string gmp_where = absl::StrCat(kModel, ".gbtree_model_param");
  FW_ASSIGN_OR_RETURN(int64_t num_trees,
                      ReadIntParam(*gmp, "num_trees", gmp_where, 0, limits.max_total_nodes));
  FW_RETURN_IF_ERROR(CheckNoVectorLeaf(*gmp, gmp_where));
  FW_ASSIGN_OR_RETURN(const Value* trees, RequireField(*model, "trees", kModel));
  const bool empty_list = trees->kind() == Value::Kind::kNumberArray && trees->NumberCount() == 0;
  if (trees->kind() != Value::Kind::kArray && !empty_list) {
    return absl::InvalidArgumentError(
        absl::StrCat(kModel, ": field 'trees': expected an array, got ", trees->kind_name()));
  }
  const size_t n_listed = empty_list ? 0 : trees->items().size();
  if (static_cast<int64_t>(n_listed) != num_trees) {
    return absl::InvalidArgumentError(absl::StrCat(kModel, ": 'trees' has ", n_listed,
                                                   " entries but gbtree_model_param.num_trees is ",
                                                   num_trees));
  }
  FW_RETURN_IF_ERROR(
      ReadIntArray(*model, "tree_info", kModel, 0, ens.num_groups - 1, &ens.tree_group));
  if (static_cast<int64_t>(ens.tree_group.size()) != num_trees) {
    return absl::InvalidArgumentError(absl::StrCat(
        kModel, ": 'tree_info' has ", ens.tree_group.size(), " entries for ", num_trees, " trees"));
  }
  if (!ens.tree_weight.empty() || gb_name == "dart") {
    if (static_cast<int64_t>(ens.tree_weight.size()) != num_trees) {
      return absl::InvalidArgumentError(absl::StrCat("learner.gradient_booster: 'weight_drop' has ",
                                                     ens.tree_weight.size(), " entries for ",
                                                     num_trees, " trees"));
    }
  }

  ens.trees.resize(num_trees);
  std::vector<uint8_t> placed(num_trees, 0);
  int64_t total_nodes = 0;
  int64_t category_words = 0;
  for (int64_t i = 0; i < num_trees; ++i) {
    const Value& t = trees->items()[i];
    std::string where = absl::StrCat("tree ", i);
    if (!t.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": expected an object, got ", t.kind_name()));
    }
    // XGBoost places each tree by its id.
    int64_t id = i;
    if (t.Find("id") != nullptr) {
      FW_ASSIGN_OR_RETURN(id, ReadIntParam(t, "id", where, 0, num_trees - 1));
      if (placed[id]) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": id ", id, " is used twice"));
      }
      if (id != i) where = absl::StrCat("tree ", id, " (entry ", i, " of 'trees')");
    }
    placed[id] = 1;
    FW_ASSIGN_OR_RETURN(ens.trees[id],
                        ReadTree(t, where, ens.num_feature, limits.max_total_nodes - total_nodes));
    const RawTree& tree = ens.trees[id];
    total_nodes += tree.num_nodes();
    for (int n = 0; n < tree.num_nodes(); ++n) {
      if (tree.cat_end.empty() || tree.cat_end[n] == tree.cat_begin[n]) continue;
      const int64_t largest = tree.categories[tree.cat_end[n] - 1];
      category_words += largest / 32 + 1;
      if (category_words > limits.max_category_words) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": node ", n, ": categorical splits need more than ",
                         limits.max_category_words * 4,
                         " bytes of category sets (largest category here: ", largest, ")"));
      }
    }
  }
  return ens;
}

}  // namespace flywheel::trees
