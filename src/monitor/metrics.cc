#include "monitor/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"

namespace flywheel::monitor {

// --- Counter, Gauge, Histogram ----------------------------------------------------------------

void Counter::Increment(double by) {
  // A counter never goes down (Prometheus treats a decrease as a restart); refuse negative or NaN
  // steps instead of corrupting rate() downstream.
  if (!(by >= 0.0)) return;
  value_.fetch_add(by, std::memory_order_relaxed);
}

double Counter::Value() const { return value_.load(std::memory_order_relaxed); }

void Gauge::Set(double value) { value_.store(value, std::memory_order_relaxed); }

void Gauge::Add(double by) { value_.fetch_add(by, std::memory_order_relaxed); }

double Gauge::Value() const { return value_.load(std::memory_order_relaxed); }

namespace {

// Sorted, unique, finite bounds: +Inf is the implicit last bucket and NaN cannot order values.
std::vector<double> NormalizeBounds(std::vector<double> bounds) {
  bounds.erase(
      std::remove_if(bounds.begin(), bounds.end(), [](double b) { return !std::isfinite(b); }),
      bounds.end());
  std::sort(bounds.begin(), bounds.end());
  bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
  return bounds;
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(NormalizeBounds(std::move(upper_bounds))),
      buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  // First bound >= value (buckets are "le"); NaN compares false everywhere and lands in +Inf.
  size_t index = bounds_.size();
  if (!std::isnan(value)) {
    index = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  }
  buckets_[index].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

void Histogram::Reset() {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
  sum_.store(0.0, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Snap() const {
  Snapshot snap;
  snap.upper_bounds = bounds_;
  snap.cumulative_counts.resize(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    snap.cumulative_counts[i] = running;
  }
  snap.count = running;
  snap.sum = sum_.load(std::memory_order_relaxed);
  return snap;
}

std::vector<double> Histogram::LatencyBoundsUs() {
  return {100,   250,    500,    1000,   2500,    5000,    10000,   25000,
          50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
}

// --- Family ------------------------------------------------------------------------------------

template <typename T>
Family<T>::Family(std::string name, std::string help, std::function<std::unique_ptr<T>()> make)
    : name_(std::move(name)), help_(std::move(help)), make_(std::move(make)) {}

template <typename T>
T& Family<T>::WithLabels(const Labels& labels) {
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = children_.find(labels);
    if (it != children_.end()) return *it->second;
  }
  absl::MutexLock lock(&mu_);
  std::unique_ptr<T>& child = children_[labels];
  if (child == nullptr) child = make_();
  return *child;
}

template <typename T>
void Family<T>::Remove(const Labels& labels) {
  absl::MutexLock lock(&mu_);
  children_.erase(labels);
}

template <typename T>
void Family<T>::ForEach(const std::function<void(const Labels&, const T&)>& fn) const {
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [labels, child] : children_) fn(labels, *child);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// --- Text exposition ---------------------------------------------------------------------------

namespace {

// Prometheus parses sample values with Go's ParseFloat: integers print without exponent where a
// double holds them exactly, others with the fewest digits that round-trip.
void AppendValue(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[400];  // fixed notation of a double with |exponent| < 21 fits easily
  std::to_chars_result r;
  if (v == std::trunc(v) && std::fabs(v) <= 9007199254740992.0) {  // 2^53
    r = std::to_chars(buf, buf + sizeof(buf), static_cast<int64_t>(v));
    out.append(buf, r.ptr);
    return;
  }
  // Plain decimals for ordinary magnitudes (le="0.0001", not le="1e-04"), exponents beyond.
  r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  const char* e = std::find(buf, r.ptr, 'e');
  int exponent = 0;
  if (e != r.ptr) std::from_chars(e + (e[1] == '+' ? 2 : 1), r.ptr, exponent);
  if (exponent >= -6 && exponent < 21) {
    r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed);
  }
  out.append(buf, r.ptr);
}

void AppendEscapedHelp(std::string& out, const std::string& help) {
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

void AppendEscapedLabelValue(std::string& out, const std::string& value) {
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

// Metric names match [a-zA-Z_:][a-zA-Z0-9_:]* and label names [a-zA-Z_][a-zA-Z0-9_]*; any other
// character becomes '_' so that a bad name costs a rename, not an unparseable scrape.
std::string SanitizeName(const std::string& name, bool allow_colon) {
  std::string out = name.empty() ? "_" : name;
  for (size_t i = 0; i < out.size(); ++i) {
    char c = out[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (allow_colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) out[i] = '_';
  }
  return out;
}

// `{a="x",b="y"}` with an optional trailing `le`, or nothing when there are no labels at all.
// A user label named `le` on a histogram would duplicate the bucket label and is left out.
void AppendLabels(std::string& out, const Labels& labels, const std::string* le) {
  if (labels.empty() && le == nullptr) return;
  out += '{';
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (le != nullptr && name == "le") continue;
    if (!first) out += ',';
    first = false;
    out += SanitizeName(name, /*allow_colon=*/false);
    out += "=\"";
    AppendEscapedLabelValue(out, value);
    out += '"';
  }
  if (le != nullptr) {
    if (!first) out += ',';
    out += "le=\"";
    out += *le;
    out += '"';
  }
  out += '}';
}

void AppendSample(std::string& out, const std::string& name, const Labels& labels,
                  const std::string* le, double value) {
  out += name;
  AppendLabels(out, labels, le);
  out += ' ';
  AppendValue(out, value);
  out += '\n';
}

void AppendHistogram(std::string& out, const std::string& name, const Labels& labels,
                     const Histogram::Snapshot& snap);

// One metric name's block: HELP and TYPE once, then its samples.
struct Block {
  std::string help;
  std::string type;
  std::string samples;
};

class BlockWriter : public SampleWriter {
 public:
  explicit BlockWriter(std::map<std::string, Block>& blocks) : blocks_(blocks) {}

  void Add(const std::string& name, const std::string& help, const std::string& type,
           const Labels& labels, double value) override {
    std::string clean = SanitizeName(name, /*allow_colon=*/true);
    auto [it, inserted] = blocks_.try_emplace(clean);
    Block& block = it->second;
    const std::string kind = (type == "counter" || type == "gauge") ? type : "untyped";
    if (inserted) {
      block.help = help;
      block.type = kind;
    } else if (block.type != kind) {
      return;  // One name has one type in a scrape; a clash drops the later samples.
    }
    AppendSample(block.samples, clean, labels, nullptr, value);
  }

  void AddHistogram(const std::string& name, const std::string& help, const Labels& labels,
                    const Histogram::Snapshot& snapshot) override {
    std::string clean = SanitizeName(name, /*allow_colon=*/true);
    auto [it, inserted] = blocks_.try_emplace(clean);
    Block& block = it->second;
    if (inserted) {
      block.help = help;
      block.type = "histogram";
    } else if (block.type != "histogram") {
      return;
    }
    AppendHistogram(block.samples, clean, labels, snapshot);
  }

 private:
  std::map<std::string, Block>& blocks_;
};

void RenderFamily(const Family<Counter>& family, Block& block) {
  block.help = family.help();
  block.type = "counter";
  family.ForEach([&](const Labels& labels, const Counter& c) {
    AppendSample(block.samples, family.name(), labels, nullptr, c.Value());
  });
}

void RenderFamily(const Family<Gauge>& family, Block& block) {
  block.help = family.help();
  block.type = "gauge";
  family.ForEach([&](const Labels& labels, const Gauge& g) {
    AppendSample(block.samples, family.name(), labels, nullptr, g.Value());
  });
}

// A histogram's _bucket (cumulative, with le), _sum and _count samples.
void AppendHistogram(std::string& out, const std::string& name, const Labels& labels,
                     const Histogram::Snapshot& snap) {
  const std::string bucket = name + "_bucket";
  std::string le;
  for (size_t i = 0; i < snap.cumulative_counts.size(); ++i) {
    le.clear();
    if (i < snap.upper_bounds.size()) {
      AppendValue(le, snap.upper_bounds[i]);
    } else {
      le = "+Inf";
    }
    AppendSample(out, bucket, labels, &le, static_cast<double>(snap.cumulative_counts[i]));
  }
  AppendSample(out, name + "_sum", labels, nullptr, snap.sum);
  AppendSample(out, name + "_count", labels, nullptr, static_cast<double>(snap.count));
}

void RenderFamily(const Family<Histogram>& family, Block& block) {
  block.help = family.help();
  block.type = "histogram";
  family.ForEach([&](const Labels& labels, const Histogram& h) {
    AppendHistogram(block.samples, family.name(), labels, h.Snap());
  });
}

}  // namespace

// --- Registry ----------------------------------------------------------------------------------

struct Registry::Impl {
  using AnyFamily = std::variant<std::unique_ptr<Family<Counter>>, std::unique_ptr<Family<Gauge>>,
                                 std::unique_ptr<Family<Histogram>>>;

  mutable absl::Mutex families_mu;
  std::map<std::string, AnyFamily> families ABSL_GUARDED_BY(families_mu);
  // A second registration of a name under another type gets a family of its own that is never
  // rendered: the caller keeps a working object and the scrape keeps one type per name.
  std::vector<AnyFamily> detached ABSL_GUARDED_BY(families_mu);

  // Held (shared) while collectors run, so that RemoveCollector returning means the collector is
  // not running and whatever it captured may be destroyed.
  mutable absl::Mutex collectors_mu;
  std::map<int, std::function<void(SampleWriter&)>> collectors ABSL_GUARDED_BY(collectors_mu);
  int next_collector_id ABSL_GUARDED_BY(collectors_mu) = 1;

  template <typename T>
  Family<T>& Add(const std::string& name, const std::string& help,
                 std::function<std::unique_ptr<T>()> make) {
    std::string clean = SanitizeName(name, /*allow_colon=*/true);
    absl::MutexLock lock(&families_mu);
    auto it = families.find(clean);
    if (it != families.end()) {
      if (auto* existing = std::get_if<std::unique_ptr<Family<T>>>(&it->second)) {
        return **existing;
      }
      auto family = std::make_unique<Family<T>>(clean, help, std::move(make));
      Family<T>& ref = *family;
      detached.emplace_back(std::move(family));
      return ref;
    }
    auto family = std::make_unique<Family<T>>(clean, help, std::move(make));
    Family<T>& ref = *family;
    families.emplace(clean, std::move(family));
    return ref;
  }
};

Registry::Registry() : impl_(std::make_unique<Impl>()) {}

Registry::~Registry() = default;

Family<Counter>& Registry::AddCounter(const std::string& name, const std::string& help) {
  return impl_->Add<Counter>(name, help, [] { return std::make_unique<Counter>(); });
}

Family<Gauge>& Registry::AddGauge(const std::string& name, const std::string& help) {
  return impl_->Add<Gauge>(name, help, [] { return std::make_unique<Gauge>(); });
}

Family<Histogram>& Registry::AddHistogram(const std::string& name, const std::string& help,
                                          std::vector<double> upper_bounds) {
  return impl_->Add<Histogram>(name, help, [bounds = std::move(upper_bounds)] {
    return std::make_unique<Histogram>(bounds);
  });
}

int Registry::AddCollector(std::function<void(SampleWriter&)> collector) {
  absl::MutexLock lock(&impl_->collectors_mu);
  int id = impl_->next_collector_id++;
  impl_->collectors.emplace(id, std::move(collector));
  return id;
}

void Registry::RemoveCollector(int id) {
  absl::MutexLock lock(&impl_->collectors_mu);
  impl_->collectors.erase(id);
}

std::string Registry::Render() const {
  std::map<std::string, Block> blocks;
  {
    absl::ReaderMutexLock lock(&impl_->families_mu);
    for (const auto& [name, any] : impl_->families) {
      Block& block = blocks[name];
      std::visit([&block](const auto& family) { RenderFamily(*family, block); }, any);
    }
  }
  {
    absl::ReaderMutexLock lock(&impl_->collectors_mu);
    BlockWriter writer(blocks);
    for (const auto& [id, collector] : impl_->collectors) collector(writer);
  }

  std::string out;
  for (const auto& [name, block] : blocks) {
    out += "# HELP ";
    out += name;
    out += ' ';
    AppendEscapedHelp(out, block.help);
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += block.type;
    out += '\n';
    out += block.samples;
  }
  return out;
}

}  // namespace flywheel::monitor
