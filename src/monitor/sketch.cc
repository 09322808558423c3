#include "monitor/sketch.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "monitor/hyperloglog.h"

namespace flywheel::monitor {

WindowLayout::WindowLayout(const ReferenceProfile& profile, const WindowOptions& options)
    : hll_precision_(std::clamp(options.hll_precision, kHllMinPrecision, kHllMaxPrecision)) {
  features_.reserve(profile.features.size());
  for (const FeatureProfile& p : profile.features) {
    FeatureSlots f;
    f.kind = p.kind;
    f.counter_offset = static_cast<uint32_t>(counters_);
    if (p.kind == FeatureKind::kNumeric) {
      f.bins = static_cast<uint32_t>(p.bin_edges.size() + 1);
      f.min = p.min;
      f.max = p.max;
      f.edges = p.bin_edges;
      f.edges.resize(std::bit_ceil(p.bin_edges.size() + 1),
                     std::numeric_limits<double>::infinity());
      f.numeric_index = static_cast<int32_t>(numeric_++);
    } else {
      f.bins = static_cast<uint32_t>(p.categories.size() + 1);
      for (size_t i = 0; i < p.categories.size(); ++i) {
        f.categories.emplace(p.categories[i].value, static_cast<uint32_t>(i));
      }
    }
    if (p.kind == FeatureKind::kCategorical || options.numeric_cardinality) {
      f.hll_offset = static_cast<int32_t>(register_bytes_);
      register_bytes_ += size_t{1} << hll_precision_;
    }
    counters_ += kFirstBin + f.bins;
    features_.push_back(std::move(f));
  }
}

Bucket::Bucket(const WindowLayout& l)
    : layout(&l),
      counters(l.counters(), 0),
      mins(l.numeric(), std::numeric_limits<double>::infinity()),
      maxs(l.numeric(), -std::numeric_limits<double>::infinity()),
      sums(l.numeric(), 0.0),
      registers(l.register_bytes(), 0) {}

void Bucket::Clear() {
  rows = 0;
  first_ns = 0;
  last_ns = 0;
  std::fill(counters.begin(), counters.end(), 0);
  std::fill(mins.begin(), mins.end(), std::numeric_limits<double>::infinity());
  std::fill(maxs.begin(), maxs.end(), -std::numeric_limits<double>::infinity());
  std::fill(sums.begin(), sums.end(), 0.0);
  std::fill(registers.begin(), registers.end(), 0);
}

void Bucket::AddCategory(const FeatureSlots& f, absl::string_view v) {
  uint32_t* c = counters.data() + f.counter_offset;
  ++c[kValuesSeen];
  if (v.empty()) {
    ++c[kMissing];
    return;
  }
  auto it = f.categories.find(v);
  if (it != f.categories.end()) {
    ++c[kFirstBin + it->second];
  } else {
    ++c[kAboveRange];
    ++c[kFirstBin + f.bins - 1];
  }
  if (f.hll_offset >= 0) {
    HllAdd(registers.data() + f.hll_offset, layout->hll_precision(), HashBytes(v));
  }
}

WindowTotals::WindowTotals(const WindowLayout& l)
    : counters(l.counters(), 0),
      mins(l.numeric(), std::numeric_limits<double>::infinity()),
      maxs(l.numeric(), -std::numeric_limits<double>::infinity()),
      sums(l.numeric(), 0.0),
      registers(l.register_bytes(), 0) {}

void WindowTotals::Add(const Bucket& b) {
  if (buckets == 0 || b.first_ns < oldest_ns) oldest_ns = b.first_ns;
  if (buckets == 0 || b.last_ns > newest_ns) newest_ns = b.last_ns;
  rows += b.rows;
  ++buckets;
  for (size_t i = 0; i < counters.size(); ++i) counters[i] += b.counters[i];
  for (size_t i = 0; i < mins.size(); ++i) {
    mins[i] = std::min(mins[i], b.mins[i]);
    maxs[i] = std::max(maxs[i], b.maxs[i]);
    sums[i] += b.sums[i];
  }
  for (size_t i = 0; i < registers.size(); ++i) {
    registers[i] = std::max(registers[i], b.registers[i]);
  }
}

BucketRing::BucketRing(const WindowLayout& layout, const WindowOptions& options,
                       std::atomic<uint64_t>* sequence)
    : sequence_(sequence) {
  const int count = std::max(options.buckets, 1);
  bucket_rows_ = std::max<int64_t>((std::max<int64_t>(options.rows, 1) + count - 1) / count, 1);
  buckets_.reserve(count);
  for (int i = 0; i < count; ++i) buckets_.emplace_back(layout);
}

Bucket& BucketRing::Writable(int64_t now_ns, int64_t* room) {
  Bucket* b = &buckets_[current_];
  if (b->rows >= bucket_rows_ || b->rows == 0) {
    if (b->rows >= bucket_rows_) {
      current_ = (current_ + 1) % buckets_.size();
      b = &buckets_[current_];
      b->Clear();
    }
    b->sequence = sequence_->fetch_add(1, std::memory_order_relaxed);
    b->first_ns = now_ns;
  }
  b->last_ns = now_ns;
  *room = bucket_rows_ - b->rows;
  return *b;
}

void MergeNewest(std::vector<const Bucket*> buckets, int64_t rows, int64_t oldest_ns,
                 WindowTotals* totals) {
  std::sort(buckets.begin(), buckets.end(),
            [](const Bucket* a, const Bucket* b) { return a->sequence > b->sequence; });
  for (const Bucket* b : buckets) {
    if (totals->rows >= rows) break;
    if (b->rows == 0 || b->last_ns < oldest_ns) continue;
    totals->Add(*b);
  }
}

}  // namespace flywheel::monitor
