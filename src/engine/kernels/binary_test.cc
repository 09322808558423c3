#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>

#include "engine/kernels/broadcast.h"
#include "engine/testing/op_test_util.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

using testing::ExpectTensorNear;
using testing::MakeTensor;
using testing::OpSpec;
using testing::RunOp;

std::vector<float> Iota(int64_t n, float start = 0.5f, float step = 0.25f) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = start + step * static_cast<float>(i % 97) - 3.0f;
  return v;
}

// Reference broadcast: index into `s` for output index `idx` of `out`.
int64_t BroadcastIndex(const Shape& s, const Shape& out, int64_t flat) {
  int64_t index = 0, stride = 1;
  for (int i = out.rank() - 1; i >= 0; --i) {
    const int64_t coord = flat % out[i];
    flat /= out[i];
    const int si = i - (out.rank() - s.rank());
    if (si >= 0) {
      if (s[si] != 1) index += coord * stride;
      stride *= s[si];
    }
  }
  return index;
}

template <typename T, typename O = T, typename F>
Tensor Reference(const Tensor& a, const Tensor& b, const Shape& out_shape, F f) {
  Tensor out = Tensor::Allocate(DataTypeOf<O>(), out_shape);
  for (int64_t i = 0; i < out.NumElements(); ++i) {
    out.data<O>()[i] = f(a.data<T>()[BroadcastIndex(a.shape(), out_shape, i)],
                         b.data<T>()[BroadcastIndex(b.shape(), out_shape, i)]);
  }
  return out;
}

struct BroadcastCase {
  Shape a, b, out;
};

const BroadcastCase kCases[] = {
    {{2, 3, 4}, {2, 3, 4}, {2, 3, 4}},
    {{2, 3, 4}, {4}, {2, 3, 4}},
    {{2, 1, 4}, {3, 1}, {2, 3, 4}},
    {{}, {2, 3}, {2, 3}},
    {{2, 3}, {}, {2, 3}},
    {{1}, {2, 3}, {2, 3}},
    {{3, 1}, {1, 5}, {3, 5}},
    {{2, 3, 1, 5}, {3, 4, 1}, {2, 3, 4, 5}},
    {{1, 1, 1}, {1}, {1, 1, 1}},
    {{0, 3}, {3}, {0, 3}},
    {{2, 0, 4}, {1, 1, 4}, {2, 0, 4}},
    {{300, 70}, {70}, {300, 70}},
    {{5, 1, 1, 7}, {1, 6, 2, 1}, {5, 6, 2, 7}},
};

TEST(ElementwiseBinaryTest, FloatArithmeticBroadcasting) {
  const std::pair<const char*, std::function<float(float, float)>> ops[] = {
      {"Add", [](float x, float y) { return x + y; }},
      {"Sub", [](float x, float y) { return x - y; }},
      {"Mul", [](float x, float y) { return x * y; }},
      {"Div", [](float x, float y) { return x / y; }},
  };
  for (const auto& [op, f] : ops) {
    for (const BroadcastCase& c : kCases) {
      SCOPED_TRACE(absl::StrCat(op, " ", c.a.ToString(), " ", c.b.ToString()));
      Tensor a = MakeTensor<float>(c.a, Iota(c.a.NumElements()));
      Tensor b = MakeTensor<float>(c.b, Iota(c.b.NumElements(), 1.75f, 0.5f));
      auto out = RunOp({.op_type = op}, {a, b});
      ASSERT_TRUE(out.ok()) << out.status();
      ExpectTensorNear((*out)[0], Reference<float>(a, b, c.out, f));
    }
  }
}

TEST(ElementwiseBinaryTest, IntegerArithmetic) {
  for (const BroadcastCase& c : kCases) {
    SCOPED_TRACE(c.a.ToString() + " " + c.b.ToString());
    std::vector<int64_t> av(c.a.NumElements()), bv(c.b.NumElements());
    for (size_t i = 0; i < av.size(); ++i) av[i] = static_cast<int64_t>(i * 7 % 23) - 11;
    for (size_t i = 0; i < bv.size(); ++i) bv[i] = static_cast<int64_t>(i * 5 % 13) - 6;
    Tensor a = MakeTensor<int64_t>(c.a, av), b = MakeTensor<int64_t>(c.b, bv);
    auto add = RunOp({.op_type = "Add"}, {a, b});
    ASSERT_TRUE(add.ok()) << add.status();
    ExpectTensorNear((*add)[0], Reference<int64_t>(a, b, c.out, std::plus<int64_t>()));
    auto div = RunOp({.op_type = "Div"}, {a, b});
    ASSERT_TRUE(div.ok()) << div.status();
    ExpectTensorNear((*div)[0], Reference<int64_t>(a, b, c.out, [](int64_t x, int64_t y) {
                       return y == 0 ? int64_t{0} : x / y;
                     }));
  }
  Tensor a = MakeTensor<int32_t>({4}, {7, -7, 100, std::numeric_limits<int32_t>::min()});
  Tensor b = MakeTensor<int32_t>({4}, {2, 2, 0, -1});
  auto div = RunOp({.op_type = "Div"}, {a, b});
  ASSERT_TRUE(div.ok()) << div.status();
  // Truncation toward zero; division by zero gives 0 instead of crashing; MIN / -1 wraps.
  ExpectTensorNear((*div)[0],
                   MakeTensor<int32_t>({4}, {3, -3, 0, std::numeric_limits<int32_t>::min()}));
  auto sub = RunOp({.op_type = "Sub"}, {a, b});
  ASSERT_TRUE(sub.ok());
  ExpectTensorNear((*sub)[0], MakeTensor<int32_t>({4}, {5, -9, 100, -2147483647}));
  auto mul = RunOp({.op_type = "Mul"}, {MakeTensor<int32_t>({1}, {6}), b});
  ASSERT_TRUE(mul.ok());
  ExpectTensorNear((*mul)[0], MakeTensor<int32_t>({4}, {12, 12, 0, -6}));
}

TEST(ElementwiseBinaryTest, OtherTypes) {
  auto d =
      RunOp({.op_type = "Mul"}, {MakeTensor<double>({2}, {1.5, 2}), MakeTensor<double>({}, {3})});
  ASSERT_TRUE(d.ok());
  ExpectTensorNear((*d)[0], MakeTensor<double>({2}, {4.5, 6}));
  auto u8 = RunOp({.op_type = "Add"},
                  {MakeTensor<uint8_t>({2}, {250, 1}), MakeTensor<uint8_t>({2}, {10, 2})});
  ASSERT_TRUE(u8.ok());
  ExpectTensorNear((*u8)[0], MakeTensor<uint8_t>({2}, {4, 3}));
}

TEST(ElementwiseBinaryTest, LargeParallel) {
  const Shape sa{64, 1000}, sb{1000};
  Tensor a = MakeTensor<float>(sa, Iota(sa.NumElements()));
  Tensor b = MakeTensor<float>(sb, Iota(sb.NumElements(), 2.0f, 0.1f));
  auto out = RunOp({.op_type = "Mul", .threads = 4}, {a, b});
  ASSERT_TRUE(out.ok());
  ExpectTensorNear((*out)[0], Reference<float>(a, b, sa, std::multiplies<float>()));
  auto same = RunOp({.op_type = "Sub", .threads = 4}, {a, a});
  ASSERT_TRUE(same.ok());
  ExpectTensorNear((*same)[0], Tensor::Allocate(DataType::kFp32, sa, /*zero=*/true));
  Tensor c = MakeTensor<float>({64, 1, 1000}, Iota(64000, 1.0f, 0.3f));
  Tensor d = MakeTensor<float>({1, 3, 1}, {1, 2, 3});
  auto bc = RunOp({.op_type = "Add", .threads = 3}, {c, d});
  ASSERT_TRUE(bc.ok());
  ExpectTensorNear((*bc)[0], Reference<float>(c, d, Shape{64, 3, 1000}, std::plus<float>()));
}

TEST(ElementwiseBinaryTest, IncompatibleShapesNameNodeAndShapes) {
  auto out = RunOp({.op_type = "Add"},
                   {MakeTensor<float>({2, 3}, Iota(6)), MakeTensor<float>({4}, Iota(4))});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("test_node"), std::string::npos) << out.status();
  EXPECT_NE(out.status().message().find("[2,3]"), std::string::npos) << out.status();
  EXPECT_NE(out.status().message().find("[4]"), std::string::npos) << out.status();
}

TEST(ElementwiseBinaryTest, MismatchedTypesFail) {
  auto out =
      RunOp({.op_type = "Add"}, {MakeTensor<float>({2}, {1, 2}), MakeTensor<int64_t>({2}, {1, 2})});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("INT64"), std::string::npos) << out.status();
}

TEST(ElementwiseBinaryTest, Pow) {
  Tensor x = MakeTensor<float>({5}, {0.5f, 1.0f, 2.0f, 3.0f, 4.0f});
  for (float e : {2.0f, 0.5f, 1.0f, -1.0f, 3.0f, 1.5f}) {
    SCOPED_TRACE(e);
    std::vector<float> want;
    for (int i = 0; i < 5; ++i) want.push_back(std::pow(x.data<float>()[i], e));
    auto out = RunOp({.op_type = "Pow", .constant_inputs = {1}}, {x, MakeTensor<float>({}, {e})});
    ASSERT_TRUE(out.ok()) << out.status();
    ExpectTensorNear((*out)[0], MakeTensor<float>({5}, want));
  }
  // Broadcast exponent, and an integer exponent type.
  auto out = RunOp({.op_type = "Pow"},
                   {MakeTensor<float>({2, 2}, {2, 3, 4, 5}), MakeTensor<int64_t>({2}, {2, 3})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<float>({2, 2}, {4, 27, 16, 125}));
  auto ints = RunOp({.op_type = "Pow"},
                    {MakeTensor<int64_t>({3}, {2, -3, 5}), MakeTensor<int64_t>({3}, {10, 3, 0})});
  ASSERT_TRUE(ints.ok()) << ints.status();
  ExpectTensorNear((*ints)[0], MakeTensor<int64_t>({3}, {1024, -27, 1}));
  auto fexp =
      RunOp({.op_type = "Pow"}, {MakeTensor<int32_t>({2}, {4, 9}), MakeTensor<float>({1}, {0.5f})});
  ASSERT_TRUE(fexp.ok()) << fexp.status();
  ExpectTensorNear((*fexp)[0], MakeTensor<int32_t>({2}, {2, 3}));
}

TEST(ElementwiseBinaryTest, Comparisons) {
  Tensor a = MakeTensor<int64_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = MakeTensor<int64_t>({3}, {2, 2, 7});
  auto eq = RunOp({.op_type = "Equal"}, {a, b});
  auto lt = RunOp({.op_type = "Less"}, {a, b});
  auto gt = RunOp({.op_type = "Greater"}, {a, b});
  ASSERT_TRUE(eq.ok() && lt.ok() && gt.ok());
  ExpectTensorNear((*eq)[0], MakeTensor<bool>({2, 3}, {0, 1, 0, 0, 0, 0}));
  ExpectTensorNear((*lt)[0], MakeTensor<bool>({2, 3}, {1, 0, 1, 0, 0, 1}));
  ExpectTensorNear((*gt)[0], MakeTensor<bool>({2, 3}, {0, 0, 0, 1, 1, 0}));
  Tensor f = MakeTensor<float>({4}, {1.0f, NAN, -2.0f, 3.0f});
  auto feq = RunOp({.op_type = "Equal"}, {f, MakeTensor<float>({}, {1.0f})});
  auto fgt = RunOp({.op_type = "Greater"}, {f, MakeTensor<float>({1}, {0.0f})});
  ASSERT_TRUE(feq.ok() && fgt.ok());
  ExpectTensorNear((*feq)[0], MakeTensor<bool>({4}, {1, 0, 0, 0}));
  ExpectTensorNear((*fgt)[0], MakeTensor<bool>({4}, {1, 0, 0, 1}));
  auto le = RunOp({.op_type = "LessOrEqual"},
                  {MakeTensor<int32_t>({3}, {1, 2, 3}), MakeTensor<int32_t>({1}, {2})});
  ASSERT_TRUE(le.ok());
  ExpectTensorNear((*le)[0], MakeTensor<bool>({3}, {1, 1, 0}));
}

TEST(ElementwiseBinaryTest, Logic) {
  Tensor a = MakeTensor<bool>({2, 2}, {true, true, false, false});
  Tensor b = MakeTensor<bool>({2}, {true, false});
  auto and_ = RunOp({.op_type = "And"}, {a, b});
  auto or_ = RunOp({.op_type = "Or"}, {a, b});
  auto xor_ = RunOp({.op_type = "Xor"}, {a, b});
  ASSERT_TRUE(and_.ok() && or_.ok() && xor_.ok());
  ExpectTensorNear((*and_)[0], MakeTensor<bool>({2, 2}, {1, 0, 0, 0}));
  ExpectTensorNear((*or_)[0], MakeTensor<bool>({2, 2}, {1, 1, 1, 0}));
  ExpectTensorNear((*xor_)[0], MakeTensor<bool>({2, 2}, {0, 1, 1, 0}));
  auto bad = RunOp({.op_type = "And"}, {MakeTensor<float>({1}, {1}), MakeTensor<float>({1}, {1})});
  EXPECT_FALSE(bad.ok());
}

TEST(ElementwiseBinaryTest, Where) {
  Tensor c = MakeTensor<bool>({2, 1}, {true, false});
  Tensor x = MakeTensor<float>({3}, {1, 2, 3});
  Tensor y = MakeTensor<float>({2, 3}, {10, 20, 30, 40, 50, 60});
  auto out = RunOp({.op_type = "Where"}, {c, x, y});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectTensorNear((*out)[0], MakeTensor<float>({2, 3}, {1, 2, 3, 40, 50, 60}));
  auto i64 = RunOp({.op_type = "Where"},
                   {MakeTensor<bool>({3}, {false, true, false}), MakeTensor<int64_t>({}, {7}),
                    MakeTensor<int64_t>({3}, {1, 2, 3})});
  ASSERT_TRUE(i64.ok()) << i64.status();
  ExpectTensorNear((*i64)[0], MakeTensor<int64_t>({3}, {1, 7, 3}));
  auto u8 = RunOp({.op_type = "Where"},
                  {MakeTensor<bool>({2}, {true, false}), MakeTensor<uint8_t>({2}, {1, 2}),
                   MakeTensor<uint8_t>({2}, {3, 4})});
  ASSERT_TRUE(u8.ok());
  ExpectTensorNear((*u8)[0], MakeTensor<uint8_t>({2}, {1, 4}));
  auto bad = RunOp({.op_type = "Where"},
                   {MakeTensor<bool>({2}, {true, false}), MakeTensor<float>({3}, {1, 2, 3}), y});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("[2]"), std::string::npos) << bad.status();
}

TEST(ElementwiseBinaryTest, Mod) {
  Tensor a = MakeTensor<int32_t>({4}, {5, -5, 5, -5});
  Tensor b = MakeTensor<int32_t>({4}, {3, 3, -3, -3});
  auto m = RunOp({.op_type = "Mod"}, {a, b});
  ASSERT_TRUE(m.ok());
  ExpectTensorNear((*m)[0], MakeTensor<int32_t>({4}, {2, 1, -1, -2}));
  auto fm = RunOp({.op_type = "Mod", .attributes = {{"fmod", testing::IntAttr(1)}}},
                  {MakeTensor<float>({2}, {5.5f, -5.5f}), MakeTensor<float>({1}, {2.0f})});
  ASSERT_TRUE(fm.ok());
  ExpectTensorNear((*fm)[0], MakeTensor<float>({2}, {1.5f, -1.5f}));
}

TEST(ElementwiseBinaryTest, VariadicSumMeanMaxMin) {
  Tensor a = MakeTensor<float>({2, 3}, {1, 5, 3, -1, 0, 8});
  Tensor b = MakeTensor<float>({3}, {2, 2, 2});
  Tensor c = MakeTensor<float>({2, 1}, {0, 10});
  auto sum = RunOp({.op_type = "Sum"}, {a, b, c});
  auto mean = RunOp({.op_type = "Mean"}, {a, b, c});
  auto max = RunOp({.op_type = "Max"}, {a, b, c});
  auto min = RunOp({.op_type = "Min"}, {a, b});
  auto one = RunOp({.op_type = "Sum"}, {a});
  ASSERT_TRUE(sum.ok() && mean.ok() && max.ok() && min.ok() && one.ok()) << sum.status();
  ExpectTensorNear((*sum)[0], MakeTensor<float>({2, 3}, {3, 7, 5, 11, 12, 20}));
  ExpectTensorNear((*mean)[0],
                   MakeTensor<float>({2, 3}, {1, 7.0f / 3, 5.0f / 3, 11.0f / 3, 4, 20.0f / 3}));
  ExpectTensorNear((*max)[0], MakeTensor<float>({2, 3}, {2, 5, 3, 10, 10, 10}));
  ExpectTensorNear((*min)[0], MakeTensor<float>({2, 3}, {1, 2, 2, -1, 0, 2}));
  ExpectTensorNear((*one)[0], a);
  auto imax = RunOp({.op_type = "Max"},
                    {MakeTensor<int64_t>({3}, {1, 9, -4}), MakeTensor<int64_t>({}, {0})});
  ASSERT_TRUE(imax.ok());
  ExpectTensorNear((*imax)[0], MakeTensor<int64_t>({3}, {1, 9, 0}));
  auto bad = RunOp({.op_type = "Sum"}, {a, MakeTensor<float>({4}, {1, 2, 3, 4})});
  EXPECT_FALSE(bad.ok());
}

TEST(BroadcastPlanTest, CollapsesDims) {
  const Shape a{2, 3, 4}, b{4};
  const Shape* shapes[2] = {&a, &b};
  BroadcastPlan p;
  MakeBroadcastPlan(shapes, 2, a, &p);
  EXPECT_EQ(p.rank, 2);
  EXPECT_EQ(p.dims[0], 6);
  EXPECT_EQ(p.dims[1], 4);
  EXPECT_EQ(p.inner_stride(0), 1);
  EXPECT_EQ(p.inner_stride(1), 1);
  EXPECT_EQ(p.strides[1][0], 0);
  MakeBroadcastPlan(shapes, 1, a, &p);
  EXPECT_EQ(p.rank, 1);
  EXPECT_EQ(p.dims[0], 24);
}

TEST(BroadcastPlanTest, RunsCoverRange) {
  const Shape a{3, 1, 5}, b{4, 1}, out{3, 4, 5};
  const Shape* shapes[2] = {&a, &b};
  BroadcastPlan p;
  MakeBroadcastPlan(shapes, 2, out, &p);
  // Every sub-range visits exactly its elements, with the reference input offsets.
  for (int64_t begin : {0, 3, 7, 20}) {
    for (int64_t end : {begin, begin + 1, begin + 13, int64_t{60}}) {
      int64_t next = begin;
      ForEachRun(p, begin, end, [&](int64_t o, const int64_t* in, int64_t len) {
        EXPECT_EQ(o, next);
        for (int64_t i = 0; i < len; ++i) {
          EXPECT_EQ(in[0] + i * p.inner_stride(0), BroadcastIndex(a, out, o + i));
          EXPECT_EQ(in[1] + i * p.inner_stride(1), BroadcastIndex(b, out, o + i));
        }
        next = o + len;
      });
      EXPECT_EQ(next, end);
    }
  }
}

}  // namespace
}  // namespace flywheel::engine
