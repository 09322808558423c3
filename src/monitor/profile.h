// Reference profiles: the distribution of each input feature and output of a model in reference
// (usually training) data, saved as <model dir>/<version>/profile.json. Live drift is measured
// against it (monitor/drift.h); `flywheel monitor profile` writes it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/tensor.h"

namespace flywheel::monitor {

inline constexpr char kProfileFileName[] = "profile.json";
// The "format" member of every profile file, and the version this code writes and reads.
inline constexpr char kProfileFormat[] = "flywheel.reference_profile";
inline constexpr int kProfileFormatVersion = 1;
// Quantiles are kept at 0%, 1%, ..., 100%.
inline constexpr int kProfileQuantiles = 101;

enum class FeatureRole { kInput, kOutput };
enum class FeatureKind { kNumeric, kCategorical };
absl::string_view FeatureRoleName(FeatureRole role);  // "input", "output"
absl::string_view FeatureKindName(FeatureKind kind);  // "numeric", "categorical"

struct CategoryCount {
  std::string value;
  int64_t count = 0;
};

// One feature: a column of a request tensor (or the whole tensor when it holds one value per
// row). Missing values (NaN or infinite numbers, empty strings) are counted apart and take no
// part in the distribution.
struct FeatureProfile {
  std::string name;
  FeatureRole role = FeatureRole::kInput;
  // The request input (or response output) the value is read from, and its column in a
  // [batch, F] tensor; -1 when the tensor is [batch] or [batch, 1].
  std::string tensor;
  int64_t column = -1;
  FeatureKind kind = FeatureKind::kNumeric;
  int64_t count = 0;  // values present
  int64_t missing = 0;
  int64_t distinct = 0;

  // Numeric features.
  double min = 0;
  double max = 0;
  double mean = 0;
  double stddev = 0;
  // kProfileQuantiles values (linear interpolation between order statistics); empty when
  // count == 0.
  std::vector<double> quantiles;
  // Histogram: strictly increasing interior cut points, bins (-inf, e0), [e0, e1), ...,
  // [e_last, +inf), and the reference count of each (bin_edges.size() + 1 entries). The edges are
  // the reference values at ranks n * i / histogram_bins, so bins hold equal reference mass except
  // where ties merge them; this is what PSI, KS and JS are computed over.
  std::vector<double> bin_edges;
  std::vector<int64_t> bin_counts;

  // Categorical features: the most frequent values, most frequent first (ties by value), and
  // the count of every other value.
  std::vector<CategoryCount> categories;
  int64_t other_count = 0;

  double missing_rate() const {
    const int64_t total = count + missing;
    return total == 0 ? 0.0 : static_cast<double>(missing) / static_cast<double>(total);
  }
};

struct ReferenceProfile {
  std::string model;
  int64_t version = 0;
  // Where the reference data came from (a file name) and when the profile was made (RFC 3339).
  std::string source;
  std::string created;
  int64_t rows = 0;
  std::vector<FeatureProfile> features;
};

struct ProfileOptions {
  // Equal-mass bins per numeric feature: 20 keeps PSI's sampling noise near (bins - 1) / n, well
  // under the 0.2 alert level for windows of a few hundred rows, while resolving shifts of a
  // few percent of the mass.
  int histogram_bins = 20;
  // Categories kept by name; the rest are pooled as "other".
  int max_categories = 64;
};

// Profiles one column of values. Numbers that are NaN or infinite count as missing, as do empty
// strings.
FeatureProfile ProfileNumbers(std::string name, absl::Span<const double> values,
                              const ProfileOptions& options);
FeatureProfile ProfileStrings(std::string name, absl::Span<const std::string> values,
                              const ProfileOptions& options);

// Profiles a tensor [N], [N, 1] or [N, F] (more dimensions are flattened into F), one feature per
// column, with role, tensor and column set. Columns are named names[j] when `names` is not empty
// (it must have F entries), else "<tensor>[<j>]" for F > 1 and "<tensor>" for one column. BYTES
// tensors give categorical features; numeric ones numeric features, except the columns listed in
// `categorical` (values printed as numbers, e.g. "3" or "0.5").
absl::StatusOr<std::vector<FeatureProfile>> ProfileTensor(
    const Tensor& tensor, absl::string_view tensor_name, FeatureRole role,
    const std::vector<std::string>& names, const std::vector<std::string>& categorical,
    const ProfileOptions& options);

// A number as a categorical value: integers without a decimal point ("3"), others in the
// shortest form that reads back exactly. Writes into `buffer` (at least 32 bytes) and returns a
// view on it; used alike when profiling and when observing live traffic.
absl::string_view NumberAsCategory(double value, char* buffer);

// Checks the invariants the drift window relies on (sorted edges, matching counts, unique names
// and (tensor, column) pairs, non-negative counts); `what` names the profile in errors.
absl::Status ValidateProfile(const ReferenceProfile& profile, absl::string_view what);

std::string ProfileToJson(const ReferenceProfile& profile);
// Parses and validates; errors name `what` (the file) and the offending member, e.g.
// "profile.json: features[3].bin_counts: expected 20 counts, got 19".
absl::StatusOr<ReferenceProfile> ProfileFromJson(absl::string_view json, absl::string_view what);

// <version_dir>/profile.json
std::string ProfilePath(absl::string_view version_dir);
// Writes through a temporary file and a rename, so that a reader never sees half a profile.
absl::Status SaveProfile(const ReferenceProfile& profile, const std::string& path);
absl::StatusOr<ReferenceProfile> LoadProfile(const std::string& path);

}  // namespace flywheel::monitor
