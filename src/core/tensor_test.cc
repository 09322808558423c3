#include "core/tensor.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace flywheel {
namespace {

TEST(TensorTest, AllocateIsAligned) {
  Tensor t = Tensor::Allocate(DataType::kFp32, Shape{3, 5});
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % kTensorAlignment, 0u);
  EXPECT_EQ(t.ByteSize(), 60u);
  EXPECT_TRUE(t.owns_data());
  EXPECT_TRUE(t.unique());
  Tensor copy = t;
  EXPECT_FALSE(t.unique());
  EXPECT_EQ(copy.raw_data(), t.raw_data());
}

TEST(TensorTest, ZeroFill) {
  Tensor t = Tensor::Allocate(DataType::kInt64, Shape{7}, /*zero=*/true);
  for (int i = 0; i < 7; ++i) EXPECT_EQ(t.data<int64_t>()[i], 0);
}

TEST(TensorTest, ViewDoesNotOwn) {
  float data[4] = {1, 2, 3, 4};
  Tensor v = Tensor::View(DataType::kFp32, Shape{2, 2}, data);
  EXPECT_FALSE(v.owns_data());
  Tensor r = v.Reshaped(Shape{4});
  EXPECT_EQ(r.data<float>()[3], 4);
  Tensor c = v.Clone();
  data[0] = 9;
  EXPECT_EQ(c.data<float>()[0], 1);
  EXPECT_TRUE(c.owns_data());
}

TEST(TensorTest, BytesTensorsHoldStrings) {
  Tensor t = Tensor::Allocate(DataType::kBytes, Shape{2});
  t.strings()[1] = "abc";
  Tensor c = t.Clone();
  EXPECT_EQ(c.strings()[1], "abc");
  EXPECT_EQ(c.DebugString(), "BYTES [2]");
}

TEST(TensorTest, SafeAllocateRefusesAbsurdSizes) {
  EXPECT_FALSE(Tensor::SafeAllocate(DataType::kFp32, Shape{int64_t{1} << 39}, "x").ok());
  EXPECT_FALSE(Tensor::SafeAllocate(DataType::kFp32, Shape{-3}, "x").ok());
  EXPECT_TRUE(Tensor::SafeAllocate(DataType::kFp32, Shape{0, 5}, "x").ok());
}

TEST(TensorTest, AllocationsAreCounted) {
  int64_t before = AlignedAllocCount();
  Tensor t = Tensor::Allocate(DataType::kUint8, Shape{1});
  EXPECT_EQ(AlignedAllocCount(), before + 1);
}

}  // namespace
}  // namespace flywheel
