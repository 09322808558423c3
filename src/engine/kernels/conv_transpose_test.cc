// ConvTranspose against a naive scatter reference.
#include <random>
#include <string>
#include <vector>

#include "engine/testing/op_test_util.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

using testing::IntAttr;
using testing::IntsAttr;
using testing::OpSpec;
using testing::RunOp;
using testing::StringAttr;

struct CtCase {
  int64_t n = 1, c = 4, m = 6, group = 1;
  std::vector<int64_t> in = {4, 5}, k = {3, 3}, strides, dilations, pads, output_padding,
                       output_shape;
  std::string auto_pad;
  bool bias = true;
};

// Full (unpadded) scatter, then crop by the begin pads to the requested output size.
Tensor Ref(const CtCase& cc, const Tensor& x, const Tensor& w, const Tensor* b) {
  const size_t sp = cc.in.size();
  std::vector<int64_t> in(2, 1), k(2, 1), s(2, 1), d(2, 1), full(2, 1), pb(2, 0), out(2, 1);
  for (size_t i = 0; i < sp; ++i) {
    size_t a = i + 2 - sp;
    in[a] = cc.in[i];
    k[a] = cc.k[i];
    s[a] = cc.strides.empty() ? 1 : cc.strides[i];
    d[a] = cc.dilations.empty() ? 1 : cc.dilations[i];
    int64_t adj = cc.output_padding.empty() ? 0 : cc.output_padding[i];
    full[a] = s[a] * (in[a] - 1) + adj + (k[a] - 1) * d[a] + 1;
    if (!cc.output_shape.empty() || !cc.auto_pad.empty()) {
      int64_t target = cc.output_shape.empty() ? in[a] * s[a] : cc.output_shape[i];
      int64_t total = full[a] - target;
      pb[a] = cc.auto_pad == "SAME_LOWER" ? total - total / 2 : total / 2;
      out[a] = target;
    } else {
      int64_t p0 = cc.pads.empty() ? 0 : cc.pads[i], p1 = cc.pads.empty() ? 0 : cc.pads[i + sp];
      pb[a] = p0;
      out[a] = full[a] - p0 - p1;
    }
  }
  const int64_t cg = cc.c / cc.group, mg = cc.m / cc.group;
  Shape ys{cc.n, cc.m};
  for (size_t i = 0; i < sp; ++i) ys.push_back(out[i + 2 - sp]);
  std::vector<double> acc(ys.NumElements(), 0.0);
  for (int64_t n = 0; n < cc.n; ++n)
    for (int64_t ci = 0; ci < cc.c; ++ci)
      for (int64_t iy = 0; iy < in[0]; ++iy)
        for (int64_t ix = 0; ix < in[1]; ++ix) {
          double xv = x.data<float>()[((n * cc.c + ci) * in[0] + iy) * in[1] + ix];
          int64_t g = ci / cg;
          for (int64_t mo = 0; mo < mg; ++mo)
            for (int64_t ky = 0; ky < k[0]; ++ky)
              for (int64_t kx = 0; kx < k[1]; ++kx) {
                int64_t oy = iy * s[0] + ky * d[0] - pb[0], ox = ix * s[1] + kx * d[1] - pb[1];
                if (oy < 0 || oy >= out[0] || ox < 0 || ox >= out[1]) continue;
                double wv = w.data<float>()[((ci * mg + mo) * k[0] + ky) * k[1] + kx];
                acc[((n * cc.m + g * mg + mo) * out[0] + oy) * out[1] + ox] += xv * wv;
              }
        }
  Tensor y = Tensor::Allocate(DataType::kFp32, ys);
  const int64_t plane = out[0] * out[1];
  for (int64_t i = 0; i < ys.NumElements(); ++i) {
    y.data<float>()[i] =
        static_cast<float>(acc[i] + (b != nullptr ? b->data<float>()[i / plane % cc.m] : 0.0));
  }
  return y;
}

void Check(const CtCase& cc) {
  Shape xs{cc.n, cc.c}, ws{cc.c, cc.m / cc.group};
  for (int64_t v : cc.in) xs.push_back(v);
  for (int64_t v : cc.k) ws.push_back(v);
  Tensor x = testing::RandomTensor(xs, 1), w = testing::RandomTensor(ws, 2),
         b = testing::RandomTensor(Shape{cc.m}, 3);
  Tensor want = Ref(cc, x, w, cc.bias ? &b : nullptr);
  for (int threads : {1, 2}) {
    OpSpec spec{.op_type = "ConvTranspose", .threads = threads};
    if (cc.group != 1) spec.attributes["group"] = IntAttr(cc.group);
    if (!cc.strides.empty()) spec.attributes["strides"] = IntsAttr(cc.strides);
    if (!cc.dilations.empty()) spec.attributes["dilations"] = IntsAttr(cc.dilations);
    if (!cc.pads.empty()) spec.attributes["pads"] = IntsAttr(cc.pads);
    if (!cc.output_padding.empty()) spec.attributes["output_padding"] = IntsAttr(cc.output_padding);
    if (!cc.output_shape.empty()) spec.attributes["output_shape"] = IntsAttr(cc.output_shape);
    if (!cc.auto_pad.empty()) spec.attributes["auto_pad"] = StringAttr(cc.auto_pad);
    spec.constant_inputs = {1};
    std::vector<Tensor> inputs{x, w};
    if (cc.bias) inputs.push_back(b);
    auto got = RunOp(spec, inputs);
    ASSERT_TRUE(got.ok()) << got.status();
    testing::ExpectTensorNear((*got)[0], want);
  }
}

TEST(ConvTransposeTest, Basic) { Check({}); }
TEST(ConvTransposeTest, NoBiasBatch3) { Check({.n = 3, .bias = false}); }
TEST(ConvTransposeTest, Strides) { Check({.strides = {2, 2}}); }
TEST(ConvTransposeTest, Pads) { Check({.strides = {2, 2}, .pads = {1, 1, 1, 1}}); }
TEST(ConvTransposeTest, AsymmetricPads) { Check({.strides = {2, 1}, .pads = {0, 1, 1, 0}}); }
TEST(ConvTransposeTest, OutputPadding) {
  Check({.strides = {2, 3}, .pads = {1, 1, 1, 0}, .output_padding = {1, 2}});
}
TEST(ConvTransposeTest, Groups) { Check({.c = 4, .m = 6, .group = 2, .strides = {2, 2}}); }
TEST(ConvTransposeTest, Dilation) { Check({.dilations = {2, 2}, .pads = {1, 0, 0, 1}}); }
TEST(ConvTransposeTest, OutputShape) { Check({.strides = {2, 2}, .output_shape = {9, 10}}); }
TEST(ConvTransposeTest, SameUpperLower) {
  Check({.strides = {2, 2}, .auto_pad = "SAME_UPPER"});
  Check({.k = {4, 4}, .strides = {2, 2}, .auto_pad = "SAME_LOWER"});
}
TEST(ConvTransposeTest, OneD) {
  Check({.n = 2, .in = {5}, .k = {3}, .strides = {2}, .pads = {1, 0}});
}

TEST(ConvTransposeTest, Errors) {
  Tensor x = testing::RandomTensor(Shape{1, 4, 3, 3}, 1);
  OpSpec spec{.op_type = "ConvTranspose"};
  EXPECT_FALSE(
      RunOp(spec, {x, testing::RandomTensor(Shape{3, 2, 3, 3}, 2)}).ok());  // channel mismatch
  EXPECT_FALSE(RunOp(spec, {x, testing::RandomTensor(Shape{4, 2, 3}, 2)}).ok());  // rank mismatch
  spec.attributes["pads"] = IntsAttr({3, 3, 3, 3});
  EXPECT_FALSE(
      RunOp(spec, {x, testing::RandomTensor(Shape{4, 2, 3, 3}, 2)}).ok());  // pads remove output
  spec.attributes.erase("pads");
  spec.attributes["output_shape"] = IntsAttr({50, 50});
  EXPECT_FALSE(RunOp(spec, {x, testing::RandomTensor(Shape{4, 2, 3, 3}, 2)}).ok());
  EXPECT_FALSE(RunOp(spec, {testing::RandomTensor(Shape{1, 4, 2, 2, 2}, 1),
                            testing::RandomTensor(Shape{4, 2, 1, 1, 1}, 2)})
                   .ok());
}

}  // namespace
}  // namespace flywheel::engine
