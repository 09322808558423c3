// MatMul, FusedMatMul, Gemm and FusedGemm through the executor against naive double-precision
// references: odd sizes, numpy batch broadcasting, 1-D operands, constant (pre-packed) and
// runtime B, transposes, every C broadcast, every activation, one and two threads.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "engine/kernels/activation.h"
#include "engine/testing/op_test_util.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

using testing::ExpectTensorNear;
using testing::FloatAttr;
using testing::IntAttr;
using testing::OpSpec;
using testing::RunOp;
using testing::StringAttr;

double Act(const Activation& act, double x) {
  switch (act.kind) {
    case ActivationKind::kNone:
      return x;
    case ActivationKind::kRelu:
      return std::max(x, 0.0);
    case ActivationKind::kLeakyRelu:
      return x >= 0 ? x : act.alpha * x;
    case ActivationKind::kSigmoid:
      return 1 / (1 + std::exp(-x));
    case ActivationKind::kTanh:
      return std::tanh(x);
    case ActivationKind::kGelu:
      return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    case ActivationKind::kClip:
      return std::min<double>(std::max<double>(x, act.alpha), act.beta);
    case ActivationKind::kHardSigmoid:
      return std::min(1.0, std::max(0.0, act.alpha * x + act.beta));
    case ActivationKind::kElu:
      return x >= 0 ? x : act.alpha * (std::exp(x) - 1);
  }
  return x;
}

// numpy matmul in double, then + bias[n] and the activation.
Tensor RefMatMul(const Tensor& a, const Tensor& b, const Tensor* bias = nullptr,
                 Activation act = {}) {
  Shape as = a.shape(), bs = b.shape();
  const bool av = as.rank() == 1, bv = bs.rank() == 1;
  if (av) as = Shape{1, as[0]};
  if (bv) bs = Shape{bs[0], 1};
  const int64_t m = as[as.rank() - 2], k = as[as.rank() - 1], n = bs[bs.rank() - 1];
  const int nb = std::max(as.rank(), bs.rank()) - 2;
  std::vector<int64_t> batch(nb), da(nb), db(nb);
  for (int i = 0; i < nb; ++i) {
    const int ia = i - (nb - (as.rank() - 2)), ib = i - (nb - (bs.rank() - 2));
    da[i] = ia >= 0 ? as[ia] : 1;
    db[i] = ib >= 0 ? bs[ib] : 1;
    batch[i] = std::max(da[i], db[i]);
  }
  Shape out;
  int64_t batches = 1;
  for (int i = 0; i < nb; ++i) {
    out.push_back(batch[i]);
    batches *= batch[i];
  }
  if (!av) out.push_back(m);
  if (!bv) out.push_back(n);
  Tensor y = Tensor::Allocate(DataType::kFp32, out);
  for (int64_t t = 0; t < batches; ++t) {
    int64_t rem = t, oa = 0, ob = 0, sa = 1, sb = 1;
    for (int i = nb - 1; i >= 0; --i) {
      const int64_t idx = rem % batch[i];
      rem /= batch[i];
      oa += (da[i] == 1 ? 0 : idx) * sa;
      ob += (db[i] == 1 ? 0 : idx) * sb;
      sa *= da[i];
      sb *= db[i];
    }
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = bias != nullptr ? bias->data<float>()[j] : 0.0;
        for (int64_t p = 0; p < k; ++p) {
          acc += double(a.data<float>()[oa * m * k + i * k + p]) *
                 b.data<float>()[ob * k * n + p * n + j];
        }
        y.data<float>()[(t * m + i) * n + j] = static_cast<float>(Act(act, acc));
      }
  }
  return y;
}

struct MatMulCase {
  Shape a, b;
};

TEST(MatMulOpTest, ShapesBroadcastConstantAndThreads) {
  const std::vector<MatMulCase> cases = {
      {{1, 1}, {1, 1}},          {{3, 17}, {17, 33}},
      {{17, 3}, {3, 129}},       {{64, 256}, {256, 512}},
      {{1, 512}, {512, 256}},    {{129, 65}, {65, 1}},
      {{2, 5, 33}, {33, 17}},    {{2, 3, 4, 8}, {2, 3, 8, 5}},
      {{2, 1, 7, 9}, {3, 9, 4}}, {{7}, {7, 10}},
      {{4, 6, 7}, {7}},          {{7}, {7}},
      {{5, 8}, {3, 8, 6}},       {{1, 3, 64, 32}, {4, 1, 32, 64}},
      {{0, 4}, {4, 5}},          {{3, 0}, {0, 5}},
      {{33, 1024}, {1024, 64}},
  };
  uint32_t seed = 1;
  for (const MatMulCase& c : cases) {
    Tensor a = testing::RandomTensor(c.a, seed++), b = testing::RandomTensor(c.b, seed++);
    Tensor want = RefMatMul(a, b);
    for (int constant = 0; constant < 2; ++constant) {
      for (int threads : {1, 2}) {
        OpSpec spec{.op_type = "MatMul"};
        spec.threads = threads;
        if (constant) spec.constant_inputs = {1};
        SCOPED_TRACE(::testing::Message() << c.a.ToString() << " x " << c.b.ToString()
                                          << " constant=" << constant << " threads=" << threads);
        auto out = RunOp(spec, {a, b});
        ASSERT_TRUE(out.ok()) << out.status();
        ExpectTensorNear((*out)[0], want);
      }
    }
  }
}

TEST(MatMulOpTest, IntegerAndDoubleTypes) {
  using testing::MakeTensor;
  for (int constant = 0; constant < 2; ++constant) {
    OpSpec spec{.op_type = "MatMul"};
    if (constant) spec.constant_inputs = {1};
    auto out = RunOp(spec, {MakeTensor<int64_t>({2, 1, 3}, {1, 2, 3, 4, 5, 6}),
                            MakeTensor<int64_t>({2, 3, 2}, {1, 0, 0, 1, 1, 1, 2, 0, 0, 2, 1, 1})});
    ASSERT_TRUE(out.ok()) << out.status();
    ExpectTensorNear((*out)[0], MakeTensor<int64_t>({2, 1, 2}, {4, 5, 14, 16}));
    auto d = RunOp(spec, {MakeTensor<double>({3}, {1, 2, 3}), MakeTensor<double>({3}, {4, 5, 6})});
    ASSERT_TRUE(d.ok()) << d.status();
    ExpectTensorNear((*d)[0], MakeTensor<double>({}, {32}));
  }
  OpSpec spec{.op_type = "MatMul"};
  EXPECT_FALSE(
      RunOp(spec, {MakeTensor<int32_t>({1, 2}, {1, 2}), MakeTensor<int64_t>({2, 1}, {1, 2})}).ok());
}

TEST(MatMulOpTest, MismatchedInnerDimensionIsAnError) {
  OpSpec spec{.op_type = "MatMul"};
  EXPECT_FALSE(
      RunOp(spec, {testing::RandomTensor({3, 4}, 1), testing::RandomTensor({5, 6}, 2)}).ok());
  spec.constant_inputs = {1};
  EXPECT_FALSE(
      RunOp(spec, {testing::RandomTensor({3, 4}, 1), testing::RandomTensor({5, 6}, 2)}).ok());
  EXPECT_FALSE(
      RunOp(spec, {testing::RandomTensor({2, 3, 4}, 1), testing::RandomTensor({3, 4, 6}, 2)}).ok());
}

std::vector<std::pair<std::string, Activation>> AllActivations() {
  return {{"", {ActivationKind::kNone, 0, 0}},
          {"Relu", {ActivationKind::kRelu, 0, 0}},
          {"LeakyRelu", {ActivationKind::kLeakyRelu, 0.1f, 0}},
          {"Sigmoid", {ActivationKind::kSigmoid, 0, 0}},
          {"Tanh", {ActivationKind::kTanh, 0, 0}},
          {"Gelu", {ActivationKind::kGelu, 0, 0}},
          {"Clip", {ActivationKind::kClip, -0.5f, 0.5f}},
          {"HardSigmoid", {ActivationKind::kHardSigmoid, 0.2f, 0.5f}},
          {"Elu", {ActivationKind::kElu, 0.7f, 0}}};
}

void SetActivation(OpSpec& spec, const std::string& name, const Activation& act) {
  if (name.empty()) return;
  spec.attributes["activation"] = StringAttr(name);
  spec.attributes["activation_alpha"] = FloatAttr(act.alpha);
  spec.attributes["activation_beta"] = FloatAttr(act.beta);
}

TEST(FusedMatMulOpTest, EveryActivationWithAndWithoutBias) {
  const std::vector<MatMulCase> cases = {
      {{1, 256}, {256, 512}}, {{3, 17}, {17, 33}}, {{2, 9, 65}, {65, 130}}, {{64, 128}, {128, 1}}};
  uint32_t seed = 50;
  for (const auto& [name, act] : AllActivations()) {
    for (const MatMulCase& c : cases) {
      Tensor a = testing::RandomTensor(c.a, seed++), b = testing::RandomTensor(c.b, seed++);
      Tensor bias = testing::RandomTensor({c.b[1]}, seed++);
      for (int with_bias = 0; with_bias < 2; ++with_bias) {
        Tensor want = RefMatMul(a, b, with_bias ? &bias : nullptr, act);
        for (int constant = 0; constant < 2; ++constant) {
          for (int threads : {1, 2}) {
            OpSpec spec{.op_type = "FusedMatMul", .domain = "com.flywheel"};
            SetActivation(spec, name, act);
            spec.threads = threads;
            if (constant) spec.constant_inputs = {1, 2};
            SCOPED_TRACE(::testing::Message()
                         << name << " " << c.a.ToString() << " x " << c.b.ToString()
                         << " bias=" << with_bias << " constant=" << constant << " t=" << threads);
            auto out = RunOp(spec, {a, b, with_bias ? bias : Tensor()});
            ASSERT_TRUE(out.ok()) << out.status();
            ExpectTensorNear((*out)[0], want);
          }
        }
      }
    }
  }
}

TEST(FusedMatMulOpTest, UnknownActivationFailsAtLoad) {
  OpSpec spec{.op_type = "FusedMatMul", .domain = "com.flywheel"};
  spec.attributes["activation"] = StringAttr("Swish9");
  EXPECT_FALSE(
      RunOp(spec, {testing::RandomTensor({2, 3}, 1), testing::RandomTensor({3, 4}, 2)}).ok());
}

// Gemm reference: alpha * op(A) op(B) + beta * broadcast(C), then the activation.
Tensor RefGemm(const Tensor& a, const Tensor& b, const Tensor* c, bool ta, bool tb, float alpha,
               float beta, Activation act = {}) {
  const int64_t m = ta ? a.dim(1) : a.dim(0), k = ta ? a.dim(0) : a.dim(1);
  const int64_t n = tb ? b.dim(0) : b.dim(1);
  Tensor y = Tensor::Allocate(DataType::kFp32, Shape{m, n});
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p) {
        acc += double(ta ? a.data<float>()[p * m + i] : a.data<float>()[i * k + p]) *
               (tb ? b.data<float>()[j * k + p] : b.data<float>()[p * n + j]);
      }
      acc *= alpha;
      if (c != nullptr) {
        int64_t cm = 1, cn = 1;
        if (c->rank() >= 1) cn = c->dim(c->rank() - 1);
        if (c->rank() == 2) cm = c->dim(0);
        acc += beta * double(c->data<float>()[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)]);
      }
      y.data<float>()[i * n + j] = static_cast<float>(Act(act, acc));
    }
  return y;
}

TEST(GemmOpTest, TransposesAlphaBetaAndEveryCBroadcast) {
  const int64_t sizes[][3] = {{1, 1, 1}, {3, 17, 33}, {17, 129, 3}, {64, 128, 256}, {1, 512, 256}};
  uint32_t seed = 200;
  for (const auto& s : sizes) {
    const int64_t m = s[0], k = s[1], n = s[2];
    const std::vector<Shape> c_shapes = {{}, {1}, {n}, {1, n}, {m, 1}, {m, n}};
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (int ci = -1; ci < static_cast<int>(c_shapes.size()); ++ci) {
          Tensor a = testing::RandomTensor(ta ? Shape{k, m} : Shape{m, k}, seed++);
          Tensor b = testing::RandomTensor(tb ? Shape{n, k} : Shape{k, n}, seed++);
          Tensor c = ci >= 0 ? testing::RandomTensor(c_shapes[ci], seed++) : Tensor();
          for (float beta : {1.0f, 0.5f}) {
            Tensor want = RefGemm(a, b, ci >= 0 ? &c : nullptr, ta, tb, 0.75f, beta);
            for (int constant = 0; constant < 2; ++constant)
              for (int threads : {1, 2}) {
                OpSpec spec{.op_type = "Gemm"};
                spec.attributes["transA"] = IntAttr(ta);
                spec.attributes["transB"] = IntAttr(tb);
                spec.attributes["alpha"] = FloatAttr(0.75f);
                spec.attributes["beta"] = FloatAttr(beta);
                spec.threads = threads;
                if (constant) spec.constant_inputs = {1, 2};
                SCOPED_TRACE(::testing::Message()
                             << m << "x" << k << "x" << n << " ta=" << ta << " tb=" << tb
                             << " c=" << (ci >= 0 ? c_shapes[ci].ToString() : "none")
                             << " beta=" << beta << " const=" << constant << " t=" << threads);
                auto out = RunOp(spec, {a, b, c});
                ASSERT_TRUE(out.ok()) << out.status();
                ExpectTensorNear((*out)[0], want);
              }
          }
        }
  }
}

TEST(GemmOpTest, BadShapesAreErrors) {
  OpSpec spec{.op_type = "Gemm"};
  EXPECT_FALSE(
      RunOp(spec, {testing::RandomTensor({3, 4}, 1), testing::RandomTensor({5, 6}, 2), Tensor()})
          .ok());
  EXPECT_FALSE(RunOp(spec, {testing::RandomTensor({3, 4}, 1), testing::RandomTensor({4, 6}, 2),
                            testing::RandomTensor({2, 6}, 3)})
                   .ok());
  EXPECT_FALSE(
      RunOp(spec, {testing::RandomTensor({3, 4, 1}, 1), testing::RandomTensor({4, 6}, 2), Tensor()})
          .ok());
  spec.constant_inputs = {1};
  EXPECT_FALSE(
      RunOp(spec, {testing::RandomTensor({3, 4}, 1), testing::RandomTensor({5, 6}, 2), Tensor()})
          .ok());
}

TEST(FusedGemmOpTest, EveryActivation) {
  uint32_t seed = 400;
  for (const auto& [name, act] : AllActivations()) {
    for (int constant = 0; constant < 2; ++constant) {
      Tensor a = testing::RandomTensor({9, 33}, seed++),
             b = testing::RandomTensor({65, 33}, seed++), c = testing::RandomTensor({65}, seed++);
      Tensor want = RefGemm(a, b, &c, false, true, 1.0f, 1.0f, act);
      OpSpec spec{.op_type = "FusedGemm", .domain = "com.flywheel"};
      SetActivation(spec, name, act);
      spec.attributes["transB"] = IntAttr(1);
      if (constant) spec.constant_inputs = {1, 2};
      spec.threads = 2;
      SCOPED_TRACE(name);
      auto out = RunOp(spec, {a, b, c});
      ASSERT_TRUE(out.ok()) << out.status();
      ExpectTensorNear((*out)[0], want);
    }
  }
}

}  // namespace
}  // namespace flywheel::engine
