#include "trees/ubjson_reader.h"

#include <cmath>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flywheel::trees {
namespace {

using ::testing::HasSubstr;

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s += static_cast<char>(c);
  return s;
}

TEST(UbjsonReaderTest, ParsesScalarsAndContainers) {
  // {"a": int8 -3, "bb": [$d#i 2 1.5f -2f], "c": [#U 2 'T' 'S' i1 "x"], "d": "hi",
  //  "e": 'N' 'Z', "f": [ H i3 "2.5" C 'q' ]}
  std::string s = "{";
  s += Bytes({'i', 1}) + "a" + Bytes({'i', 0xfd});
  s += Bytes({'i', 2}) + "bb" + "[$d#" + Bytes({'i', 2, 0x3f, 0xc0, 0, 0, 0xc0, 0, 0, 0});
  s += Bytes({'i', 1}) + "c" + "[#" + Bytes({'U', 2}) + "T" + "S" + Bytes({'i', 1}) + "x";
  s += Bytes({'i', 1}) + "d" + "S" + Bytes({'U', 2}) + "hi";
  s += Bytes({'i', 1}) + "e" + "NZ";
  s += Bytes({'i', 1}) + "f" + "[H" + Bytes({'i', 3}) + "2.5" + "Cq]";
  s += "}";
  auto doc = ParseUbjsonDoc(s);
  ASSERT_TRUE(doc.ok()) << doc.status();
  const Value& r = doc->root();
  EXPECT_EQ(*r.Find("a")->number().ToInt64(), -3);
  const Value* bb = r.Find("bb");
  ASSERT_EQ(bb->kind(), Value::Kind::kNumberArray);
  EXPECT_EQ(*bb->NumberAt(0).ToFloat(), 1.5f);
  EXPECT_EQ(*bb->NumberAt(1).ToFloat(), -2.0f);
  EXPECT_EQ(*bb->NumberAt(1).ToInt64(), -2);
  const Value* c = r.Find("c");
  ASSERT_EQ(c->items().size(), 2u);
  EXPECT_TRUE(c->items()[0].bool_value());
  EXPECT_EQ(c->items()[1].string_value(), "x");
  EXPECT_EQ(r.Find("d")->string_value(), "hi");
  EXPECT_EQ(r.Find("e")->kind(), Value::Kind::kNull);
  const Value* f = r.Find("f");
  ASSERT_EQ(f->items().size(), 2u);
  EXPECT_EQ(*f->items()[0].number().ToFloat(), 2.5f);
  EXPECT_EQ(f->items()[1].string_value(), "q");
}

TEST(UbjsonReaderTest, DecodesEveryIntegerWidthBigEndian) {
  std::string s =
      "[" + Bytes({'U', 0xff, 'I', 0xff, 0xfe, 'l', 0x80, 0, 0, 0}) +
      Bytes({'L', 0, 0, 0, 1, 0, 0, 0, 0, 'D', 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18}) +
      "]";
  auto doc = ParseUbjsonDoc(s);
  ASSERT_TRUE(doc.ok()) << doc.status();
  const Value& a = doc->root();
  ASSERT_TRUE(a.IsNumberList());
  EXPECT_EQ(*a.NumberAt(0).ToInt64(), 255);
  EXPECT_EQ(*a.NumberAt(1).ToInt64(), -2);
  EXPECT_EQ(*a.NumberAt(2).ToInt64(), INT32_MIN);
  EXPECT_EQ(*a.NumberAt(3).ToInt64(), int64_t{1} << 32);
  EXPECT_DOUBLE_EQ(*a.NumberAt(4).ToDouble(), 3.141592653589793);
}

TEST(UbjsonReaderTest, CountedObjectsAndTypedObjects) {
  std::string s = "{#" + Bytes({'i', 1, 'i', 1}) + "k" + "T";
  auto doc = ParseUbjsonDoc(s);
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_TRUE(doc->root().Find("k")->bool_value());
  std::string t = "{$l#" + Bytes({'i', 1, 'i', 1}) + "k" + Bytes({0, 0, 1, 0});
  doc = ParseUbjsonDoc(t);
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(*doc->root().Find("k")->number().ToInt64(), 256);
}

TEST(UbjsonReaderTest, RefusesMalformedInput) {
  auto msg = [](const std::string& s) { return std::string(ParseUbjsonDoc(s).status().message()); };
  EXPECT_THAT(msg(""), HasSubstr("file ends where a value was expected"));
  EXPECT_THAT(msg("x"), HasSubstr("invalid UBJSON at byte 0: unknown type marker 'x'"));
  EXPECT_THAT(msg("[i"), HasSubstr("file ends inside a 'i' number"));
  EXPECT_THAT(msg("S" + Bytes({'i', 0xff})), HasSubstr("negative length"));
  EXPECT_THAT(msg("S" + Bytes({'d', 0, 0, 0, 0})), HasSubstr("must be an integer"));
  EXPECT_THAT(msg("S" + Bytes({'i', 10}) + "abc"), HasSubstr("runs past the end of the file"));
  EXPECT_THAT(msg("[$d#" + Bytes({'l', 0x40, 0, 0, 0})), HasSubstr("runs past the end"));
  EXPECT_THAT(msg("[$d" + Bytes({'i', 1})), HasSubstr("must give a count"));
  EXPECT_THAT(msg("[$Z#" + Bytes({'i', 100})), HasSubstr("not supported"));
  EXPECT_THAT(msg("[#" + Bytes({'i', 100}) + "Z"), HasSubstr("runs past the end"));
  EXPECT_THAT(msg("[ZZ"), HasSubstr("no ']'"));
  EXPECT_THAT(msg("{" + Bytes({'i', 1}) + "k"), HasSubstr("file ends where a value"));
  EXPECT_THAT(msg("{"), HasSubstr("no '}'"));
  EXPECT_THAT(msg("ZZ"), HasSubstr("unexpected bytes after the end"));
  EXPECT_THAT(msg(std::string(kMaxDocDepth + 1, '[')), HasSubstr("nesting deeper than 64"));
  EXPECT_TRUE(ParseUbjsonDoc("ZNN").ok());
}

}  // namespace
}  // namespace flywheel::trees
