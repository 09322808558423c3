#include "core/npy.h"

#include <cstdio>
#include <filesystem>

#include "gtest/gtest.h"

namespace flywheel {
namespace {

TEST(NpyTest, WriteThenReadRoundTrips) {
  std::string path = (std::filesystem::temp_directory_path() / "fw_npy_test.npy").string();
  Tensor t = Tensor::Allocate(DataType::kInt64, Shape{2, 3});
  for (int i = 0; i < 6; ++i) t.data<int64_t>()[i] = i * 10 - 7;
  ASSERT_TRUE(WriteNpy(path, t).ok());
  auto back = ReadNpy(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->shape(), (Shape{2, 3}));
  EXPECT_EQ(back->dtype(), DataType::kInt64);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(back->data<int64_t>()[i], i * 10 - 7);
  std::remove(path.c_str());
}

TEST(NpyTest, ScalarAndOneDimensional) {
  std::string path = (std::filesystem::temp_directory_path() / "fw_npy_scalar.npy").string();
  for (Shape s : {Shape{}, Shape{5}}) {
    Tensor t = Tensor::Allocate(DataType::kFp32, s, true);
    ASSERT_TRUE(WriteNpy(path, t).ok());
    auto back = ReadNpy(path);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->shape(), s);
  }
  std::remove(path.c_str());
}

TEST(NpyTest, BrokenFilesGiveClearErrors) {
  EXPECT_NE(ParseNpy("hello", "f").status().message().find("bad magic"), std::string::npos);
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }";
  std::string file = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size()) + '\0' +
                     header + "abc";
  EXPECT_NE(ParseNpy(file, "f").status().message().find("truncated"), std::string::npos);
  std::string bad_type = "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }";
  std::string file2 = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(bad_type.size()) +
                      '\0' + bad_type + "12345678";
  EXPECT_NE(ParseNpy(file2, "f").status().message().find("unsupported"), std::string::npos);
  EXPECT_FALSE(ReadNpy("/nonexistent/x.npy").ok());
}

}  // namespace
}  // namespace flywheel
