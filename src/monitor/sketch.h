// Sliding-window sketches of live feature values, binned by a reference profile: a window is a
// ring of buckets (sub-windows), each holding, per feature, counts per reference histogram bin or
// category, missing and out-of-range counts, min/max/sum and a HyperLogLog sketch. Statistics
// are computed from merged counts when drift is read, never from raw values, which are not kept.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "monitor/hyperloglog.h"
#include "monitor/profile.h"

namespace flywheel::monitor {

struct WindowOptions {
  // Rows (of those sampled) the window covers, split into `buckets` equal sub-windows. The ring
  // rotates by row count, so the window always holds the latest rows - between
  // rows - rows/buckets and rows of them - however slow or fast traffic is.
  int64_t rows = 10000;
  int buckets = 10;
  // Buckets whose last row is older than this take no part in statistics, so that a model that
  // stopped receiving traffic does not report hours-old figures as current.
  absl::Duration max_age = absl::InfiniteDuration();
  // Precision of the cardinality sketches (4..16; 12: 4 KiB per feature and bucket, 1.6% error).
  int hll_precision = 12;
  // Categorical features always get a cardinality sketch; numeric ones only when set (a wide
  // numeric input would otherwise take 4 KiB per feature and bucket).
  bool numeric_cardinality = false;
};

// Counters of one feature in a bucket, at FeatureSlots::counter_offset.
enum WindowCounter : uint32_t {
  kValuesSeen = 0,  // rows in which the feature was looked at (present or missing)
  kMissing = 1,
  kBelowRange = 2,  // numeric: below the reference minimum
  kAboveRange = 3,  // numeric: above the reference maximum; categorical: not a listed category
  kFirstBin = 4,    // then one counter per bin
};

// Where one feature's values go in a bucket; built once from the profile.
struct FeatureSlots {
  FeatureKind kind = FeatureKind::kNumeric;
  uint32_t bins = 1;
  uint32_t counter_offset = 0;
  int32_t numeric_index = -1;  // into a bucket's mins/maxs/sums
  int32_t hll_offset = -1;     // byte offset of its registers, or -1 without a sketch
  double min = 0;              // reference range
  double max = 0;
  // Numeric: the bin edges padded with +inf to a power of two with at least one sentinel, for a
  // binary search of fixed length.
  std::vector<double> edges;
  // Categorical: value -> bin; every other value falls into the last bin.
  absl::flat_hash_map<std::string, uint32_t> categories;

  // The histogram bin of a finite number: the count of edges <= v, by a binary search in which
  // the comparison feeds arithmetic rather than a branch (a coin toss on live values).
  uint32_t NumericBin(double v) const {
    const double* e = edges.data();
    size_t lo = 0;
    for (size_t step = edges.size() / 2; step > 0; step /= 2) {
      lo += step & (size_t{0} - static_cast<size_t>(e[lo + step - 1] <= v));
    }
    return static_cast<uint32_t>(lo);
  }
};

class WindowLayout {
 public:
  WindowLayout(const ReferenceProfile& profile, const WindowOptions& options);
  const std::vector<FeatureSlots>& features() const { return features_; }
  size_t counters() const { return counters_; }
  size_t numeric() const { return numeric_; }
  size_t register_bytes() const { return register_bytes_; }
  int hll_precision() const { return hll_precision_; }

 private:
  std::vector<FeatureSlots> features_;
  size_t counters_ = 0;
  size_t numeric_ = 0;
  size_t register_bytes_ = 0;
  int hll_precision_ = 12;
};

// One sub-window. Adding a value never allocates.
struct Bucket {
  explicit Bucket(const WindowLayout& layout);
  void Clear();

  // Inline: it runs once per value observed.
  void AddNumber(const FeatureSlots& f, double v);
  void AddCategory(const FeatureSlots& f, absl::string_view v);
  void AddMissing(const FeatureSlots& f) {
    uint32_t* c = counters.data() + f.counter_offset;
    ++c[kValuesSeen];
    ++c[kMissing];
  }

  const WindowLayout* layout;
  // Orders buckets across the rings of one monitor: a later bucket has a larger sequence.
  uint64_t sequence = 0;
  int64_t rows = 0;
  int64_t first_ns = 0;
  int64_t last_ns = 0;
  std::vector<uint32_t> counters;
  std::vector<double> mins;
  std::vector<double> maxs;
  std::vector<double> sums;
  std::vector<uint8_t> registers;
};

inline void Bucket::AddNumber(const FeatureSlots& f, double v) {
  uint32_t* c = counters.data() + f.counter_offset;
  ++c[kValuesSeen];
  if (!std::isfinite(v)) {
    ++c[kMissing];
    return;
  }
  c[kBelowRange] += v < f.min;
  c[kAboveRange] += v > f.max;
  ++c[kFirstBin + f.NumericBin(v)];
  const int32_t k = f.numeric_index;
  mins[k] = std::min(mins[k], v);
  maxs[k] = std::max(maxs[k], v);
  sums[k] += v;
  if (f.hll_offset >= 0) {
    HllAdd(registers.data() + f.hll_offset, layout->hll_precision(), HashNumber(v));
  }
}

// The sum of some buckets.
struct WindowTotals {
  explicit WindowTotals(const WindowLayout& layout);
  void Add(const Bucket& bucket);

  int64_t rows = 0;
  int buckets = 0;
  int64_t oldest_ns = 0;
  int64_t newest_ns = 0;
  std::vector<uint64_t> counters;
  std::vector<double> mins;
  std::vector<double> maxs;
  std::vector<double> sums;
  std::vector<uint8_t> registers;
};

// A ring of `buckets` buckets of `bucket_rows` rows each. Not thread-safe.
class BucketRing {
 public:
  // `sequence` numbers buckets as they open; rings of one window share it.
  BucketRing(const WindowLayout& layout, const WindowOptions& options,
             std::atomic<uint64_t>* sequence);

  // The bucket that takes the next rows and how many more rows it takes (at least one): the
  // current bucket, or the oldest one, cleared, when the current one is full.
  Bucket& Writable(int64_t now_ns, int64_t* room);
  // Calls fn(bucket) for each bucket holding rows.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const Bucket& b : buckets_) {
      if (b.rows > 0) fn(b);
    }
  }
  int64_t bucket_rows() const { return bucket_rows_; }

 private:
  std::vector<Bucket> buckets_;
  size_t current_ = 0;
  int64_t bucket_rows_;
  std::atomic<uint64_t>* sequence_;
};

// Merges the newest buckets (by sequence) until they hold at least `rows` rows, skipping buckets
// whose last row is older than `oldest_ns`.
void MergeNewest(std::vector<const Bucket*> buckets, int64_t rows, int64_t oldest_ns,
                 WindowTotals* totals);

}  // namespace flywheel::monitor
