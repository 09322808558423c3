// Test-only: feature values computed the slow, obvious way from a list of events, to check the
// tiles, the pipeline and the export against. Also random event streams and value comparison.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "features/definitions.h"
#include "features/feature_value.h"
#include "features/lookup.h"
#include "gtest/gtest.h"

namespace flywheel::features::testing {

// One event of one entity; fields absent from the map are absent from the event.
struct RefEvent {
  int64_t ts = 0;  // nanoseconds
  std::map<std::string, Scalar> fields;
};

inline int64_t RefFloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// The value of `f` at `now` over `events` (one entity's, in arrival order). With `see_future`
// events after `now` still count as the entity's newest (what the online state holds); without,
// only events at or before `now` exist (the export's view).
inline FeatureValue Reference(const ViewDef& view, const FeatureDef& f,
                              const std::vector<RefEvent>& events, int64_t now, bool see_future) {
  std::vector<size_t> visible;
  for (size_t i = 0; i < events.size(); ++i) {
    if (see_future || events[i].ts <= now) visible.push_back(i);
  }
  if (visible.empty()) return {};
  std::optional<int64_t> ttl;
  if (view.effective_ttl) ttl = absl::ToInt64Nanoseconds(*view.effective_ttl);
  // Newest by (time, arrival).
  auto newer = [&](size_t a, size_t b) {
    return events[a].ts != events[b].ts ? events[a].ts > events[b].ts : a > b;
  };
  if (!f.aggregation) {
    std::optional<size_t> best;
    for (size_t i : visible) {
      if (events[i].fields.count(f.field) && (!best || newer(i, *best))) best = i;
    }
    if (!best) return {};
    if (ttl && now - events[*best].ts > *ttl) return {FeatureStatus::kOutsideTtl, {}};
    return {FeatureStatus::kPresent,
            std::visit([](auto v) -> Value { return v; }, events[*best].fields.at(f.field))};
  }
  int64_t last_ts = events[visible[0]].ts;
  for (size_t i : visible) last_ts = std::max(last_ts, events[i].ts);
  if (ttl && now - last_ts > *ttl) return {FeatureStatus::kOutsideTtl, {}};
  int64_t every = absl::ToInt64Nanoseconds(f.every);
  int64_t end = RefFloorDiv(now, every) * every;
  int64_t start = end - absl::ToInt64Nanoseconds(f.window);
  std::vector<size_t> in;  // in the window, carrying the field when there is one
  for (size_t i : visible) {
    if (events[i].ts < start || events[i].ts >= end) continue;
    if (!f.field.empty() && !events[i].fields.count(f.field)) continue;
    in.push_back(i);
  }
  auto field = [&](size_t i) { return events[i].fields.at(f.field); };
  auto as_double = [&](size_t i) {
    const Scalar& s = events[i].fields.at(f.field);
    return std::holds_alternative<double>(s) ? std::get<double>(s)
                                             : static_cast<double>(std::get<int64_t>(s));
  };
  bool is_float = f.field_type == FieldType::kFloat64;
  FeatureValue out{FeatureStatus::kPresent, {}};
  switch (f.function) {
    case AggFunction::kCount:
    case AggFunction::kCountField:
      out.value = static_cast<int64_t>(in.size());
      return out;
    case AggFunction::kSum:
      if (is_float) {
        double sum = 0;
        for (size_t i : in) sum += as_double(i);
        out.value = sum;
      } else {
        uint64_t sum = 0;
        for (size_t i : in) sum += static_cast<uint64_t>(std::get<int64_t>(field(i)));
        out.value = static_cast<int64_t>(sum);
      }
      return out;
    case AggFunction::kMean: {
      if (in.empty()) return {};
      double sum = 0;
      for (size_t i : in) sum += as_double(i);
      out.value = sum / static_cast<double>(in.size());
      return out;
    }
    case AggFunction::kMin:
    case AggFunction::kMax: {
      if (in.empty()) return {};
      size_t best = in[0];
      for (size_t i : in) {
        bool better = f.function == AggFunction::kMin ? as_double(i) < as_double(best)
                                                      : as_double(i) > as_double(best);
        if (better) best = i;
      }
      out.value = std::visit([](auto v) -> Value { return v; }, field(best));
      return out;
    }
    case AggFunction::kDistinct: {
      std::set<std::string> seen;
      for (size_t i : in) {
        std::visit([&](auto v) { seen.insert(absl::StrCat(v)); }, field(i));
      }
      out.value = static_cast<int64_t>(seen.size());
      return out;
    }
    case AggFunction::kLast:
    case AggFunction::kLastN:
      break;
  }
  std::sort(in.begin(), in.end(), newer);
  if (f.function == AggFunction::kLast) {
    if (in.empty()) return {};
    out.value = std::visit([](auto v) -> Value { return v; }, field(in[0]));
    return out;
  }
  std::vector<Scalar> list;
  for (size_t k = 0; k < in.size() && static_cast<int>(k) < f.n; ++k) list.push_back(field(in[k]));
  out.value = std::move(list);
  return out;
}

inline std::string Describe(const FeatureValue& v) {
  return absl::StrCat(FeatureStatusName(v.status), " ", ValueToJson(v.value));
}

// Whether an actual value matches the reference: floats to 1e-9 relative, distinct counts to
// the HyperLogLog's accuracy, everything else exactly.
inline bool Matches(const FeatureDef& f, const FeatureValue& actual, const FeatureValue& expected) {
  if (actual.status != expected.status) return false;
  if (f.function == AggFunction::kDistinct && f.aggregation && expected.present()) {
    if (!std::holds_alternative<int64_t>(actual.value)) return false;
    double a = static_cast<double>(std::get<int64_t>(actual.value));
    double e = static_cast<double>(std::get<int64_t>(expected.value));
    return std::fabs(a - e) <= std::max(2.0, 0.05 * e);
  }
  if (std::holds_alternative<double>(expected.value) &&
      std::holds_alternative<double>(actual.value)) {
    double a = std::get<double>(actual.value);
    double e = std::get<double>(expected.value);
    return std::fabs(a - e) <= 1e-9 * std::max(1.0, std::fabs(e));
  }
  return actual.value == expected.value;
}

}  // namespace flywheel::features::testing
