#include "trees/xgboost_loader.h"

#include <string>

#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "trees/json_reader.h"
#include "trees/test_models.h"
#include "trees/ubjson_reader.h"

namespace flywheel::trees {
namespace {

using ::testing::HasSubstr;
using testing::Stump;
using testing::TestModel;
using testing::TestTree;

absl::StatusOr<TreeEnsemble> FromJson(const std::string& json) {
  auto doc = ParseJsonDoc(json);
  if (!doc.ok()) return doc.status();
  return BuildXgboostEnsemble(doc->root());
}

TestModel TwoStumps() {
  TestModel m;
  m.objective = "binary:logistic";
  m.num_feature = 3;
  m.trees = {Stump(0, 0.5f, -1.0f, 1.0f, true), Stump(2, -0.25f, 0.5f, -0.5f)};
  return m;
}

TEST(XgboostLoaderTest, ReadsTheModel) {
  for (bool ubj : {false, true}) {
    TestModel m = TwoStumps();
    auto doc = ubj ? ParseUbjsonDoc(testing::ToUbjson(m)) : ParseJsonDoc(testing::ToJson(m));
    ASSERT_TRUE(doc.ok()) << doc.status();
    auto e = BuildXgboostEnsemble(doc->root());
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_EQ(e->booster, "gbtree");
    EXPECT_EQ(e->objective.name, "binary:logistic");
    EXPECT_EQ(e->num_feature, 3);
    EXPECT_EQ(e->num_groups, 1);
    EXPECT_EQ(e->base_score, 0.5f);
    EXPECT_EQ(e->base_margin, 0.0f);
    ASSERT_EQ(e->trees.size(), 2u);
    EXPECT_EQ(e->trees[1].feature[0], 2);
    EXPECT_EQ(e->trees[1].value[0], -0.25f);
    EXPECT_EQ(e->trees[0].default_left[0], 1);
    EXPECT_EQ(e->trees[0].depth, 1);
  }
}

TEST(XgboostLoaderTest, ReadsCategorySets) {
  TestModel m;
  TestTree t = Stump(1, 0.0f, 1.0f, 2.0f);
  t.split_type = {1, 0, 0};
  t.categories = {{0, {7, 2, 2, 5}}};
  m.trees = {t};
  auto e = FromJson(testing::ToJson(m));
  ASSERT_TRUE(e.ok()) << e.status();
  const RawTree& r = e->trees[0];
  EXPECT_TRUE(r.has_categorical());
  EXPECT_EQ(std::vector<int32_t>(r.categories.begin() + r.cat_begin[0],
                                 r.categories.begin() + r.cat_end[0]),
            std::vector<int32_t>({2, 5, 7}));

  t.categories = {{1, {3}}};  // node 1 is a leaf
  m.trees = {t};
  EXPECT_THAT(FromJson(testing::ToJson(m)).status().message(),
              HasSubstr("categories_nodes[0] is node 1, which is not a categorical split"));
}

TEST(XgboostLoaderTest, PlacesTreesById) {
  TestModel m = TwoStumps();
  std::string json = testing::ToJson(m);
  json = absl::StrReplaceAll(json, {{R"("id":0)", R"("id":X)"}});
  json = absl::StrReplaceAll(json, {{R"("id":1)", R"("id":0)"}, {R"("id":X)", R"("id":1)"}});
  auto e = FromJson(json);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->trees[0].feature[0], 2);
  EXPECT_EQ(e->trees[1].feature[0], 0);
}

TEST(XgboostLoaderTest, AcceptsBooleanDefaultLeftAndBracketedBaseScore) {
  std::string json = testing::ToJson(TwoStumps());
  json = absl::StrReplaceAll(json,
                             {{R"("default_left":[1,0,0])", R"("default_left":[true,false,false])"},
                              {R"("base_score":"5E-1")", R"("base_score":"[5E-1]")"}});
  auto e = FromJson(json);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->trees[0].default_left[0], 1);
  EXPECT_EQ(e->base_score, 0.5f);
}

TEST(XgboostLoaderTest, ErrorsNameTreeNodeAndField) {
  struct Case {
    std::string from, to, message;
  };
  const Case cases[] = {
      {R"("left_children":[1,-1,-1])", R"("left_children":[1,-1])",
       "tree 0: field 'left_children' has 2 entries but tree_param.num_nodes is 3"},
      {R"("split_indices":[2,0,0])", R"("split_indices":[3,0,0])",
       "tree 1: node 0: field 'split_indices' is 3 but the model has 3 features"},
      {R"("split_indices":[2,0,0])", R"("split_indices":[-2,0,0])",
       "tree 1: field 'split_indices': element 0: -2 is outside"},
      {R"("right_children":[2,-1,-1])", R"("right_children":[1,-1,-1])",
       "tree 0: node 1 is reached twice (child of node 0)"},
      {R"("tree_param":{)", R"("tree_param":[],"x":{)",
       "tree 0: field 'tree_param': expected an object, got array"},
      {R"("name":"gbtree")", R"("name":"gblinear")", "gblinear' is not supported"},
      {R"("name":"gbtree")", R"("name":"forest")", "unknown gradient_booster 'forest'"},
      {R"("num_class":"0")", R"("num_class":"x")", "field 'num_class': 'x' is not a number"},
      {R"("tree_info":[0,0])", R"("tree_info":[0])", "'tree_info' has 1 entries for 2 trees"},
      {R"("default_left":[1,0,0])", R"("default_left":[2,0,0])",
       "field 'default_left': element 0: 2 is outside [0, 1]"},
      {R"("split_type":[0,0,0])", R"("split_type":[0,0,0,0])", "field 'split_type' has 4 entries"},
  };
  for (const Case& c : cases) {
    std::string json = testing::ToJson(TwoStumps());
    const size_t pos = json.find(c.from);
    ASSERT_NE(pos, std::string::npos) << c.from;
    json.replace(pos, c.from.size(), c.to);
    auto e = FromJson(json);
    EXPECT_FALSE(e.ok()) << c.to;
    EXPECT_THAT(e.status().message(), HasSubstr(c.message)) << c.to;
  }
}

TEST(XgboostLoaderTest, LimitsBoundMemory) {
  EnsembleLimits limits;
  limits.max_total_nodes = 4;
  auto doc = ParseJsonDoc(testing::ToJson(TwoStumps()));
  ASSERT_TRUE(doc.ok());
  EXPECT_THAT(BuildXgboostEnsemble(doc->root(), limits).status().message(),
              HasSubstr("tree 1 tree_param: field 'num_nodes': 3 is outside [1, 1]"));
  limits = {};
  limits.max_features = 2;
  EXPECT_THAT(BuildXgboostEnsemble(doc->root(), limits).status().message(),
              HasSubstr("field 'num_feature': 3 is outside [0, 2]"));

  // A category set is a bitset up to its largest category.
  TestModel m;
  TestTree t = Stump(0, 0.0f, 1.0f, 2.0f);
  t.split_type = {1, 0, 0};
  t.categories = {{0, {16000000}}};
  m.trees = {t};
  doc = ParseJsonDoc(testing::ToJson(m));
  ASSERT_TRUE(doc.ok());
  limits = {};
  limits.max_category_words = 1000;
  EXPECT_THAT(BuildXgboostEnsemble(doc->root(), limits).status().message(),
              HasSubstr("tree 0: node 0: categorical splits need more than 4000 bytes of category "
                        "sets (largest category here: 16000000)"));
  EXPECT_TRUE(BuildXgboostEnsemble(doc->root()).ok());
}

}  // namespace
}  // namespace flywheel::trees
