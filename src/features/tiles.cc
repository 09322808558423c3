#include "features/tiles.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

namespace flywheel::features {
namespace {

constexpr uint64_t kIntMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
constexpr uint64_t kIntMin = static_cast<uint64_t>(std::numeric_limits<int64_t>::min());
const uint64_t kPlusInf = std::bit_cast<uint64_t>(std::numeric_limits<double>::infinity());
const uint64_t kMinusInf = std::bit_cast<uint64_t>(-std::numeric_limits<double>::infinity());

uint32_t WordsPerTile(const SeriesSpec& s) {
  switch (s.kind) {
    case SeriesKind::kLastN:
      return 1 + 2 * static_cast<uint32_t>(s.n);  // filled, then (time, value) pairs
    case SeriesKind::kDistinct:
      return 0;
    default:
      return 1;
  }
}

// What an empty tile's (first) word holds.
uint64_t EmptyWord(SeriesKind kind) {
  switch (kind) {
    case SeriesKind::kMinInt:
      return kIntMax;
    case SeriesKind::kMaxInt:
      return kIntMin;
    case SeriesKind::kMinFloat:
      return kPlusInf;
    case SeriesKind::kMaxFloat:
      return kMinusInf;
    default:
      return 0;
  }
}

// The hash distinct counts: equal values hash equally whatever event they came from.
uint64_t ValueHash(FieldType type, const FieldValue& value) {
  switch (type) {
    case FieldType::kString:
      return StableHash(value.str);
    case FieldType::kFloat64: {
      double d = std::bit_cast<double>(value.bits);
      return StableHash(std::bit_cast<uint64_t>(d == 0 ? 0.0 : d));  // -0 == 0
    }
    case FieldType::kInt64:
    case FieldType::kBool:
      break;
  }
  return StableHash(value.bits);
}

}  // namespace

ExactDivider::ExactDivider(int64_t d) {
  // Exact for 0 <= n < 2^62 (kMaxTime): with l = ceil(log2 d) and shift = 62 + l,
  // magic = ceil(2^shift / d) exceeds 2^shift / d by less than 1, which adds less than
  // n / 2^shift < 2^-l <= 1/d to n / d: too little to reach the next integer. magic <= 2^63.
  int l = 0;
  while ((int64_t{1} << l) < d) ++l;
  shift_ = 62 + l;
  const unsigned __int128 pow = static_cast<unsigned __int128>(1) << shift_;
  const auto divisor = static_cast<unsigned __int128>(d);
  magic_ = static_cast<uint64_t>((pow + divisor - 1) / divisor);
}

ViewLayout::ViewLayout(const ViewDef& view, const SourceDef& source) : view_name_(view.name) {
  if (view.effective_ttl) ttl_ns_ = absl::ToInt64Nanoseconds(*view.effective_ttl);
  int64_t lateness_ns = absl::ToInt64Nanoseconds(source.lateness);
  int64_t longest_span = 0;
  for (const FeatureDef& def : view.features) {
    FeatureSpec spec;
    spec.function = def.function;
    spec.aggregation = def.aggregation;
    spec.type = def.value_type;
    spec.n = def.n;
    if (!def.aggregation) {
      RawSpec raw;
      raw.field = def.field_index;
      raw.type = def.field_type;
      raw.id = StableHash(absl::StrCat("raw|", def.field, "|", FieldTypeName(def.field_type)));
      spec.raw = static_cast<int>(raws_.size());
      raws_.push_back(raw);
      features_.push_back(spec);
      continue;
    }
    spec.every_ns = absl::ToInt64Nanoseconds(def.every);
    spec.window_tiles = absl::ToInt64Nanoseconds(def.window) / spec.every_ns;
    longest_span = std::max(longest_span, spec.every_ns * (spec.window_tiles + 1));
    SeriesSpec s;
    s.field = def.field_index;
    s.field_type = def.field_type;
    s.tile_ns = spec.every_ns;
    s.tiles = spec.window_tiles + (lateness_ns + spec.every_ns - 1) / spec.every_ns + 1;
    bool is_float = def.field_type == FieldType::kFloat64;
    SeriesKind main = SeriesKind::kCount;
    switch (def.function) {
      case AggFunction::kCount:
        main = SeriesKind::kCount;
        break;
      case AggFunction::kCountField:
        main = SeriesKind::kCountField;
        break;
      case AggFunction::kSum:
      case AggFunction::kMean:
        main = is_float ? SeriesKind::kSumFloat : SeriesKind::kSumInt;
        break;
      case AggFunction::kMin:
        main = is_float ? SeriesKind::kMinFloat : SeriesKind::kMinInt;
        break;
      case AggFunction::kMax:
        main = is_float ? SeriesKind::kMaxFloat : SeriesKind::kMaxInt;
        break;
      case AggFunction::kLast:
      case AggFunction::kLastN:
        main = SeriesKind::kLastN;
        s.n = std::max(def.n, 1);
        break;
      case AggFunction::kDistinct:
        main = SeriesKind::kDistinct;
        s.precision = def.precision;
        break;
    }
    s.kind = main;
    if (main == SeriesKind::kCount) s.field = -1;
    s.id =
        StableHash(absl::StrCat(static_cast<int>(main), "|", def.field, "|",
                                FieldTypeName(def.field_type), "|", s.tile_ns, "|", s.precision));
    spec.series = AddSeries(s);
    if (def.function == AggFunction::kMean || def.function == AggFunction::kMin ||
        def.function == AggFunction::kMax) {
      SeriesSpec count = s;
      count.kind = SeriesKind::kCountField;
      count.precision = 0;
      count.id = StableHash(absl::StrCat(static_cast<int>(count.kind), "|", def.field, "|",
                                         FieldTypeName(def.field_type), "|", s.tile_ns, "|0"));
      spec.count_series = AddSeries(count);
    }
    features_.push_back(spec);
  }
  if (ttl_ns_) retention_ns_ = std::max(*ttl_ns_, longest_span);
  // Offsets once every ring has its final length.
  for (RawSpec& raw : raws_) {
    raw.word_offset = num_words_;
    num_words_ += 2;
    if (raw.type == FieldType::kString) raw.string_index = num_strings_++;
  }
  // Series group by tile size; a group's ring is as long as its longest member needs.
  for (size_t i = 0; i < series_.size(); ++i) {
    SeriesSpec& s = series_[i];
    auto g = std::find_if(groups_.begin(), groups_.end(),
                          [&](const Group& group) { return group.tile_ns == s.tile_ns; });
    if (g == groups_.end()) g = groups_.insert(groups_.end(), Group{s.tile_ns, 0, 0, {}});
    g->tiles = std::max(g->tiles, s.tiles);
    g->series.push_back(static_cast<int>(i));
    s.group = static_cast<int>(g - groups_.begin());
  }
  // Heads (and their cached ring slots) first, side by side: every event reads all of them.
  for (Group& g : groups_) {
    g.head_word = num_words_;
    num_words_ += 2;
    g.by_tile_ns = ExactDivider(g.tile_ns);
    g.by_tiles = ExactDivider(g.tiles);
  }
  for (Group& g : groups_) {
    uint32_t stride = 0;
    for (int i : g.series) stride += WordsPerTile(series_[i]);
    // Tiles of two words stay inside one 16-byte-aligned pair, so never across cache lines.
    if (stride % 2 == 0) num_words_ += num_words_ % 2;
    g.tile_word = num_words_;
    g.stride = stride;
    g.zero_when_empty = std::all_of(g.series.begin(), g.series.end(), [&](int i) {
      const SeriesSpec& s = series_[i];
      return s.kind != SeriesKind::kDistinct && s.kind != SeriesKind::kLastN &&
             EmptyWord(s.kind) == 0;
    });
    uint32_t offset = 0;
    for (int i : g.series) {
      SeriesSpec& s = series_[i];
      s.tiles = g.tiles;
      s.words_per_tile = WordsPerTile(s);
      s.head_word = g.head_word;
      s.first_word = g.tile_word + offset;
      s.stride = stride;
      offset += s.words_per_tile;
    }
    num_words_ += static_cast<uint32_t>(g.tiles) * stride;
  }
  for (SeriesSpec& s : series_) {
    if (s.kind == SeriesKind::kLastN && s.field_type == FieldType::kString) {
      s.string_offset = num_strings_;
      num_strings_ += static_cast<uint32_t>(s.tiles * s.n);
    }
    if (s.kind == SeriesKind::kDistinct) {
      s.sketch_offset = num_sketches_;
      num_sketches_ += static_cast<uint32_t>(s.tiles);
      sketch_precision_.insert(sketch_precision_.end(), s.tiles, s.precision);
    }
  }
}

int ViewLayout::AddSeries(SeriesSpec spec) {
  for (size_t i = 0; i < series_.size(); ++i) {
    SeriesSpec& s = series_[i];
    if (s.id == spec.id) {
      s.tiles = std::max(s.tiles, spec.tiles);
      s.n = std::max(s.n, spec.n);
      return static_cast<int>(i);
    }
  }
  series_.push_back(spec);
  return static_cast<int>(series_.size() - 1);
}

void ViewLayout::Init(ViewState* state) const {
  state->last_ts = kNoTime;
  state->dirty = false;
  state->words.assign(num_words_, 0);
  if (num_strings_ == 0 && num_sketches_ == 0) {
    state->extras.reset();
  } else {
    if (!state->extras) state->extras = std::make_unique<ViewState::Extras>();
    state->extras->strings.assign(num_strings_, std::string());
    state->extras->sketches.clear();
    state->extras->sketches.reserve(num_sketches_);
    for (int p : sketch_precision_) state->extras->sketches.emplace_back(p);
  }
  for (const RawSpec& raw : raws_) state->words[raw.word_offset] = static_cast<uint64_t>(kNoTime);
  for (const Group& g : groups_) state->words[g.head_word] = static_cast<uint64_t>(kNoTime);
  for (const SeriesSpec& s : series_) {
    uint64_t empty = EmptyWord(s.kind);
    if (empty == 0) continue;
    for (int64_t t = 0; t < s.tiles; ++t) state->words[s.first_word + t * s.stride] = empty;
  }
}

void ViewLayout::ClearTile(ViewState& state, const SeriesSpec& s, int64_t tile) {
  int64_t slot = FloorMod(tile, s.tiles);
  if (s.kind == SeriesKind::kDistinct) {
    state.sketches()[s.sketch_offset + slot].Clear();
    return;
  }
  // kLastN: resetting `filled` is enough; stale pairs beyond it are never read.
  state.words[s.first_word + slot * s.stride] = EmptyWord(s.kind);
}

void ViewLayout::ResetSeries(ViewState& state, const SeriesSpec& s) {
  for (int64_t t = 0; t < s.tiles; ++t) ClearTile(state, s, t);
}

bool ViewLayout::TileEmpty(const ViewState& state, const SeriesSpec& s, int64_t tile) {
  int64_t slot = FloorMod(tile, s.tiles);
  if (s.kind == SeriesKind::kDistinct) return state.sketches()[s.sketch_offset + slot].empty();
  return state.words[s.first_word + slot * s.stride] == EmptyWord(s.kind);
}

void ViewLayout::Advance(ViewState& state, const Group& g, int64_t tile) const {
  int64_t& head = reinterpret_cast<int64_t&>(state.words[g.head_word]);
  uint64_t& head_slot = state.words[g.head_word + 1];
  if (head != kNoTime && tile <= head) return;
  if (head == kNoTime || tile - head >= g.tiles) {
    if (g.zero_when_empty) {
      // The common case (counts and sums): the whole ring is one run of zero words.
      std::fill_n(state.words.begin() + g.tile_word, g.tiles * g.stride, 0);
    } else {
      for (int i : g.series) ResetSeries(state, series_[i]);
    }
    head_slot = static_cast<uint64_t>(FloorMod(tile, g.tiles));
  } else {
    int64_t slot = static_cast<int64_t>(head_slot);
    for (int64_t t = head + 1; t <= tile; ++t) {
      if (++slot == g.tiles) slot = 0;
      for (int i : g.series) {
        const SeriesSpec& s = series_[i];
        if (s.kind == SeriesKind::kDistinct) {
          state.sketches()[s.sketch_offset + slot].Clear();
        } else {
          // kLastN: resetting `filled` is enough; stale pairs beyond it are never read.
          state.words[s.first_word + slot * s.stride] = EmptyWord(s.kind);
        }
      }
    }
    head_slot = static_cast<uint64_t>(slot);
  }
  head = tile;
}

void ViewLayout::Prefetch(const ViewState& state, int64_t ts) const {
  const uint64_t* words = state.words.data();
  if (!groups_.empty()) __builtin_prefetch(words + groups_[0].head_word, 1);
  for (const Group& g : groups_) {
    // The ring slot of the event's tile, as Add finds it: FloorMod(tile, tiles).
    int64_t slot = SlotOf(g, TileOf(g, ts));
    __builtin_prefetch(words + g.tile_word + slot * g.stride, 1);
  }
  if (!groups_.empty()) __builtin_prefetch(words + groups_.back().head_word + 1, 1);
}

void ViewLayout::AdvanceHead(ViewState& state, const SeriesSpec& s, int64_t tile) const {
  Advance(state, groups_[s.group], tile);
}

void ViewLayout::Add(ViewState& state, int64_t ts, const FieldValue* fields) const {
  state.last_ts = std::max(state.last_ts, ts);
  state.dirty = true;
  for (const RawSpec& raw : raws_) {
    const FieldValue& value = fields[raw.field];
    if (!value.present) continue;
    int64_t& raw_ts = reinterpret_cast<int64_t&>(state.words[raw.word_offset]);
    // Equal times: the event that arrived last wins, as in a replay in arrival order.
    if (ts < raw_ts) continue;
    raw_ts = ts;
    state.words[raw.word_offset + 1] = value.bits;
    if (raw.type == FieldType::kString)
      state.strings()[raw.string_index].assign(value.str.data(), value.str.size());
  }
  static const FieldValue kNoField;
  for (const Group& g : groups_) {
    int64_t tile = TileOf(g, ts);
    int64_t head = static_cast<int64_t>(state.words[g.head_word]);
    if (head == kNoTime || tile > head) {
      Advance(state, g, tile);
      head = tile;
    } else if (tile <= head - g.tiles) {
      continue;  // older than the ring: the watermark keeps accepted events out of here
    }
    // FloorMod(tile, tiles) from the head's cached slot, without a division.
    int64_t slot = static_cast<int64_t>(state.words[g.head_word + 1]) - (head - tile);
    if (slot < 0) slot += g.tiles;
    for (int i : g.series) {
      const SeriesSpec& s = series_[i];
      const FieldValue& value = s.field >= 0 ? fields[s.field] : kNoField;
      if (s.field >= 0 && !value.present) continue;
      AddToTile(state, s, slot, ts, value);
    }
  }
}

void ViewLayout::AddToTile(ViewState& state, const SeriesSpec& s, int64_t slot, int64_t ts,
                           const FieldValue& value) {
  uint64_t* w = &state.words[s.first_word + slot * s.stride];
  switch (s.kind) {
    case SeriesKind::kCount:
    case SeriesKind::kCountField:
      *w += 1;
      return;
    case SeriesKind::kSumInt:
      *w += value.bits;  // wraps like two's complement instead of overflowing
      return;
    case SeriesKind::kSumFloat:
      *w = std::bit_cast<uint64_t>(std::bit_cast<double>(*w) + std::bit_cast<double>(value.bits));
      return;
    case SeriesKind::kMinInt:
      *w = static_cast<uint64_t>(
          std::min(static_cast<int64_t>(*w), static_cast<int64_t>(value.bits)));
      return;
    case SeriesKind::kMaxInt:
      *w = static_cast<uint64_t>(
          std::max(static_cast<int64_t>(*w), static_cast<int64_t>(value.bits)));
      return;
    case SeriesKind::kMinFloat:
      *w = std::bit_cast<uint64_t>(
          std::min(std::bit_cast<double>(*w), std::bit_cast<double>(value.bits)));
      return;
    case SeriesKind::kMaxFloat:
      *w = std::bit_cast<uint64_t>(
          std::max(std::bit_cast<double>(*w), std::bit_cast<double>(value.bits)));
      return;
    case SeriesKind::kDistinct:
      state.sketches()[s.sketch_offset + slot].Add(ValueHash(s.field_type, value));
      return;
    case SeriesKind::kLastN:
      break;
  }
  // Pairs are sorted oldest first; an equal time goes after the ones already there (it arrived
  // later, so it counts as newer).
  const int n = s.n;
  int filled = static_cast<int>(w[0]);
  int64_t* pairs = reinterpret_cast<int64_t*>(w + 1);
  int pos = filled;
  while (pos > 0 && pairs[2 * (pos - 1)] > ts) --pos;
  std::string* strs =
      s.field_type == FieldType::kString ? &state.strings()[s.string_offset + slot * n] : nullptr;
  if (filled < n) {
    for (int i = filled; i > pos; --i) {
      pairs[2 * i] = pairs[2 * i - 2];
      pairs[2 * i + 1] = pairs[2 * i - 1];
      if (strs) std::swap(strs[i], strs[i - 1]);
    }
    w[0] = static_cast<uint64_t>(filled + 1);
  } else {
    if (pos == 0) return;  // older than the n kept
    --pos;
    for (int i = 0; i < pos; ++i) {
      pairs[2 * i] = pairs[2 * i + 2];
      pairs[2 * i + 1] = pairs[2 * i + 3];
      if (strs) std::swap(strs[i], strs[i + 1]);
    }
  }
  pairs[2 * pos] = ts;
  pairs[2 * pos + 1] = static_cast<int64_t>(value.bits);
  if (strs) strs[pos].assign(value.str.data(), value.str.size());
}

bool ViewLayout::Expired(const ViewState& state, int64_t watermark) const {
  if (!ttl_ns_) return false;
  if (state.last_ts == kNoTime || watermark == kNoTime) return state.last_ts == kNoTime;
  return watermark - state.last_ts > retention_ns_;
}

}  // namespace flywheel::features
