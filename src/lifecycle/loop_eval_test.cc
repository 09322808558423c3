#include "lifecycle/loop_eval.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace flywheel::lifecycle {
namespace {

std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(ReadHoldoutTest, GroupsInputColumnsInOrder) {
  const std::string path = WriteFile("holdout.csv",
                                     "id,row,time,version,label,x:0,x:1,mask:0\n"
                                     "a,0,2024-05-01T00:00:00Z,1,1,0.5,1.5,1\n"
                                     "b,0,2024-05-01T00:00:01Z,1,0,NaN,-2,0\n");
  absl::StatusOr<Holdout> h = ReadHoldout(path);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->rows, 2);
  EXPECT_EQ(h->labels, (std::vector<double>{1, 0}));
  ASSERT_EQ(h->inputs.size(), 2u);
  EXPECT_EQ(h->inputs[0].name, "x");
  EXPECT_EQ(h->inputs[0].columns, (std::vector<std::string>{"x:0", "x:1"}));
  EXPECT_EQ(h->inputs[0].values[0], 0.5);
  EXPECT_EQ(h->inputs[0].values[1], 1.5);
  EXPECT_TRUE(std::isnan(h->inputs[0].values[2]));
  EXPECT_EQ(h->inputs[0].values[3], -2);
  EXPECT_EQ(h->inputs[1].name, "mask");
  EXPECT_EQ(h->inputs[1].values, (std::vector<double>{1, 0}));
}

TEST(ReadHoldoutTest, ErrorsNameTheProblem) {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"id,row,x:0\na,0,1\n", "no 'label' column"},
      {"id,row,label\na,0,1\n", "no input columns"},
      {"id,row,label,weird\na,0,1,2\n", "column 'weird'"},
      {"id,row,label,x:0\na,0,yes,2\n", "labels are not all numbers"},
      {"id,row,label,x:0\na,0,1,red\n", "column 'x:0' is not numeric"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Holdout> h = ReadHoldout(WriteFile("bad.csv", c.text));
    ASSERT_FALSE(h.ok()) << c.text;
    EXPECT_NE(std::string(h.status().message()).find(c.message), std::string::npos)
        << h.status() << " for " << c.text;
  }
  EXPECT_FALSE(ReadHoldout(::testing::TempDir() + "/missing.csv").ok());
}

TEST(MetricValueTest, ReadsTheMetricOrSaysWhyNot) {
  monitor::QualityReport report;
  report.version = "3";
  report.auc = 0.75;
  report.log_loss = 0.4;
  EXPECT_EQ(*MetricValue(report, GateMetric::kAuc), 0.75);
  EXPECT_EQ(*MetricValue(report, GateMetric::kLogLoss), 0.4);
  absl::StatusOr<double> mae = MetricValue(report, GateMetric::kMae);
  ASSERT_FALSE(mae.ok());
  EXPECT_NE(std::string(mae.status().message()).find("mae is not defined for version 3"),
            std::string::npos)
      << mae.status();
  EXPECT_TRUE(HigherIsBetter(GateMetric::kAuc));
  EXPECT_FALSE(HigherIsBetter(GateMetric::kRmse));
}

}  // namespace
}  // namespace flywheel::lifecycle
