#include <cmath>
#include <cstring>
#include <limits>

#include "engine/testing/op_test_util.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

using testing::ExpectTensorNear;
using testing::IntAttr;
using testing::MakeTensor;
using testing::RunOp;

// ONNX TensorProto.DataType numbers.
constexpr int64_t kFloat = 1, kUint8 = 2, kInt8 = 3, kInt32 = 6, kInt64 = 7, kBool = 9,
                  kFloat16 = 10, kDouble = 11, kBfloat16 = 16;

absl::StatusOr<Tensor> Cast(const Tensor& x, int64_t to) {
  auto out = RunOp({.op_type = "Cast", .attributes = {{"to", IntAttr(to)}}}, {x});
  if (!out.ok()) return out.status();
  return (*out)[0];
}

TEST(ElementwiseCastTest, FloatToIntegersTruncates) {
  Tensor x = MakeTensor<float>({6}, {1.9f, -1.9f, 0.5f, -0.5f, 100.0f, 3.0f});
  auto i64 = Cast(x, kInt64);
  ASSERT_TRUE(i64.ok()) << i64.status();
  ExpectTensorNear(*i64, MakeTensor<int64_t>({6}, {1, -1, 0, 0, 100, 3}));
  auto i32 = Cast(x, kInt32);
  ASSERT_TRUE(i32.ok());
  ExpectTensorNear(*i32, MakeTensor<int32_t>({6}, {1, -1, 0, 0, 100, 3}));
  auto i8 = Cast(x, kInt8);
  ASSERT_TRUE(i8.ok());
  ExpectTensorNear(*i8, MakeTensor<int8_t>({6}, {1, -1, 0, 0, 100, 3}));
  // numpy wraps small unsigned types: -1.9 -> -1 -> 255.
  auto u8 = Cast(x, kUint8);
  ASSERT_TRUE(u8.ok());
  ExpectTensorNear(*u8, MakeTensor<uint8_t>({6}, {1, 255, 0, 0, 100, 3}));
  // No undefined behaviour on NaN and huge values.
  auto odd = Cast(MakeTensor<float>({3}, {NAN, 1e30f, -1e30f}), kInt64);
  ASSERT_TRUE(odd.ok());
  ExpectTensorNear(*odd, MakeTensor<int64_t>({3}, {0, std::numeric_limits<int64_t>::max(),
                                                   std::numeric_limits<int64_t>::min()}));
}

TEST(ElementwiseCastTest, ToAndFromBool) {
  auto b = Cast(MakeTensor<float>({4}, {0.0f, -0.0f, 2.5f, NAN}), kBool);
  ASSERT_TRUE(b.ok());
  ExpectTensorNear(*b, MakeTensor<bool>({4}, {false, false, true, true}));
  auto bi = Cast(MakeTensor<int64_t>({3}, {0, 7, -1}), kBool);
  ASSERT_TRUE(bi.ok());
  ExpectTensorNear(*bi, MakeTensor<bool>({3}, {false, true, true}));
  auto f = Cast(MakeTensor<bool>({2}, {true, false}), kFloat);
  ASSERT_TRUE(f.ok());
  ExpectTensorNear(*f, MakeTensor<float>({2}, {1, 0}));
  auto i = Cast(MakeTensor<bool>({2}, {true, false}), kInt64);
  ASSERT_TRUE(i.ok());
  ExpectTensorNear(*i, MakeTensor<int64_t>({2}, {1, 0}));
}

TEST(ElementwiseCastTest, NumericConversions) {
  auto d = Cast(MakeTensor<float>({2}, {1.25f, -3}), kDouble);
  ASSERT_TRUE(d.ok());
  ExpectTensorNear(*d, MakeTensor<double>({2}, {1.25, -3}));
  auto f = Cast(MakeTensor<double>({2}, {1.25, 1e300}), kFloat);
  ASSERT_TRUE(f.ok());
  ExpectTensorNear(*f, MakeTensor<float>({2}, {1.25f, std::numeric_limits<float>::infinity()}));
  auto i32 = Cast(MakeTensor<int64_t>({2}, {5, (int64_t{1} << 32) + 3}), kInt32);
  ASSERT_TRUE(i32.ok());
  ExpectTensorNear(*i32, MakeTensor<int32_t>({2}, {5, 3}));
  auto fi = Cast(MakeTensor<int32_t>({2}, {-7, 1 << 20}), kFloat);
  ASSERT_TRUE(fi.ok());
  ExpectTensorNear(*fi, MakeTensor<float>({2}, {-7, 1 << 20}));
  auto from_u8 = Cast(MakeTensor<uint8_t>({2}, {200, 3}), kInt8);
  ASSERT_TRUE(from_u8.ok());
  ExpectTensorNear(*from_u8, MakeTensor<int8_t>({2}, {-56, 3}));
  auto same = Cast(MakeTensor<float>({2, 2}, {1, 2, 3, 4}), kFloat);
  ASSERT_TRUE(same.ok());
  ExpectTensorNear(*same, MakeTensor<float>({2, 2}, {1, 2, 3, 4}));
}

TEST(ElementwiseCastTest, Float16RoundTrip) {
  const float inf = std::numeric_limits<float>::infinity();
  Tensor x = MakeTensor<float>(
      {9}, {1.0f, -2.5f, 65504.0f, 1e6f, 6.1035156e-05f, 5.9604645e-08f, 1e-9f, 0.1f, -inf});
  auto h = Cast(x, kFloat16);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->dtype(), DataType::kFp16);
  const uint16_t* bits = h->data<uint16_t>();
  EXPECT_EQ(bits[0], 0x3c00);
  EXPECT_EQ(bits[1], 0xc100);
  EXPECT_EQ(bits[2], 0x7bff);
  EXPECT_EQ(bits[3], 0x7c00);  // overflow -> inf
  EXPECT_EQ(bits[4], 0x0400);  // smallest normal
  EXPECT_EQ(bits[5], 0x0001);  // smallest subnormal
  EXPECT_EQ(bits[6], 0x0000);
  EXPECT_EQ(bits[7], 0x2e66);  // 0.1 rounds to nearest
  EXPECT_EQ(bits[8], 0xfc00);
  auto back = Cast(*h, kFloat);
  ASSERT_TRUE(back.ok());
  ExpectTensorNear(*back,
                   MakeTensor<float>({9}, {1.0f, -2.5f, 65504.0f, inf, 6.1035156e-05f,
                                           5.9604645e-08f, 0, 0.099975586f, -inf}),
                   0, 0);
  auto to_int = Cast(*h, kInt32);
  ASSERT_TRUE(to_int.ok());
  EXPECT_EQ(to_int->data<int32_t>()[1], -2);
  auto bf = Cast(MakeTensor<float>({2}, {1.0f, 3.14159f}), kBfloat16);
  ASSERT_TRUE(bf.ok());
  EXPECT_EQ(bf->data<uint16_t>()[0], 0x3f80);
  EXPECT_EQ(bf->data<uint16_t>()[1], 0x4049);
}

TEST(ElementwiseCastTest, Errors) {
  auto missing = RunOp({.op_type = "Cast"}, {MakeTensor<float>({1}, {1})});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("test_node"), std::string::npos);
  EXPECT_FALSE(Cast(MakeTensor<float>({1}, {1}), 999).ok());
}

TEST(ElementwiseCastTest, LargeParallel) {
  std::vector<float> v(100000);
  std::vector<int32_t> want(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = static_cast<float>(i) * 0.37f - 1000.0f;
    want[i] = static_cast<int32_t>(v[i]);
  }
  auto out = RunOp({.op_type = "Cast", .attributes = {{"to", IntAttr(kInt32)}}, .threads = 4},
                   {MakeTensor<float>({100000}, v)});
  ASSERT_TRUE(out.ok());
  ExpectTensorNear((*out)[0], MakeTensor<int32_t>({100000}, want));
}

}  // namespace
}  // namespace flywheel::engine
