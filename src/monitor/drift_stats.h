// The statistics that compare a live distribution with a reference one, both given as counts
// over the same bins: population stability index, Jensen-Shannon distance, the two-sample
// Kolmogorov-Smirnov test over bin edges and the chi-square test of homogeneity.
#pragma once

#include <cstdint>

#include "absl/types/span.h"

namespace flywheel::monitor {

// PSI = sum_i (a_i - e_i) ln(a_i / e_i) over bin proportions (e: reference, a: live). A bin with
// no values on one side counts as a proportion of kPsiFloor, so that one empty bin gives a large
// but finite index. Both spans have the same length; 0 when either side has no values.
inline constexpr double kPsiFloor = 1e-4;
double PopulationStabilityIndex(absl::Span<const uint64_t> reference,
                                absl::Span<const uint64_t> live);

// sqrt(JS divergence) with base-2 logarithms: 0 for equal distributions, 1 for disjoint ones.
double JensenShannonDistance(absl::Span<const uint64_t> reference, absl::Span<const uint64_t> live);

// max_k |F_ref(k) - F_live(k)| over the cumulative proportions at each bin boundary: the
// two-sample Kolmogorov-Smirnov statistic evaluated at the reference's bin edges (a lower bound of
// the statistic on raw values, which the window does not keep).
double KolmogorovSmirnovStatistic(absl::Span<const uint64_t> reference,
                                  absl::Span<const uint64_t> live);
// P(D > d) under the null hypothesis, from the asymptotic Kolmogorov distribution with the
// effective sample size ne = n*m/(n+m) and Stephens' correction
// lambda = (sqrt(ne) + 0.12 + 0.11/sqrt(ne)) * d.
double KolmogorovSmirnovPValue(double d, uint64_t n, uint64_t m);
// Q_KS(lambda) = 2 sum_{k>=1} (-1)^(k-1) exp(-2 k^2 lambda^2), the Kolmogorov survival function.
double KolmogorovSurvival(double lambda);

struct ChiSquareResult {
  double statistic = 0;
  int degrees_of_freedom = 0;
  double p_value = 1;
};
// The chi-square test of homogeneity of the 2 x k table (reference counts, live counts): the
// expected count of each cell comes from the pooled proportions. Bins empty on both sides are left
// out; df = (bins used) - 1; with df = 0 the statistic is 0 and the p-value 1.
ChiSquareResult ChiSquareHomogeneity(absl::Span<const uint64_t> reference,
                                     absl::Span<const uint64_t> live);
// P(X > x) for X ~ chi-square(df): the regularised upper incomplete gamma Q(df/2, x/2).
double ChiSquareSurvival(double x, double df);

}  // namespace flywheel::monitor
