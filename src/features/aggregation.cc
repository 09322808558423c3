#include "features/aggregation.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

namespace flywheel::features {

absl::string_view FeatureStatusName(FeatureStatus status) {
  switch (status) {
    case FeatureStatus::kPresent:
      return "PRESENT";
    case FeatureStatus::kNotFound:
      return "NOT_FOUND";
    case FeatureStatus::kOutsideTtl:
      return "OUTSIDE_TTL";
    case FeatureStatus::kUnknownFeature:
      return "UNKNOWN_FEATURE";
    case FeatureStatus::kMissingKey:
      return "MISSING_KEY";
  }
  return "?";
}

namespace {

Scalar ToScalar(FieldType type, uint64_t bits, const std::string* str) {
  switch (type) {
    case FieldType::kInt64:
      return static_cast<int64_t>(bits);
    case FieldType::kFloat64:
      return std::bit_cast<double>(bits);
    case FieldType::kBool:
      return bits != 0;
    case FieldType::kString:
      break;
  }
  return *str;
}

Value FromScalar(Scalar s) {
  return std::visit([](auto&& v) -> Value { return Value(std::move(v)); }, std::move(s));
}

FeatureValue Present(Value v) { return FeatureValue{FeatureStatus::kPresent, std::move(v)}; }

// The tiles of a series inside the window ending at `now`, clipped to what the ring holds.
struct TileRange {
  int64_t first = 0;
  int64_t last = -1;  // inclusive; first > last when empty
};

TileRange WindowTiles(const ViewState& state, const SeriesSpec& s, const FeatureSpec& f,
                      int64_t now_ns) {
  TileRange range;
  int64_t head = ViewLayout::Head(state, s);
  if (head == kNoTime) return range;
  // Features of a series share its `every`, which is its tile size.
  int64_t end = FloorDiv(now_ns, s.tile_ns);
  range.first = std::max(end - f.window_tiles, ViewLayout::OldestTile(s, head));
  range.last = std::min(end - 1, head);
  return range;
}

template <typename Fold>
void ForEachTile(const ViewState& state, const SeriesSpec& s, TileRange range, Fold fold) {
  for (int64_t t = range.first; t <= range.last; ++t) fold(ViewLayout::TileWords(state, s, t));
}

int64_t CountIn(const ViewState& state, const SeriesSpec& s, TileRange range) {
  int64_t count = 0;
  ForEachTile(state, s, range, [&](const uint64_t* w) { count += static_cast<int64_t>(*w); });
  return count;
}

FeatureValue Fold(const ViewLayout& layout, const ViewState& state, const FeatureSpec& f,
                  int64_t now_ns) {
  const SeriesSpec& s = layout.series()[f.series];
  TileRange range = WindowTiles(state, s, f, now_ns);
  bool is_float = s.field_type == FieldType::kFloat64;
  if (f.count_series >= 0) {
    const SeriesSpec& c = layout.series()[f.count_series];
    if (CountIn(state, c, WindowTiles(state, c, f, now_ns)) == 0) return {};
  }
  switch (f.function) {
    case AggFunction::kCount:
    case AggFunction::kCountField:
      return Present(CountIn(state, s, range));
    case AggFunction::kSum:
    case AggFunction::kMean: {
      uint64_t int_sum = 0;
      double float_sum = 0;
      ForEachTile(state, s, range, [&](const uint64_t* w) {
        if (is_float) {
          float_sum += std::bit_cast<double>(*w);
        } else {
          int_sum += *w;
        }
      });
      if (f.function == AggFunction::kSum) {
        return is_float ? Present(float_sum) : Present(static_cast<int64_t>(int_sum));
      }
      const SeriesSpec& c = layout.series()[f.count_series];
      double count = static_cast<double>(CountIn(state, c, WindowTiles(state, c, f, now_ns)));
      double sum = is_float ? float_sum : static_cast<double>(static_cast<int64_t>(int_sum));
      return Present(sum / count);
    }
    case AggFunction::kMin:
    case AggFunction::kMax: {
      bool is_min = f.function == AggFunction::kMin;
      if (is_float) {
        double best = is_min ? INFINITY : -INFINITY;
        ForEachTile(state, s, range, [&](const uint64_t* w) {
          double v = std::bit_cast<double>(*w);
          best = is_min ? std::min(best, v) : std::max(best, v);
        });
        return Present(best);
      }
      int64_t best =
          is_min ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
      ForEachTile(state, s, range, [&](const uint64_t* w) {
        int64_t v = static_cast<int64_t>(*w);
        best = is_min ? std::min(best, v) : std::max(best, v);
      });
      return Present(best);
    }
    case AggFunction::kDistinct: {
      std::vector<uint8_t> registers(size_t{1} << s.precision, 0);
      bool any = false;
      for (int64_t t = range.first; t <= range.last; ++t) {
        const HyperLogLog& sketch = state.sketches()[s.sketch_offset + FloorMod(t, s.tiles)];
        if (sketch.empty()) continue;
        sketch.MaxInto(registers);
        any = true;
      }
      double estimate = any ? HyperLogLog::EstimateRegisters(registers) : 0;
      return Present(static_cast<int64_t>(std::llround(estimate)));
    }
    case AggFunction::kLast:
    case AggFunction::kLastN:
      break;
  }
  // Newest first: tiles from the window's end backwards, each tile's pairs from its newest.
  std::vector<Scalar> values;
  const int want = f.function == AggFunction::kLast ? 1 : f.n;
  for (int64_t t = range.last; t >= range.first && static_cast<int>(values.size()) < want; --t) {
    const uint64_t* w = ViewLayout::TileWords(state, s, t);
    int filled = static_cast<int>(w[0]);
    int64_t slot = FloorMod(t, s.tiles);
    for (int i = filled - 1; i >= 0 && static_cast<int>(values.size()) < want; --i) {
      const std::string* str = s.field_type == FieldType::kString
                                   ? &state.strings()[s.string_offset + slot * s.n + i]
                                   : nullptr;
      values.push_back(ToScalar(s.field_type, w[2 + 2 * i], str));
    }
  }
  if (f.function == AggFunction::kLastN) return Present(std::move(values));
  if (values.empty()) return {};
  return Present(FromScalar(std::move(values[0])));
}

}  // namespace

FeatureValue EvaluateFeature(const ViewLayout& layout, const ViewState& state, int feature,
                             int64_t now_ns) {
  const FeatureSpec& f = layout.features()[feature];
  if (state.last_ts == kNoTime) return {};
  now_ns = std::clamp<int64_t>(now_ns, 0, kMaxTime);
  std::optional<int64_t> ttl = layout.ttl_ns();
  if (!f.aggregation) {
    const RawSpec& raw = layout.raws()[f.raw];
    int64_t ts = static_cast<int64_t>(state.words[raw.word_offset]);
    if (ts == kNoTime) return {};
    if (ttl && now_ns - ts > *ttl) return {FeatureStatus::kOutsideTtl, {}};
    const std::string* str =
        raw.type == FieldType::kString ? &state.strings()[raw.string_index] : nullptr;
    return Present(FromScalar(ToScalar(raw.type, state.words[raw.word_offset + 1], str)));
  }
  if (ttl && now_ns - state.last_ts > *ttl) return {FeatureStatus::kOutsideTtl, {}};
  return Fold(layout, state, f, now_ns);
}

}  // namespace flywheel::features
