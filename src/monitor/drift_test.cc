#include "monitor/drift.h"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"

// Counts heap allocations, so that a test can assert that Observe makes none. Not under
// AddressSanitizer, whose own operator new variants must pair with its own deletes. GCC takes the
// free() in the replaced delete for a mismatch once it inlines both into one function.
#if defined(__SANITIZE_ADDRESS__)
#define FW_TEST_COUNTS_ALLOCATIONS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FW_TEST_COUNTS_ALLOCATIONS 0
#endif
#endif
#ifndef FW_TEST_COUNTS_ALLOCATIONS
#define FW_TEST_COUNTS_ALLOCATIONS 1
#endif
namespace {
std::atomic<int64_t> heap_allocations{0};
}  // namespace
#if FW_TEST_COUNTS_ALLOCATIONS
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(size_t n) {
  heap_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
#endif

namespace flywheel::monitor {
namespace {

using ::testing::HasSubstr;

constexpr int kFeatures = 4;
const char* const kCountries[] = {"US", "FR", "DE", "JP"};

// Requests of a synthetic model: x FP32 [batch, 4] ~ N(mean, 1) per column, country BYTES
// [batch] and an output score FP32 [batch, 1].
class Stream {
 public:
  explicit Stream(uint64_t seed, int batch = 4) : rng_(seed), batch_(batch) {
    x_ = Tensor::Allocate(DataType::kFp32, Shape{batch, kFeatures});
    country_ = Tensor::Allocate(DataType::kBytes, Shape{batch});
    score_ = Tensor::Allocate(DataType::kFp32, Shape{batch, 1});
  }
  // Fills the next request: column 0's mean moves by `shift`; `country_weights` picks countries.
  void Next(double shift = 0, std::vector<double> country_weights = {0.5, 0.3, 0.2, 0}) {
    std::discrete_distribution<int> pick(country_weights.begin(), country_weights.end());
    for (int r = 0; r < batch_; ++r) {
      for (int j = 0; j < kFeatures; ++j) {
        x_.data<float>()[r * kFeatures + j] =
            static_cast<float>(normal_(rng_) + (j == 0 ? shift : 0.0));
      }
      country_.strings()[r] = kCountries[pick(rng_)];
      score_.data<float>()[r] = static_cast<float>(uniform_(rng_));
    }
  }
  void ObserveInto(DriftMonitor& m, int64_t now_ns = 1) {
    const TensorRef in[] = {{"x", &x_}, {"country", &country_}};
    const TensorRef out[] = {{"score", &score_}};
    m.Observe(in, out, now_ns);
  }
  int batch() const { return batch_; }
  Tensor x_, country_, score_;

 private:
  std::mt19937_64 rng_;
  std::normal_distribution<double> normal_;
  std::uniform_real_distribution<double> uniform_;
  int batch_;
};

ReferenceProfile MakeProfile() {
  Stream s(1, 20000);
  s.Next();
  ReferenceProfile profile;
  profile.model = "m";
  profile.version = 1;
  for (auto [tensor, name, role] : {std::tuple{&s.x_, "x", FeatureRole::kInput},
                                    std::tuple{&s.country_, "country", FeatureRole::kInput},
                                    std::tuple{&s.score_, "score", FeatureRole::kOutput}}) {
    auto features = ProfileTensor(*tensor, name, role, {}, {}, ProfileOptions{});
    EXPECT_TRUE(features.ok()) << features.status();
    for (auto& f : *features) profile.features.push_back(std::move(f));
  }
  profile.rows = 20000;
  EXPECT_TRUE(ValidateProfile(profile, "test").ok());
  return profile;
}

DriftOptions TestOptions() {
  DriftOptions o;
  o.window.rows = 2000;
  o.window.buckets = 10;
  o.max_rows_per_second = 0;  // every row
  o.min_rows = 500;
  return o;
}

const FeatureDrift& Feature(const DriftReport& r, const std::string& name) {
  for (const FeatureDrift& f : r.features) {
    if (f.name == name) return f;
  }
  ADD_FAILURE() << "no feature " << name;
  return r.features.front();
}

TEST(DriftMonitorTest, NoShiftStaysBelowThreshold) {
  DriftMonitor monitor("m", "1", MakeProfile(), "p.json", TestOptions());
  Stream stream(42);
  double max_psi = 0;
  for (int i = 1; i <= 5000; ++i) {
    stream.Next();
    stream.ObserveInto(monitor);
    if (i % 25 != 0) continue;
    const DriftReport r = monitor.Compute(1);
    for (const FeatureDrift& f : r.features) {
      if (!f.psi.has_value()) continue;
      max_psi = std::max(max_psi, *f.psi);
      ASSERT_LT(*f.psi, 0.2) << f.name << " after " << i << " requests";
      ASSERT_FALSE(f.drifted);
    }
    ASSERT_EQ(r.drifted_features, 0);
  }
  EXPECT_LT(max_psi, 0.1);
  const DriftReport r = monitor.Compute(1);
  EXPECT_EQ(r.rows_seen, 5000 * 4);
  EXPECT_EQ(r.rows_sampled, 5000 * 4);
  EXPECT_GE(r.window_rows, 1800);
  EXPECT_LE(r.window_rows, 2000);
  const FeatureDrift& x0 = Feature(r, "x[0]");
  EXPECT_GT(*x0.ks_pvalue, 0.001);
  EXPECT_LT(*x0.js_distance, 0.1);
  EXPECT_EQ(x0.missing_rate, 0);
  EXPECT_NEAR(*x0.mean, 0, 0.1);
  const FeatureDrift& country = Feature(r, "country");
  EXPECT_GT(*country.chi_square_pvalue, 0.001);
  EXPECT_EQ(country.chi_square_df, 2);  // US, FR, DE (JP and "other" are empty on both sides)
  EXPECT_NEAR(*country.cardinality, 3, 0.1);
  EXPECT_EQ(country.reference_cardinality, 3);
}

TEST(DriftMonitorTest, ShiftCrossesThresholdWithinBoundedRequests) {
  DriftMonitor monitor("m", "1", MakeProfile(), "p.json", TestOptions());
  Stream stream(7);
  for (int i = 0; i < 1000; ++i) {
    stream.Next();
    stream.ObserveInto(monitor);
  }
  ASSERT_FALSE(Feature(monitor.Compute(1), "x[0]").drifted);
  // Column 0 moves by one standard deviation. PSI of the window grows with the shifted share a
  // roughly as a^2 (e - 1) for small a, reaching 0.2 near a = 0.35-0.4 (170-200 requests).
  int crossed_after = -1;
  for (int i = 1; i <= 500 && crossed_after < 0; ++i) {
    stream.Next(/*shift=*/1.0);
    stream.ObserveInto(monitor);
    if (*Feature(monitor.Compute(1), "x[0]").psi >= 0.2) crossed_after = i;
  }
  ASSERT_GT(crossed_after, 0) << "PSI never reached 0.2";
  RecordProperty("requests_to_cross", crossed_after);
  EXPECT_LE(crossed_after, 300);  // 201 with these seeds
  EXPECT_GE(crossed_after, 100);  // the window really mixes old and new rows
  const DriftReport r = monitor.Compute(1);
  const FeatureDrift& x0 = Feature(r, "x[0]");
  EXPECT_TRUE(x0.drifted);
  EXPECT_LT(*x0.ks_pvalue, 1e-6);
  EXPECT_GT(*x0.ks_statistic, 0.1);
  for (const char* other : {"x[1]", "x[2]", "x[3]", "score", "country"}) {
    EXPECT_FALSE(Feature(r, other).drifted) << other;
  }
  EXPECT_EQ(r.drifted_features, 1);

  // Once the whole window is shifted, PSI is that of N(1,1) against N(0,1) binned, about 1.
  for (int i = 0; i < 600; ++i) {
    stream.Next(1.0);
    stream.ObserveInto(monitor);
  }
  EXPECT_GT(*Feature(monitor.Compute(1), "x[0]").psi, 0.7);
  // And the window slides back when the shift ends.
  for (int i = 0; i < 600; ++i) {
    stream.Next();
    stream.ObserveInto(monitor);
  }
  EXPECT_LT(*Feature(monitor.Compute(1), "x[0]").psi, 0.1);
}

TEST(DriftMonitorTest, CategoricalShiftAndNewCategories) {
  DriftMonitor monitor("m", "1", MakeProfile(), "p.json", TestOptions());
  Stream stream(9);
  for (int i = 0; i < 600; ++i) {
    stream.Next(0, {0.2, 0.3, 0.2, 0.3});  // JP was never seen in the reference
    stream.ObserveInto(monitor);
  }
  const DriftReport report = monitor.Compute(1);
  const FeatureDrift& c = Feature(report, "country");
  EXPECT_TRUE(c.drifted);
  EXPECT_LT(*c.chi_square_pvalue, 1e-10);
  EXPECT_EQ(c.chi_square_df, 3);
  EXPECT_NEAR(c.out_of_range_rate, 0.3, 0.05);
  EXPECT_NEAR(*c.cardinality, 4, 0.1);
  EXPECT_FALSE(c.ks_statistic.has_value());
}

TEST(DriftMonitorTest, MissingTensorsNarrowTensorsAndOutOfRange) {
  DriftMonitor monitor("m", "1", MakeProfile(), "p.json", TestOptions());
  Tensor narrow = Tensor::Allocate(DataType::kFp64, Shape{2, 2});  // columns 2, 3 missing
  for (int i = 0; i < 4; ++i) narrow.data<double>()[i] = i == 0 ? 1e6 : (i == 1 ? NAN : 0.1);
  Tensor score = Tensor::Allocate(DataType::kBytes, Shape{2, 1});
  score.strings() = {"0.5", "not a number"};
  for (int i = 0; i < 300; ++i) {
    const TensorRef in[] = {{"x", &narrow}, {"unrelated", &narrow}};
    const TensorRef out[] = {{"score", &score}};
    monitor.Observe(in, out, 1);
  }
  const DriftReport r = monitor.Compute(1);
  EXPECT_EQ(r.window_rows, 600);
  EXPECT_EQ(Feature(r, "x[0]").count, 600);
  EXPECT_EQ(Feature(r, "x[0]").missing, 0);
  EXPECT_DOUBLE_EQ(Feature(r, "x[0]").out_of_range_rate, 0.5);  // 1e6 is above the maximum
  EXPECT_DOUBLE_EQ(Feature(r, "x[1]").missing_rate, 0.5);       // NaN
  EXPECT_DOUBLE_EQ(Feature(r, "x[2]").missing_rate, 1.0);       // not in a [2, 2] tensor
  EXPECT_DOUBLE_EQ(Feature(r, "country").missing_rate, 1.0);    // not in the request
  EXPECT_DOUBLE_EQ(Feature(r, "score").missing_rate, 0.5);      // "not a number"
  EXPECT_EQ(*Feature(r, "score").max, 0.5);
  EXPECT_FALSE(Feature(r, "x[2]").psi.has_value());  // no present values
}

TEST(DriftMonitorTest, ObserveAllocatesNothingInSteadyState) {
  if (!FW_TEST_COUNTS_ALLOCATIONS) GTEST_SKIP() << "allocations are not counted under ASan";
  DriftMonitor monitor("m", "1", MakeProfile(), "p.json", TestOptions());
  Stream stream(3, 8);
  stream.Next();
  for (int i = 0; i < 10; ++i) stream.ObserveInto(monitor);  // makes the shard's ring
  struct Named {
    std::string name;
    Tensor data;
  };
  const std::vector<Named> inputs = {{"x", stream.x_}, {"country", stream.country_}};
  const std::vector<Named> outputs = {{"score", stream.score_}};
  const int64_t before = heap_allocations.load();
  for (int i = 0; i < 2000; ++i) {  // 16,000 rows: the ring rotates many times
    stream.ObserveInto(monitor);
    monitor.ObserveNamed(inputs, outputs);
  }
  EXPECT_EQ(heap_allocations.load() - before, 0);
}

TEST(DriftMonitorTest, ConcurrentObserversShareOneWindow) {
  DriftMonitor monitor("m", "1", MakeProfile(), "p.json", TestOptions());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&monitor, t] {
      Stream stream(100 + t, 1);
      for (int i = 0; i < 500; ++i) {
        stream.Next();
        stream.ObserveInto(monitor, 1 + i);
      }
    });
  }
  for (auto& t : threads) t.join();
  const DriftReport r = monitor.Compute(1000);
  EXPECT_EQ(r.rows_seen, 2000);
  EXPECT_EQ(r.window_rows, 2000);
  EXPECT_EQ(Feature(r, "x[3]").count, 2000);
  EXPECT_LT(*Feature(r, "x[3]").psi, 0.2);
}

TEST(DriftMonitorTest, RateLimitSamplesUniformlyOverTimeAndRows) {
  DriftOptions options = TestOptions();
  options.max_rows_per_second = 1000;  // a 100-row burst, then one row per millisecond
  ReferenceProfile profile;
  profile.model = "m";
  std::vector<double> rows;
  for (int i = 0; i < 64; ++i) rows.push_back(i);
  FeatureProfile f = ProfileNumbers("row", rows, {});
  f.tensor = "row";
  profile.features.push_back(f);
  DriftMonitor monitor("m", "1", profile, "p.json", options);
  Tensor batch = Tensor::Allocate(DataType::kInt32, Shape{64});
  for (int i = 0; i < 64; ++i) batch.data<int32_t>()[i] = i;
  const int64_t start = int64_t{1700000000} * 1000000000;
  // One 64-row request every 10 ms for 2 s: 12,800 rows, of which about 100 + 2000 sampled.
  for (int i = 0; i < 200; ++i) {
    const TensorRef in[] = {{"row", &batch}};
    monitor.Observe(in, {}, start + int64_t{i} * 10000000);
  }
  const DriftReport r = monitor.Compute(start);
  EXPECT_EQ(r.rows_seen, 12800);
  EXPECT_GE(r.rows_sampled, 2000);
  EXPECT_LE(r.rows_sampled, 2000 + 100 + 64);
  // Rows are taken across the batch, not from its start: the sampled mean is the batch's.
  const FeatureDrift& d = Feature(r, "row");
  EXPECT_NEAR(*d.mean, 31.5, 2.0);
  EXPECT_LT(*d.psi, 0.1);
  // A quiet monitor gets its burst back.
  const TensorRef in[] = {{"row", &batch}};
  monitor.Observe(in, {}, start + int64_t{10} * 1000000000);
  EXPECT_EQ(monitor.Compute(start).rows_sampled, r.rows_sampled + 64);
}

TEST(DriftMonitorTest, MaxAgeEmptiesAStaleWindow) {
  DriftOptions options = TestOptions();
  options.window.max_age = absl::Seconds(60);
  DriftMonitor monitor("m", "1", MakeProfile(), "p.json", options);
  Stream stream(5);
  const int64_t t0 = int64_t{1700000000} * 1000000000;
  for (int i = 0; i < 200; ++i) {
    stream.Next();
    stream.ObserveInto(monitor, t0);
  }
  EXPECT_EQ(monitor.Compute(t0 + 1000).window_rows, 800);
  const DriftReport stale = monitor.Compute(t0 + int64_t{61} * 1000000000);
  EXPECT_EQ(stale.window_rows, 0);
  EXPECT_FALSE(Feature(stale, "x[0]").psi.has_value());
}

TEST(DriftMonitorTest, WithoutProfileSaysWhy) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("flywheel_drift_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto none = DriftMonitor::ForVersionDir("rank", "2", dir.string(), DriftOptions{});
  EXPECT_FALSE(none->has_profile());
  EXPECT_THAT(none->reason(),
              HasSubstr("no reference profile at " + (dir / "profile.json").string()));
  EXPECT_THAT(none->reason(), HasSubstr("flywheel monitor profile"));
  Stream stream(1);
  stream.Next();
  stream.ObserveInto(*none);  // a no-op
  const DriftReport r = none->Compute();
  EXPECT_FALSE(r.has_profile);
  EXPECT_TRUE(r.features.empty());
  rapidjson::Document doc;
  doc.Parse(DriftReportToJson(r).c_str());
  ASSERT_TRUE(doc.IsObject());
  EXPECT_FALSE(doc["has_profile"].GetBool());
  EXPECT_THAT(doc["reason"].GetString(), HasSubstr("no reference profile"));

  std::ofstream(dir / "profile.json") << "{\"format\": 1}";
  auto bad = DriftMonitor::ForVersionDir("rank", "2", dir.string(), DriftOptions{});
  EXPECT_FALSE(bad->has_profile());
  EXPECT_THAT(bad->reason(), HasSubstr("could not be read"));
  EXPECT_THAT(bad->reason(), HasSubstr("format: expected a string"));

  ASSERT_TRUE(SaveProfile(MakeProfile(), (dir / "profile.json").string()).ok());
  auto good = DriftMonitor::ForVersionDir("rank", "2", dir.string(), DriftOptions{});
  EXPECT_TRUE(good->has_profile());
  std::filesystem::remove_all(dir);
}

TEST(DriftMonitorTest, JsonAndPrometheus) {
  DriftMonitor monitor("m", "1", MakeProfile(), "/models/m/1/profile.json", TestOptions());
  Stream stream(11);
  for (int i = 0; i < 300; ++i) {
    stream.Next(i < 150 ? 0.0 : 3.0);
    stream.ObserveInto(monitor, int64_t{1700000000} * 1000000000);
  }
  const DriftReport report = monitor.Compute(int64_t{1700000000} * 1000000000);
  rapidjson::Document doc;
  doc.Parse(DriftReportToJson(report).c_str());
  ASSERT_FALSE(doc.HasParseError());
  EXPECT_EQ(std::string(doc["model"].GetString()), "m");
  EXPECT_TRUE(doc["has_profile"].GetBool());
  EXPECT_EQ(doc["window"]["rows"].GetInt64(), 1200);
  EXPECT_EQ(std::string(doc["window"]["start"].GetString()), "2023-11-14T22:13:20+00:00");
  const auto& features = doc["features"];
  ASSERT_EQ(features.Size(), 6u);
  EXPECT_EQ(std::string(features[0]["name"].GetString()), "x[0]");
  EXPECT_TRUE(features[0]["drifted"].GetBool());
  EXPECT_GT(features[0]["psi"].GetDouble(), 0.2);
  EXPECT_TRUE(features[0]["chi_square"].IsNull());
  EXPECT_EQ(std::string(features[4]["kind"].GetString()), "categorical");
  EXPECT_TRUE(features[4]["ks_statistic"].IsNull());
  EXPECT_EQ(std::string(features[5]["role"].GetString()), "output");
  EXPECT_EQ(doc["drifted_features"].GetInt(), 1);

  Registry registry;
  registry.AddCollector([&](SampleWriter& w) { AppendDriftMetrics(report, w); });
  const std::string text = registry.Render();
  EXPECT_THAT(text,
              HasSubstr("flywheel_feature_drift_psi{feature=\"x[0]\",model=\"m\",version=\"1\"}"));
  EXPECT_THAT(text, HasSubstr("flywheel_feature_drift_chi_square_pvalue{feature=\"country\""));
  EXPECT_THAT(text, HasSubstr("flywheel_drift_profile_present{model=\"m\",version=\"1\"} 1"));
  EXPECT_THAT(text, HasSubstr("flywheel_drift_features_drifted{model=\"m\",version=\"1\"} 1"));
  EXPECT_THAT(text, HasSubstr("# TYPE flywheel_feature_drift_psi gauge"));
}

TEST(DriftRegistryTest, SetGetRemoveAndCollect) {
  DriftRegistry registry;
  registry.Set(DriftMonitor::WithoutProfile("a", "1", "none"));
  registry.Set(std::make_shared<DriftMonitor>("a", "2", MakeProfile(), "p", TestOptions()));
  registry.Set(DriftMonitor::WithoutProfile("b", "1", "none"));
  EXPECT_EQ(registry.Get("a", "2")->version(), "2");
  EXPECT_EQ(registry.Get("a", "3"), nullptr);
  EXPECT_EQ(registry.ForModel("a").size(), 2u);
  EXPECT_EQ(registry.All().size(), 3u);
  registry.Remove("a", "1");
  EXPECT_EQ(registry.ForModel("a").size(), 1u);
  Registry metrics;
  metrics.AddCollector([&](SampleWriter& w) { registry.Collect(w); });
  const std::string text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("flywheel_drift_profile_present{model=\"b\",version=\"1\"} 0"));
  EXPECT_THAT(text, HasSubstr("flywheel_drift_window_rows{model=\"a\",version=\"2\"} 0"));
}

}  // namespace
}  // namespace flywheel::monitor
