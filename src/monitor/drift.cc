#include "monitor/drift.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/tensor_values.h"
#include "monitor/drift_stats.h"
#include "monitor/hyperloglog.h"

namespace flywheel::monitor {
namespace {

// Threads are spread over shards round-robin in the order they first observe anything.
std::atomic<uint32_t> next_thread_index{0};
thread_local uint32_t thread_index = next_thread_index.fetch_add(1, std::memory_order_relaxed);
// Picks where sampling starts in a batch; quality is secondary, cost is not.
thread_local uint64_t thread_random = 0x9e3779b97f4a7c15ULL * (thread_index + 1);

uint64_t NextRandom() {
  thread_random += 0x9e3779b97f4a7c15ULL;
  uint64_t z = thread_random;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

int64_t BatchRows(const Tensor& t) { return t.rank() == 0 ? 1 : t.dim(0); }

}  // namespace

struct alignas(64) DriftMonitor::Shard {
  absl::Mutex mu;
  // Made on first use, so that shards no thread writes to cost nothing.
  std::unique_ptr<BucketRing> ring ABSL_GUARDED_BY(mu);
  std::atomic<int64_t> rows_seen{0};
  std::atomic<int64_t> rows_sampled{0};
};

struct DriftMonitor::Slot {
  std::string tensor;
  // (column, feature index) pairs; column -1 reads a tensor holding one value per row.
  std::vector<std::pair<int64_t, uint32_t>> features;
};

DriftMonitor::DriftMonitor(std::string model, std::string version, std::string reason,
                           std::string profile_path)
    : model_(std::move(model)),
      version_(std::move(version)),
      reason_(std::move(reason)),
      profile_path_(std::move(profile_path)) {}

DriftMonitor::DriftMonitor(std::string model, std::string version, ReferenceProfile profile,
                           std::string profile_path, const DriftOptions& options)
    : model_(std::move(model)),
      version_(std::move(version)),
      profile_path_(std::move(profile_path)),
      options_(options),
      profile_(std::move(profile)) {
  options_.shards = std::clamp(options_.shards, 1, 256);
  layout_ = std::make_unique<WindowLayout>(profile_, options_.window);
  for (uint32_t i = 0; i < profile_.features.size(); ++i) {
    const FeatureProfile& f = profile_.features[i];
    auto& index = f.role == FeatureRole::kInput ? input_slots_ : output_slots_;
    auto [it, inserted] = index.try_emplace(f.tensor, static_cast<uint32_t>(slots_.size()));
    if (inserted) slots_.push_back(Slot{f.tensor, {}});
    slots_[it->second].features.emplace_back(f.column, i);
  }
  for (Slot& slot : slots_) std::sort(slot.features.begin(), slot.features.end());
  for (int i = 0; i < options_.shards; ++i) shards_.push_back(std::make_unique<Shard>());
  if (options_.max_rows_per_second > 0) {
    sample_interval_ns_ = 1e9 / options_.max_rows_per_second;
    // A tenth of a second of credit: an idle model samples a whole burst of traffic.
    burst_rows_ = std::max<int64_t>(1, static_cast<int64_t>(options_.max_rows_per_second / 10));
  }
}

std::unique_ptr<DriftMonitor> DriftMonitor::WithoutProfile(std::string model, std::string version,
                                                           std::string reason,
                                                           std::string profile_path) {
  return std::unique_ptr<DriftMonitor>(new DriftMonitor(
      std::move(model), std::move(version), std::move(reason), std::move(profile_path)));
}

std::unique_ptr<DriftMonitor> DriftMonitor::ForVersionDir(std::string model, std::string version,
                                                          const std::string& version_dir,
                                                          const DriftOptions& options) {
  const std::string path = ProfilePath(version_dir);
  absl::StatusOr<ReferenceProfile> profile = LoadProfile(path);
  if (profile.ok()) {
    return std::make_unique<DriftMonitor>(std::move(model), std::move(version), *std::move(profile),
                                          path, options);
  }
  std::string reason =
      absl::IsNotFound(profile.status())
          ? absl::StrCat("no reference profile at ", path,
                         "; create one with `flywheel monitor profile --model-repository REPO "
                         "--model ",
                         model, " --version ", version, " --data TRAIN.npy|TRAIN.csv`")
          : absl::StrCat("the reference profile could not be read: ", profile.status().message());
  return WithoutProfile(std::move(model), std::move(version), std::move(reason), path);
}

DriftMonitor::~DriftMonitor() = default;

DriftMonitor::Shard& DriftMonitor::ShardForThisThread() const {
  return *shards_[thread_index % shards_.size()];
}

int64_t DriftMonitor::SampleCount(int64_t batch, int64_t now_ns) {
  if (sample_interval_ns_ <= 0) return batch;
  int64_t next = next_sample_ns_.load(std::memory_order_relaxed);
  if (now_ns < next) return 0;
  const int64_t burst_ns = static_cast<int64_t>(burst_rows_ * sample_interval_ns_);
  // Credit unused for longer than a burst is lost.
  const int64_t from = std::max(next, now_ns - burst_ns);
  const int64_t credit = static_cast<int64_t>((now_ns - from) / sample_interval_ns_) + 1;
  const int64_t take = std::min(batch, credit);
  const int64_t new_next = from + static_cast<int64_t>(take * sample_interval_ns_);
  // Another thread that won the race takes this credit; skipping is fine for a sample.
  if (!next_sample_ns_.compare_exchange_strong(next, new_next, std::memory_order_relaxed)) return 0;
  return take;
}

void DriftMonitor::Observe(absl::Span<const TensorRef> inputs,
                           absl::Span<const TensorRef> outputs) {
  if (!has_profile()) return;
  Observe(inputs, outputs, absl::GetCurrentTimeNanos());
}

void DriftMonitor::Observe(absl::Span<const TensorRef> inputs, absl::Span<const TensorRef> outputs,
                           int64_t now_ns) {
  if (!has_profile()) return;
  int64_t batch = -1;
  for (absl::Span<const TensorRef> refs : {inputs, outputs}) {
    for (const TensorRef& ref : refs) {
      if (batch < 0 && ref.tensor != nullptr && !ref.tensor->empty()) {
        batch = BatchRows(*ref.tensor);
      }
    }
  }
  if (batch <= 0) return;
  Shard& shard = ShardForThisThread();
  shard.rows_seen.fetch_add(batch, std::memory_order_relaxed);
  const int64_t sampled = SampleCount(batch, now_ns);
  if (sampled == 0) return;
  const int64_t phase = sampled < batch ? static_cast<int64_t>(NextRandom() % batch) : 0;

  absl::InlinedVector<const Tensor*, 8> found(slots_.size(), nullptr);
  auto resolve = [&](absl::Span<const TensorRef> refs,
                     const absl::flat_hash_map<std::string, uint32_t>& index) {
    for (const TensorRef& ref : refs) {
      if (ref.tensor == nullptr || ref.tensor->empty()) continue;
      auto it = index.find(ref.name);
      if (it != index.end()) found[it->second] = ref.tensor;
    }
  };
  resolve(inputs, input_slots_);
  resolve(outputs, output_slots_);

  shard.rows_sampled.fetch_add(sampled, std::memory_order_relaxed);
  absl::MutexLock lock(&shard.mu);
  if (shard.ring == nullptr) {
    shard.ring = std::make_unique<BucketRing>(*layout_, options_.window, &sequence_);
  }
  for (int64_t done = 0; done < sampled;) {
    int64_t room = 0;
    Bucket& bucket = shard.ring->Writable(now_ns, &room);
    const int64_t n = std::min(room, sampled - done);
    AddRows(bucket, found, batch, sampled, phase, done, n);
    bucket.rows += n;
    done += n;
  }
}

void DriftMonitor::AddRows(Bucket& bucket, absl::Span<const Tensor* const> found, int64_t batch,
                           int64_t sampled, int64_t phase, int64_t first, int64_t count) const {
  const std::vector<FeatureSlots>& slots = layout_->features();
  // Sampled row i of the batch: evenly spaced, starting at a random phase.
  auto row_of = [&](int64_t i) { return (i * batch + phase) / sampled; };
  for (size_t s = 0; s < slots_.size(); ++s) {
    const Slot& slot = slots_[s];
    const Tensor* t = found[s];
    const int64_t rows = t != nullptr ? BatchRows(*t) : 0;
    const int64_t width = rows > 0 ? t->NumElements() / rows : 0;
    // Element index of `column` in row r, or -1 when the tensor has no such column.
    auto element = [&](int64_t r, int64_t column) -> int64_t {
      if (r >= rows) return -1;
      if (column < 0) return width == 1 ? r : -1;
      return column < width ? r * width + column : -1;
    };
    auto all_missing = [&] {
      for (int64_t i = first; i < first + count; ++i) {
        for (const auto& [column, f] : slot.features) bucket.AddMissing(slots[f]);
      }
    };
    if (t == nullptr) {
      all_missing();
      continue;
    }
    if (t->dtype() == DataType::kBytes) {
      const std::vector<std::string>& strings = t->strings();
      for (int64_t i = first; i < first + count; ++i) {
        const int64_t r = row_of(i);
        for (const auto& [column, f] : slot.features) {
          const FeatureSlots& fs = slots[f];
          const int64_t e = element(r, column);
          double v;
          if (e < 0) {
            bucket.AddMissing(fs);
          } else if (fs.kind == FeatureKind::kCategorical) {
            bucket.AddCategory(fs, strings[e]);
          } else if (absl::SimpleAtod(strings[e], &v)) {
            bucket.AddNumber(fs, v);
          } else {
            bucket.AddMissing(fs);
          }
        }
      }
      continue;
    }
    const bool numeric = VisitNumeric(*t, [&](auto get) {
      char buffer[32];
      for (int64_t i = first; i < first + count; ++i) {
        const int64_t r = row_of(i);
        for (const auto& [column, f] : slot.features) {
          const FeatureSlots& fs = slots[f];
          const int64_t e = element(r, column);
          if (e < 0) {
            bucket.AddMissing(fs);
            continue;
          }
          const double v = get(e);
          if (fs.kind == FeatureKind::kNumeric) {
            bucket.AddNumber(fs, v);
          } else if (std::isfinite(v)) {
            bucket.AddCategory(fs, NumberAsCategory(v, buffer));
          } else {
            bucket.AddMissing(fs);
          }
        }
      }
    });
    if (!numeric) all_missing();
  }
}

DriftReport DriftMonitor::Compute() const { return Compute(absl::GetCurrentTimeNanos()); }

DriftReport DriftMonitor::Compute(int64_t now_ns) const ABSL_NO_THREAD_SAFETY_ANALYSIS {
  DriftReport report;
  report.model = model_;
  report.version = version_;
  report.profile_path = profile_path_;
  report.psi_threshold = options_.psi_threshold;
  report.min_rows = options_.min_rows;
  if (!has_profile()) {
    report.reason = reason_;
    return report;
  }
  report.has_profile = true;
  report.window_capacity = std::max<int64_t>(options_.window.rows, 1);
  const int64_t oldest_ns = options_.window.max_age == absl::InfiniteDuration()
                                ? std::numeric_limits<int64_t>::min()
                                : now_ns - absl::ToInt64Nanoseconds(options_.window.max_age);
  WindowTotals totals(*layout_);
  {
    // Every shard at once, in index order: one consistent window.
    for (const auto& shard : shards_) shard->mu.Lock();
    std::vector<const Bucket*> buckets;
    for (const auto& shard : shards_) {
      report.rows_seen += shard->rows_seen.load(std::memory_order_relaxed);
      report.rows_sampled += shard->rows_sampled.load(std::memory_order_relaxed);
      if (shard->ring != nullptr) {
        shard->ring->ForEach([&](const Bucket& b) { buckets.push_back(&b); });
      }
    }
    MergeNewest(std::move(buckets), report.window_capacity, oldest_ns, &totals);
    for (auto it = shards_.rbegin(); it != shards_.rend(); ++it) (*it)->mu.Unlock();
  }
  report.window_rows = totals.rows;
  report.window_start_ns = totals.oldest_ns;
  report.window_end_ns = totals.newest_ns;

  const std::vector<FeatureSlots>& slots = layout_->features();
  std::vector<uint64_t> reference;
  std::vector<uint64_t> live;
  for (size_t i = 0; i < slots.size(); ++i) {
    const FeatureProfile& p = profile_.features[i];
    const FeatureSlots& fs = slots[i];
    const uint64_t* c = totals.counters.data() + fs.counter_offset;
    FeatureDrift d;
    d.name = p.name;
    d.role = p.role;
    d.kind = p.kind;
    d.count = static_cast<int64_t>(c[kValuesSeen]);
    d.missing = static_cast<int64_t>(c[kMissing]);
    d.out_of_range = static_cast<int64_t>(c[kBelowRange] + c[kAboveRange]);
    const int64_t present = d.count - d.missing;
    if (d.count > 0) d.missing_rate = static_cast<double>(d.missing) / d.count;
    if (present > 0) d.out_of_range_rate = static_cast<double>(d.out_of_range) / present;
    d.reference_missing_rate = p.missing_rate();
    d.reference_cardinality = p.distinct;
    d.reference_mean = p.mean;
    if (fs.hll_offset >= 0) {
      d.cardinality =
          HllEstimate(totals.registers.data() + fs.hll_offset, layout_->hll_precision());
    }
    if (fs.numeric_index >= 0 && present > 0) {
      d.min = totals.mins[fs.numeric_index];
      d.max = totals.maxs[fs.numeric_index];
      d.mean = totals.sums[fs.numeric_index] / present;
    }
    if (present >= std::max<int64_t>(options_.min_rows, 1) && p.count > 0) {
      reference.clear();
      if (p.kind == FeatureKind::kNumeric) {
        for (int64_t n : p.bin_counts) reference.push_back(static_cast<uint64_t>(n));
      } else {
        for (const CategoryCount& cc : p.categories) reference.push_back(cc.count);
        reference.push_back(static_cast<uint64_t>(p.other_count));
      }
      live.assign(c + kFirstBin, c + kFirstBin + fs.bins);
      d.psi = PopulationStabilityIndex(reference, live);
      d.js_distance = JensenShannonDistance(reference, live);
      if (p.kind == FeatureKind::kNumeric) {
        d.ks_statistic = KolmogorovSmirnovStatistic(reference, live);
        d.ks_pvalue = KolmogorovSmirnovPValue(*d.ks_statistic, p.count, present);
      } else {
        const ChiSquareResult chi = ChiSquareHomogeneity(reference, live);
        d.chi_square = chi.statistic;
        d.chi_square_pvalue = chi.p_value;
        d.chi_square_df = chi.degrees_of_freedom;
      }
      d.drifted = *d.psi >= options_.psi_threshold;
      report.drifted_features += d.drifted;
    }
    report.features.push_back(std::move(d));
  }
  return report;
}

}  // namespace flywheel::monitor
