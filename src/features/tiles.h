// The in-memory state of one entity in one feature view, and the layout that gives it meaning.
// Windowed aggregations are kept as tiles: per aggregated input, a ring of pre-aggregated
// buckets, one per `every` of event time, so a sliding window is the fold of its last
// window/every tiles and memory per entity is bounded by the ring lengths.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "features/definitions.h"
#include "features/hll.h"

namespace flywheel::features {

// Times inside the pipeline are nanoseconds since the Unix epoch; kNoTime means "never".
constexpr int64_t kNoTime = std::numeric_limits<int64_t>::min();
// Event times are accepted in [0, kMaxTime) (1970 to 2116), so differences never overflow.
constexpr int64_t kMaxTime = int64_t{1} << 62;

inline int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}
inline int64_t FloorMod(int64_t a, int64_t b) { return a - FloorDiv(a, b) * b; }

// Division by a fixed positive divisor d for numerators in [0, kMaxTime) as a multiplication:
// an event costs several such divisions, each far slower as a division instruction.
class ExactDivider {
 public:
  ExactDivider() = default;
  explicit ExactDivider(int64_t d);
  int64_t Divide(int64_t n) const {
    return static_cast<int64_t>(
        (static_cast<unsigned __int128>(static_cast<uint64_t>(n)) * magic_) >> shift_);
  }

 private:
  uint64_t magic_ = 0;
  int shift_ = 0;
};

// One event's value of one field of a source: integers, floats and bools as their 64 bits
// (int64, bit_cast<uint64_t>(double), 0/1), strings as a view into the event.
struct FieldValue {
  bool present = false;
  uint64_t bits = 0;
  absl::string_view str;
};

// What each tile of a series holds.
enum class SeriesKind : uint8_t {
  kCount,       // events
  kCountField,  // events carrying the field
  kSumInt,
  kSumFloat,
  kMinInt,
  kMinFloat,
  kMaxInt,
  kMaxFloat,
  kLastN,     // the n newest (event time, value) pairs of the tile, oldest first
  kDistinct,  // a HyperLogLog sketch per tile
};

// A ring of tiles for one (kind, field, every): features that differ only in their window share
// it (count over 1h and count over 1d, both every 1m), and mean/min/max share the field's count.
struct SeriesSpec {
  SeriesKind kind = SeriesKind::kCount;
  int field = -1;  // the source's value field; -1 for kCount
  FieldType field_type = FieldType::kInt64;
  int64_t tile_ns = 0;
  int64_t tiles = 0;  // ring length: longest window/every + ceil(lateness/every) + 1
  int n = 0;          // kLastN: entries per tile
  int precision = 0;  // kDistinct
  uint64_t id = 0;    // stable identity of what the tiles mean, for persisted state
  // Series of the same `every` form a group: one head (the newest tile index) and interleaved
  // tiles, so an event touches one cache line for all of them instead of one per series. The
  // heads of all groups sit side by side at the front of the state (one cache line).
  int group = -1;
  uint32_t head_word = 0;   // the group's head; the next word caches FloorMod(head, tiles)
  uint32_t first_word = 0;  // this series' words in the group's first tile
  uint32_t stride = 0;      // words per tile of the whole group
  uint32_t words_per_tile = 0;
  uint32_t string_offset = 0;  // kLastN of strings: tiles * n values
  uint32_t sketch_offset = 0;  // kDistinct: tiles sketches
};

// A raw feature: the newest value of a field, with its event time.
struct RawSpec {
  int field = -1;
  FieldType type = FieldType::kInt64;
  uint64_t id = 0;
  uint32_t word_offset = 0;   // event time, then value bits
  uint32_t string_index = 0;  // strings only
};

// How one feature of the view is read from the state.
struct FeatureSpec {
  AggFunction function = AggFunction::kLast;
  bool aggregation = false;
  int raw = -1;
  int series = -1;
  int count_series = -1;  // mean, min, max: events carrying the field
  int64_t every_ns = 0;
  int64_t window_tiles = 0;
  int n = 0;
  ValueType type;
};

struct ViewState {
  int64_t last_ts = kNoTime;  // newest event time, for ttl and eviction
  bool dirty = false;         // changed since the last flush
  std::vector<uint64_t> words;

  // Only views with string fields, last_n of strings or distinct counts hold strings and
  // sketches, so they live apart: the state of a numbers-only view (and the hash map slot that
  // holds it) stays small. REQUIRES for both: ViewLayout::Init gave the state some.
  std::string* strings() { return extras->strings.data(); }
  const std::string* strings() const { return extras->strings.data(); }
  HyperLogLog* sketches() { return extras->sketches.data(); }
  const HyperLogLog* sketches() const { return extras->sketches.data(); }

  struct Extras {
    std::vector<std::string> strings;
    std::vector<HyperLogLog> sketches;
  };
  std::unique_ptr<Extras> extras;  // null when the layout has neither
};

class ViewLayout {
 public:
  ViewLayout(const ViewDef& view, const SourceDef& source);

  const std::string& view_name() const { return view_name_; }
  const std::vector<SeriesSpec>& series() const { return series_; }
  const std::vector<RawSpec>& raws() const { return raws_; }
  const std::vector<FeatureSpec>& features() const { return features_; }
  std::optional<int64_t> ttl_ns() const { return ttl_ns_; }
  // Tiles (buckets of all the series of one `every`) an entity holds.
  int64_t tiles_per_entity() const {
    int64_t tiles = 0;
    for (const Group& g : groups_) tiles += g.tiles;
    return tiles;
  }

  // A state with every tile empty.
  void Init(ViewState* state) const;
  // Folds one event (its time and the source's value fields) into the state.
  void Add(ViewState& state, int64_t ts, const FieldValue* fields) const;
  // Asks the CPU to fetch the parts of the state that Add(state, ts, ...) will touch, so that
  // a batch can overlap the memory waits of several entities.
  void Prefetch(const ViewState& state, int64_t ts) const;
  // Whether nothing in the state can show at any time >= watermark: every window is past and the
  // ttl is over. Views without an effective ttl keep their entities.
  bool Expired(const ViewState& state, int64_t watermark) const;

  // The first tile of a series' ring that is still held, given its head.
  static int64_t OldestTile(const SeriesSpec& s, int64_t head) { return head - s.tiles + 1; }
  // The newest tile index of the series' group; kNoTime before its first event.
  static int64_t Head(const ViewState& state, const SeriesSpec& s) {
    return static_cast<int64_t>(state.words[s.head_word]);
  }
  // The words of tile `tile` (absolute index) of a series.
  static const uint64_t* TileWords(const ViewState& state, const SeriesSpec& s, int64_t tile) {
    return &state.words[s.first_word + FloorMod(tile, s.tiles) * s.stride];
  }
  static uint64_t* MutableTileWords(ViewState& state, const SeriesSpec& s, int64_t tile) {
    return &state.words[s.first_word + FloorMod(tile, s.tiles) * s.stride];
  }
  // Empties a tile (absolute index) of a series.
  static void ClearTile(ViewState& state, const SeriesSpec& s, int64_t tile);
  // Empties every tile of a series (its group's head stays).
  static void ResetSeries(ViewState& state, const SeriesSpec& s);
  // Moves the head of the series' group forward to `tile` (never back), emptying the tiles that
  // the ring reuses.
  void AdvanceHead(ViewState& state, const SeriesSpec& s, int64_t tile) const;
  // Whether a tile (absolute index) holds nothing.
  static bool TileEmpty(const ViewState& state, const SeriesSpec& s, int64_t tile);

 private:
  struct Group {
    int64_t tile_ns = 0;
    int64_t tiles = 0;
    uint32_t head_word = 0;
    uint32_t tile_word = 0;  // the group's tile 0
    uint32_t stride = 0;     // words per tile
    // Every word of an empty tile is 0 (no min/max, last_n or distinct series).
    bool zero_when_empty = false;
    ExactDivider by_tile_ns;  // event time -> tile
    ExactDivider by_tiles;    // tile -> ring slot
    std::vector<int> series;
  };
  static int64_t TileOf(const Group& g, int64_t ts) {
    return ts < 0 ? FloorDiv(ts, g.tile_ns) : g.by_tile_ns.Divide(ts);
  }
  static int64_t SlotOf(const Group& g, int64_t tile) {
    return tile < 0 ? FloorMod(tile, g.tiles) : tile - g.by_tiles.Divide(tile) * g.tiles;
  }

  int AddSeries(SeriesSpec spec);
  void Advance(ViewState& state, const Group& group, int64_t tile) const;
  // `slot` is the tile's place in the ring.
  static void AddToTile(ViewState& state, const SeriesSpec& s, int64_t slot, int64_t ts,
                        const FieldValue& value);

  std::string view_name_;
  std::vector<SeriesSpec> series_;
  std::vector<Group> groups_;
  std::vector<RawSpec> raws_;
  std::vector<FeatureSpec> features_;
  std::optional<int64_t> ttl_ns_;
  int64_t retention_ns_ = 0;  // how long after its newest event an entity can still show
  uint32_t num_words_ = 0;
  uint32_t num_strings_ = 0;
  uint32_t num_sketches_ = 0;
  std::vector<int> sketch_precision_;  // per sketch
};

}  // namespace flywheel::features
