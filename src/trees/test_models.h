// Test helper (header-only, used by the trees tests): describes small XGBoost models in code and
// writes them in XGBoost's JSON and UBJSON schema, so that tests state exact trees and outputs.
#pragma once

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace flywheel::trees::testing {

struct TestTree {
  std::vector<int> left, right, feature;
  std::vector<float> value;                                  // thresholds and leaf values
  std::vector<int> default_left;                             // empty: all 0
  std::vector<int> split_type;                               // empty: all 0 (1 = categorical)
  std::vector<std::pair<int, std::vector<int>>> categories;  // node -> categories going right
  int group = 0;
};

struct TestModel {
  std::string objective = "reg:squarederror";
  std::string booster = "gbtree";
  int num_feature = 2;
  int num_class = 0;
  std::string base_score = "5E-1";
  std::vector<TestTree> trees;
  std::vector<float> weight_drop;  // dart
};

// A stump: feature `f` < threshold ? left_value : right_value.
inline TestTree Stump(int f, float threshold, float left_value, float right_value,
                      bool default_left = false, int group = 0) {
  TestTree t;
  t.left = {1, -1, -1};
  t.right = {2, -1, -1};
  t.feature = {f, 0, 0};
  t.value = {threshold, left_value, right_value};
  t.default_left = {default_left ? 1 : 0, 0, 0};
  t.group = group;
  return t;
}

inline std::string JsonFloat(float f) {
  if (std::isnan(f)) return "NaN";
  if (std::isinf(f)) return f > 0 ? "Infinity" : "-Infinity";
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), f);
  return std::string(buf, r.ptr);
}

inline std::vector<int> OrZeros(const std::vector<int>& v, size_t n) {
  return v.empty() ? std::vector<int>(n, 0) : v;
}

// Flattened categories arrays in XGBoost's layout.
struct CategoryArrays {
  std::vector<int> categories, nodes, segments, sizes;
};
inline CategoryArrays FlattenCategories(const TestTree& t) {
  CategoryArrays c;
  for (const auto& [node, cats] : t.categories) {
    c.nodes.push_back(node);
    c.segments.push_back(static_cast<int>(c.categories.size()));
    c.sizes.push_back(static_cast<int>(cats.size()));
    c.categories.insert(c.categories.end(), cats.begin(), cats.end());
  }
  return c;
}

inline std::string ToJson(const TestModel& m) {
  auto ints = [](const std::vector<int>& v) {
    return absl::StrCat("[", absl::StrJoin(v, ","), "]");
  };
  auto floats = [](const std::vector<float>& v) {
    std::vector<std::string> s;
    for (float f : v) s.push_back(JsonFloat(f));
    return absl::StrCat("[", absl::StrJoin(s, ","), "]");
  };
  std::vector<std::string> trees;
  std::vector<int> info;
  for (size_t i = 0; i < m.trees.size(); ++i) {
    const TestTree& t = m.trees[i];
    const size_t n = t.left.size();
    const CategoryArrays c = FlattenCategories(t);
    trees.push_back(absl::StrCat(
        R"({"base_weights":)", floats(std::vector<float>(n, 0.0f)), R"(,"categories":)",
        ints(c.categories), R"(,"categories_nodes":)", ints(c.nodes), R"(,"categories_segments":)",
        ints(c.segments), R"(,"categories_sizes":)", ints(c.sizes), R"(,"default_left":)",
        ints(OrZeros(t.default_left, n)), R"(,"id":)", i, R"(,"left_children":)", ints(t.left),
        R"(,"right_children":)", ints(t.right), R"(,"split_conditions":)", floats(t.value),
        R"(,"split_indices":)", ints(t.feature), R"(,"split_type":)",
        ints(OrZeros(t.split_type, n)), R"(,"tree_param":{"num_deleted":"0","num_feature":")",
        m.num_feature, R"(","num_nodes":")", n, R"(","size_leaf_vector":"0"}})"));
    info.push_back(t.group);
  }
  std::string model =
      absl::StrCat(R"({"gbtree_model_param":{"num_parallel_tree":"1","num_trees":")",
                   m.trees.size(), R"(","size_leaf_vector":"0"},"tree_info":)", ints(info),
                   R"(,"trees":[)", absl::StrJoin(trees, ","), "]}");
  std::string booster;
  if (m.booster == "dart") {
    booster = absl::StrCat(R"({"gbtree":{"model":)", model, R"(,"name":"gbtree"},"name":"dart",)",
                           R"("weight_drop":)", floats(m.weight_drop), "}");
  } else {
    booster = absl::StrCat(R"({"model":)", model, R"(,"name":")", m.booster, R"("})");
  }
  return absl::StrCat(
      R"({"learner":{"attributes":{},"feature_names":[],"feature_types":[],)",
      R"("gradient_booster":)", booster, R"(,"learner_model_param":{"base_score":")", m.base_score,
      R"(","boost_from_average":"1","num_class":")", m.num_class, R"(","num_feature":")",
      m.num_feature, R"(","num_target":"1"},"objective":{"name":")", m.objective,
      R"("}},"version":[1,7,4]})");
}

// UBJSON in the form XGBoost writes it: int64 key lengths, typed arrays for numbers.
class UbjWriter {
 public:
  void Int64(int64_t v) {
    out_ += 'L';
    Raw(static_cast<uint64_t>(v), 8);
  }
  void Key(const std::string& k) {
    Int64(static_cast<int64_t>(k.size()));
    out_ += k;
  }
  void String(const std::string& s) {
    out_ += 'S';
    Key(s);
  }
  void BeginObject() { out_ += '{'; }
  void EndObject() { out_ += '}'; }
  void Int32Array(const std::vector<int>& v) {
    out_ += "[$l#";
    Int64(static_cast<int64_t>(v.size()));
    for (int x : v) Raw(static_cast<uint32_t>(x), 4);
  }
  void UInt8Array(const std::vector<int>& v) {
    out_ += "[$U#";
    Int64(static_cast<int64_t>(v.size()));
    for (int x : v) out_ += static_cast<char>(x);
  }
  void Float32Array(const std::vector<float>& v) {
    out_ += "[$d#";
    Int64(static_cast<int64_t>(v.size()));
    for (float x : v) Raw(std::bit_cast<uint32_t>(x), 4);
  }
  // An array of objects, counted, without element type.
  void BeginCountedArray(size_t n) {
    out_ += "[#";
    Int64(static_cast<int64_t>(n));
  }
  const std::string& bytes() const { return out_; }

 private:
  void Raw(uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out_ += static_cast<char>((v >> (8 * i)) & 0xff);
  }
  std::string out_;
};

inline std::string ToUbjson(const TestModel& m) {
  UbjWriter w;
  auto str_param = [&](const std::string& k, const std::string& v) {
    w.Key(k);
    w.String(v);
  };
  auto write_trees_model = [&] {
    w.BeginObject();
    w.Key("gbtree_model_param");
    w.BeginObject();
    str_param("num_parallel_tree", "1");
    str_param("num_trees", std::to_string(m.trees.size()));
    str_param("size_leaf_vector", "0");
    w.EndObject();
    std::vector<int> info;
    for (const TestTree& t : m.trees) info.push_back(t.group);
    w.Key("tree_info");
    w.Int32Array(info);
    w.Key("trees");
    w.BeginCountedArray(m.trees.size());
    for (size_t i = 0; i < m.trees.size(); ++i) {
      const TestTree& t = m.trees[i];
      const size_t n = t.left.size();
      const CategoryArrays c = FlattenCategories(t);
      w.BeginObject();
      w.Key("categories");
      w.Int32Array(c.categories);
      w.Key("categories_nodes");
      w.Int32Array(c.nodes);
      w.Key("categories_segments");
      w.Int32Array(c.segments);
      w.Key("categories_sizes");
      w.Int32Array(c.sizes);
      w.Key("default_left");
      w.UInt8Array(OrZeros(t.default_left, n));
      w.Key("id");
      w.Int64(static_cast<int64_t>(i));
      w.Key("left_children");
      w.Int32Array(t.left);
      w.Key("right_children");
      w.Int32Array(t.right);
      w.Key("split_conditions");
      w.Float32Array(t.value);
      w.Key("split_indices");
      w.Int32Array(t.feature);
      w.Key("split_type");
      w.UInt8Array(OrZeros(t.split_type, n));
      w.Key("tree_param");
      w.BeginObject();
      str_param("num_feature", std::to_string(m.num_feature));
      str_param("num_nodes", std::to_string(n));
      str_param("size_leaf_vector", "0");
      w.EndObject();
      w.EndObject();
    }
    w.EndObject();
  };
  w.BeginObject();
  w.Key("learner");
  w.BeginObject();
  w.Key("gradient_booster");
  w.BeginObject();
  if (m.booster == "dart") {
    w.Key("gbtree");
    w.BeginObject();
    w.Key("model");
    write_trees_model();
    str_param("name", "gbtree");
    w.EndObject();
    str_param("name", "dart");
    w.Key("weight_drop");
    w.Float32Array(m.weight_drop);
  } else {
    w.Key("model");
    write_trees_model();
    str_param("name", m.booster);
  }
  w.EndObject();
  w.Key("learner_model_param");
  w.BeginObject();
  str_param("base_score", m.base_score);
  str_param("num_class", std::to_string(m.num_class));
  str_param("num_feature", std::to_string(m.num_feature));
  w.EndObject();
  w.Key("objective");
  w.BeginObject();
  str_param("name", m.objective);
  w.EndObject();
  w.EndObject();
  w.EndObject();
  return w.bytes();
}

}  // namespace flywheel::trees::testing
