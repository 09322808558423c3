#include "engine/graph.h"

#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

// x -> A -> a -> B -> b, listed out of order.
Graph Chain() {
  Graph g;
  int x = g.AddValue(Value{.name = "x"});
  int a = g.AddValue(Value{.name = "a"});
  int b = g.AddValue(Value{.name = "b"});
  g.inputs = {x};
  g.outputs = {b};
  g.nodes.push_back(Node{.name = "B", .op_type = "Relu", .inputs = {a}, .outputs = {b}});
  g.nodes.push_back(Node{.name = "A", .op_type = "Relu", .inputs = {x}, .outputs = {a}});
  return g;
}

TEST(GraphTest, TopologicalSortOrdersProducersFirst) {
  Graph g = Chain();
  ASSERT_TRUE(g.TopologicalSort().ok());
  EXPECT_EQ(g.nodes[0].name, "A");
  EXPECT_EQ(g.nodes[1].name, "B");
  EXPECT_EQ(g.values[g.FindValue("b")].producer, 1);
  auto consumers = g.Consumers();
  EXPECT_EQ(consumers[g.FindValue("a")], std::vector<int>{1});
}

TEST(GraphTest, CycleIsReportedWithItsNodes) {
  Graph g = Chain();
  // A now reads b: A -> a -> B -> b -> A.
  g.nodes[1].inputs = {g.FindValue("b")};
  absl::Status s = g.TopologicalSort();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("cycle"), std::string::npos);
  EXPECT_NE(s.message().find("'A'"), std::string::npos);
}

TEST(GraphTest, UndefinedInputIsReported) {
  Graph g = Chain();
  int w = g.AddValue(Value{.name = "weights"});
  g.nodes[0].inputs.push_back(w);
  absl::Status s = g.TopologicalSort();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("'weights'"), std::string::npos);
  EXPECT_NE(s.message().find("not a graph input, an initializer"), std::string::npos);
}

TEST(GraphTest, CompactDropsDeadNodes) {
  Graph g = Chain();
  ASSERT_TRUE(g.TopologicalSort().ok());
  g.nodes[1].dead = true;
  g.outputs = {g.FindValue("a")};
  ASSERT_TRUE(g.Compact().ok());
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].name, "A");
}

TEST(GraphTest, UniqueNamesDoNotCollide) {
  Graph g = Chain();
  std::string n1 = g.UniqueName("a"), n2 = g.UniqueName("a");
  EXPECT_NE(n1, n2);
  EXPECT_EQ(g.FindValue(n1), -1);
}

}  // namespace
}  // namespace flywheel::engine
