#include "features/state_codec.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "features/varint.h"

namespace flywheel::features {
namespace {

constexpr uint8_t kVersion = 1;

void AppendValue(std::string* out, FieldType type, uint64_t bits, absl::string_view str) {
  switch (type) {
    case FieldType::kInt64:
      AppendSigned(out, static_cast<int64_t>(bits));
      return;
    case FieldType::kFloat64:
      AppendFixed64(out, bits);
      return;
    case FieldType::kBool:
      AppendVarint(out, bits);
      return;
    case FieldType::kString:
      AppendBytes(out, str);
      return;
  }
}

bool ReadValue(absl::string_view* in, FieldType type, uint64_t* bits, absl::string_view* str) {
  switch (type) {
    case FieldType::kInt64: {
      int64_t v = 0;
      if (!ReadSigned(in, &v)) return false;
      *bits = static_cast<uint64_t>(v);
      return true;
    }
    case FieldType::kFloat64:
      return ReadFixed64(in, bits);
    case FieldType::kBool:
      return ReadVarint(in, bits) && *bits <= 1;
    case FieldType::kString:
      *bits = 0;
      return ReadBytes(in, str);
  }
  return false;
}

bool IsFloatKind(SeriesKind kind) {
  return kind == SeriesKind::kSumFloat || kind == SeriesKind::kMinFloat ||
         kind == SeriesKind::kMaxFloat;
}

void EncodeTile(const ViewState& state, const SeriesSpec& s, int64_t tile, std::string* out) {
  int64_t slot = FloorMod(tile, s.tiles);
  if (s.kind == SeriesKind::kDistinct) {
    state.sketches()[s.sketch_offset + slot].AppendTo(out);
    return;
  }
  const uint64_t* w = ViewLayout::TileWords(state, s, tile);
  if (IsFloatKind(s.kind)) {
    AppendFixed64(out, w[0]);
    return;
  }
  if (s.kind != SeriesKind::kLastN) {
    AppendSigned(out, static_cast<int64_t>(w[0]));
    return;
  }
  AppendVarint(out, w[0]);
  for (uint64_t i = 0; i < w[0]; ++i) {
    AppendSigned(out, static_cast<int64_t>(w[1 + 2 * i]));
    absl::string_view str;
    if (s.field_type == FieldType::kString) str = state.strings()[s.string_offset + slot * s.n + i];
    AppendValue(out, s.field_type, w[2 + 2 * i], str);
  }
}

// Reads one tile written as `kind`/`type`; stores it at `tile` of `target` when not null.
bool DecodeTile(absl::string_view* in, SeriesKind kind, FieldType type, ViewState* state,
                const SeriesSpec* target, int64_t tile) {
  int64_t slot = target ? FloorMod(tile, target->tiles) : 0;
  if (kind == SeriesKind::kDistinct) {
    HyperLogLog sketch;
    if (!sketch.ReadFrom(in)) return false;
    if (target) {
      HyperLogLog& dst = state->sketches()[target->sketch_offset + slot];
      if (sketch.precision() == dst.precision()) dst = std::move(sketch);
    }
    return true;
  }
  uint64_t* w = target ? ViewLayout::MutableTileWords(*state, *target, tile) : nullptr;
  if (kind != SeriesKind::kLastN) {
    uint64_t v = 0;
    if (IsFloatKind(kind)) {
      if (!ReadFixed64(in, &v)) return false;
    } else {
      int64_t s = 0;
      if (!ReadSigned(in, &s)) return false;
      v = static_cast<uint64_t>(s);
    }
    if (w) w[0] = v;
    return true;
  }
  uint64_t filled = 0;
  if (!ReadVarint(in, &filled) || filled > 100000) return false;
  // Keep the newest entries that fit when the definition now keeps fewer.
  uint64_t skip = target && filled > static_cast<uint64_t>(target->n) ? filled - target->n : 0;
  for (uint64_t i = 0; i < filled; ++i) {
    int64_t ts = 0;
    uint64_t bits = 0;
    absl::string_view str;
    if (!ReadSigned(in, &ts) || !ReadValue(in, type, &bits, &str)) return false;
    if (!w || i < skip) continue;
    uint64_t j = i - skip;
    w[1 + 2 * j] = static_cast<uint64_t>(ts);
    w[2 + 2 * j] = bits;
    if (type == FieldType::kString) {
      state->strings()[target->string_offset + slot * target->n + j].assign(str.data(), str.size());
    }
  }
  if (w) w[0] = filled - skip;
  return true;
}

}  // namespace

void EncodeState(const ViewLayout& layout, const ViewState& state, std::string* out) {
  out->clear();
  out->push_back(static_cast<char>(kVersion));
  AppendSigned(out, state.last_ts);
  size_t raws = 0;
  for (const RawSpec& raw : layout.raws()) {
    raws += static_cast<int64_t>(state.words[raw.word_offset]) != kNoTime;
  }
  AppendVarint(out, raws);
  for (const RawSpec& raw : layout.raws()) {
    int64_t ts = static_cast<int64_t>(state.words[raw.word_offset]);
    if (ts == kNoTime) continue;
    AppendFixed64(out, raw.id);
    out->push_back(static_cast<char>(raw.type));
    AppendSigned(out, ts);
    absl::string_view str;
    if (raw.type == FieldType::kString) str = state.strings()[raw.string_index];
    AppendValue(out, raw.type, state.words[raw.word_offset + 1], str);
  }
  size_t series = 0;
  for (const SeriesSpec& s : layout.series()) series += ViewLayout::Head(state, s) != kNoTime;
  AppendVarint(out, series);
  for (const SeriesSpec& s : layout.series()) {
    int64_t head = ViewLayout::Head(state, s);
    if (head == kNoTime) continue;
    AppendFixed64(out, s.id);
    out->push_back(static_cast<char>(s.kind));
    out->push_back(static_cast<char>(s.field_type));
    AppendSigned(out, head);
    size_t tiles = 0;
    for (int64_t t = ViewLayout::OldestTile(s, head); t <= head; ++t) {
      tiles += !ViewLayout::TileEmpty(state, s, t);
    }
    AppendVarint(out, tiles);
    for (int64_t t = head; t >= ViewLayout::OldestTile(s, head); --t) {
      if (ViewLayout::TileEmpty(state, s, t)) continue;
      AppendVarint(out, static_cast<uint64_t>(head - t));
      EncodeTile(state, s, t, out);
    }
  }
}

absl::Status DecodeState(const ViewLayout& layout, absl::string_view in, ViewState* state) {
  auto corrupt = [&](absl::string_view what) {
    return absl::DataLossError(
        absl::StrCat("view '", layout.view_name(), "': stored state is corrupt (", what, ")"));
  };
  if (in.empty() || static_cast<uint8_t>(in[0]) != kVersion) return corrupt("unknown version");
  in.remove_prefix(1);
  uint64_t raws = 0;
  if (!ReadSigned(&in, &state->last_ts) || !ReadVarint(&in, &raws)) return corrupt("header");
  for (uint64_t r = 0; r < raws; ++r) {
    uint64_t id = 0, bits = 0;
    int64_t ts = 0;
    absl::string_view str;
    if (!ReadFixed64(&in, &id) || in.empty()) return corrupt("raw field");
    auto type = static_cast<FieldType>(in[0]);
    in.remove_prefix(1);
    if (type > FieldType::kBool || !ReadSigned(&in, &ts) || !ReadValue(&in, type, &bits, &str)) {
      return corrupt("raw field");
    }
    for (const RawSpec& raw : layout.raws()) {
      if (raw.id != id || raw.type != type) continue;
      state->words[raw.word_offset] = static_cast<uint64_t>(ts);
      state->words[raw.word_offset + 1] = bits;
      if (type == FieldType::kString)
        state->strings()[raw.string_index].assign(str.data(), str.size());
    }
  }
  uint64_t series = 0;
  if (!ReadVarint(&in, &series)) return corrupt("series count");
  std::vector<bool> found(layout.series().size(), false);
  for (uint64_t i = 0; i < series; ++i) {
    uint64_t id = 0, tiles = 0;
    int64_t head = 0;
    if (!ReadFixed64(&in, &id) || in.size() < 2) return corrupt("series header");
    auto kind = static_cast<SeriesKind>(in[0]);
    auto type = static_cast<FieldType>(in[1]);
    in.remove_prefix(2);
    if (kind > SeriesKind::kDistinct || type > FieldType::kBool || !ReadSigned(&in, &head) ||
        head == kNoTime || !ReadVarint(&in, &tiles)) {
      return corrupt("series header");
    }
    const SeriesSpec* target = nullptr;
    for (size_t s = 0; s < layout.series().size(); ++s) {
      if (layout.series()[s].id != id || layout.series()[s].kind != kind) continue;
      target = &layout.series()[s];
      found[s] = true;
    }
    // Series of one group share a head; an older stored head leaves tiles the ring still holds.
    if (target) layout.AdvanceHead(*state, *target, head);
    for (uint64_t t = 0; t < tiles; ++t) {
      uint64_t age = 0;
      if (!ReadVarint(&in, &age) || age > (uint64_t{1} << 40)) {
        return corrupt("tile");
      }
      // Tiles older than the (possibly shorter) ring are read and dropped.
      int64_t tile = head - static_cast<int64_t>(age);
      bool keep =
          target && tile >= ViewLayout::OldestTile(*target, ViewLayout::Head(*state, *target));
      if (!DecodeTile(&in, kind, type, state, keep ? target : nullptr, tile)) {
        return corrupt("tile");
      }
    }
  }
  if (!in.empty()) return corrupt("trailing bytes");
  // mean, min and max read two series together (values and the field's count). When the
  // definitions changed so that only one of them was stored, their tiles disagree: empty both
  // rather than show a mean over counts without sums.
  for (const FeatureSpec& f : layout.features()) {
    if (f.count_series < 0 || found[f.series] == found[f.count_series]) continue;
    ViewLayout::ResetSeries(*state, layout.series()[f.series]);
    ViewLayout::ResetSeries(*state, layout.series()[f.count_series]);
  }
  state->dirty = false;
  return absl::OkStatus();
}

}  // namespace flywheel::features
