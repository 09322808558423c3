#include "monitor/csv_table.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flywheel::monitor {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(CsvTest, NumericAndCategoricalColumns) {
  auto table = ParseCsv(
      "age,city,score\r\n"
      "31,Paris,0.5\r\n"
      "\r\n"
      ",\"Lyon, FR\",nan\n"
      "45,\"say \"\"hi\"\"\",1e3\n"
      "27,\"two\nlines\", 2 ",
      "t.csv");
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->columns.size(), 3u);
  EXPECT_EQ(table->rows, 4u);
  EXPECT_EQ(table->columns[0].name, "age");
  EXPECT_TRUE(table->columns[0].numeric);
  const std::vector<double> ages = table->columns[0].Numbers();
  EXPECT_EQ(ages[0], 31);
  EXPECT_TRUE(std::isnan(ages[1]));
  EXPECT_FALSE(table->columns[1].numeric);
  EXPECT_THAT(table->columns[1].cells,
              ElementsAre("Paris", "Lyon, FR", "say \"hi\"", "two\nlines"));
  EXPECT_TRUE(table->columns[2].numeric);
  EXPECT_EQ(table->columns[2].Numbers()[3], 2);
}

TEST(CsvTest, ErrorsNameFileAndLine) {
  EXPECT_THAT(ParseCsv("", "t.csv").status().message(), HasSubstr("t.csv: empty"));
  EXPECT_THAT(ParseCsv("a,b\n1,2\n3\n", "t.csv").status().message(),
              HasSubstr("t.csv: line 3: 1 fields, expected 2"));
  EXPECT_THAT(ParseCsv("a,a\n", "t.csv").status().message(), HasSubstr("column 'a' appears twice"));
  EXPECT_THAT(ParseCsv("a,\n", "t.csv").status().message(), HasSubstr("column 2 has no name"));
  EXPECT_THAT(ParseCsv("a\n\"open\n", "t.csv").status().message(),
              HasSubstr("t.csv: line 2: a quoted field is not closed"));
  EXPECT_THAT(ParseCsv("a\nx\"y\n", "t.csv").status().message(),
              HasSubstr("line 2: a quote inside an unquoted field"));
  EXPECT_TRUE(absl::IsNotFound(ReadCsv("/nonexistent/t.csv").status()));
}

}  // namespace
}  // namespace flywheel::monitor
