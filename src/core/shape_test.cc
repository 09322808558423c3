#include "core/shape.h"

#include "gtest/gtest.h"

namespace flywheel {
namespace {

TEST(ShapeTest, ElementsAndString) {
  Shape s{2, 3, 4};
  EXPECT_EQ(s.rank(), 3);
  EXPECT_EQ(s.NumElements(), 24);
  EXPECT_EQ(s.ToString(), "[2,3,4]");
  EXPECT_EQ(Shape{}.NumElements(), 1);
  EXPECT_FALSE((Shape{-1, 4}).IsFullyDefined());
}

TEST(ShapeTest, CheckedRefusesNegativeAndHugeShapes) {
  EXPECT_FALSE(Shape::Checked({2, -1}, "x").ok());
  auto huge = Shape::Checked({int64_t{1} << 31, int64_t{1} << 31}, "x");
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.status().message().find("too many elements"), std::string::npos);
  EXPECT_TRUE(Shape::Checked({0, int64_t{1} << 62}, "x").ok());
}

TEST(ShapeTest, BroadcastFollowsNumpy) {
  EXPECT_EQ(*BroadcastShapes({2, 3, 4}, {4}), (Shape{2, 3, 4}));
  EXPECT_EQ(*BroadcastShapes({2, 1, 4}, {3, 1}), (Shape{2, 3, 4}));
  EXPECT_EQ(*BroadcastShapes({}, {5}), (Shape{5}));
  EXPECT_EQ(*BroadcastShapes({0, 1}, {1, 3}), (Shape{0, 3}));
  auto bad = BroadcastShapes({2, 3}, {4});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("[2,3]"), std::string::npos);
}

}  // namespace
}  // namespace flywheel
