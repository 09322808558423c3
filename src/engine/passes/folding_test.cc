// Tests of dead-node elimination, constant folding, shape-op folding and BatchNorm folding.
#include <cmath>

#include "engine/passes/optimizer.h"
#include "engine/passes/test_graph_builder.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

using testing::CountOps;
using testing::ExpectTensorNear;
using testing::FindOp;
using testing::FloatAttr;
using testing::GraphBuilder;
using testing::IntAttr;
using testing::IntsAttr;
using testing::MakeTensor;
using testing::RunGraph;

Tensor Iota(Shape shape, float scale = 0.1f, float offset = -0.3f) {
  Tensor t = Tensor::Allocate(DataType::kFp32, shape);
  for (int64_t i = 0; i < t.NumElements(); ++i) {
    t.data<float>()[i] = offset + scale * static_cast<float>((i * 7) % 11);
  }
  return t;
}

TEST(PassesDce, RemovesIdentityAndDropoutKeepingOutputName) {
  GraphBuilder b;
  int x = b.Input("x", Shape{2, 3});
  int i1 = b.Op("Identity", {x}, {}, Shape{2, 3});
  int d = b.Op("Dropout", {i1}, {}, Shape{2, 3});
  int r = b.Op("Relu", {d}, {}, Shape{2, 3});
  int out = b.Op("Identity", {r}, {}, Shape{2, 3});
  b.Output(out);
  Graph g = b.Build();
  const std::string out_name = g.values[out].name;
  int changes = 0;
  ASSERT_TRUE(EliminateDeadNodes(g, &changes).ok());
  EXPECT_EQ(CountOps(g), (std::map<std::string, int>{{"Relu", 1}}));
  EXPECT_EQ(changes, 3);
  ASSERT_EQ(g.nodes[0].inputs[0], x);
  EXPECT_EQ(g.values[g.outputs[0]].name, out_name);
  EXPECT_EQ(g.nodes[0].outputs[0], g.outputs[0]);
  auto got = RunGraph(g, {MakeTensor<float>(Shape{2, 3}, {-1, 2, -3, 4, -5, 6})});
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectTensorNear((*got)[0], MakeTensor<float>(Shape{2, 3}, {0, 2, 0, 4, 0, 6}));
}

TEST(PassesDce, KeepsIdentityFromGraphInputToOutput) {
  GraphBuilder b;
  int x = b.Input("x", Shape{2});
  int y = b.Op("Identity", {x}, {}, Shape{2});
  b.Output(y);
  Graph g = b.Build();
  ASSERT_TRUE(EliminateDeadNodes(g).ok());
  EXPECT_EQ(CountOps(g)["Identity"], 1);
}

TEST(PassesDce, RemovesUnusedNodesAndReleasesConstants) {
  GraphBuilder b;
  int x = b.Input("x", Shape{2});
  int w = b.Const("w", MakeTensor<float>(Shape{2}, {1, 2}));
  b.Op("Mul", {x, w}, {}, Shape{2});  // unused
  b.Output(b.Op("Relu", {x}, {}, Shape{2}));
  Graph g = b.Build();
  ASSERT_TRUE(EliminateDeadNodes(g).ok());
  EXPECT_EQ(g.nodes.size(), 1u);
  EXPECT_FALSE(g.IsConstant(w));
}

TEST(PassesConstantFolding, FoldsChainsAndReleasesInputs) {
  GraphBuilder b;
  int x = b.Input("x", Shape{3});
  int c1 = b.Const("c1", MakeTensor<float>(Shape{3}, {1, 2, 3}));
  int c2 = b.Const("c2", MakeTensor<float>(Shape{3}, {10, 20, 30}));
  int sum = b.Op("Add", {c1, c2}, {}, Shape{3});
  int neg = b.Op("Neg", {sum}, {}, Shape{3});
  b.Output(b.Op("Mul", {x, neg}, {}, Shape{3}));
  Graph g = b.Build();
  int changes = 0;
  ASSERT_TRUE(FoldConstants(g, &changes).ok());
  EXPECT_EQ(changes, 2);
  EXPECT_EQ(CountOps(g), (std::map<std::string, int>{{"Mul", 1}}));
  ASSERT_TRUE(g.IsConstant(neg));
  ExpectTensorNear(*g.ConstantOf(neg), MakeTensor<float>(Shape{3}, {-11, -22, -33}));
  // Inputs with no reader left are released at once.
  EXPECT_FALSE(g.IsConstant(c1));
  EXPECT_FALSE(g.IsConstant(c2));
  EXPECT_FALSE(g.IsConstant(sum));
}

TEST(PassesConstantFolding, SkipsBigExpansionsButFoldsSmallOnes) {
  GraphBuilder b;
  int x = b.Input("x", Shape{-1});
  int big = b.Op("ConstantOfShape", {b.Ints({2048, 2048})}, {}, Shape{2048, 2048});
  int small = b.Op("ConstantOfShape", {b.Ints({4})}, {}, Shape{4});
  b.Output(b.Op("Add", {x, small}, {}, Shape{4}));
  b.Output(b.Op("ReduceSum", {big}, {{"keepdims", IntAttr(0)}}, Shape{}));
  Graph g = b.Build();
  ASSERT_TRUE(FoldConstants(g).ok());
  EXPECT_TRUE(g.IsConstant(small));
  EXPECT_FALSE(g.IsConstant(big));
  EXPECT_EQ(CountOps(g)["ConstantOfShape"], 1);
}

TEST(PassesConstantFolding, FoldsLargeWeightTransposes) {
  GraphBuilder b;
  int x = b.Input("x", Shape{1, 1200});
  int w = b.Const("w", Iota(Shape{1000, 1200}));
  int wt = b.Op("Transpose", {w}, {{"perm", IntsAttr({1, 0})}}, Shape{1200, 1000});
  b.Output(b.Op("MatMul", {x, wt}, {}, Shape{1, 1000}));
  Graph g = b.Build();
  ASSERT_TRUE(FoldConstants(g).ok());
  EXPECT_EQ(CountOps(g).count("Transpose"), 0u);
  ASSERT_TRUE(g.IsConstant(wt));
  EXPECT_EQ(g.ConstantOf(wt)->shape(), (Shape{1200, 1000}));
  EXPECT_FALSE(g.IsConstant(w));
}

TEST(PassesShapeFolding, FoldsStaticShapeAndStaticDimsOnly) {
  GraphBuilder b;
  int x = b.Input("x", Shape{-1, 8, 16});
  int y = b.Input("y", Shape{4, 5});
  int shape_x = b.Op("Shape", {x}, {}, Shape{3}, DataType::kInt64);
  int shape_y = b.Op("Shape", {y}, {}, Shape{2}, DataType::kInt64);
  int idx2 = b.Const("idx2", MakeTensor<int64_t>(Shape{}, {2}));
  int idx0 = b.Const("idx0", MakeTensor<int64_t>(Shape{}, {0}));
  int d2 = b.Op("Gather", {shape_x, idx2}, {{"axis", IntAttr(0)}}, Shape{}, DataType::kInt64);
  int d0 = b.Op("Gather", {shape_x, idx0}, {{"axis", IntAttr(0)}}, Shape{}, DataType::kInt64);
  int tail = b.Op("Slice", {shape_x, b.Ints({1}), b.Ints({3})}, {}, Shape{2}, DataType::kInt64);
  int head = b.Op("Slice", {shape_x, b.Ints({0}), b.Ints({2})}, {}, Shape{2}, DataType::kInt64);
  int rev = b.Op("Slice", {shape_x, b.Ints({-1}), b.Ints({0}), b.Ints({0}), b.Ints({-1})}, {},
                 Shape{2}, DataType::kInt64);
  for (int v : {shape_y, d2, d0, tail, head, rev})
    b.Output(b.Op("Identity", {v}, {}, std::nullopt, DataType::kInt64));
  Graph g = b.Build();
  int changes = 0;
  ASSERT_TRUE(FoldShapeOps(g, &changes).ok());
  EXPECT_EQ(changes, 4);
  ASSERT_TRUE(g.IsConstant(rev));
  EXPECT_EQ(g.ConstantOf(rev)->data<int64_t>()[0], 16);
  EXPECT_EQ(g.ConstantOf(rev)->data<int64_t>()[1], 8);
  ASSERT_TRUE(g.IsConstant(shape_y));
  EXPECT_EQ(g.ConstantOf(shape_y)->data<int64_t>()[1], 5);
  ASSERT_TRUE(g.IsConstant(d2));
  EXPECT_EQ(g.ConstantOf(d2)->rank(), 0);
  EXPECT_EQ(g.ConstantOf(d2)->data<int64_t>()[0], 16);
  ASSERT_TRUE(g.IsConstant(tail));
  EXPECT_EQ(g.ConstantOf(tail)->data<int64_t>()[0], 8);
  EXPECT_EQ(g.ConstantOf(tail)->data<int64_t>()[1], 16);
  EXPECT_FALSE(g.IsConstant(d0));    // the batch dim is dynamic
  EXPECT_FALSE(g.IsConstant(head));  // includes it
  EXPECT_FALSE(g.IsConstant(shape_x));
}

// Shape -> Gather -> Unsqueeze -> Concat -> Reshape as torch exports it: the static part folds,
// the dynamic batch stays, and the model still runs.
TEST(PassesShapeFolding, TorchReshapeChainRuns) {
  GraphBuilder b;
  int x = b.Input("x", Shape{-1, 6});
  int shape = b.Op("Shape", {x}, {}, Shape{2}, DataType::kInt64);
  int i0 = b.Const("i0", MakeTensor<int64_t>(Shape{}, {0}));
  int i1 = b.Const("i1", MakeTensor<int64_t>(Shape{}, {1}));
  int batch = b.Op("Gather", {shape, i0}, {{"axis", IntAttr(0)}}, Shape{}, DataType::kInt64);
  int six = b.Op("Gather", {shape, i1}, {{"axis", IntAttr(0)}}, Shape{}, DataType::kInt64);
  int half = b.Op("Div", {six, b.Const("two", MakeTensor<int64_t>(Shape{}, {2}))}, {}, Shape{},
                  DataType::kInt64);
  int ub = b.Op("Unsqueeze", {batch, b.Ints({0})}, {}, Shape{1}, DataType::kInt64);
  int uh = b.Op("Unsqueeze", {half, b.Ints({0})}, {}, Shape{1}, DataType::kInt64);
  int target =
      b.Op("Concat", {ub, b.Ints({2}), uh}, {{"axis", IntAttr(0)}}, Shape{3}, DataType::kInt64);
  b.Output(b.Op("Reshape", {x, target}, {}, Shape{-1, 2, 3}));
  Graph g = b.Build();
  ASSERT_TRUE(OptimizeGraph(g).ok());
  auto counts = CountOps(g);
  EXPECT_EQ(counts.count("Div"), 0u);
  EXPECT_TRUE(g.IsConstant(uh));
  EXPECT_EQ(counts["Gather"], 1);
  auto got = RunGraph(g, {Iota(Shape{2, 6})});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)[0].shape(), (Shape{2, 2, 3}));
}

// y = BN(Conv(x)): the fold keeps the result and drops the old weight.
TEST(PassesBatchNorm, FoldsIntoConv) {
  for (bool with_bias : {false, true}) {
    GraphBuilder b;
    int x = b.Input("x", Shape{1, 2, 5, 5});
    int w = b.Const("w", Iota(Shape{3, 2, 3, 3}));
    std::vector<int> conv_in = {x, w};
    if (with_bias)
      conv_in.push_back(b.Const("b", MakeTensor<float>(Shape{3}, {0.1f, -0.2f, 0.3f})));
    int conv = b.Op("Conv", conv_in, {{"pads", IntsAttr({1, 1, 1, 1})}}, Shape{1, 3, 5, 5});
    int bn = b.Op("BatchNormalization",
                  {conv, b.Const("gamma", MakeTensor<float>(Shape{3}, {1.5f, 0.5f, 2.0f})),
                   b.Const("beta", MakeTensor<float>(Shape{3}, {0.1f, 0.2f, -0.3f})),
                   b.Const("mean", MakeTensor<float>(Shape{3}, {0.05f, -0.1f, 0.2f})),
                   b.Const("var", MakeTensor<float>(Shape{3}, {0.5f, 1.5f, 0.9f}))},
                  {{"epsilon", FloatAttr(1e-3f)}}, Shape{1, 3, 5, 5});
    b.Output(bn);
    Graph g = b.Build();
    Tensor input = Iota(Shape{1, 2, 5, 5}, 0.3f, -1.0f);
    auto want = RunGraph(g, {input});
    ASSERT_TRUE(want.ok()) << want.status();
    int changes = 0;
    ASSERT_TRUE(FoldBatchNorm(g, &changes).ok());
    EXPECT_EQ(changes, 1);
    EXPECT_EQ(CountOps(g), (std::map<std::string, int>{{"Conv", 1}}));
    EXPECT_FALSE(g.IsConstant(w)) << "the old weight must be released";
    auto got = RunGraph(g, {input});
    ASSERT_TRUE(got.ok()) << got.status();
    ExpectTensorNear((*got)[0], (*want)[0]);
  }
}

TEST(PassesBatchNorm, KeepsConvWhoseOutputHasOtherReaders) {
  GraphBuilder b;
  int x = b.Input("x", Shape{1, 1, 3, 3});
  int conv = b.Op("Conv", {x, b.Const("w", Iota(Shape{1, 1, 1, 1}))}, {}, Shape{1, 1, 3, 3});
  int one = b.Const("one", MakeTensor<float>(Shape{1}, {1}));
  int zero = b.Const("zero", MakeTensor<float>(Shape{1}, {0}));
  b.Output(b.Op("BatchNormalization", {conv, one, zero, zero, one}, {}, Shape{1, 1, 3, 3}));
  b.Output(b.Op("Relu", {conv}, {}, Shape{1, 1, 3, 3}));
  Graph g = b.Build();
  ASSERT_TRUE(FoldBatchNorm(g).ok());
  EXPECT_EQ(CountOps(g)["BatchNormalization"], 1);
}

// Gemm(transB) + BN and MatMul + BN: the folded weights and bias computed by hand.
TEST(PassesBatchNorm, FoldsIntoGemmAndMatMul) {
  for (bool matmul : {false, true}) {
    GraphBuilder b;
    int x = b.Input("x", Shape{2, 3});
    // Gemm with transB: B is [N=2, K=3]; MatMul: B is [K=3, N=2].
    Tensor w = matmul ? MakeTensor<float>(Shape{3, 2}, {1, 2, 3, 4, 5, 6})
                      : MakeTensor<float>(Shape{2, 3}, {1, 3, 5, 2, 4, 6});
    int wv = b.Const("w", w);
    int y = matmul ? b.Op("MatMul", {x, wv}, {}, Shape{2, 2})
                   : b.Op("Gemm", {x, wv, b.Const("c", MakeTensor<float>(Shape{2}, {1, -1}))},
                          {{"transB", IntAttr(1)}, {"beta", FloatAttr(2.0f)}}, Shape{2, 2});
    b.Output(b.Op("BatchNormalization",
                  {y, b.Const("g", MakeTensor<float>(Shape{2}, {2, 3})),
                   b.Const("bb", MakeTensor<float>(Shape{2}, {0.5f, -0.5f})),
                   b.Const("m", MakeTensor<float>(Shape{2}, {1, 2})),
                   b.Const("v", MakeTensor<float>(Shape{2}, {3, 3}))},
                  {{"epsilon", FloatAttr(1.0f)}}, Shape{2, 2}));
    Graph g = b.Build();
    ASSERT_TRUE(FoldBatchNorm(g).ok());
    ASSERT_EQ(g.nodes.size(), 1u);
    const Node& gemm = g.nodes[0];
    EXPECT_EQ(gemm.op_type, "Gemm");
    EXPECT_FLOAT_EQ(gemm.GetFloat("beta", 0), 1.0f);
    const float s0 = 2.0f / 2.0f, s1 = 3.0f / 2.0f;  // gamma / sqrt(var + eps)
    const Tensor* nw = g.ConstantOf(gemm.input(1));
    const Tensor* nc = g.ConstantOf(gemm.input(2));
    ASSERT_TRUE(nw && nc);
    // Column 0 of the logical [K, N] matrix scaled by s0, column 1 by s1.
    if (matmul) {
      EXPECT_FLOAT_EQ(nw->data<float>()[0], 1 * s0);
      EXPECT_FLOAT_EQ(nw->data<float>()[1], 2 * s1);
    } else {
      EXPECT_FLOAT_EQ(nw->data<float>()[0], 1 * s0);
      EXPECT_FLOAT_EQ(nw->data<float>()[3], 2 * s1);
    }
    const float c0 = matmul ? 0 : 2.0f * 1, c1 = matmul ? 0 : 2.0f * -1;
    EXPECT_FLOAT_EQ(nc->data<float>()[0], (c0 - 1) * s0 + 0.5f);
    EXPECT_FLOAT_EQ(nc->data<float>()[1], (c1 - 2) * s1 - 0.5f);
  }
}

}  // namespace
}  // namespace flywheel::engine
