#include "monitor/sketch.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <random>
#include <string>

#include "gtest/gtest.h"
#include "monitor/hyperloglog.h"

namespace flywheel::monitor {
namespace {

TEST(HyperLogLogTest, ErrorStaysWithinThreeStandardErrors) {
  // p = 12: standard error 1.04 / 64 = 1.6%; hashes are deterministic, so is the test.
  for (int n : {1, 10, 100, 1000, 5000, 20000, 100000, 1000000}) {
    HyperLogLog hll(12);
    for (int i = 0; i < n; ++i) hll.Add("user-" + std::to_string(i));
    // Adding the same values again changes nothing.
    for (int i = 0; i < std::min(n, 1000); ++i) hll.Add("user-" + std::to_string(i));
    const double error = std::fabs(hll.Estimate() - n) / n;
    EXPECT_LT(error, 3 * 1.04 / 64) << "n=" << n << " estimate=" << hll.Estimate();
  }
}

TEST(HyperLogLogTest, NumbersAndMerge) {
  HyperLogLog a(12), b(12);
  for (int i = 0; i < 30000; ++i) a.Add(static_cast<double>(i));
  for (int i = 20000; i < 50000; ++i) b.Add(static_cast<double>(i));
  a.Merge(b);
  EXPECT_NEAR(a.Estimate(), 50000, 50000 * 0.05);
  HyperLogLog zeros(12);
  zeros.Add(0.0);
  zeros.Add(-0.0);
  EXPECT_NEAR(zeros.Estimate(), 1, 0.01);
  zeros.Clear();
  EXPECT_EQ(zeros.Estimate(), 0);
}

TEST(HyperLogLogTest, LowPrecisionStillUsable) {
  HyperLogLog hll(8);  // 256 registers: 6.5% standard error
  for (int i = 0; i < 10000; ++i) hll.Add(static_cast<double>(i) * 0.5);
  EXPECT_NEAR(hll.Estimate(), 10000, 10000 * 0.2);
}

TEST(HashTest, StableAndSpread) {
  EXPECT_EQ(HashBytes("abc"), HashBytes(std::string("abc")));
  EXPECT_NE(HashBytes("abc"), HashBytes("abd"));
  EXPECT_NE(HashBytes(""), HashBytes(std::string(1, '\0')));
  EXPECT_NE(HashBytes("12345678"), HashBytes("123456789"));
}

ReferenceProfile OneNumericFeature(std::vector<double> edges, double min, double max) {
  ReferenceProfile profile;
  FeatureProfile f;
  f.name = "x";
  f.tensor = "x";
  f.bin_edges = std::move(edges);
  f.bin_counts.assign(f.bin_edges.size() + 1, 1);
  f.count = static_cast<int64_t>(f.bin_counts.size());
  f.min = min;
  f.max = max;
  profile.features.push_back(f);
  return profile;
}

TEST(FeatureSlotsTest, NumericBinMatchesUpperBound) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  for (int n = 0; n <= 40; ++n) {
    std::vector<double> edges;
    for (int i = 0; i < n; ++i) edges.push_back(normal(rng));
    std::sort(edges.begin(), edges.end());
    edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
    const WindowLayout layout(OneNumericFeature(edges, -10, 10), WindowOptions{});
    const FeatureSlots& f = layout.features()[0];
    EXPECT_EQ(f.bins, edges.size() + 1);
    std::vector<double> probes = edges;
    for (int i = 0; i < 200; ++i) probes.push_back(normal(rng) * 2);
    probes.push_back(-1e300);
    probes.push_back(1e300);
    for (double v : probes) {
      const auto expected = std::upper_bound(edges.begin(), edges.end(), v) - edges.begin();
      ASSERT_EQ(f.NumericBin(v), expected) << "edges=" << n << " v=" << v;
    }
  }
}

TEST(BucketTest, CountsValuesMissingAndRange) {
  const WindowLayout layout(OneNumericFeature({0.0, 1.0}, -1, 2), WindowOptions{});
  const FeatureSlots& f = layout.features()[0];
  Bucket b(layout);
  for (double v : {-5.0, -0.5, 0.0, 0.5, 1.0, 1.5, 3.0, double{NAN}, double{INFINITY}}) {
    b.AddNumber(f, v);
  }
  b.AddMissing(f);
  const uint32_t* c = b.counters.data() + f.counter_offset;
  EXPECT_EQ(c[kValuesSeen], 10u);
  EXPECT_EQ(c[kMissing], 3u);
  EXPECT_EQ(c[kBelowRange], 1u);
  EXPECT_EQ(c[kAboveRange], 1u);
  EXPECT_EQ(c[kFirstBin + 0], 2u);  // -5, -0.5
  EXPECT_EQ(c[kFirstBin + 1], 2u);  // 0, 0.5
  EXPECT_EQ(c[kFirstBin + 2], 3u);  // 1, 1.5, 3
  EXPECT_EQ(b.mins[0], -5.0);
  EXPECT_EQ(b.maxs[0], 3.0);
  EXPECT_DOUBLE_EQ(b.sums[0], -0.5 + 0.5 + 1.0 + 1.5 + 3.0 - 5.0);
  b.Clear();
  EXPECT_EQ(b.counters[f.counter_offset], 0u);
}

TEST(BucketTest, CategoriesAndCardinality) {
  ReferenceProfile profile;
  FeatureProfile f;
  f.name = "country";
  f.tensor = "country";
  f.kind = FeatureKind::kCategorical;
  f.categories = {{"US", 5}, {"FR", 3}};
  f.count = 8;
  profile.features.push_back(f);
  const WindowLayout layout(profile, WindowOptions{});
  const FeatureSlots& slots = layout.features()[0];
  EXPECT_EQ(slots.bins, 3u);
  ASSERT_GE(slots.hll_offset, 0);
  Bucket b(layout);
  for (const char* v : {"US", "US", "FR", "DE", "", "JP"}) b.AddCategory(slots, v);
  const uint32_t* c = b.counters.data() + slots.counter_offset;
  EXPECT_EQ(c[kValuesSeen], 6u);
  EXPECT_EQ(c[kMissing], 1u);
  EXPECT_EQ(c[kAboveRange], 2u);  // DE, JP: not listed
  EXPECT_EQ(c[kFirstBin + 0], 2u);
  EXPECT_EQ(c[kFirstBin + 1], 1u);
  EXPECT_EQ(c[kFirstBin + 2], 2u);
  EXPECT_NEAR(HllEstimate(b.registers.data() + slots.hll_offset, layout.hll_precision()), 4, 0.1);
}

TEST(BucketRingTest, RotatesByRowsAndMergesNewest) {
  WindowOptions options;
  options.rows = 30;
  options.buckets = 3;
  const WindowLayout layout(OneNumericFeature({0.5}, 0, 1), options);
  std::atomic<uint64_t> sequence{1};
  BucketRing ring(layout, options, &sequence);
  EXPECT_EQ(ring.bucket_rows(), 10);
  // 45 rows, value = row index: buckets hold rows 30..39, 40..44 and 20..29.
  for (int row = 0; row < 45; ++row) {
    int64_t room = 0;
    Bucket& b = ring.Writable(1000 + row, &room);
    EXPECT_GE(room, 1);
    b.AddNumber(layout.features()[0], row);
    b.rows += 1;
  }
  std::vector<const Bucket*> buckets;
  ring.ForEach([&](const Bucket& b) { buckets.push_back(&b); });
  ASSERT_EQ(buckets.size(), 3u);

  WindowTotals all(layout);
  MergeNewest(buckets, 30, INT64_MIN, &all);
  EXPECT_EQ(all.rows, 25);  // the full window minus the part of the open bucket still to come
  EXPECT_EQ(all.mins[0], 20);
  EXPECT_EQ(all.maxs[0], 44);
  EXPECT_EQ(all.oldest_ns, 1020);
  EXPECT_EQ(all.newest_ns, 1044);

  WindowTotals newest(layout);
  MergeNewest(buckets, 12, INT64_MIN, &newest);  // the two newest buckets reach 12 rows
  EXPECT_EQ(newest.rows, 15);
  EXPECT_EQ(newest.mins[0], 30);

  WindowTotals recent(layout);
  MergeNewest(buckets, 30, 1040, &recent);  // buckets last written before 1040 are too old
  EXPECT_EQ(recent.rows, 5);
  EXPECT_EQ(recent.mins[0], 40);
}

}  // namespace
}  // namespace flywheel::monitor
