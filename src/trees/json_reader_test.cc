#include "trees/json_reader.h"

#include <cmath>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flywheel::trees {
namespace {

using ::testing::HasSubstr;

TEST(JsonReaderTest, ParsesObjectsArraysAndScalars) {
  auto doc = ParseJsonDoc(R"( {"a": "x\"y", "b": [1, 2.5, -3e2], "c": {"d": true, "e": null},
                              "f": [], "g": ["s", 1], "n": NaN, "i": -Infinity} )");
  ASSERT_TRUE(doc.ok()) << doc.status();
  const Value& root = doc->root();
  ASSERT_TRUE(root.is_object());
  EXPECT_EQ(root.Find("a")->string_value(), "x\"y");
  const Value* b = root.Find("b");
  EXPECT_EQ(b->kind(), Value::Kind::kNumberArray);
  ASSERT_EQ(b->NumberCount(), 3u);
  EXPECT_EQ(*b->NumberAt(0).ToInt64(), 1);
  EXPECT_EQ(*b->NumberAt(1).ToFloat(), 2.5f);
  EXPECT_EQ(*b->NumberAt(2).ToInt64(), -300);  // integral, written as a float
  EXPECT_TRUE(root.Find("c")->Find("d")->bool_value());
  EXPECT_EQ(root.Find("c")->Find("e")->kind(), Value::Kind::kNull);
  EXPECT_TRUE(root.Find("f")->IsNumberList());
  EXPECT_EQ(root.Find("f")->NumberCount(), 0u);
  const Value* g = root.Find("g");
  EXPECT_EQ(g->kind(), Value::Kind::kArray);
  EXPECT_FALSE(g->IsNumberList());
  EXPECT_EQ(*g->items()[1].number().ToInt64(), 1);
  EXPECT_TRUE(std::isnan(*root.Find("n")->number().ToFloat()));
  EXPECT_EQ(*root.Find("i")->number().ToFloat(), -INFINITY);
  EXPECT_EQ(root.Find("missing"), nullptr);
}

TEST(JsonReaderTest, FloatsParseExactlyFromText) {
  // Shortest round-trip texts of floats must give back the same float bits.
  auto doc = ParseJsonDoc("[0.50268286, 1E-45, 3.4028235E38, -0.0, 16777217]");
  ASSERT_TRUE(doc.ok());
  const Value& a = doc->root();
  EXPECT_EQ(*a.NumberAt(0).ToFloat(), 0.50268286f);
  EXPECT_EQ(*a.NumberAt(1).ToFloat(), 1e-45f);
  EXPECT_EQ(*a.NumberAt(2).ToFloat(), 3.4028235e38f);
  EXPECT_TRUE(std::signbit(*a.NumberAt(3).ToFloat()));
  EXPECT_EQ(*a.NumberAt(4).ToInt64(), 16777217);
}

TEST(JsonReaderTest, UnescapesStrings) {
  auto doc = ParseJsonDoc(std::string(R"(["a\"b\\c\/\n\t", "\u00e9\u20ac\ud83d\ude00", )") +
                          "\"caf\xc3\xa9\"]");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->root().items()[0].string_value(), "a\"b\\c/\n\t");
  EXPECT_EQ(doc->root().items()[1].string_value(), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  EXPECT_EQ(doc->root().items()[2].string_value(), "caf\xc3\xa9");
}

TEST(JsonReaderTest, MixedArraysKeepEveryElement) {
  auto doc = ParseJsonDoc(R"([1, 2, "x", 3])");
  ASSERT_TRUE(doc.ok());
  ASSERT_EQ(doc->root().items().size(), 4u);
  EXPECT_EQ(*doc->root().items()[0].number().ToInt64(), 1);
  EXPECT_EQ(*doc->root().items()[1].number().ToInt64(), 2);
  EXPECT_EQ(doc->root().items()[2].string_value(), "x");
  EXPECT_EQ(*doc->root().items()[3].number().ToInt64(), 3);
}

TEST(JsonReaderTest, NumberConversionsRefuseWhatDoesNotFit) {
  auto doc = ParseJsonDoc("[1.5, 1e39, 99999999999999999999]");
  ASSERT_TRUE(doc.ok());
  EXPECT_THAT(doc->root().NumberAt(0).ToInt64().status().message(),
              HasSubstr("1.5 is not an integer"));
  EXPECT_EQ(*doc->root().NumberAt(1).ToFloat(), INFINITY);
  EXPECT_FALSE(doc->root().NumberAt(2).ToInt64().ok());
}

TEST(JsonReaderTest, ErrorsNameTheOffset) {
  EXPECT_THAT(ParseJsonDoc(R"({"a": [1, 2)").status().message(), HasSubstr("invalid JSON at byte"));
  EXPECT_THAT(ParseJsonDoc("{} x").status().message(), HasSubstr("invalid JSON at byte 3"));
  EXPECT_THAT(ParseJsonDoc("{} x").status().message(),
              HasSubstr("unexpected text after the end of the document"));
  EXPECT_THAT(ParseJsonDoc(std::string("{}\0{}", 5)).status().message(),
              HasSubstr("invalid JSON at byte 2: unexpected text after the end"));
  EXPECT_THAT(ParseJsonDoc("\"\xff\"").status().message(), HasSubstr("invalid UTF-8"));
  EXPECT_THAT(ParseJsonDoc("[1,]").status().message(), HasSubstr("unexpected character ']'"));
  EXPECT_THAT(ParseJsonDoc("[01]").status().message(), HasSubstr("expected ',' or ']'"));
  EXPECT_THAT(ParseJsonDoc("[1.]").status().message(), HasSubstr("invalid JSON at byte"));
  EXPECT_THAT(ParseJsonDoc("{\"a\" 1}").status().message(), HasSubstr("expected ':'"));
  EXPECT_THAT(ParseJsonDoc("{1: 2}").status().message(), HasSubstr("expected a string key"));
  EXPECT_THAT(ParseJsonDoc("\"\\ud800\"").status().message(), HasSubstr("unpaired surrogate"));
  EXPECT_THAT(ParseJsonDoc("\"\\q\"").status().message(), HasSubstr("invalid escape"));
  EXPECT_THAT(ParseJsonDoc("\"ab").status().message(), HasSubstr("ends inside a string"));
  EXPECT_THAT(ParseJsonDoc("").status().message(), HasSubstr("ends where a value"));
}

TEST(JsonReaderTest, LimitsNesting) {
  std::string deep(kMaxDocDepth + 1, '[');
  deep += std::string(kMaxDocDepth + 1, ']');
  EXPECT_THAT(ParseJsonDoc(deep).status().message(), HasSubstr("nesting deeper than 64"));
  std::string ok(kMaxDocDepth, '[');
  ok += std::string(kMaxDocDepth, ']');
  EXPECT_TRUE(ParseJsonDoc(ok).ok());
}

}  // namespace
}  // namespace flywheel::trees
