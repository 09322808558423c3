#include "monitor/drift_stats.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace flywheel::monitor {
namespace {

std::vector<double> Proportions(const std::vector<uint64_t>& counts) {
  double total = 0;
  for (uint64_t c : counts) total += c;
  std::vector<double> p;
  for (uint64_t c : counts) p.push_back(c / total);
  return p;
}

TEST(PsiTest, MatchesTheDefinition) {
  const std::vector<uint64_t> ref = {10, 20, 30, 40};
  const std::vector<uint64_t> live = {25, 25, 25, 25};
  const auto e = Proportions(ref);
  const auto a = Proportions(live);
  double expected = 0;
  for (size_t i = 0; i < e.size(); ++i) expected += (a[i] - e[i]) * std::log(a[i] / e[i]);
  EXPECT_NEAR(PopulationStabilityIndex(ref, live), expected, 1e-12);
  EXPECT_EQ(PopulationStabilityIndex(ref, ref), 0);
  // An empty bin counts as 1e-4.
  const std::vector<uint64_t> gap = {0, 50, 50, 0};
  const double floor_term = (1e-4 - 0.1) * std::log(1e-4 / 0.1) +
                            (1e-4 - 0.4) * std::log(1e-4 / 0.4) +
                            (0.5 - 0.2) * std::log(0.5 / 0.2) + (0.5 - 0.3) * std::log(0.5 / 0.3);
  EXPECT_NEAR(PopulationStabilityIndex(ref, gap), floor_term, 1e-12);
  EXPECT_EQ(PopulationStabilityIndex(ref, {0, 0, 0, 0}), 0);
}

TEST(JensenShannonTest, MatchesTheDefinition) {
  const std::vector<uint64_t> ref = {5, 0, 10, 85};
  const std::vector<uint64_t> live = {30, 20, 10, 40};
  const auto p = Proportions(ref);
  const auto q = Proportions(live);
  double js = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double m = (p[i] + q[i]) / 2;
    if (p[i] > 0) js += 0.5 * p[i] * std::log2(p[i] / m);
    if (q[i] > 0) js += 0.5 * q[i] * std::log2(q[i] / m);
  }
  EXPECT_NEAR(JensenShannonDistance(ref, live), std::sqrt(js), 1e-12);
  EXPECT_NEAR(JensenShannonDistance(ref, ref), 0, 1e-7);
  EXPECT_NEAR(JensenShannonDistance({1, 0}, {0, 1}), 1.0, 1e-12);
}

// The two-sample KS statistic on raw values, by brute force over every value.
double BruteForceKs(const std::vector<int>& a, const std::vector<int>& b) {
  std::vector<int> points = a;
  points.insert(points.end(), b.begin(), b.end());
  double d = 0;
  for (int t : points) {
    const double fa = std::count_if(a.begin(), a.end(), [&](int v) { return v <= t; }) /
                      static_cast<double>(a.size());
    const double fb = std::count_if(b.begin(), b.end(), [&](int v) { return v <= t; }) /
                      static_cast<double>(b.size());
    d = std::max(d, std::fabs(fa - fb));
  }
  return d;
}

TEST(KolmogorovSmirnovTest, BinnedStatisticEqualsRawOneWhenValuesSitOnEdges) {
  // Integer values 0..4 and edges at 1, 2, 3, 4: every bin holds one value, so the binned
  // statistic is the exact one.
  const std::vector<int> a = {0, 0, 1, 1, 1, 2, 3, 3, 4, 4, 4, 4, 2, 1, 0};
  const std::vector<int> b = {2, 2, 3, 3, 3, 4, 4, 1, 0, 3, 2};
  std::vector<uint64_t> ca(5), cb(5);
  for (int v : a) ++ca[v];
  for (int v : b) ++cb[v];
  EXPECT_NEAR(KolmogorovSmirnovStatistic(ca, cb), BruteForceKs(a, b), 1e-12);
  EXPECT_EQ(KolmogorovSmirnovStatistic(ca, ca), 0);
}

TEST(KolmogorovSmirnovTest, PValueFromTheKolmogorovDistribution) {
  // Tabulated values of the Kolmogorov survival function.
  EXPECT_NEAR(KolmogorovSurvival(0.5), 0.9639, 1e-4);
  EXPECT_NEAR(KolmogorovSurvival(1.0), 0.2700, 1e-4);
  EXPECT_NEAR(KolmogorovSurvival(1.358), 0.0500, 1e-3);
  EXPECT_NEAR(KolmogorovSurvival(1.628), 0.0100, 5e-4);
  EXPECT_EQ(KolmogorovSurvival(0.0), 1.0);
  EXPECT_LT(KolmogorovSurvival(5.0), 1e-20);
  // The effective sample size and Stephens' correction.
  const double ne = 1000.0 * 400.0 / 1400.0;
  const double lambda = (std::sqrt(ne) + 0.12 + 0.11 / std::sqrt(ne)) * 0.08;
  EXPECT_DOUBLE_EQ(KolmogorovSmirnovPValue(0.08, 1000, 400), KolmogorovSurvival(lambda));
  EXPECT_EQ(KolmogorovSmirnovPValue(0.5, 0, 10), 1.0);
}

TEST(ChiSquareTest, HomogeneityMatchesTheTable) {
  const std::vector<uint64_t> ref = {120, 60, 20, 0};
  const std::vector<uint64_t> live = {30, 40, 25, 0};
  // Brute force over the 2 x 3 table (the all-zero column is left out).
  const double n_ref = 200, n_live = 95, n = 295;
  double stat = 0;
  for (int i = 0; i < 3; ++i) {
    const double col = static_cast<double>(ref[i] + live[i]);
    const double er = col * n_ref / n, el = col * n_live / n;
    stat += (ref[i] - er) * (ref[i] - er) / er + (live[i] - el) * (live[i] - el) / el;
  }
  const ChiSquareResult r = ChiSquareHomogeneity(ref, live);
  EXPECT_NEAR(r.statistic, stat, 1e-9);
  EXPECT_EQ(r.degrees_of_freedom, 2);
  EXPECT_NEAR(r.p_value, std::exp(-stat / 2), 1e-12);  // df = 2: Q = exp(-x/2)

  const ChiSquareResult one = ChiSquareHomogeneity({10, 0}, {5, 0});
  EXPECT_EQ(one.degrees_of_freedom, 0);
  EXPECT_EQ(one.p_value, 1.0);
}

TEST(ChiSquareTest, SurvivalFunctionMatchesTables) {
  EXPECT_NEAR(ChiSquareSurvival(3.841459, 1), 0.05, 1e-6);
  EXPECT_NEAR(ChiSquareSurvival(5.991465, 2), 0.05, 1e-6);
  EXPECT_NEAR(ChiSquareSurvival(18.307038, 10), 0.05, 1e-6);
  EXPECT_NEAR(ChiSquareSurvival(6.634897, 1), 0.01, 1e-6);
  EXPECT_NEAR(ChiSquareSurvival(124.342113, 100), 0.05, 1e-6);
  EXPECT_NEAR(ChiSquareSurvival(1.0, 3), 0.8012519569, 1e-8);
  EXPECT_EQ(ChiSquareSurvival(0, 4), 1.0);
  EXPECT_LT(ChiSquareSurvival(500, 4), 1e-100);
}

}  // namespace
}  // namespace flywheel::monitor
