#include "monitor/drift_stats.h"

#include <algorithm>
#include <cmath>

namespace flywheel::monitor {
namespace {

uint64_t Total(absl::Span<const uint64_t> counts) {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  return total;
}

// ln Gamma(a) P(a, x) by its power series; converges quickly for x < a + 1.
double GammaSeries(double a, double x) {
  double term = 1.0 / a;
  double sum = term;
  for (int n = 1; n < 1000; ++n) {
    term *= x / (a + n);
    sum += term;
    if (std::fabs(term) < std::fabs(sum) * 1e-15) break;
  }
  return sum * std::exp(-x + a * std::log(x) - std::lgamma(a));
}

// Q(a, x) by its continued fraction (modified Lentz); converges quickly for x >= a + 1.
double GammaContinuedFraction(double a, double x) {
  constexpr double kTiny = 1e-300;
  double b = x + 1.0 - a;
  double c = 1.0 / kTiny;
  double d = 1.0 / b;
  double h = d;
  for (int i = 1; i < 1000; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = b + an / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1.0) < 1e-15) break;
  }
  return std::exp(-x + a * std::log(x) - std::lgamma(a)) * h;
}

}  // namespace

double PopulationStabilityIndex(absl::Span<const uint64_t> reference,
                                absl::Span<const uint64_t> live) {
  const uint64_t n_ref = Total(reference);
  const uint64_t n_live = Total(live);
  if (n_ref == 0 || n_live == 0 || reference.size() != live.size()) return 0;
  double psi = 0;
  for (size_t i = 0; i < reference.size(); ++i) {
    const double e = std::max(static_cast<double>(reference[i]) / n_ref, kPsiFloor);
    const double a = std::max(static_cast<double>(live[i]) / n_live, kPsiFloor);
    psi += (a - e) * std::log(a / e);
  }
  return psi;
}

double JensenShannonDistance(absl::Span<const uint64_t> reference,
                             absl::Span<const uint64_t> live) {
  const uint64_t n_ref = Total(reference);
  const uint64_t n_live = Total(live);
  if (n_ref == 0 || n_live == 0 || reference.size() != live.size()) return 0;
  double divergence = 0;
  for (size_t i = 0; i < reference.size(); ++i) {
    const double p = static_cast<double>(reference[i]) / n_ref;
    const double q = static_cast<double>(live[i]) / n_live;
    const double m = 0.5 * (p + q);
    if (p > 0) divergence += 0.5 * p * std::log2(p / m);
    if (q > 0) divergence += 0.5 * q * std::log2(q / m);
  }
  // Rounding can leave a tiny negative divergence for identical inputs.
  return std::sqrt(std::clamp(divergence, 0.0, 1.0));
}

double KolmogorovSmirnovStatistic(absl::Span<const uint64_t> reference,
                                  absl::Span<const uint64_t> live) {
  const uint64_t n_ref = Total(reference);
  const uint64_t n_live = Total(live);
  if (n_ref == 0 || n_live == 0 || reference.size() != live.size()) return 0;
  uint64_t cum_ref = 0;
  uint64_t cum_live = 0;
  double d = 0;
  for (size_t i = 0; i < reference.size(); ++i) {
    cum_ref += reference[i];
    cum_live += live[i];
    d = std::max(d, std::fabs(static_cast<double>(cum_ref) / n_ref -
                              static_cast<double>(cum_live) / n_live));
  }
  return d;
}

double KolmogorovSurvival(double lambda) {
  if (lambda < 0.2) return 1.0;  // the series converges slowly there, and the value is 1 - 1e-20
  double sum = 0;
  double sign = 1;
  for (int k = 1; k <= 100; ++k) {
    const double term = sign * std::exp(-2.0 * k * k * lambda * lambda);
    sum += term;
    if (std::fabs(term) < 1e-16) break;
    sign = -sign;
  }
  return std::clamp(2.0 * sum, 0.0, 1.0);
}

double KolmogorovSmirnovPValue(double d, uint64_t n, uint64_t m) {
  if (n == 0 || m == 0) return 1.0;
  const double ne = static_cast<double>(n) * static_cast<double>(m) / (static_cast<double>(n) + m);
  const double root = std::sqrt(ne);
  return KolmogorovSurvival((root + 0.12 + 0.11 / root) * d);
}

ChiSquareResult ChiSquareHomogeneity(absl::Span<const uint64_t> reference,
                                     absl::Span<const uint64_t> live) {
  ChiSquareResult result;
  const double n_ref = static_cast<double>(Total(reference));
  const double n_live = static_cast<double>(Total(live));
  if (n_ref == 0 || n_live == 0 || reference.size() != live.size()) return result;
  const double n = n_ref + n_live;
  int used = 0;
  double statistic = 0;
  for (size_t i = 0; i < reference.size(); ++i) {
    const double pooled = static_cast<double>(reference[i]) + static_cast<double>(live[i]);
    if (pooled == 0) continue;
    ++used;
    const double expected_ref = pooled * n_ref / n;
    const double expected_live = pooled * n_live / n;
    const double dr = static_cast<double>(reference[i]) - expected_ref;
    const double dl = static_cast<double>(live[i]) - expected_live;
    statistic += dr * dr / expected_ref + dl * dl / expected_live;
  }
  if (used < 2) return result;
  result.statistic = statistic;
  result.degrees_of_freedom = used - 1;
  result.p_value = ChiSquareSurvival(statistic, result.degrees_of_freedom);
  return result;
}

double ChiSquareSurvival(double x, double df) {
  if (df <= 0) return 1.0;
  if (!(x > 0)) return 1.0;
  if (std::isinf(x)) return 0.0;
  const double a = 0.5 * df;
  const double half = 0.5 * x;
  if (half < a + 1.0) return std::clamp(1.0 - GammaSeries(a, half), 0.0, 1.0);
  return std::clamp(GammaContinuedFraction(a, half), 0.0, 1.0);
}

}  // namespace flywheel::monitor
