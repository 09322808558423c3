// Tests of the fusion passes: the rewritten graph's operators, attributes and wiring, and, where
// the fused kernels exist, that the fused graph computes what the original did.
#include <cmath>

#include "engine/kernels/registry.h"
#include "engine/passes/optimizer.h"
#include "engine/passes/test_graph_builder.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

using testing::CountOps;
using testing::FindOp;
using testing::FloatAttr;
using testing::GraphBuilder;
using testing::IntAttr;
using testing::IntsAttr;
using testing::MakeTensor;

Tensor Iota(Shape shape, float scale = 0.1f, float offset = -0.5f) {
  Tensor t = Tensor::Allocate(DataType::kFp32, shape);
  for (int64_t i = 0; i < t.NumElements(); ++i) {
    t.data<float>()[i] = offset + scale * static_cast<float>((i * 7) % 13);
  }
  return t;
}

bool Supported(const Graph& g) {
  for (const Node& n : g.nodes) {
    if (KernelRegistry::Global().Find(n.domain, n.op_type) == nullptr) return false;
  }
  return true;
}

// Runs `before` and `after` on `inputs` and compares, when every kernel of both exists.
void ExpectSameResults(const Graph& before, const Graph& after, std::vector<Tensor> inputs) {
  if (!Supported(before) || !Supported(after)) return;
  testing::ExpectSameResults(before, after, inputs);
}

TEST(PassesActivationFusion, GemmRelu) {
  GraphBuilder b;
  int x = b.Input("x", Shape{-1, 4});
  int y = b.Op("Gemm", {x, b.Const("w", Iota(Shape{3, 4})), b.Const("c", Iota(Shape{3}))},
               {{"transB", IntAttr(1)}}, Shape{-1, 3});
  b.Output(b.Op("LeakyRelu", {y}, {{"alpha", FloatAttr(0.2f)}}, Shape{-1, 3}));
  Graph g = b.Build();
  Graph before = g;
  ASSERT_TRUE(FuseActivations(g).ok());
  ASSERT_EQ(g.nodes.size(), 1u);
  const Node& n = g.nodes[0];
  EXPECT_EQ(n.op_type, "FusedGemm");
  EXPECT_EQ(n.domain, kFlywheelDomain);
  EXPECT_EQ(n.GetInt("transB", 0), 1);
  EXPECT_EQ(n.GetString("activation", ""), "LeakyRelu");
  EXPECT_FLOAT_EQ(n.GetFloat("activation_alpha", 0), 0.2f);
  EXPECT_EQ(n.inputs.size(), 3u);
  EXPECT_EQ(n.outputs[0], g.outputs[0]);
  ExpectSameResults(before, g, {Iota(Shape{5, 4})});
}

TEST(PassesActivationFusion, MatMulBiasClip) {
  GraphBuilder b;
  int x = b.Input("x", Shape{2, -1, 4});
  int w = b.Const("w", Iota(Shape{4, 3}));
  int mm = b.Op("MatMul", {x, w}, {}, Shape{2, -1, 3});
  int bias = b.Const("bias", Iota(Shape{1, 1, 3}));
  int add = b.Op("Add", {bias, mm}, {}, Shape{2, -1, 3});
  b.Output(b.Op("Clip", {add, b.Scalar(-0.25f), b.Scalar(0.5f)}, {}, Shape{2, -1, 3}));
  Graph g = b.Build();
  Graph before = g;
  ASSERT_TRUE(FuseActivations(g).ok());
  ASSERT_EQ(g.nodes.size(), 1u);
  const Node& n = g.nodes[0];
  EXPECT_EQ(n.op_type, "FusedMatMul");
  ASSERT_EQ(n.inputs.size(), 3u);
  EXPECT_EQ(n.inputs[0], x);
  EXPECT_EQ(n.inputs[1], w);
  ASSERT_TRUE(g.IsConstant(n.inputs[2]));
  EXPECT_EQ(g.ConstantOf(n.inputs[2])->shape(), (Shape{3}));
  EXPECT_EQ(n.GetString("activation", ""), "Clip");
  EXPECT_FLOAT_EQ(n.GetFloat("activation_alpha", 0), -0.25f);
  EXPECT_FLOAT_EQ(n.GetFloat("activation_beta", 0), 0.5f);
  ExpectSameResults(before, g, {Iota(Shape{2, 5, 4})});
}

TEST(PassesActivationFusion, MatMulBiasOnlyAndNotWhenShared) {
  GraphBuilder b;
  int x = b.Input("x", Shape{2, 4});
  int mm = b.Op("MatMul", {x, b.Const("w", Iota(Shape{4, 3}))}, {}, Shape{2, 3});
  int add = b.Op("Add", {mm, b.Const("bias", Iota(Shape{3}))}, {}, Shape{2, 3});
  b.Output(add);
  // A second MatMul whose output is also read by a graph output: not fused.
  int mm2 = b.Op("MatMul", {x, b.Const("w2", Iota(Shape{4, 3}))}, {}, Shape{2, 3});
  b.Output(mm2);
  b.Output(b.Op("Relu", {mm2}, {}, Shape{2, 3}));
  // A bias that would broadcast to a larger output: not fused.
  int mm3 = b.Op("MatMul", {x, b.Const("w3", Iota(Shape{4, 3}))}, {}, Shape{2, 3});
  b.Output(b.Op("Add", {mm3, b.Const("big", Iota(Shape{2, 2, 3}))}, {}, Shape{2, 2, 3}));
  Graph g = b.Build();
  Graph before = g;
  int changes = 0;
  ASSERT_TRUE(FuseActivations(g, &changes).ok());
  EXPECT_EQ(changes, 1);
  auto counts = CountOps(g);
  EXPECT_EQ(counts["FusedMatMul"], 1);
  EXPECT_EQ(counts["MatMul"], 2);
  EXPECT_EQ(counts["Relu"], 1);
  const Node* f = FindOp(g, "FusedMatMul");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->GetString("activation", ""), "");
  EXPECT_EQ(f->outputs[0], add);
  ExpectSameResults(before, g, {Iota(Shape{2, 4})});
}

// Conv + residual Add + Relu, and Conv + Sigmoid, against the unfused graph (FusedConv exists).
TEST(PassesActivationFusion, ConvResidualRelu) {
  GraphBuilder b;
  int x = b.Input("x", Shape{-1, 2, 4, 4});
  int conv = b.Op("Conv", {x, b.Const("w", Iota(Shape{2, 2, 3, 3})), b.Const("b", Iota(Shape{2}))},
                  {{"pads", IntsAttr({1, 1, 1, 1})}}, Shape{-1, 2, 4, 4});
  int sum = b.Op("Add", {x, conv}, {}, Shape{-1, 2, 4, 4});
  int relu = b.Op("Relu", {sum}, {}, Shape{-1, 2, 4, 4});
  int conv2 = b.Op("Conv", {relu, b.Const("w2", Iota(Shape{3, 2, 1, 1}))}, {}, Shape{-1, 3, 4, 4});
  b.Output(b.Op("Sigmoid", {conv2}, {}, Shape{-1, 3, 4, 4}));
  Graph g = b.Build();
  Graph before = g;
  ASSERT_TRUE(FuseActivations(g).ok());
  EXPECT_EQ(CountOps(g), (std::map<std::string, int>{{"FusedConv", 2}}));
  const Node& first = g.nodes[0];
  ASSERT_EQ(first.inputs.size(), 4u);
  EXPECT_EQ(first.inputs[3], x);
  EXPECT_EQ(first.GetString("activation", ""), "Relu");
  const Node& second = g.nodes[1];
  EXPECT_EQ(second.input(2), -1);
  EXPECT_EQ(second.input(3), -1);
  EXPECT_EQ(second.GetString("activation", ""), "Sigmoid");
  ExpectSameResults(before, g, {Iota(Shape{2, 2, 4, 4})});
}

// The three exported orderings of x * 0.5 * (1 + erf(x / sqrt 2)).
TEST(PassesGeluFusion, AllVariants) {
  for (int variant = 0; variant < 4; ++variant) {
    GraphBuilder b;
    int x = b.Input("x", Shape{2, 5});
    int pre = b.Op("Relu", {x}, {}, Shape{2, 5});  // x itself comes from a node
    int scaled = variant == 3 ? b.Op("Mul", {pre, b.Scalar(0.70710677f)}, {}, Shape{2, 5})
                              : b.Op("Div", {pre, b.Scalar(1.4142135f)}, {}, Shape{2, 5});
    int erf = b.Op("Erf", {scaled}, {}, Shape{2, 5});
    int one_plus = b.Op("Add", {erf, b.Scalar(1.0f)}, {}, Shape{2, 5});
    int out;
    if (variant == 0 || variant == 3) {
      int m = b.Op("Mul", {pre, one_plus}, {}, Shape{2, 5});
      out = b.Op("Mul", {m, b.Scalar(0.5f)}, {}, Shape{2, 5});
    } else if (variant == 1) {
      int half = b.Op("Mul", {pre, b.Scalar(0.5f)}, {}, Shape{2, 5});
      out = b.Op("Mul", {half, one_plus}, {}, Shape{2, 5});
    } else {
      int half = b.Op("Mul", {one_plus, b.Scalar(0.5f)}, {}, Shape{2, 5});
      out = b.Op("Mul", {pre, half}, {}, Shape{2, 5});
    }
    b.Output(b.Op("Neg", {out}, {}, Shape{2, 5}));
    Graph g = b.Build();
    Graph before = g;
    ASSERT_TRUE(FuseGelu(g).ok());
    EXPECT_EQ(CountOps(g), (std::map<std::string, int>{{"Relu", 1}, {"Gelu", 1}, {"Neg", 1}}))
        << "variant " << variant;
    const Node* gelu = FindOp(g, "Gelu");
    ASSERT_NE(gelu, nullptr);
    EXPECT_EQ(gelu->domain, kFlywheelDomain);
    EXPECT_EQ(gelu->inputs, std::vector<int>{pre});
    EXPECT_EQ(gelu->outputs[0], out);
    ExpectSameResults(before, g, {Iota(Shape{2, 5}, 0.7f, -3.0f)});
  }
}

TEST(PassesGeluFusion, ThenFoldsIntoMatMulActivation) {
  GraphBuilder b;
  int x = b.Input("x", Shape{3, 4});
  int mm = b.Op("MatMul", {x, b.Const("w", Iota(Shape{4, 6}))}, {}, Shape{3, 6});
  int h = b.Op("Add", {b.Const("bias", Iota(Shape{6})), mm}, {}, Shape{3, 6});
  int erf = b.Op("Erf", {b.Op("Div", {h, b.Scalar(1.4142135f)}, {}, Shape{3, 6})}, {}, Shape{3, 6});
  int m = b.Op("Mul", {h, b.Op("Add", {erf, b.Scalar(1.0f)}, {}, Shape{3, 6})}, {}, Shape{3, 6});
  b.Output(b.Op("Mul", {m, b.Scalar(0.5f)}, {}, Shape{3, 6}));
  Graph g = b.Build();
  Graph before = g;
  ASSERT_TRUE(OptimizeGraph(g).ok());
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op_type, "FusedMatMul");
  EXPECT_EQ(g.nodes[0].GetString("activation", ""), "Gelu");
  EXPECT_EQ(g.nodes[0].inputs.size(), 3u);
  ExpectSameResults(before, g, {Iota(Shape{3, 4})});
}

// torch's LayerNorm at opset < 17.
TEST(PassesLayerNormFusion, TorchPattern) {
  for (bool affine : {true, false}) {
    GraphBuilder b;
    int x = b.Input("x", Shape{-1, 3, 8});
    int mean = b.Op("ReduceMean", {x}, {{"axes", IntsAttr({-1})}}, Shape{-1, 3, 1});
    int d = b.Op("Sub", {x, mean}, {}, Shape{-1, 3, 8});
    int p = b.Op("Pow", {d, b.Scalar(2.0f)}, {}, Shape{-1, 3, 8});
    int var = b.Op("ReduceMean", {p}, {{"axes", IntsAttr({-1})}}, Shape{-1, 3, 1});
    int ve = b.Op("Add", {var, b.Scalar(1e-5f)}, {}, Shape{-1, 3, 1});
    int sd = b.Op("Sqrt", {ve}, {}, Shape{-1, 3, 1});
    int y = b.Op("Div", {d, sd}, {}, Shape{-1, 3, 8});
    if (affine) {
      y = b.Op("Mul", {y, b.Const("gamma", Iota(Shape{8}, 0.2f, 0.5f))}, {}, Shape{-1, 3, 8});
      y = b.Op("Add", {y, b.Const("beta", Iota(Shape{8}))}, {}, Shape{-1, 3, 8});
    }
    b.Output(b.Op("Relu", {y}, {}, Shape{-1, 3, 8}));
    Graph g = b.Build();
    Graph before = g;
    ASSERT_TRUE(FuseLayerNorm(g).ok());
    EXPECT_EQ(CountOps(g), (std::map<std::string, int>{{"LayerNormalization", 1}, {"Relu", 1}}));
    const Node* ln = FindOp(g, "LayerNormalization");
    ASSERT_NE(ln, nullptr);
    EXPECT_EQ(ln->domain, "");
    EXPECT_EQ(ln->GetInt("axis", 0), -1);
    EXPECT_NEAR(ln->GetFloat("epsilon", 0), 1e-5f, 1e-9);
    ASSERT_EQ(ln->inputs.size(), affine ? 3u : 2u);
    EXPECT_EQ(ln->inputs[0], x);
    ASSERT_TRUE(g.IsConstant(ln->inputs[1]));
    EXPECT_EQ(g.ConstantOf(ln->inputs[1])->NumElements(), 8);
    EXPECT_EQ(ln->outputs[0], y);
    ExpectSameResults(before, g, {Iota(Shape{2, 3, 8}, 0.3f, -1.0f)});
  }
}

TEST(PassesLayerNormFusion, NotWhenIntermediateIsShared) {
  GraphBuilder b;
  int x = b.Input("x", Shape{2, 8});
  int mean = b.Op("ReduceMean", {x}, {{"axes", IntsAttr({-1})}}, Shape{2, 1});
  int d = b.Op("Sub", {x, mean}, {}, Shape{2, 8});
  int p = b.Op("Pow", {d, b.Scalar(2.0f)}, {}, Shape{2, 8});
  int var = b.Op("ReduceMean", {p}, {{"axes", IntsAttr({-1})}}, Shape{2, 1});
  int sd = b.Op("Sqrt", {b.Op("Add", {var, b.Scalar(1e-5f)}, {}, Shape{2, 1})}, {}, Shape{2, 1});
  b.Output(b.Op("Div", {d, sd}, {}, Shape{2, 8}));
  b.Output(var);  // the variance is also an output
  Graph g = b.Build();
  ASSERT_TRUE(FuseLayerNorm(g).ok());
  EXPECT_EQ(CountOps(g).count("LayerNormalization"), 0u);
}

struct AttentionGraph {
  Graph graph;
  int q, k, v, mask, transpose_in;
};

// Q [B,H,S,D]; K given as [B,S,H,D] -> Transpose(0,2,3,1) (as torch exports from a reshape), or
// as [B,H,S,D] -> Transpose(0,1,3,2).
AttentionGraph BuildAttention(bool torch_perm, bool with_mask, bool mul_scale) {
  GraphBuilder b;
  AttentionGraph a;
  a.q = b.Input("q", Shape{-1, 2, -1, 4});
  a.v = b.Input("v", Shape{-1, 2, -1, 4});
  int kt;
  if (torch_perm) {
    a.transpose_in = b.Input("k", Shape{-1, -1, 2, 4});
    kt = b.Op("Transpose", {a.transpose_in}, {{"perm", IntsAttr({0, 2, 3, 1})}},
              Shape{-1, 2, 4, -1});
  } else {
    a.transpose_in = b.Input("k", Shape{-1, 2, -1, 4});
    kt = b.Op("Transpose", {a.transpose_in}, {{"perm", IntsAttr({0, 1, 3, 2})}},
              Shape{-1, 2, 4, -1});
  }
  a.k = a.transpose_in;
  int s = b.Op("MatMul", {a.q, kt}, {}, Shape{-1, 2, -1, -1});
  s = mul_scale ? b.Op("Mul", {s, b.Scalar(0.5f)}, {}, Shape{-1, 2, -1, -1})
                : b.Op("Div", {s, b.Scalar(2.0f)}, {}, Shape{-1, 2, -1, -1});
  a.mask = -1;
  if (with_mask) {
    a.mask = b.Input("mask", Shape{-1, 1, 1, -1});
    s = b.Op("Add", {s, a.mask}, {}, Shape{-1, 2, -1, -1});
  }
  int p = b.Op("Softmax", {s}, {{"axis", IntAttr(-1)}}, Shape{-1, 2, -1, -1});
  b.Output(b.Op("MatMul", {p, a.v}, {}, Shape{-1, 2, -1, 4}));
  a.graph = b.Build();
  return a;
}

TEST(PassesAttentionFusion, TransposedKWithMask) {
  AttentionGraph a = BuildAttention(/*torch_perm=*/false, /*with_mask=*/true, /*mul_scale=*/true);
  Graph g = a.graph;
  ASSERT_TRUE(FuseAttention(g).ok());
  ASSERT_EQ(CountOps(g), (std::map<std::string, int>{{"Attention", 1}}));
  const Node& n = g.nodes[0];
  EXPECT_EQ(n.domain, kFlywheelDomain);
  EXPECT_EQ(n.inputs, (std::vector<int>{a.q, a.transpose_in, a.v, a.mask}));
  EXPECT_FLOAT_EQ(n.GetFloat("scale", 0), 0.5f);
  EXPECT_EQ(n.GetInt("k_transposed", -1), 0);
  EXPECT_EQ(n.outputs[0], g.outputs[0]);
  Tensor q = Iota(Shape{1, 2, 3, 4}), k = Iota(Shape{1, 2, 3, 4}, 0.2f),
         v = Iota(Shape{1, 2, 3, 4});
  Tensor mask = MakeTensor<float>(Shape{1, 1, 1, 3}, {0, -1e4f, 0});
  ExpectSameResults(a.graph, g, {q, v, k, mask});
}

TEST(PassesAttentionFusion, TorchReshapePermuteWithDivScale) {
  AttentionGraph a = BuildAttention(/*torch_perm=*/true, /*with_mask=*/false, /*mul_scale=*/false);
  Graph g = a.graph;
  ASSERT_TRUE(FuseAttention(g).ok());
  ASSERT_EQ(CountOps(g), (std::map<std::string, int>{{"Transpose", 1}, {"Attention", 1}}));
  const Node* tr = FindOp(g, "Transpose");
  const Node* att = FindOp(g, "Attention");
  ASSERT_TRUE(tr && att);
  EXPECT_EQ(tr->GetInts("perm"), (std::vector<int64_t>{0, 2, 1, 3}));
  EXPECT_EQ(att->inputs.size(), 3u);
  EXPECT_EQ(att->inputs[1], tr->outputs[0]);
  EXPECT_EQ(att->GetInt("k_transposed", -1), 0);
  EXPECT_FLOAT_EQ(att->GetFloat("scale", 0), 0.5f);
  Tensor q = Iota(Shape{2, 2, 3, 4}), k = Iota(Shape{2, 3, 2, 4}, 0.2f),
         v = Iota(Shape{2, 2, 3, 4});
  ExpectSameResults(a.graph, g, {q, v, k});
}

TEST(PassesAttentionFusion, KeepsSharedTransposeAndPassesKt) {
  GraphBuilder b;
  int q = b.Input("q", Shape{1, 2, 3, 4});
  int k = b.Input("k", Shape{1, 2, 3, 4});
  int kt = b.Op("Transpose", {k}, {{"perm", IntsAttr({0, 1, 3, 2})}}, Shape{1, 2, 4, 3});
  int s = b.Op("MatMul", {q, kt}, {}, Shape{1, 2, 3, 3});
  int p = b.Op("Softmax", {s}, {{"axis", IntAttr(3)}}, Shape{1, 2, 3, 3});
  b.Output(b.Op("MatMul", {p, q}, {}, Shape{1, 2, 3, 4}));
  b.Output(kt);
  Graph g = b.Build();
  ASSERT_TRUE(FuseAttention(g).ok());
  const Node* att = FindOp(g, "Attention");
  ASSERT_NE(att, nullptr);
  EXPECT_EQ(att->inputs, (std::vector<int>{q, kt, q}));
  EXPECT_EQ(att->GetInt("k_transposed", -1), 1);
  EXPECT_FLOAT_EQ(att->GetFloat("scale", 0), 1.0f);
}

}  // namespace
}  // namespace flywheel::engine
