// Conv and FusedConv against a naive double-precision reference over many configurations.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "engine/kernels/activation.h"
#include "engine/testing/op_test_util.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

using testing::FloatAttr;
using testing::IntAttr;
using testing::IntsAttr;
using testing::OpSpec;
using testing::RunOp;
using testing::StringAttr;

struct ConvCase {
  int64_t n = 1, c = 4, m = 6;
  std::vector<int64_t> in = {7, 7};
  std::vector<int64_t> k = {3, 3};
  int64_t group = 1;
  std::vector<int64_t> strides, dilations, pads;  // empty: defaults
  std::string auto_pad;
  bool bias = true;
};

// Explicit pads per axis after auto_pad resolution, and output sizes.
void Geometry(const ConvCase& cc, std::vector<int64_t>* pb, std::vector<int64_t>* out) {
  const size_t sp = cc.in.size();
  pb->assign(sp, 0);
  out->assign(sp, 0);
  for (size_t i = 0; i < sp; ++i) {
    int64_t s = cc.strides.empty() ? 1 : cc.strides[i];
    int64_t d = cc.dilations.empty() ? 1 : cc.dilations[i];
    int64_t keff = (cc.k[i] - 1) * d + 1;
    if (cc.auto_pad == "SAME_UPPER" || cc.auto_pad == "SAME_LOWER") {
      (*out)[i] = (cc.in[i] + s - 1) / s;
      int64_t total = std::max<int64_t>(0, ((*out)[i] - 1) * s + keff - cc.in[i]);
      (*pb)[i] = cc.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    } else {
      int64_t b = 0, e = 0;
      if (!cc.pads.empty() && cc.auto_pad != "VALID") {
        b = cc.pads[i];
        e = cc.pads[i + sp];
      }
      (*pb)[i] = b;
      (*out)[i] = (cc.in[i] + b + e - keff) / s + 1;
    }
  }
}

// Naive reference (1-D or 2-D; 1-D treated as H = 1).
Tensor RefConv(const ConvCase& cc, const Tensor& x, const Tensor& w, const Tensor* b,
               const Tensor* z, const Activation& act) {
  std::vector<int64_t> pb, out;
  Geometry(cc, &pb, &out);
  const bool one_d = cc.in.size() == 1;
  const int64_t ih = one_d ? 1 : cc.in[0], iw = cc.in.back();
  const int64_t oh = one_d ? 1 : out[0], ow = out.back();
  const int64_t kh = one_d ? 1 : cc.k[0], kw = cc.k.back();
  const int64_t sh = one_d || cc.strides.empty() ? 1 : cc.strides[0];
  const int64_t sw = cc.strides.empty() ? 1 : cc.strides.back();
  const int64_t dh = one_d || cc.dilations.empty() ? 1 : cc.dilations[0];
  const int64_t dw = cc.dilations.empty() ? 1 : cc.dilations.back();
  const int64_t ph = one_d ? 0 : pb[0], pw = pb.back();
  const int64_t cg = cc.c / cc.group, mg = cc.m / cc.group;
  Shape ys{cc.n, cc.m};
  for (int64_t o : out) ys.push_back(o);
  Tensor y = Tensor::Allocate(DataType::kFp32, ys);
  const float* xd = x.data<float>();
  const float* wd = w.data<float>();
  for (int64_t n = 0; n < cc.n; ++n)
    for (int64_t m = 0; m < cc.m; ++m)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          double acc = b != nullptr ? b->data<float>()[m] : 0.0;
          const int64_t g = m / mg;
          for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t ky = 0; ky < kh; ++ky)
              for (int64_t kx = 0; kx < kw; ++kx) {
                int64_t yy = oy * sh - ph + ky * dh, xx = ox * sw - pw + kx * dw;
                if (yy < 0 || yy >= ih || xx < 0 || xx >= iw) continue;
                acc += static_cast<double>(xd[((n * cc.c + g * cg + ci) * ih + yy) * iw + xx]) *
                       wd[((m * cg + ci) * kh + ky) * kw + kx];
              }
          int64_t idx = ((n * cc.m + m) * oh + oy) * ow + ox;
          if (z != nullptr) acc += z->data<float>()[idx];
          switch (act.kind) {
            case ActivationKind::kNone:
              break;
            case ActivationKind::kRelu:
              acc = std::max(acc, 0.0);
              break;
            case ActivationKind::kLeakyRelu:
              acc = acc >= 0 ? acc : act.alpha * acc;
              break;
            case ActivationKind::kSigmoid:
              acc = 1 / (1 + std::exp(-acc));
              break;
            case ActivationKind::kTanh:
              acc = std::tanh(acc);
              break;
            case ActivationKind::kGelu:
              acc = 0.5 * acc * (1 + std::erf(acc / std::sqrt(2.0)));
              break;
            case ActivationKind::kClip:
              acc = std::min<double>(std::max<double>(acc, act.alpha), act.beta);
              break;
            case ActivationKind::kHardSigmoid:
              acc = std::min(1.0, std::max(0.0, act.alpha * acc + act.beta));
              break;
            case ActivationKind::kElu:
              acc = acc >= 0 ? acc : act.alpha * (std::exp(acc) - 1);
              break;
          }
          y.data<float>()[idx] = static_cast<float>(acc);
        }
  return y;
}

OpSpec MakeSpec(const ConvCase& cc, bool const_w, int threads) {
  OpSpec spec{.op_type = "Conv"};
  spec.threads = threads;
  if (cc.group != 1) spec.attributes["group"] = IntAttr(cc.group);
  if (!cc.strides.empty()) spec.attributes["strides"] = IntsAttr(cc.strides);
  if (!cc.dilations.empty()) spec.attributes["dilations"] = IntsAttr(cc.dilations);
  if (!cc.pads.empty()) spec.attributes["pads"] = IntsAttr(cc.pads);
  if (!cc.auto_pad.empty()) spec.attributes["auto_pad"] = StringAttr(cc.auto_pad);
  if (const_w) spec.constant_inputs = cc.bias ? std::vector<int>{1, 2} : std::vector<int>{1};
  return spec;
}

void CheckConv(const ConvCase& cc) {
  Shape xs{cc.n, cc.c}, ws{cc.m, cc.c / cc.group};
  for (int64_t d : cc.in) xs.push_back(d);
  for (int64_t d : cc.k) ws.push_back(d);
  Tensor x = testing::RandomTensor(xs, 1), w = testing::RandomTensor(ws, 2),
         b = testing::RandomTensor(Shape{cc.m}, 3);
  Tensor want = RefConv(cc, x, w, cc.bias ? &b : nullptr, nullptr, Activation{});
  for (bool const_w : {true, false}) {
    for (int threads : {1, 2}) {
      SCOPED_TRACE(::testing::Message() << "const_w=" << const_w << " threads=" << threads);
      std::vector<Tensor> inputs{x, w};
      if (cc.bias) inputs.push_back(b);
      auto got = RunOp(MakeSpec(cc, const_w, threads), inputs);
      ASSERT_TRUE(got.ok()) << got.status();
      testing::ExpectTensorNear((*got)[0], want);
    }
  }
}

TEST(ConvTest, Basic3x3) { CheckConv({}); }
TEST(ConvTest, NoBiasBatch3) { CheckConv({.n = 3, .bias = false}); }
TEST(ConvTest, Pads) { CheckConv({.pads = {1, 1, 1, 1}}); }
TEST(ConvTest, AsymmetricPads) { CheckConv({.pads = {0, 2, 1, 0}}); }
TEST(ConvTest, Stride2) { CheckConv({.in = {9, 8}, .strides = {2, 2}, .pads = {1, 1, 1, 1}}); }
TEST(ConvTest, Dilation2) { CheckConv({.in = {9, 9}, .dilations = {2, 2}, .pads = {2, 1, 2, 1}}); }
TEST(ConvTest, Groups) { CheckConv({.c = 4, .m = 6, .group = 2}); }
TEST(ConvTest, Depthwise) { CheckConv({.c = 8, .m = 8, .group = 8, .pads = {1, 1, 1, 1}}); }
TEST(ConvTest, DepthwiseMultiplier) { CheckConv({.c = 4, .m = 8, .group = 4, .strides = {2, 2}}); }
TEST(ConvTest, SameUpper) {
  CheckConv({.in = {8, 7}, .strides = {2, 2}, .auto_pad = "SAME_UPPER"});
}
TEST(ConvTest, SameLower) { CheckConv({.in = {8, 7}, .k = {4, 2}, .auto_pad = "SAME_LOWER"}); }
TEST(ConvTest, Valid) { CheckConv({.pads = {1, 1, 1, 1}, .auto_pad = "VALID"}); }
TEST(ConvTest, OneByOne) { CheckConv({.n = 3, .c = 16, .m = 32, .in = {8, 8}, .k = {1, 1}}); }
TEST(ConvTest, OneByOneStride2) {
  CheckConv({.n = 2, .c = 16, .m = 32, .in = {8, 8}, .k = {1, 1}, .strides = {2, 2}});
}
TEST(ConvTest, ResNetBlock) {
  CheckConv({.n = 3, .c = 16, .m = 16, .in = {32, 32}, .pads = {1, 1, 1, 1}});
}
TEST(ConvTest, FirstLayer) {
  CheckConv({.n = 2, .c = 3, .m = 16, .in = {32, 32}, .pads = {1, 1, 1, 1}});
}
TEST(ConvTest, OneD) { CheckConv({.n = 2, .c = 3, .m = 5, .in = {11}, .k = {3}, .pads = {1, 0}}); }
TEST(ConvTest, OneDStridedDilated) {
  CheckConv({.c = 4, .m = 4, .in = {13}, .k = {3}, .group = 2, .strides = {2}, .dilations = {2}});
}
TEST(ConvTest, KernelShapeAttribute) {
  ConvCase cc;
  Tensor x = testing::RandomTensor(Shape{1, 4, 7, 7}, 1),
         w = testing::RandomTensor(Shape{6, 4, 3, 3}, 2);
  OpSpec spec = MakeSpec(cc, true, 1);
  spec.constant_inputs = {1};
  spec.attributes["kernel_shape"] = IntsAttr({3, 3});
  auto got = RunOp(spec, {x, w});
  ASSERT_TRUE(got.ok()) << got.status();
  cc.bias = false;
  testing::ExpectTensorNear((*got)[0], RefConv(cc, x, w, nullptr, nullptr, Activation{}));
  spec.attributes["kernel_shape"] = IntsAttr({2, 3});
  EXPECT_FALSE(RunOp(spec, {x, w}).ok());
}

TEST(ConvTest, ShapeErrors) {
  Tensor x = testing::RandomTensor(Shape{1, 4, 5, 5}, 1);
  OpSpec spec{.op_type = "Conv"};
  // Channel mismatch.
  auto r = RunOp(spec, {x, testing::RandomTensor(Shape{2, 3, 3, 3}, 2)});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("test_node"), std::string::npos) << r.status();
  // Kernel larger than the padded input.
  r = RunOp(spec, {x, testing::RandomTensor(Shape{2, 4, 7, 7}, 2)});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("larger"), std::string::npos) << r.status();
  // Wrong weight rank.
  EXPECT_FALSE(RunOp(spec, {x, testing::RandomTensor(Shape{2, 4, 3}, 2)}).ok());
  // Group does not divide.
  spec.attributes["group"] = IntAttr(3);
  EXPECT_FALSE(RunOp(spec, {x, testing::RandomTensor(Shape{2, 4, 3, 3}, 2)}).ok());
  spec.attributes["group"] = IntAttr(0);
  EXPECT_FALSE(RunOp(spec, {x, testing::RandomTensor(Shape{2, 4, 3, 3}, 2)}).ok());
  // Bad bias length, constant weights (checked at load).
  OpSpec cs{.op_type = "Conv", .constant_inputs = {1, 2}};
  EXPECT_FALSE(RunOp(cs, {x, testing::RandomTensor(Shape{2, 4, 3, 3}, 2),
                          testing::RandomTensor(Shape{3}, 3)})
                   .ok());
  // Bad strides.
  OpSpec ss{.op_type = "Conv"};
  ss.attributes["strides"] = IntsAttr({0, 1});
  EXPECT_FALSE(RunOp(ss, {x, testing::RandomTensor(Shape{2, 4, 3, 3}, 2)}).ok());
  ss.attributes["strides"] = IntsAttr({1, 1, 1});
  EXPECT_FALSE(RunOp(ss, {x, testing::RandomTensor(Shape{2, 4, 3, 3}, 2)}).ok());
  // Rank-2 input.
  EXPECT_FALSE(
      RunOp(spec, {testing::RandomTensor(Shape{4, 5}, 1), testing::RandomTensor(Shape{2, 4}, 2)})
          .ok());
}

TEST(ConvTest, ShapeChangesBetweenRuns) {
  ConvCase cc{.n = 1, .c = 3, .m = 4, .pads = {1, 1, 1, 1}};
  OpSpec spec = MakeSpec(cc, true, 1);
  for (int64_t n : {1, 4, 2}) {
    for (int64_t hw : {5, 9}) {
      cc.n = n;
      cc.in = {hw, hw + 1};
      Tensor x = testing::RandomTensor(Shape{n, 3, hw, hw + 1}, 5),
             w = testing::RandomTensor(Shape{4, 3, 3, 3}, 6),
             b = testing::RandomTensor(Shape{4}, 7);
      auto got = RunOp(spec, {x, w, b});
      ASSERT_TRUE(got.ok()) << got.status();
      testing::ExpectTensorNear((*got)[0], RefConv(cc, x, w, &b, nullptr, Activation{}));
    }
  }
}

struct ActCase {
  const char* name;
  ActivationKind kind;
  float alpha, beta;
};

TEST(FusedConvTest, ActivationsWithAndWithoutZ) {
  const ActCase acts[] = {{"", ActivationKind::kNone, 0, 0},
                          {"Relu", ActivationKind::kRelu, 0, 0},
                          {"LeakyRelu", ActivationKind::kLeakyRelu, 0.1f, 0},
                          {"Sigmoid", ActivationKind::kSigmoid, 0, 0},
                          {"Tanh", ActivationKind::kTanh, 0, 0},
                          {"Gelu", ActivationKind::kGelu, 0, 0},
                          {"Clip", ActivationKind::kClip, -0.5f, 0.7f},
                          {"HardSigmoid", ActivationKind::kHardSigmoid, 0.2f, 0.5f},
                          {"Elu", ActivationKind::kElu, 0.8f, 0}};
  ConvCase cc{.n = 2, .c = 8, .m = 8, .in = {6, 6}, .pads = {1, 1, 1, 1}};
  Tensor x = testing::RandomTensor(Shape{2, 8, 6, 6}, 1),
         w = testing::RandomTensor(Shape{8, 8, 3, 3}, 2), b = testing::RandomTensor(Shape{8}, 3),
         z = testing::RandomTensor(Shape{2, 8, 6, 6}, 4);
  for (const ActCase& a : acts) {
    for (bool with_z : {false, true}) {
      for (bool const_w : {true, false}) {
        SCOPED_TRACE(::testing::Message() << a.name << " z=" << with_z << " const=" << const_w);
        OpSpec spec = MakeSpec(cc, const_w, 2);
        spec.op_type = "FusedConv";
        spec.domain = "com.flywheel";
        if (a.name[0] != 0) spec.attributes["activation"] = StringAttr(a.name);
        spec.attributes["activation_alpha"] = FloatAttr(a.alpha);
        spec.attributes["activation_beta"] = FloatAttr(a.beta);
        std::vector<Tensor> inputs{x, w, b};
        if (with_z) inputs.push_back(z);
        auto got = RunOp(spec, inputs);
        ASSERT_TRUE(got.ok()) << got.status();
        Activation act{a.kind, a.alpha, a.beta};
        testing::ExpectTensorNear((*got)[0], RefConv(cc, x, w, &b, with_z ? &z : nullptr, act));
      }
    }
  }
}

TEST(FusedConvTest, ZWithoutBiasAndBadZ) {
  ConvCase cc{.c = 4, .m = 4, .in = {5, 5}, .pads = {1, 1, 1, 1}, .bias = false};
  Tensor x = testing::RandomTensor(Shape{1, 4, 5, 5}, 1),
         w = testing::RandomTensor(Shape{4, 4, 3, 3}, 2),
         z = testing::RandomTensor(Shape{1, 4, 5, 5}, 4);
  OpSpec spec = MakeSpec(cc, true, 1);
  spec.op_type = "FusedConv";
  spec.domain = "com.flywheel";
  spec.attributes["activation"] = StringAttr("Relu");
  auto got = RunOp(spec, {x, w, Tensor(), z});
  ASSERT_TRUE(got.ok()) << got.status();
  testing::ExpectTensorNear((*got)[0],
                            RefConv(cc, x, w, nullptr, &z, Activation{ActivationKind::kRelu}));
  EXPECT_FALSE(RunOp(spec, {x, w, Tensor(), testing::RandomTensor(Shape{1, 4, 5, 4}, 4)}).ok());
  spec.attributes["activation"] = StringAttr("Swish");
  EXPECT_FALSE(RunOp(spec, {x, w, Tensor(), z}).ok());
}

// [N, C, H, W] <-> [N, H, W, C].
Tensor ToNhwc(const Tensor& t) {
  const int64_t n = t.dim(0), c = t.dim(1), h = t.dim(2), w = t.dim(3);
  Tensor out = Tensor::Allocate(DataType::kFp32, Shape{n, h, w, c});
  for (int64_t i = 0; i < n * c * h * w; ++i) {
    const int64_t b = i / (c * h * w), ch = i / (h * w) % c, p = i % (h * w);
    out.data<float>()[(b * h * w + p) * c + ch] = t.data<float>()[i];
  }
  return out;
}

// The channels-last FusedConv (NHWC Y and Z, X NHWC or NCHW, as the channels-last pass makes
// it) against the NCHW reference, at 1 and 2 threads and odd and even batches.
TEST(FusedConvTest, ChannelsLast) {
  for (int64_t n : {1, 6, 7, 8}) {
    for (int threads : {1, 2}) {
      for (bool nhwc_x : {true, false}) {
        SCOPED_TRACE(::testing::Message()
                     << "n=" << n << " threads=" << threads << " nhwc_x=" << nhwc_x);
        ConvCase cc{.n = n, .c = 16, .m = 32, .in = {16, 16}, .pads = {1, 1, 1, 1}};
        Tensor x = testing::RandomTensor(Shape{n, 16, 16, 16}, 5),
               w = testing::RandomTensor(Shape{32, 16, 3, 3}, 6),
               b = testing::RandomTensor(Shape{32}, 7),
               z = testing::RandomTensor(Shape{n, 32, 16, 16}, 8);
        OpSpec spec = MakeSpec(cc, /*const_w=*/true, threads);
        spec.op_type = "FusedConv";
        spec.domain = "com.flywheel";
        spec.attributes["activation"] = StringAttr("Relu");
        spec.attributes["channels_last_y"] = IntAttr(1);
        if (nhwc_x) spec.attributes["channels_last_x"] = IntAttr(1);
        auto got = RunOp(spec, {nhwc_x ? ToNhwc(x) : x, w, b, ToNhwc(z)});
        ASSERT_TRUE(got.ok()) << got.status();
        Activation act{ActivationKind::kRelu, 0, 0};
        testing::ExpectTensorNear((*got)[0], ToNhwc(RefConv(cc, x, w, &b, &z, act)));
      }
    }
  }
}

}  // namespace
}  // namespace flywheel::engine
