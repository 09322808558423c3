#include "monitor/log_export.h"

#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "monitor/log_test_util.h"
#include "monitor/prediction_log.h"

namespace flywheel::monitor {
namespace {

using testing_util::Fp32;
using testing_util::MakeRecord;
using testing_util::TempDir;

const absl::Time kStart = absl::FromUnixSeconds(1714564800);  // 2024-05-01T12:00:00Z

class LogExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto log = PredictionLog::Create({.dir = dir_.path()});
    ASSERT_TRUE(log.ok()) << log.status();
    // Submitted out of time order, with a batch of two rows, BYTES, parameters and features.
    PredictionRecord second = MakeRecord("rank", 2, 5, kStart + absl::Seconds(1), "b");
    second.inputs[0].second = Fp32({1, 2, 3, 4}).Reshaped(Shape{2, 2});
    Tensor names = Tensor::Allocate(DataType::kBytes, Shape{2});
    names.strings() = {"comma, \"quoted\"", std::string("\xff", 1)};
    second.outputs.emplace_back("label", names);
    second.parameters["sampled"] = true;
    second.parameters["note"] = std::string("two\nlines");
    ASSERT_TRUE((*log)->Submit(std::move(second)));
    PredictionRecord first = MakeRecord("rank", 1, 1, kStart, "a");
    Tensor age = Tensor::Allocate(DataType::kInt64, Shape{1});
    age.data<int64_t>()[0] = 31;
    first.features.emplace_back("age", age);
    ASSERT_TRUE((*log)->Submit(std::move(first)));
    PredictionRecord other = MakeRecord("other", 1, 9, kStart + absl::Seconds(2), "c");
    ASSERT_TRUE((*log)->Submit(std::move(other)));
    (*log)->Close();
  }
  LogReaderOptions Options() {
    LogReaderOptions o;
    o.dir = dir_.path();
    return o;
  }
  TempDir dir_;
};

TEST_F(LogExportTest, CsvHasOneColumnPerElementAndOneRowPerRecord) {
  LogReaderOptions o = Options();
  o.model = "rank";
  std::ostringstream out;
  auto stats = ExportLog(o, LogExportFormat::kCsv, out);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->records, 2);
  EXPECT_EQ(stats->columns, 14);
  EXPECT_EQ(stats->values_outside_header, 0);
  EXPECT_EQ(out.str(),
            "id,time,model,version,input.x[0],input.x[1],input.x[2],input.x[3],feature.age[0],"
            "output.y[0],output.label[0],output.label[1],parameter.note,parameter.sampled\n"
            "a,2024-05-01T12:00:00.000000000Z,rank,1,1,2,,,31,1,,,,\n"
            "b,2024-05-01T12:00:01.000000000Z,rank,2,1,2,3,4,,5,\"comma, \"\"quoted\"\"\",b64:/w==,"
            "\"two\nlines\",true\n");
}

TEST_F(LogExportTest, JsonlIsTheLogLinesInTimeOrder) {
  std::ostringstream out;
  auto stats = ExportLog(Options(), LogExportFormat::kJsonl, out);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->records, 3);
  std::vector<std::string> lines;
  std::istringstream in(out.str());
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].rfind("{\"id\":\"a\",\"time\":\"2024-05-01T12:00:00.000000000Z\"", 0), 0u);
  EXPECT_EQ(lines[1].rfind("{\"id\":\"b\",", 0), 0u);
  EXPECT_EQ(lines[2].rfind("{\"id\":\"c\",", 0), 0u);
  EXPECT_NE(lines[0].find("\"features\":{\"age\":{\"datatype\":\"INT64\",\"shape\":[1],"
                          "\"data\":[31]}}"),
            std::string::npos);
}

TEST_F(LogExportTest, EmptySelectionIsAHeaderOnly) {
  LogReaderOptions o = Options();
  o.since = kStart + absl::Hours(1);
  std::ostringstream out;
  auto stats = ExportLog(o, LogExportFormat::kCsv, out);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->records, 0);
  EXPECT_EQ(out.str(), "id,time,model,version\n");
}

TEST(LogExportFormatTest, Names) {
  EXPECT_EQ(*ParseLogExportFormat("csv"), LogExportFormat::kCsv);
  EXPECT_EQ(*ParseLogExportFormat("jsonl"), LogExportFormat::kJsonl);
  EXPECT_EQ(*ParseLogExportFormat("jsonl-raw"), LogExportFormat::kJsonlRaw);
  auto bad = ParseLogExportFormat("parquet");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("jsonl, jsonl-raw, csv"), std::string::npos);
}

}  // namespace
}  // namespace flywheel::monitor
