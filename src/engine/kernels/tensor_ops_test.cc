// Cross-cutting checks of the tensor kernels: a repeated run with the same shapes allocates
// nothing.
#include "engine/exec_plan.h"
#include "engine/testing/op_test_util.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

using testing::IntAttr;
using testing::IntsAttr;
using testing::MakeTensor;

// Runs `node` (inputs in0.., outputs out0..) three times and returns the allocations of the
// third run.
int64_t AllocationsOfRepeatRun(Node node, const std::vector<Tensor>& inputs, int num_outputs,
                               int threads) {
  Graph g;
  g.opset = 18;
  for (size_t i = 0; i < inputs.size(); ++i) {
    int id = g.AddValue(Value{.name = absl::StrCat("in", i), .dtype = inputs[i].dtype()});
    g.inputs.push_back(id);
    node.inputs.push_back(id);
  }
  for (int i = 0; i < num_outputs; ++i) {
    int id = g.AddValue(Value{.name = absl::StrCat("out", i)});
    node.outputs.push_back(id);
    g.outputs.push_back(id);
  }
  g.nodes.push_back(node);
  EXPECT_TRUE(g.TopologicalSort().ok());
  SessionOptions options;
  options.intra_op_threads = threads;
  auto plan = ExecPlan::Create(std::move(g), options);
  EXPECT_TRUE(plan.ok()) << plan.status();
  if (!plan.ok()) return -1;
  std::vector<Tensor> outputs;
  for (int i = 0; i < 2; ++i) EXPECT_TRUE((*plan)->Run(inputs, &outputs).ok());
  const int64_t before = AlignedAllocCount();
  absl::Status s = (*plan)->Run(inputs, &outputs);
  EXPECT_TRUE(s.ok()) << s;
  return AlignedAllocCount() - before;
}

Tensor Big(Shape shape) {
  Tensor t = Tensor::Allocate(DataType::kFp32, shape);
  for (int64_t i = 0; i < t.NumElements(); ++i) t.data<float>()[i] = static_cast<float>(i % 13);
  return t;
}

Node MakeNode(std::string op, absl::flat_hash_map<std::string, Attribute> attrs = {}) {
  Node n{.name = "n", .op_type = std::move(op)};
  n.attributes = std::move(attrs);
  return n;
}

TEST(TensorOpsTest, RepeatRunsDoNotAllocate) {
  struct Case {
    Node node;
    std::vector<Tensor> inputs;
    int outputs;
  };
  std::vector<Case> cases;
  cases.push_back({MakeNode("Gather"), {Big({500, 64}), MakeTensor<int64_t>({3}, {1, 2, 499})}, 1});
  cases.push_back(
      {MakeNode("Transpose", {{"perm", IntsAttr({0, 2, 1, 3})}}), {Big({2, 64, 8, 32})}, 1});
  cases.push_back({MakeNode("Transpose", {{"perm", IntsAttr({0, 2, 1})}}), {Big({2, 128, 96})}, 1});
  cases.push_back({MakeNode("Concat", {{"axis", IntAttr(1)}}), {Big({4, 8}), Big({4, 3})}, 1});
  cases.push_back({MakeNode("Reshape"), {Big({4, 8}), MakeTensor<int64_t>({2}, {-1, 4})}, 1});
  cases.push_back({MakeNode("Slice"),
                   {Big({40, 80}), MakeTensor<int64_t>({1}, {-1}), MakeTensor<int64_t>({1}, {0}),
                    MakeTensor<int64_t>({1}, {1}), MakeTensor<int64_t>({1}, {-2})},
                   1});
  cases.push_back({MakeNode("Split", {{"num_outputs", IntAttr(2)}}), {Big({4, 6})}, 2});
  cases.push_back({MakeNode("ReduceSum"), {Big({1 << 20}), MakeTensor<int64_t>({1}, {0})}, 1});
  cases.push_back({MakeNode("ReduceMean"), {Big({4, 30, 7}), MakeTensor<int64_t>({2}, {0, 2})}, 1});
  cases.push_back({MakeNode("TopK"), {Big({64, 1000}), MakeTensor<int64_t>({1}, {5})}, 2});
  cases.push_back({MakeNode("ArgMax", {{"axis", IntAttr(1)}}), {Big({64, 100, 3})}, 1});
  cases.push_back({MakeNode("Pad", {{"mode", testing::StringAttr("reflect")}}),
                   {Big({30, 40}), MakeTensor<int64_t>({4}, {1, 2, 3, 4})},
                   1});
  cases.push_back({MakeNode("Tile"), {Big({30, 40}), MakeTensor<int64_t>({2}, {2, 3})}, 1});
  cases.push_back({MakeNode("Expand"), {Big({30, 1}), MakeTensor<int64_t>({2}, {30, 40})}, 1});
  for (Case& c : cases) {
    const std::string op = c.node.op_type;
    EXPECT_EQ(AllocationsOfRepeatRun(c.node, c.inputs, c.outputs, 3), 0) << op;
  }
}

}  // namespace
}  // namespace flywheel::engine
