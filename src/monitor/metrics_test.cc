#include "monitor/metrics.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flywheel::monitor {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, CounterWithLabelsRendersExactly) {
  Registry registry;
  auto& requests = registry.AddCounter("nv_inference_request_success", "Successful requests");
  requests.WithLabels({{"version", "1"}, {"model", "rank"}}).Increment();
  requests.WithLabels({{"model", "rank"}, {"version", "1"}}).Increment(2);
  requests.WithLabels({{"model", "ads"}, {"version", "3"}}).Increment(0.5);
  EXPECT_EQ(registry.Render(),
            "# HELP nv_inference_request_success Successful requests\n"
            "# TYPE nv_inference_request_success counter\n"
            "nv_inference_request_success{model=\"ads\",version=\"3\"} 0.5\n"
            "nv_inference_request_success{model=\"rank\",version=\"1\"} 3\n");
}

TEST(MetricsTest, CounterRefusesNegativeAndNanSteps) {
  Counter c;
  c.Increment(4);
  c.Increment(-1);
  c.Increment(std::nan(""));
  EXPECT_EQ(c.Value(), 4);
}

TEST(MetricsTest, GaugeWithoutLabelsAndSpecialValues) {
  Registry registry;
  auto& g = registry.AddGauge("queue_depth", "Requests waiting");
  g.WithLabels({}).Set(7);
  g.WithLabels({}).Add(-9);
  auto& s = registry.AddGauge("special", "Odd values");
  s.WithLabels({{"k", "inf"}}).Set(std::numeric_limits<double>::infinity());
  s.WithLabels({{"k", "minf"}}).Set(-std::numeric_limits<double>::infinity());
  s.WithLabels({{"k", "nan"}}).Set(std::nan(""));
  s.WithLabels({{"k", "small"}}).Set(1.5e-7);
  s.WithLabels({{"k", "tenth"}}).Set(0.0001);
  s.WithLabels({{"k", "third"}}).Set(1.0 / 3);
  s.WithLabels({{"k", "neg"}}).Set(-2.5e25);
  s.WithLabels({{"k", "big"}}).Set(1e300);
  s.WithLabels({{"k", "int"}}).Set(123456789012);
  EXPECT_EQ(registry.Render(),
            "# HELP queue_depth Requests waiting\n"
            "# TYPE queue_depth gauge\n"
            "queue_depth -2\n"
            "# HELP special Odd values\n"
            "# TYPE special gauge\n"
            "special{k=\"big\"} 1e+300\n"
            "special{k=\"inf\"} +Inf\n"
            "special{k=\"int\"} 123456789012\n"
            "special{k=\"minf\"} -Inf\n"
            "special{k=\"nan\"} NaN\n"
            "special{k=\"neg\"} -2.5e+25\n"
            "special{k=\"small\"} 1.5e-07\n"
            "special{k=\"tenth\"} 0.0001\n"
            "special{k=\"third\"} 0.3333333333333333\n");
}

TEST(MetricsTest, HistogramRendersCumulativeBuckets) {
  Registry registry;
  auto& latency = registry.AddHistogram("latency_us", "Request latency", {10, 1, 2.5, 1});
  Histogram& h = latency.WithLabels({{"model", "m"}});
  h.Observe(0.5);
  h.Observe(1);  // bounds are inclusive ("le")
  h.Observe(2);
  h.Observe(100);
  EXPECT_EQ(registry.Render(),
            "# HELP latency_us Request latency\n"
            "# TYPE latency_us histogram\n"
            "latency_us_bucket{model=\"m\",le=\"1\"} 2\n"
            "latency_us_bucket{model=\"m\",le=\"2.5\"} 3\n"
            "latency_us_bucket{model=\"m\",le=\"10\"} 3\n"
            "latency_us_bucket{model=\"m\",le=\"+Inf\"} 4\n"
            "latency_us_sum{model=\"m\"} 103.5\n"
            "latency_us_count{model=\"m\"} 4\n");
}

TEST(MetricsTest, HistogramSnapshotAndNan) {
  Histogram h({1, 2});
  h.Observe(std::nan(""));
  h.Observe(1.5);
  Histogram::Snapshot snap = h.Snap();
  EXPECT_EQ(snap.upper_bounds, (std::vector<double>{1, 2}));
  EXPECT_EQ(snap.cumulative_counts, (std::vector<uint64_t>{0, 1, 2}));
  EXPECT_EQ(snap.count, 2u);
}

TEST(MetricsTest, LatencyBoundsAreIncreasingFrom100usTo10s) {
  std::vector<double> bounds = Histogram::LatencyBoundsUs();
  ASSERT_FALSE(bounds.empty());
  EXPECT_EQ(bounds.front(), 100);
  EXPECT_EQ(bounds.back(), 10e6);
  for (size_t i = 1; i < bounds.size(); ++i) EXPECT_GT(bounds[i], bounds[i - 1]);
}

TEST(MetricsTest, EscapesHelpAndLabelValues) {
  Registry registry;
  auto& c = registry.AddCounter("escaped_total", "a \\ back\nslash \"quoted\"");
  c.WithLabels({{"path", "C:\\dir\n\"x\""}}).Increment();
  EXPECT_EQ(registry.Render(),
            "# HELP escaped_total a \\\\ back\\nslash \"quoted\"\n"
            "# TYPE escaped_total counter\n"
            "escaped_total{path=\"C:\\\\dir\\n\\\"x\\\"\"} 1\n");
}

TEST(MetricsTest, InvalidNamesAreSanitized) {
  Registry registry;
  registry.AddGauge("bad-name.x", "h").WithLabels({{"9 label", "v"}}).Set(1);
  EXPECT_EQ(registry.Render(),
            "# HELP bad_name_x h\n"
            "# TYPE bad_name_x gauge\n"
            "bad_name_x{__label=\"v\"} 1\n");
}

TEST(MetricsTest, FamiliesSortedAndEmptyFamilyKeepsHeader) {
  Registry registry;
  registry.AddGauge("zeta", "last").WithLabels({}).Set(1);
  registry.AddCounter("alpha_total", "first");
  registry.AddHistogram("mid", "middle", {1});
  EXPECT_EQ(registry.Render(),
            "# HELP alpha_total first\n"
            "# TYPE alpha_total counter\n"
            "# HELP mid middle\n"
            "# TYPE mid histogram\n"
            "# HELP zeta last\n"
            "# TYPE zeta gauge\n"
            "zeta 1\n");
}

TEST(MetricsTest, AddingNameTwiceReturnsSameFamily) {
  Registry registry;
  auto& a = registry.AddCounter("x_total", "h");
  auto& b = registry.AddCounter("x_total", "h");
  EXPECT_EQ(&a, &b);
  // Another type under a taken name works for the caller but is not exposed.
  auto& g = registry.AddGauge("x_total", "h");
  g.WithLabels({}).Set(5);
  EXPECT_EQ(g.WithLabels({}).Value(), 5);
  EXPECT_EQ(registry.Render(), "# HELP x_total h\n# TYPE x_total counter\n");
}

TEST(MetricsTest, RemoveDropsChild) {
  Registry registry;
  auto& c = registry.AddCounter("r_total", "h");
  c.WithLabels({{"m", "a"}}).Increment();
  c.WithLabels({{"m", "b"}}).Increment();
  c.Remove({{"m", "a"}});
  c.Remove({{"m", "missing"}});
  EXPECT_EQ(registry.Render(), "# HELP r_total h\n# TYPE r_total counter\nr_total{m=\"b\"} 1\n");
  // A removed label set starts again from zero.
  c.WithLabels({{"m", "a"}}).Increment(3);
  EXPECT_THAT(registry.Render(), HasSubstr("r_total{m=\"a\"} 3\n"));
}

TEST(MetricsTest, ConcurrentUpdatesGiveExactTotals) {
  Registry registry;
  auto& counter = registry.AddCounter("c_total", "h");
  auto& gauge = registry.AddGauge("g", "h");
  auto& hist = registry.AddHistogram("h", "h", {5});
  constexpr int kThreads = 8, kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        counter.WithLabels({{"t", std::to_string(t % 2)}}).Increment();
        gauge.WithLabels({}).Add(2);
        hist.WithLabels({}).Observe(i % 10);
      }
    });
  }
  // Scrapes racing with updates must not crash or tear.
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(registry.Render().empty());
  for (auto& th : threads) th.join();
  EXPECT_EQ(counter.WithLabels({{"t", "0"}}).Value(), kThreads / 2 * kPerThread);
  EXPECT_EQ(counter.WithLabels({{"t", "1"}}).Value(), kThreads / 2 * kPerThread);
  EXPECT_EQ(gauge.WithLabels({}).Value(), 2.0 * kThreads * kPerThread);
  Histogram::Snapshot snap = hist.WithLabels({}).Snap();
  EXPECT_EQ(snap.count, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(snap.cumulative_counts[0], static_cast<uint64_t>(kThreads * kPerThread * 6 / 10));
  EXPECT_EQ(snap.sum, 45.0 * kThreads * kPerThread / 10);
}

TEST(MetricsTest, CollectorsAppendAtScrapeAndCanBeRemoved) {
  Registry registry;
  registry.AddGauge("b_gauge", "registered").WithLabels({}).Set(1);
  int calls = 0;
  int id = registry.AddCollector([&calls](SampleWriter& out) {
    ++calls;
    out.Add("a_depth", "from collector", "gauge", {{"q", "1"}}, 3);
    out.Add("a_depth", "ignored second help", "gauge", {{"q", "2"}}, 4);
    out.Add("c_total", "counted", "counter", {}, calls);
    out.Add("b_gauge", "clash", "counter", {}, 9);  // type clash with the family: dropped
  });
  EXPECT_EQ(registry.Render(),
            "# HELP a_depth from collector\n"
            "# TYPE a_depth gauge\n"
            "a_depth{q=\"1\"} 3\n"
            "a_depth{q=\"2\"} 4\n"
            "# HELP b_gauge registered\n"
            "# TYPE b_gauge gauge\n"
            "b_gauge 1\n"
            "# HELP c_total counted\n"
            "# TYPE c_total counter\n"
            "c_total 1\n");
  EXPECT_THAT(registry.Render(), HasSubstr("c_total 2\n"));
  registry.RemoveCollector(id);
  EXPECT_EQ(registry.Render(), "# HELP b_gauge registered\n# TYPE b_gauge gauge\nb_gauge 1\n");
  EXPECT_EQ(calls, 2);
}

TEST(MetricsTest, CollectorHistogramRendersUnderOneHeader) {
  Registry registry;
  Histogram h({1, 2});
  h.Observe(0.5);
  h.Observe(5);
  registry.AddCollector([&h](SampleWriter& out) {
    out.AddHistogram("pool_wait_seconds", "Wait", {{"pool", "a"}}, h.Snap());
    out.AddHistogram("pool_wait_seconds", "Wait", {{"pool", "b"}}, Histogram({1}).Snap());
  });
  EXPECT_EQ(registry.Render(),
            "# HELP pool_wait_seconds Wait\n"
            "# TYPE pool_wait_seconds histogram\n"
            "pool_wait_seconds_bucket{pool=\"a\",le=\"1\"} 1\n"
            "pool_wait_seconds_bucket{pool=\"a\",le=\"2\"} 1\n"
            "pool_wait_seconds_bucket{pool=\"a\",le=\"+Inf\"} 2\n"
            "pool_wait_seconds_sum{pool=\"a\"} 5.5\n"
            "pool_wait_seconds_count{pool=\"a\"} 2\n"
            "pool_wait_seconds_bucket{pool=\"b\",le=\"1\"} 0\n"
            "pool_wait_seconds_bucket{pool=\"b\",le=\"+Inf\"} 0\n"
            "pool_wait_seconds_sum{pool=\"b\"} 0\n"
            "pool_wait_seconds_count{pool=\"b\"} 0\n");
}

double SampleValue(const std::string& text, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.substr(0, name.size() + 1) == name + " ") {
      return std::stod(std::string(line.substr(name.size() + 1)));
    }
  }
  ADD_FAILURE() << "no sample " << name << " in\n" << text;
  return -1;
}

TEST(MetricsTest, ProcessCollectorReportsPlausibleValues) {
  Registry registry;
  AddProcessCollector(registry);
  std::vector<char> touched(8 << 20, 1);  // make sure some memory is resident
  std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("# TYPE process_cpu_seconds_total counter\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE process_resident_memory_bytes gauge\n"));
  double rss = SampleValue(text, "process_resident_memory_bytes");
  double vsize = SampleValue(text, "process_virtual_memory_bytes");
  EXPECT_GT(rss, 8 << 20);
  EXPECT_GE(vsize, rss);
  EXPECT_GE(SampleValue(text, "process_cpu_seconds_total"), 0);
  EXPECT_GT(SampleValue(text, "process_open_fds"), 0);
  EXPECT_GE(SampleValue(text, "process_max_fds"), SampleValue(text, "process_open_fds"));
  double start = SampleValue(text, "process_start_time_seconds");
  double now = static_cast<double>(time(nullptr));
  EXPECT_GT(start, now - 24 * 3600 * 365.0);
  EXPECT_LE(start, now + 1);
  EXPECT_GT(touched[touched.size() / 2], 0);
}

// Runs `promtool check metrics` (Prometheus' own parser and linter) on text; returns its exit
// status and fills output with what it printed.
int RunPromtool(const std::string& promtool, const std::string& text, std::string& output) {
  char out_path[] = "/tmp/flywheel_promtool_XXXXXX";
  int fd = mkstemp(out_path);
  if (fd < 0) return -1;
  close(fd);
  std::string command = promtool + " check metrics > " + out_path + " 2>&1";
  FILE* pipe = popen(command.c_str(), "w");
  if (pipe == nullptr) return -1;
  fwrite(text.data(), 1, text.size(), pipe);
  int status = pclose(pipe);
  std::ifstream in(out_path);
  std::ostringstream printed;
  printed << in.rdbuf();
  output = printed.str();
  unlink(out_path);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(MetricsTest, PromtoolAcceptsRenderedRegistry) {
  const std::string promtool = "/usr/bin/promtool";
  ASSERT_EQ(access(promtool.c_str(), X_OK), 0)
      << promtool << " not found: it comes with the Debian 'prometheus' package; run "
      << "scripts/install-deps.sh";
  Registry registry;
  AddProcessCollector(registry);
  auto& requests = registry.AddCounter("flywheel_requests_total", "Requests by \\model\n");
  requests.WithLabels({{"model", "rank"}, {"version", "1"}}).Increment(3);
  requests.WithLabels({{"model", "we\"ird\\na\nme"}, {"version", "2"}}).Increment(0.25);
  registry.AddCounter("flywheel_unused_total", "Never incremented");
  auto& gauge = registry.AddGauge("flywheel_queue_size", "Odd values");
  gauge.WithLabels({{"k", "inf"}}).Set(std::numeric_limits<double>::infinity());
  gauge.WithLabels({{"k", "minf"}}).Set(-std::numeric_limits<double>::infinity());
  gauge.WithLabels({{"k", "nan"}}).Set(std::nan(""));
  gauge.WithLabels({{"k", "tiny"}}).Set(-1.25e-300);
  gauge.WithLabels({{"k", "huge"}}).Set(1.7e308);
  auto& latency = registry.AddHistogram("flywheel_request_duration_seconds", "Latency",
                                        {0.0001, 0.00025, 0.5, 1, 1e10});
  latency.WithLabels({}).Observe(0.0002);
  latency.WithLabels({{"model", "rank"}}).Observe(3);
  registry.AddCollector([](SampleWriter& out) {
    out.Add("flywheel_pending_requests", "From a collector", "gauge", {{"model", "a"}}, 2);
    out.Add("flywheel_pending_requests", "From a collector", "gauge", {{"model", "b"}}, 0);
  });
  std::string text = registry.Render();
  std::string output;
  int rc = RunPromtool(promtool, text, output);
  EXPECT_EQ(rc, 0) << "promtool check metrics says:\n" << output << "\non:\n" << text;
  EXPECT_EQ(output, "") << text;
}

TEST(MetricsTest, PromtoolRejectsBrokenText) {
  // Guards the check above: promtool really parses what it is given.
  std::string output;
  int rc = RunPromtool("/usr/bin/promtool", "# TYPE x_total counter\nx_total{a=\"b} 1\n", output);
  EXPECT_NE(rc, 0);
  EXPECT_THAT(output, HasSubstr("parsing error"));
}

}  // namespace
}  // namespace flywheel::monitor
