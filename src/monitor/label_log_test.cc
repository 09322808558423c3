// The label log: lines round-trip, Monitoring::AddLabel logs every label with what the join
// knew, files rotate, a kill leaves readable files, and a full queue drops and counts.
#include "monitor/label_log.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "monitor/log_test_util.h"
#include "monitor/monitoring.h"

namespace flywheel::monitor {
namespace {

using testing_util::FakeClock;
using testing_util::Fp32;
using testing_util::LogFiles;
using testing_util::ReadAll;
using testing_util::TempDir;

std::vector<LabelRecord> ReadLabels(const std::string& dir, LogReadStats* stats = nullptr) {
  LogReaderOptions options;
  options.dir = dir;
  options.flat = true;
  auto read = ReadAll(options);
  std::vector<LabelRecord> out;
  for (const LogEntry& e : read.entries) {
    auto r = ParseLabelJson(e.line);
    EXPECT_TRUE(r.ok()) << r.status() << " in " << e.line;
    if (r.ok()) out.push_back(*r);
  }
  if (stats != nullptr) *stats = read.stats;
  return out;
}

TEST(LabelLogTest, LineRoundTrips) {
  const absl::Time t = absl::FromUnixNanos(1714564800123456789);
  for (double label : {0.0, 1.0, -2.5, 0.1, 1e-300, 123456789.123456789,
                       std::numeric_limits<double>::infinity(), std::nan("")}) {
    LabelRecord r{.request_id = "req,\"42\"\n",
                  .row = 7,
                  .label = label,
                  .time = t,
                  .model = "rank",
                  .version = "3"};
    std::string line;
    AppendLabelJson(r, &line);
    ASSERT_EQ(line.back(), '\n');
    line.pop_back();
    auto back = ParseLabelJson(line);
    ASSERT_TRUE(back.ok()) << back.status() << " " << line;
    EXPECT_EQ(back->request_id, r.request_id);
    EXPECT_EQ(back->row, 7);
    if (std::isnan(label)) {
      EXPECT_TRUE(std::isnan(back->label));
    } else {
      EXPECT_EQ(back->label, label) << line;  // bit for bit
    }
    EXPECT_EQ(back->time, t);
    EXPECT_EQ(back->model, "rank");
    EXPECT_EQ(back->version, "3");
  }
  // Not UTF-8: base64, and back to the same bytes; no model or version: keys left out.
  LabelRecord bytes{.request_id = std::string("\xff\xfe\x00z", 4), .row = 0, .label = 1, .time = t};
  std::string line;
  AppendLabelJson(bytes, &line);
  EXPECT_NE(line.find("\"b64\""), std::string::npos);
  EXPECT_EQ(line.find("model"), std::string::npos);
  EXPECT_EQ(line.find("version"), std::string::npos);
  auto back = ParseLabelJson(line);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->request_id, bytes.request_id);
  EXPECT_TRUE(back->model.empty());
  EXPECT_TRUE(back->version.empty());
}

TEST(LabelLogTest, BadLinesAreErrors) {
  for (const char* line :
       {"", "[1]", "{\"row\":0,\"label\":1,\"time\":\"2024-05-01T00:00:00Z\"}",
        "{\"id\":\"a\",\"row\":-1,\"label\":1,\"time\":\"2024-05-01T00:00:00Z\"}",
        "{\"id\":\"a\",\"row\":0,\"label\":\"x\",\"time\":\"2024-05-01T00:00:00Z\"}",
        "{\"id\":\"a\",\"row\":0,\"label\":1,\"time\":\"yesterday\"}", "{\"id\":\"a\",\"row\":0"}) {
    EXPECT_FALSE(ParseLabelJson(line).ok()) << line;
  }
}

TEST(LabelLogTest, SubmittedLabelsReadBackInOrder) {
  TempDir dir;
  auto log = LabelLog::Create({.dir = dir.path() + "/.labels"});
  ASSERT_TRUE(log.ok()) << log.status();
  const absl::Time t0 = absl::FromUnixSeconds(1714564800);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE((*log)->Submit({.request_id = absl::StrCat("r", i),
                                .row = i % 3,
                                .label = i * 0.5,
                                .time = t0 + absl::Seconds(i)}));
  }
  (*log)->Flush();
  EXPECT_EQ((*log)->Stats().written, 100);
  EXPECT_EQ((*log)->Stats().queued, 0);
  (*log)->Close();
  EXPECT_FALSE((*log)->Submit({.request_id = "late"}));
  EXPECT_EQ((*log)->Stats().dropped, 1);
  const auto labels = ReadLabels(dir.path() + "/.labels");
  ASSERT_EQ(labels.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(labels[i].request_id, absl::StrCat("r", i));
    EXPECT_EQ(labels[i].row, i % 3);
    EXPECT_EQ(labels[i].label, i * 0.5);
  }
  // The prediction log's reader does not take the hidden folder for a model.
  EXPECT_TRUE(ReadAll(dir.path()).entries.empty());
}

TEST(LabelLogTest, RotatesBySizeAndAge) {
  TempDir dir;
  FakeClock clock(absl::FromUnixSeconds(1714564800));
  auto log = LabelLog::Create({.dir = dir.path(),
                               .max_file_bytes = 200,
                               .max_file_age = absl::Minutes(10),
                               .flush_interval = absl::Milliseconds(5),
                               // Byte sizes as written, without direct I/O's 4 KiB padding.
                               .direct_io = false,
                               .clock = [&clock] { return clock.Now(); }});
  ASSERT_TRUE(log.ok()) << log.status();
  // Each flush is one frame; a file takes frames until the next would pass 200 bytes.
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE((*log)->Submit({.request_id = absl::StrCat("size-", i), .label = 1}));
    (*log)->Flush();
  }
  const size_t by_size = LogFiles(dir.path()).size();
  EXPECT_GE(by_size, 3u);
  for (const std::string& f : LogFiles(dir.path())) {
    // A file passes the bound only when its one frame does.
    EXPECT_LE(std::filesystem::file_size(f), 200u) << f;
  }
  clock.Advance(absl::Minutes(11));
  ASSERT_TRUE((*log)->Submit({.request_id = "after-an-hour", .label = 0}));
  (*log)->Flush();
  (*log)->Close();
  EXPECT_EQ(LogFiles(dir.path()).size(), by_size + 1);
  EXPECT_EQ(ReadLabels(dir.path()).size(), 11u);
}

TEST(LabelLogTest, FullQueueDropsAndCounts) {
  TempDir dir;
  std::atomic<bool> release{false};
  auto log = LabelLog::Create({.dir = dir.path(),
                               .queue_capacity = 8,
                               .flush_interval = absl::Milliseconds(1),
                               .before_write = [&](const std::string&) {
                                 while (!release.load()) absl::SleepFor(absl::Milliseconds(1));
                                 return absl::OkStatus();
                               }});
  ASSERT_TRUE(log.ok()) << log.status();
  int accepted = 0;
  for (int i = 0; i < 100; ++i) accepted += (*log)->Submit({.request_id = "x", .label = 1});
  EXPECT_EQ(accepted, 8);
  EXPECT_EQ((*log)->Stats().dropped, 92);
  release = true;
  (*log)->Close();
  EXPECT_EQ((*log)->Stats().written, 8);
  EXPECT_EQ(ReadLabels(dir.path()).size(), 8u);
}

TEST(LabelLogTest, WriteErrorsCountLabelsAsFailed) {
  TempDir dir;
  auto log = LabelLog::Create({.dir = dir.path(), .before_write = [](const std::string&) {
                                 return absl::UnavailableError("disk full");
                               }});
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE((*log)->Submit({.request_id = "a", .label = 1}));
  (*log)->Close();
  EXPECT_EQ((*log)->Stats().failed, 1);
  EXPECT_EQ((*log)->Stats().written, 0);
  EXPECT_GE((*log)->Stats().write_errors, 1);
}

TEST(LabelLogTest, TruncatedFileReadsUpToItsLastFrameAndBadLinesAreCounted) {
  TempDir dir;
  {
    // Buffered, so that cutting bytes off the end cuts into the last frame (not its padding).
    auto log = LabelLog::Create({.dir = dir.path(), .direct_io = false});
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE((*log)->Submit({.request_id = absl::StrCat("a", i), .label = 1}));
    }
    (*log)->Flush();  // frame 1: three labels
    ASSERT_TRUE((*log)->Submit({.request_id = "b", .label = 0}));
    (*log)->Close();  // frame 2: one label
  }
  const auto files = LogFiles(dir.path());
  ASSERT_EQ(files.size(), 1u);
  // A process killed in the middle of its second frame.
  const auto size = std::filesystem::file_size(files[0]);
  std::filesystem::resize_file(files[0], size - 5);
  LogReadStats stats;
  auto labels = ReadLabels(dir.path(), &stats);
  ASSERT_EQ(labels.size(), 3u);
  EXPECT_EQ(labels[2].request_id, "a2");
  EXPECT_EQ(stats.truncated_frames, 1);
  EXPECT_EQ(stats.bad_lines, 0);
}

TEST(LabelLogTest, MonitoringLogsEveryLabelWithWhatTheJoinKnew) {
  TempDir dir;
  MonitoringOptions options;
  options.log_dir = dir.path();
  options.drift = false;
  auto monitoring = Monitoring::Create(options);
  ASSERT_TRUE(monitoring.ok()) << monitoring.status();
  auto vm = (*monitoring)->OnVersionLoaded({"rank", "3", "", {}, {"y"}});
  ASSERT_TRUE(vm.ok()) << vm.status();
  Tensor x = Fp32({1, 2});
  Tensor y = Tensor::Allocate(DataType::kFp32, Shape{2, 1});
  y.data<float>()[0] = 0.9f;
  y.data<float>()[1] = 0.1f;
  const TensorRef in[] = {{"x", &x}};
  const TensorRef out[] = {{"y", &y}};
  (*vm)->Observe("req-1", in, out, nullptr);
  const absl::Time now = absl::Now();
  EXPECT_EQ((*monitoring)->AddLabel("req-1", 0, 1, now), LabelOutcome::kJoined);
  EXPECT_EQ((*monitoring)->AddLabel("req-1", 0, 0, now), LabelOutcome::kDuplicate);
  EXPECT_EQ((*monitoring)->AddLabel("req-1", 1, std::nan(""), now), LabelOutcome::kInvalid);
  EXPECT_EQ((*monitoring)->AddLabel("nobody", 0, 1, now), LabelOutcome::kUnknown);
  ASSERT_NE((*monitoring)->label_log(), nullptr);
  (*monitoring)->label_log()->Flush();
  const auto labels = ReadLabels(dir.path() + "/.labels");
  ASSERT_EQ(labels.size(), 4u);
  EXPECT_EQ(labels[0].model, "rank");
  EXPECT_EQ(labels[0].version, "3");
  EXPECT_TRUE(labels[1].model.empty());  // a duplicate: the join no longer holds the prediction
  EXPECT_EQ(labels[2].model, "rank");    // invalid, but its prediction was found
  EXPECT_TRUE(std::isnan(labels[2].label));
  EXPECT_EQ(labels[3].request_id, "nobody");
  EXPECT_TRUE(labels[3].model.empty());

  // Metrics: written and dropped.
  struct Collector : SampleWriter {
    std::map<std::string, double> values;
    void Add(const std::string& name, const std::string&, const std::string&, const Labels& labels,
             double value) override {
      std::string key = name;
      for (const auto& [k, v] : labels) key += "{" + k + "=" + v + "}";
      values[key] = value;
    }
    void AddHistogram(const std::string&, const std::string&, const Labels&,
                      const Histogram::Snapshot&) override {}
  } collector;
  (*monitoring)->Collect(collector);
  EXPECT_EQ(collector.values["flywheel_label_log_records_total{outcome=written}"], 4);
  EXPECT_EQ(collector.values["flywheel_label_log_records_total{outcome=dropped}"], 0);
}

TEST(LabelLogTest, NoLogDirNoLabelLog) {
  auto monitoring = Monitoring::Create({});
  ASSERT_TRUE(monitoring.ok());
  EXPECT_EQ((*monitoring)->label_log(), nullptr);
  EXPECT_EQ((*monitoring)->AddLabel("a", 0, 1), LabelOutcome::kUnknown);
}

}  // namespace
}  // namespace flywheel::monitor
