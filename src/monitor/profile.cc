#include "monitor/profile.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/tensor_values.h"

namespace flywheel::monitor {
namespace {

bool IsMissing(double v) { return !std::isfinite(v); }

// Linear interpolation between order statistics (the "type 7" definition of R and NumPy).
double Quantile(const std::vector<double>& sorted, double p) {
  const double h = (static_cast<double>(sorted.size()) - 1.0) * p;
  const size_t lo = static_cast<size_t>(std::floor(h));
  if (lo + 1 >= sorted.size()) return sorted.back();
  return sorted[lo] + (h - static_cast<double>(lo)) * (sorted[lo + 1] - sorted[lo]);
}

FeatureProfile ProfileCategories(std::string name, absl::flat_hash_map<std::string, int64_t> counts,
                                 int64_t present, int64_t missing, const ProfileOptions& options) {
  FeatureProfile f;
  f.name = std::move(name);
  f.kind = FeatureKind::kCategorical;
  f.count = present;
  f.missing = missing;
  f.distinct = static_cast<int64_t>(counts.size());
  std::vector<CategoryCount> all;
  all.reserve(counts.size());
  for (auto& [value, count] : counts) all.push_back({value, count});
  std::sort(all.begin(), all.end(), [](const CategoryCount& a, const CategoryCount& b) {
    return a.count != b.count ? a.count > b.count : a.value < b.value;
  });
  const size_t keep =
      std::min(all.size(), static_cast<size_t>(std::max(options.max_categories, 1)));
  for (size_t i = keep; i < all.size(); ++i) f.other_count += all[i].count;
  all.resize(keep);
  f.categories = std::move(all);
  return f;
}

}  // namespace

absl::string_view FeatureRoleName(FeatureRole role) {
  return role == FeatureRole::kInput ? "input" : "output";
}

absl::string_view FeatureKindName(FeatureKind kind) {
  return kind == FeatureKind::kNumeric ? "numeric" : "categorical";
}

absl::string_view NumberAsCategory(double value, char* buffer) {
  constexpr double kTwo63 = 9223372036854775808.0;
  std::to_chars_result r;
  if (value == std::trunc(value) && std::fabs(value) < kTwo63) {
    r = std::to_chars(buffer, buffer + 32, static_cast<int64_t>(value));
  } else {
    r = std::to_chars(buffer, buffer + 32, value);
  }
  return absl::string_view(buffer, static_cast<size_t>(r.ptr - buffer));
}

FeatureProfile ProfileNumbers(std::string name, absl::Span<const double> values,
                              const ProfileOptions& options) {
  FeatureProfile f;
  f.name = std::move(name);
  f.kind = FeatureKind::kNumeric;
  std::vector<double> sorted;
  sorted.reserve(values.size());
  for (double v : values) {
    if (IsMissing(v)) {
      ++f.missing;
    } else {
      sorted.push_back(v == 0 ? 0.0 : v);  // -0.0 and 0.0 are one value
    }
  }
  f.count = static_cast<int64_t>(sorted.size());
  f.bin_counts = {f.count};
  if (sorted.empty()) return f;
  std::sort(sorted.begin(), sorted.end());
  f.min = sorted.front();
  f.max = sorted.back();
  double sum = 0;
  for (double v : sorted) sum += v;
  f.mean = sum / static_cast<double>(sorted.size());
  double squares = 0;
  for (double v : sorted) squares += (v - f.mean) * (v - f.mean);
  f.stddev = std::sqrt(squares / static_cast<double>(sorted.size()));
  f.distinct = 1;
  for (size_t i = 1; i < sorted.size(); ++i) f.distinct += sorted[i] != sorted[i - 1];
  f.quantiles.reserve(kProfileQuantiles);
  for (int i = 0; i < kProfileQuantiles; ++i) {
    f.quantiles.push_back(Quantile(sorted, i / static_cast<double>(kProfileQuantiles - 1)));
  }
  // Edges are reference values (the one at rank n * i / bins), not interpolations between two,
  // so that discrete features get no bins that no value can fall into.
  const int bins = std::max(options.histogram_bins, 1);
  for (int i = 1; i < bins; ++i) {
    const size_t rank = std::min(sorted.size() - 1, sorted.size() * i / static_cast<size_t>(bins));
    const double edge = sorted[rank];
    // An edge at the minimum would leave the first bin empty; equal edges merge bins.
    if (edge > f.min && (f.bin_edges.empty() || edge > f.bin_edges.back())) {
      f.bin_edges.push_back(edge);
    }
  }
  f.bin_counts.assign(f.bin_edges.size() + 1, 0);
  size_t start = 0;
  for (size_t b = 0; b < f.bin_edges.size(); ++b) {
    const size_t end =
        std::lower_bound(sorted.begin(), sorted.end(), f.bin_edges[b]) - sorted.begin();
    f.bin_counts[b] = static_cast<int64_t>(end - start);
    start = end;
  }
  f.bin_counts.back() = static_cast<int64_t>(sorted.size() - start);
  return f;
}

FeatureProfile ProfileStrings(std::string name, absl::Span<const std::string> values,
                              const ProfileOptions& options) {
  absl::flat_hash_map<std::string, int64_t> counts;
  int64_t missing = 0;
  for (const std::string& v : values) {
    if (v.empty()) {
      ++missing;
    } else {
      ++counts[v];
    }
  }
  const int64_t present = static_cast<int64_t>(values.size()) - missing;
  return ProfileCategories(std::move(name), std::move(counts), present, missing, options);
}

absl::StatusOr<std::vector<FeatureProfile>> ProfileTensor(
    const Tensor& tensor, absl::string_view tensor_name, FeatureRole role,
    const std::vector<std::string>& names, const std::vector<std::string>& categorical,
    const ProfileOptions& options) {
  const std::string what = absl::StrCat(FeatureRoleName(role), " '", tensor_name, "'");
  if (tensor.empty() || tensor.rank() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": expected a tensor [N] or [N, F], got ", tensor.DebugString()));
  }
  const int64_t rows = tensor.dim(0);
  if (rows <= 0) return absl::InvalidArgumentError(absl::StrCat(what, ": no rows to profile"));
  const int64_t columns = tensor.NumElements() / rows;
  if (columns <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": no columns to profile in ", tensor.DebugString()));
  }
  if (!names.empty() && static_cast<int64_t>(names.size()) != columns) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", names.size(), " feature names for ",
                                                   columns, " columns of ", tensor.DebugString()));
  }
  const bool bytes = tensor.dtype() == DataType::kBytes;
  std::vector<FeatureProfile> features;
  features.reserve(columns);
  std::vector<double> numbers(bytes ? 0 : rows);
  std::vector<std::string> strings;
  for (int64_t j = 0; j < columns; ++j) {
    std::string name = !names.empty() ? names[j]
                       : columns == 1 ? std::string(tensor_name)
                                      : absl::StrCat(tensor_name, "[", j, "]");
    const bool as_category =
        std::find(categorical.begin(), categorical.end(), name) != categorical.end();
    FeatureProfile f;
    if (bytes) {
      strings.clear();
      for (int64_t r = 0; r < rows; ++r) strings.push_back(tensor.strings()[r * columns + j]);
      f = ProfileStrings(std::move(name), strings, options);
    } else {
      bool ok = VisitNumeric(tensor, [&](auto get) {
        for (int64_t r = 0; r < rows; ++r) numbers[r] = get(r * columns + j);
      });
      if (!ok) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": cannot profile element type ", DataTypeName(tensor.dtype())));
      }
      if (as_category) {
        absl::flat_hash_map<std::string, int64_t> counts;
        int64_t missing = 0;
        char buffer[32];
        for (double v : numbers) {
          if (IsMissing(v)) {
            ++missing;
          } else {
            ++counts[NumberAsCategory(v, buffer)];
          }
        }
        f = ProfileCategories(std::move(name), std::move(counts), rows - missing, missing, options);
      } else {
        f = ProfileNumbers(std::move(name), numbers, options);
      }
    }
    f.role = role;
    f.tensor = std::string(tensor_name);
    f.column = columns == 1 ? -1 : j;
    features.push_back(std::move(f));
  }
  return features;
}

absl::Status ValidateProfile(const ReferenceProfile& profile, absl::string_view what) {
  auto fail = [&](size_t i, absl::string_view field, const std::string& message) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": features[", i, "].", field, ": ", message));
  };
  if (profile.features.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": features: the profile has none"));
  }
  absl::flat_hash_set<std::string> names;
  absl::flat_hash_set<std::string> sources;
  for (size_t i = 0; i < profile.features.size(); ++i) {
    const FeatureProfile& f = profile.features[i];
    if (f.name.empty()) return fail(i, "name", "empty");
    if (!names.insert(f.name).second) return fail(i, "name", "'" + f.name + "' appears twice");
    if (f.tensor.empty()) return fail(i, "tensor", "empty");
    if (f.column < -1) return fail(i, "column", absl::StrCat("must be >= -1, got ", f.column));
    if (!sources.insert(absl::StrCat(FeatureRoleName(f.role), "/", f.tensor, "/", f.column))
             .second) {
      return fail(i, "column",
                  absl::StrCat(FeatureRoleName(f.role), " '", f.tensor, "' column ", f.column,
                               " is profiled twice"));
    }
    if (f.count < 0) return fail(i, "count", "negative");
    if (f.missing < 0) return fail(i, "missing", "negative");
    if (f.kind == FeatureKind::kCategorical) {
      int64_t sum = f.other_count;
      absl::flat_hash_set<absl::string_view> values;
      for (const CategoryCount& c : f.categories) {
        if (c.count < 0) return fail(i, "categories", "negative count for '" + c.value + "'");
        if (!values.insert(c.value).second) {
          return fail(i, "categories", "'" + c.value + "' appears twice");
        }
        sum += c.count;
      }
      if (f.other_count < 0) return fail(i, "other_count", "negative");
      if (sum != f.count) {
        return fail(i, "categories",
                    absl::StrCat("category counts add up to ", sum, ", not count ", f.count));
      }
      continue;
    }
    if (f.bin_counts.size() != f.bin_edges.size() + 1) {
      return fail(i, "bin_counts",
                  absl::StrCat("expected ", f.bin_edges.size() + 1, " counts (one more than ",
                               "bin_edges), got ", f.bin_counts.size()));
    }
    int64_t sum = 0;
    for (int64_t c : f.bin_counts) {
      if (c < 0) return fail(i, "bin_counts", "negative count");
      sum += c;
    }
    if (sum != f.count) {
      return fail(i, "bin_counts", absl::StrCat("counts add up to ", sum, ", not count ", f.count));
    }
    for (size_t k = 0; k < f.bin_edges.size(); ++k) {
      if (!std::isfinite(f.bin_edges[k]) || (k > 0 && !(f.bin_edges[k] > f.bin_edges[k - 1]))) {
        return fail(i, "bin_edges", "must be finite and strictly increasing");
      }
    }
    if (f.count == 0) continue;
    if (!std::isfinite(f.min) || !std::isfinite(f.max) || f.min > f.max) {
      return fail(i, "min",
                  absl::StrCat("min ", f.min, " and max ", f.max, " do not make a range"));
    }
    if (f.quantiles.size() != kProfileQuantiles) {
      return fail(
          i, "quantiles",
          absl::StrCat("expected ", kProfileQuantiles, " values, got ", f.quantiles.size()));
    }
    for (size_t k = 1; k < f.quantiles.size(); ++k) {
      if (!(f.quantiles[k] >= f.quantiles[k - 1])) {
        return fail(i, "quantiles", "must be non-decreasing");
      }
    }
  }
  return absl::OkStatus();
}

std::string ProfilePath(absl::string_view version_dir) {
  if (!version_dir.empty() && version_dir.back() == '/') version_dir.remove_suffix(1);
  return absl::StrCat(version_dir, "/", kProfileFileName);
}

}  // namespace flywheel::monitor
