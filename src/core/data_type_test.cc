#include "core/data_type.h"

#include "gtest/gtest.h"

namespace flywheel {
namespace {

TEST(DataTypeTest, NamesRoundTripForEveryKServeType) {
  for (absl::string_view name : {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16",
                                 "INT32", "INT64", "FP16", "BF16", "FP32", "FP64", "BYTES"}) {
    auto type = DataTypeFromName(name);
    ASSERT_TRUE(type.ok()) << name;
    EXPECT_EQ(DataTypeName(*type), name);
  }
}

TEST(DataTypeTest, SizesMatchTheProtocol) {
  EXPECT_EQ(DataTypeSize(DataType::kBool), 1);
  EXPECT_EQ(DataTypeSize(DataType::kFp16), 2);
  EXPECT_EQ(DataTypeSize(DataType::kBf16), 2);
  EXPECT_EQ(DataTypeSize(DataType::kFp32), 4);
  EXPECT_EQ(DataTypeSize(DataType::kInt64), 8);
  EXPECT_EQ(DataTypeSize(DataType::kBytes), 0);
}

TEST(DataTypeTest, UnknownNameIsAClearError) {
  auto type = DataTypeFromName("FLOAT32");
  ASSERT_FALSE(type.ok());
  EXPECT_NE(type.status().message().find("FLOAT32"), std::string::npos);
}

TEST(DataTypeTest, Classification) {
  EXPECT_TRUE(IsFloatingPoint(DataType::kBf16));
  EXPECT_FALSE(IsFloatingPoint(DataType::kInt8));
  EXPECT_TRUE(IsInteger(DataType::kUint64));
  EXPECT_FALSE(IsInteger(DataType::kBool));
  EXPECT_EQ(DataTypeOf<int64_t>(), DataType::kInt64);
}

}  // namespace
}  // namespace flywheel
