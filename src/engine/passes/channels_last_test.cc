// Tests of the channels-last pass: which nodes move to NHWC, where Transposes are needed, and that
// the rewritten graph (NHWC FusedConv, NhwcMaxPool, NhwcGlobalAveragePool kernels) computes what
// the original did.
#include "engine/passes/optimizer.h"
#include "engine/passes/test_graph_builder.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

using testing::CountOps;
using testing::ExpectSameResults;
using testing::GraphBuilder;
using testing::IntAttr;
using testing::IntsAttr;

Tensor Pattern(Shape shape, float scale = 0.1f, float offset = -0.6f) {
  Tensor t = Tensor::Allocate(DataType::kFp32, shape);
  for (int64_t i = 0; i < t.NumElements(); ++i) {
    t.data<float>()[i] = offset + scale * static_cast<float>((i * 7) % 13);
  }
  return t;
}

// A residual block like the CNN fixture's, with channel counts that are not multiples of 16 and
// an NCHW reader of an NHWC value (a graph output) that needs a Transpose back.
TEST(PassesChannelsLast, ResidualChainWithNchwReader) {
  GraphBuilder b;
  int x = b.Input("x", Shape{-1, 3, 9, 9});
  int c1 = b.Op("Conv", {x, b.Const("w1", Pattern(Shape{5, 3, 3, 3}))},
                {{"pads", IntsAttr({1, 1, 1, 1})}}, Shape{-1, 5, 9, 9});
  int r1 = b.Op("Relu", {c1}, {}, Shape{-1, 5, 9, 9});
  int pool = b.Op("MaxPool", {r1},
                  {{"kernel_shape", IntsAttr({3, 3})},
                   {"strides", IntsAttr({2, 2})},
                   {"pads", IntsAttr({1, 1, 1, 1})}},
                  Shape{-1, 5, 5, 5});
  int c2 = b.Op(
      "Conv",
      {pool, b.Const("w2", Pattern(Shape{20, 5, 3, 3}, 0.05f)), b.Const("b2", Pattern(Shape{20}))},
      {{"pads", IntsAttr({1, 1, 1, 1})}, {"strides", IntsAttr({2, 2})}}, Shape{-1, 20, 3, 3});
  int skip = b.Op("Conv", {pool, b.Const("ws", Pattern(Shape{20, 5, 1, 1}))},
                  {{"strides", IntsAttr({2, 2})}}, Shape{-1, 20, 3, 3});
  int sum = b.Op("Add", {c2, skip}, {}, Shape{-1, 20, 3, 3});
  int r2 = b.Op("Relu", {sum}, {}, Shape{-1, 20, 3, 3});
  b.Output(b.Op("GlobalAveragePool", {r2}, {}, Shape{-1, 20, 1, 1}));
  b.Output(r2);
  Graph g = b.Build();
  Graph before = g;
  ASSERT_TRUE(FuseActivations(g).ok());
  int changes = 0;
  ASSERT_TRUE(ConvertToChannelsLast(g, &changes).ok());
  EXPECT_EQ(changes, 5);
  EXPECT_EQ(
      CountOps(g),
      (std::map<std::string, int>{
          {"FusedConv", 3}, {"NhwcMaxPool", 1}, {"NhwcGlobalAveragePool", 1}, {"Transpose", 1}}));
  for (const Node& n : g.nodes) {
    if (n.op_type != "FusedConv") continue;
    EXPECT_EQ(n.GetInt("channels_last_y", 0), 1) << n.name;
    // Only the stem reads an NCHW X (the graph input), which oneDNN reorders itself.
    EXPECT_EQ(n.GetInt("channels_last_x", 0), n.input(0) == x ? 0 : 1) << n.name;
  }
  ExpectSameResults(before, g, {Pattern(Shape{2, 3, 9, 9})});
  ExpectSameResults(before, g, {Pattern(Shape{1, 3, 9, 9}, 0.2f, -1.1f)});
}

// A residual Z that is NCHW (the block's input) gets an entry Transpose; a dilated ceil-mode pool
// whose last windows hang over the input edge, over 20 channels (full SIMD vectors and a
// remainder), matches the NCHW kernel.
TEST(PassesChannelsLast, NchwResidualAndCeilModePool) {
  GraphBuilder b;
  int x = b.Input("x", Shape{-1, 20, 7, 7});
  int c1 = b.Op("Conv", {x, b.Const("w1", Pattern(Shape{20, 20, 3, 3}, 0.01f))},
                {{"pads", IntsAttr({1, 1, 1, 1})}}, Shape{-1, 20, 7, 7});
  int sum = b.Op("Add", {c1, x}, {}, Shape{-1, 20, 7, 7});
  int pool = b.Op("MaxPool", {sum},
                  {{"kernel_shape", IntsAttr({2, 2})},
                   {"strides", IntsAttr({2, 2})},
                   {"dilations", IntsAttr({2, 2})},
                   {"ceil_mode", IntAttr(1)}},
                  Shape{-1, 20, 3, 3});
  b.Output(b.Op("Sigmoid", {pool}, {}, Shape{-1, 20, 3, 3}));
  Graph g = b.Build();
  Graph before = g;
  ASSERT_TRUE(FuseActivations(g).ok());
  ASSERT_TRUE(ConvertToChannelsLast(g).ok());
  EXPECT_EQ(CountOps(g),
            (std::map<std::string, int>{
                {"FusedConv", 1}, {"NhwcMaxPool", 1}, {"Sigmoid", 1}, {"Transpose", 2}}));
  ExpectSameResults(before, g, {Pattern(Shape{3, 20, 7, 7})});
}

// A first layer with exactly one SIMD block of output channels (8 or 16), where oneDNN can read
// the NCHW input directly and write channel blocks that are NHWC byte for byte.
TEST(PassesChannelsLast, FirstLayerWithOneChannelBlock) {
  for (int64_t m : {8, 16}) {
    GraphBuilder b;
    int x = b.Input("x", Shape{-1, 3, 10, 10});
    int c1 = b.Op("Conv",
                  {x, b.Const("w1", Pattern(Shape{m, 3, 3, 3})), b.Const("b1", Pattern(Shape{m}))},
                  {{"pads", IntsAttr({1, 1, 1, 1})}}, Shape{-1, m, 10, 10});
    int r1 = b.Op("Relu", {c1}, {}, Shape{-1, m, 10, 10});
    b.Output(b.Op("MaxPool", {r1},
                  {{"kernel_shape", IntsAttr({2, 2})}, {"strides", IntsAttr({2, 2})}},
                  Shape{-1, m, 5, 5}));
    Graph g = b.Build();
    Graph before = g;
    ASSERT_TRUE(FuseActivations(g).ok());
    ASSERT_TRUE(ConvertToChannelsLast(g).ok());
    EXPECT_EQ(CountOps(g),
              (std::map<std::string, int>{{"FusedConv", 1}, {"NhwcMaxPool", 1}, {"Transpose", 1}}));
    ExpectSameResults(before, g, {Pattern(Shape{2, 3, 10, 10})});
    ExpectSameResults(before, g, {Pattern(Shape{1, 3, 10, 10}, 0.3f, -2.0f)});
  }
}

// Grouped and depthwise convolutions with SAME padding and dilation run channels-last too.
TEST(PassesChannelsLast, GroupedAndDepthwiseChain) {
  GraphBuilder b;
  int x = b.Input("x", Shape{-1, 8, 11, 11});
  int g1 = b.Op("Conv", {x, b.Const("w1", Pattern(Shape{16, 2, 3, 3}, 0.03f))},
                {{"group", IntAttr(4)}, {"auto_pad", testing::StringAttr("SAME_UPPER")}},
                Shape{-1, 16, 11, 11});
  int dw = b.Op(
      "Conv", {g1, b.Const("w2", Pattern(Shape{16, 1, 3, 3}, 0.05f))},
      {{"group", IntAttr(16)}, {"dilations", IntsAttr({2, 2})}, {"pads", IntsAttr({2, 2, 2, 2})}},
      Shape{-1, 16, 11, 11});
  int r = b.Op("Relu", {dw}, {}, Shape{-1, 16, 11, 11});
  b.Output(b.Op("MaxPool", {r}, {{"kernel_shape", IntsAttr({3, 3})}, {"strides", IntsAttr({2, 2})}},
                Shape{-1, 16, 5, 5}));
  Graph g = b.Build();
  Graph before = g;
  ASSERT_TRUE(FuseActivations(g).ok());
  ASSERT_TRUE(ConvertToChannelsLast(g).ok());
  EXPECT_EQ(CountOps(g),
            (std::map<std::string, int>{{"FusedConv", 2}, {"NhwcMaxPool", 1}, {"Transpose", 1}}));
  ExpectSameResults(before, g, {Pattern(Shape{3, 8, 11, 11})});
}

// A convolution with no NHWC neighbour stays as it was: Transposes would only replace oneDNN's
// own reorders. So do pools that read NCHW values.
TEST(PassesChannelsLast, LoneConvAndPoolsUnchanged) {
  GraphBuilder b;
  int x = b.Input("x", Shape{-1, 2, 6, 6});
  int pool = b.Op("MaxPool", {x}, {{"kernel_shape", IntsAttr({2, 2})}}, Shape{-1, 2, 5, 5});
  int conv = b.Op("Conv", {pool, b.Const("w", Pattern(Shape{3, 2, 3, 3}))}, {}, Shape{-1, 3, 3, 3});
  b.Output(b.Op("Sigmoid", {conv}, {}, Shape{-1, 3, 3, 3}));
  Graph g = b.Build();
  int changes = 0;
  ASSERT_TRUE(ConvertToChannelsLast(g, &changes).ok());
  EXPECT_EQ(changes, 0);
  EXPECT_EQ(CountOps(g), (std::map<std::string, int>{{"Conv", 1}, {"MaxPool", 1}, {"Sigmoid", 1}}));
}

}  // namespace
}  // namespace flywheel::engine
