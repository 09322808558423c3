#include "features/aggregation.h"

#include <bit>
#include <random>

#include "features/definitions.h"
#include "features/hll.h"
#include "features/state_codec.h"
#include "features/testing/reference.h"
#include "features/tiles.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flywheel::features {
namespace {

using testing::Describe;
using testing::Matches;
using testing::Reference;
using testing::RefEvent;

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kStart = 1'700'000'000 * kSecond;  // a realistic epoch

constexpr char kDefs[] = R"(
entities:
  user: {keys: [user_id]}
sources:
  events: {kind: push, timestamp: ts, lateness: 2m}
views:
  stats:
    entity: user
    source: events
    ttl: 3h
    schema: {amount: int64, price: float64, page: string, flag: bool}
    fields: {country: string, age: int64, vip: bool, score: float64}
    aggregations:
      n_1h: count over 1h, every 1m
      n_10m: count over 10m
      n_amount_30m: count(amount) over 30m, every 5m
      amount_1h: sum(amount) over 1h, every 1m
      price_1h: sum(price) over 1h, every 5m
      mean_price_1h: mean(price) over 1h, every 1m
      mean_amount_10m: mean(amount) over 10m, every 1m
      min_amount_1h: min(amount) over 1h, every 1m
      max_amount_20m: max(amount) over 20m
      max_price_30m: max(price) over 30m, every 5m
      min_price_30m: min(price) over 30m
      last_page_10m: last(page) over 10m, every 1m
      last_flag_1h: last(flag) over 1h, every 30m
      pages_1h: last_n(page, 4) over 1h, every 1m
      amounts_1h: last_n(amount, 3) over 1h, every 10m
      pages_2: last_n(page, 2) over 1h, every 1m
      distinct_pages_1h: distinct(page) over 1h, every 1m
      distinct_amounts_1d: distinct(amount) over 1d, every 1h
)";

class AggregationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<FeatureRegistry> r = FeatureRegistry::Parse({{"defs.yaml", kDefs}});
    ASSERT_TRUE(r.ok()) << r.status();
    registry_ = std::make_unique<FeatureRegistry>(*std::move(r));
    view_ = &registry_->views()[0];
    source_ = &registry_->sources()[0];
    layout_ = std::make_unique<ViewLayout>(*view_, *source_);
  }

  // The source's field values of one event (strings point into `e`).
  std::vector<FieldValue> Fields(const RefEvent& e) const {
    std::vector<FieldValue> out(source_->value_fields.size());
    for (size_t i = 0; i < out.size(); ++i) {
      auto it = e.fields.find(source_->value_fields[i].first);
      if (it == e.fields.end()) continue;
      out[i].present = true;
      std::visit(
          [&](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::string>) {
              out[i].str = v;
            } else if constexpr (std::is_same_v<T, double>) {
              out[i].bits = std::bit_cast<uint64_t>(v);
            } else {
              out[i].bits = static_cast<uint64_t>(v);
            }
          },
          it->second);
    }
    return out;
  }

  void Add(ViewState& state, const RefEvent& e) {
    std::vector<FieldValue> fields = Fields(e);
    layout_->Add(state, e.ts, fields.data());
  }

  // Every feature of `state` at `now` against the reference over `events`.
  void ExpectAllMatch(const ViewState& state, const std::vector<RefEvent>& events, int64_t now) {
    for (size_t f = 0; f < view_->features.size(); ++f) {
      const FeatureDef& def = view_->features[f];
      FeatureValue actual = EvaluateFeature(*layout_, state, static_cast<int>(f), now);
      FeatureValue expected = Reference(*view_, def, events, now, /*see_future=*/true);
      EXPECT_TRUE(Matches(def, actual, expected))
          << def.name << " at now=" << (now - kStart) / kSecond << "s: got " << Describe(actual)
          << ", expected " << Describe(expected);
    }
  }

  RefEvent RandomEvent(std::mt19937_64& rng, int64_t ts) {
    RefEvent e;
    e.ts = ts;
    std::uniform_int_distribution<int> coin(0, 9);
    const char* pages[] = {"home", "search", "cart", "item", "help", "about", "faq"};
    if (coin(rng) < 8) e.fields["amount"] = static_cast<int64_t>(rng() % 200) - 50;
    if (coin(rng) < 7) e.fields["price"] = static_cast<double>(rng() % 10000) / 100.0;
    if (coin(rng) < 8) e.fields["page"] = std::string(pages[rng() % 7]);
    if (coin(rng) < 5) e.fields["flag"] = rng() % 2 == 0;
    if (coin(rng) < 3) e.fields["country"] = std::string(coin(rng) < 5 ? "fr" : "de");
    if (coin(rng) < 3) e.fields["age"] = static_cast<int64_t>(rng() % 90);
    if (coin(rng) < 2) e.fields["vip"] = rng() % 2 == 0;
    if (coin(rng) < 2) e.fields["score"] = static_cast<double>(rng() % 1000) / 7.0;
    return e;
  }

  std::unique_ptr<FeatureRegistry> registry_;
  const ViewDef* view_ = nullptr;
  const SourceDef* source_ = nullptr;
  std::unique_ptr<ViewLayout> layout_;
};

TEST_F(AggregationTest, RandomOutOfOrderStreamsWithinLatenessMatchBruteForce) {
  const int64_t lateness = 2 * kMinute;
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937_64 rng(seed);
    constexpr int kEntities = 4;
    std::vector<ViewState> states(kEntities);
    std::vector<std::vector<RefEvent>> events(kEntities);
    for (ViewState& s : states) layout_->Init(&s);
    Watermark watermark(lateness);
    int64_t base = kStart + static_cast<int64_t>(rng() % kHour);
    // Bursts and gaps: a long gap sometimes empties every window of an entity.
    for (int i = 0; i < 1500; ++i) {
      int64_t step = rng() % 100 == 0 ? 2 * kHour : static_cast<int64_t>(rng() % (20 * kSecond));
      base += step;
      // Anywhere within the lateness behind the newest time: out of order but never late.
      int64_t ts = base - static_cast<int64_t>(rng() % lateness);
      ts -= ts % 1'000'000;  // milliseconds, so equal times happen
      ASSERT_TRUE(watermark.Admit(ts));
      int entity = static_cast<int>(rng() % kEntities);
      RefEvent e = RandomEvent(rng, ts);
      Add(states[entity], e);
      events[entity].push_back(std::move(e));
      if (i % 97 == 0 || i == 1499) {
        int64_t nows[] = {watermark.value(), watermark.max_event_time(),
                          watermark.max_event_time() + static_cast<int64_t>(rng() % kHour),
                          watermark.max_event_time() + 3 * kHour + kMinute};
        for (int64_t now : nows) {
          for (int k = 0; k < kEntities; ++k) {
            if (!events[k].empty()) ExpectAllMatch(states[k], events[k], now);
          }
        }
        if (HasFailure()) return;
      }
    }
  }
}

TEST_F(AggregationTest, LateEventsAreDroppedAndCounted) {
  Watermark watermark(2 * kMinute);
  EXPECT_EQ(watermark.value(), kNoTime);
  EXPECT_TRUE(watermark.Admit(kStart));
  EXPECT_TRUE(watermark.Admit(kStart + 10 * kMinute));
  EXPECT_EQ(watermark.value(), kStart + 8 * kMinute);
  EXPECT_TRUE(watermark.Admit(kStart + 8 * kMinute));  // exactly at the watermark: on time
  EXPECT_FALSE(watermark.Admit(kStart + 8 * kMinute - 1));
  EXPECT_FALSE(watermark.Admit(kStart));
  EXPECT_TRUE(watermark.Admit(kStart + 9 * kMinute));  // out of order, within lateness
  EXPECT_EQ(watermark.max_event_time(), kStart + 10 * kMinute);
}

TEST_F(AggregationTest, TumblingAndSlidingWindows) {
  ViewState state;
  layout_->Init(&state);
  // n_10m is tumbling (every 10m), n_1h slides every minute.
  const int64_t t0 = kStart - kStart % kHour;  // an hour boundary
  for (int64_t minute : {1, 2, 9, 11, 25}) Add(state, RefEvent{t0 + minute * kMinute, {}});
  int tumbling = view_->FeatureIndex("n_10m");
  int sliding = view_->FeatureIndex("n_1h");
  auto count = [&](int feature, int64_t now) {
    return std::get<int64_t>(EvaluateFeature(*layout_, state, feature, now).value);
  };
  // Before the first 10 minutes end, the tumbling window shows the (empty) window before them.
  EXPECT_EQ(count(tumbling, t0 + 9 * kMinute), 0);
  EXPECT_EQ(count(tumbling, t0 + 10 * kMinute), 3);  // [0m, 10m)
  EXPECT_EQ(count(tumbling, t0 + 19 * kMinute + 59 * kSecond), 3);
  EXPECT_EQ(count(tumbling, t0 + 20 * kMinute), 1);  // [10m, 20m)
  EXPECT_EQ(count(tumbling, t0 + 30 * kMinute), 1);  // [20m, 30m)
  EXPECT_EQ(count(tumbling, t0 + 40 * kMinute), 0);
  // The sliding hour ends at the last full minute.
  EXPECT_EQ(count(sliding, t0 + 2 * kMinute), 1);  // [.., 2m): the event at 1m
  EXPECT_EQ(count(sliding, t0 + 2 * kMinute + 59 * kSecond), 1);
  EXPECT_EQ(count(sliding, t0 + 3 * kMinute), 2);
  EXPECT_EQ(count(sliding, t0 + 30 * kMinute), 5);
  EXPECT_EQ(count(sliding, t0 + 61 * kMinute), 5);  // [1m, 61m)
  EXPECT_EQ(count(sliding, t0 + 62 * kMinute), 4);  // the event at 1m slid out
  EXPECT_EQ(count(sliding, t0 + 86 * kMinute), 0);
}

TEST_F(AggregationTest, EmptyWindowsAndTtl) {
  ViewState state;
  layout_->Init(&state);
  const int64_t t0 = kStart - kStart % kHour;
  RefEvent e{t0, {{"country", std::string("fr")}, {"amount", int64_t{5}}}};
  Add(state, e);
  auto at = [&](const char* name, int64_t now) {
    return EvaluateFeature(*layout_, state, view_->FeatureIndex(name), now);
  };
  // Two hours later every window is empty, the ttl (3h) not yet over.
  int64_t now = t0 + 2 * kHour;
  EXPECT_EQ(at("country", now).value, Value(std::string("fr")));
  EXPECT_EQ(at("n_1h", now).value, Value(int64_t{0}));
  EXPECT_EQ(at("amount_1h", now).value, Value(int64_t{0}));
  EXPECT_EQ(at("distinct_pages_1h", now).value, Value(int64_t{0}));
  EXPECT_EQ(at("pages_1h", now).value, Value(std::vector<Scalar>{}));
  EXPECT_EQ(at("pages_1h", now).status, FeatureStatus::kPresent);
  for (const char* name : {"mean_amount_10m", "min_amount_1h", "max_price_30m", "last_page_10m"}) {
    EXPECT_EQ(at(name, now).status, FeatureStatus::kNotFound) << name;
  }
  EXPECT_EQ(at("age", now).status, FeatureStatus::kNotFound);  // never sent
  // Past the ttl everything reads OUTSIDE_TTL; the state expires once no window can show it.
  now = t0 + 3 * kHour + 1;
  EXPECT_EQ(at("country", now).status, FeatureStatus::kOutsideTtl);
  EXPECT_EQ(at("n_1h", now).status, FeatureStatus::kOutsideTtl);
  EXPECT_FALSE(layout_->Expired(state, t0 + 3 * kHour));
  // distinct over 1d every 1h keeps the entity for 25h.
  EXPECT_FALSE(layout_->Expired(state, t0 + 24 * kHour));
  EXPECT_TRUE(layout_->Expired(state, t0 + 25 * kHour + 1));
}

TEST_F(AggregationTest, StateCodecRoundTrip) {
  std::mt19937_64 rng(42);
  ViewState state;
  layout_->Init(&state);
  std::vector<RefEvent> events;
  int64_t base = kStart;
  for (int i = 0; i < 3000; ++i) {
    base += static_cast<int64_t>(rng() % (5 * kSecond));
    events.push_back(RandomEvent(rng, base));
    Add(state, events.back());
  }
  std::string encoded;
  EncodeState(*layout_, state, &encoded);
  ViewState decoded;
  layout_->Init(&decoded);
  ASSERT_TRUE(DecodeState(*layout_, encoded, &decoded).ok());
  EXPECT_EQ(decoded.last_ts, state.last_ts);
  for (int64_t now : {base, base + 10 * kMinute, base + 2 * kHour}) {
    for (size_t f = 0; f < view_->features.size(); ++f) {
      EXPECT_EQ(EvaluateFeature(*layout_, decoded, static_cast<int>(f), now),
                EvaluateFeature(*layout_, state, static_cast<int>(f), now))
          << view_->features[f].name;
    }
  }
  std::string again;
  EncodeState(*layout_, decoded, &again);
  EXPECT_EQ(again, encoded);
  // Corrupt input is an error, never a crash.
  for (size_t cut = 0; cut < encoded.size(); cut += 1 + encoded.size() / 200) {
    ViewState s;
    layout_->Init(&s);
    EXPECT_FALSE(DecodeState(*layout_, absl::string_view(encoded).substr(0, cut), &s).ok());
  }
}

TEST_F(AggregationTest, StoredStateSurvivesADefinitionChange) {
  ViewState state;
  layout_->Init(&state);
  const int64_t t0 = kStart - kStart % kHour;
  for (int i = 0; i < 50; ++i) {
    Add(state, RefEvent{t0 + i * kMinute, {{"amount", int64_t{i}}, {"page", std::string("p")}}});
  }
  std::string encoded;
  EncodeState(*layout_, state, &encoded);
  // The same view with a shorter ring for n_1h's series, a new feature and fewer pages kept.
  absl::StatusOr<FeatureRegistry> changed = FeatureRegistry::Parse({{"d.yaml", R"(
entities: {user: {keys: [user_id]}}
sources: {events: {kind: push, timestamp: ts}}
views:
  stats:
    entity: user
    source: events
    schema: {amount: int64, page: string}
    aggregations:
      n_10m: count over 10m, every 1m
      amount_1h: sum(amount) over 1h, every 1m
      pages: last_n(page, 1) over 1h, every 1m
      max_amount: max(amount) over 1h, every 1m
)"}});
  ASSERT_TRUE(changed.ok()) << changed.status();
  const ViewDef& view = changed->views()[0];
  ViewLayout layout(view, changed->sources()[0]);
  ViewState decoded;
  layout.Init(&decoded);
  ASSERT_TRUE(DecodeState(layout, encoded, &decoded).ok());
  int64_t now = t0 + 50 * kMinute;
  EXPECT_EQ(EvaluateFeature(layout, decoded, 0, now).value, Value(int64_t{10}));
  EXPECT_EQ(EvaluateFeature(layout, decoded, 1, now).value, Value(int64_t{49 * 50 / 2}));
  EXPECT_EQ(EvaluateFeature(layout, decoded, 2, now).value,
            Value(std::vector<Scalar>{std::string("p")}));
  // max(amount) had no series before: it starts empty.
  EXPECT_EQ(EvaluateFeature(layout, decoded, 3, now).status, FeatureStatus::kNotFound);
}

TEST(ExactDividerTest, MatchesDivisionOverTheWholeTimeRange) {
  std::mt19937_64 rng(11);
  std::vector<int64_t> divisors = {1,
                                   2,
                                   3,
                                   7,
                                   10,
                                   26,
                                   1000,
                                   kSecond,
                                   10 * kSecond,
                                   kMinute,
                                   5 * kMinute,
                                   kHour,
                                   86400 * kSecond,
                                   kMaxTime - 1,
                                   999'999'999'989};
  for (int i = 0; i < 200; ++i) divisors.push_back(1 + static_cast<int64_t>(rng() % kMaxTime));
  for (int64_t d : divisors) {
    ExactDivider divider(d);
    std::vector<int64_t> numerators = {
        0, 1, d - 1, d, d + 1, kMaxTime - 1, kMaxTime - d, kStart, kStart + d - 1};
    for (int k = 1; k < 4 && d <= kMaxTime / (k + 1); ++k) {
      numerators.push_back(k * d - 1);
      numerators.push_back(k * d);
    }
    for (int i = 0; i < 2000; ++i) numerators.push_back(static_cast<int64_t>(rng() % kMaxTime));
    for (int64_t n : numerators) {
      if (n < 0 || n >= kMaxTime) continue;
      ASSERT_EQ(divider.Divide(n), n / d) << n << " / " << d;
    }
  }
}

TEST(HyperLogLogTest, EstimatesWithinItsErrorAndRoundTrips) {
  for (int precision : {10, 12, 14}) {
    HyperLogLog sketch(precision);
    const double sigma = 1.04 / std::sqrt(static_cast<double>(1 << precision));
    int added = 0;
    for (int target : {1, 10, 100, 1000, 10000, 100000}) {
      for (; added < target; ++added) sketch.Add(StableHash(absl::StrCat("value-", added)));
      // Adding the same values again changes nothing.
      for (int i = 0; i < std::min(target, 100); ++i) {
        sketch.Add(StableHash(absl::StrCat("value-", i)));
      }
      double error = std::fabs(sketch.Estimate() - target) / target;
      EXPECT_LE(error, std::max(4 * sigma, 0.01)) << "p=" << precision << " n=" << target;
      std::string bytes;
      sketch.AppendTo(&bytes);
      HyperLogLog copy(4);
      absl::string_view in = bytes;
      ASSERT_TRUE(copy.ReadFrom(&in));
      EXPECT_TRUE(in.empty());
      EXPECT_EQ(copy.Estimate(), sketch.Estimate());
    }
    EXPECT_TRUE(sketch.dense());
    sketch.Clear();
    EXPECT_TRUE(sketch.empty());
    EXPECT_EQ(sketch.Estimate(), 0);
  }
}

TEST(HyperLogLogTest, MergedSketchesCountTheUnion) {
  HyperLogLog a(12), b(12);
  for (int i = 0; i < 3000; ++i) a.Add(StableHash(static_cast<uint64_t>(i)));
  for (int i = 2000; i < 5000; ++i) b.Add(StableHash(static_cast<uint64_t>(i)));
  std::vector<uint8_t> registers;
  a.MaxInto(registers);
  b.MaxInto(registers);
  EXPECT_NEAR(HyperLogLog::EstimateRegisters(registers), 5000, 5000 * 0.05);
  // Garbage is refused.
  std::string junk = "\x0c\x00\xff\xff\xff\xff\xff";
  absl::string_view in = junk;
  EXPECT_FALSE(a.ReadFrom(&in));
}

}  // namespace
}  // namespace flywheel::features
