// Test-only: the feature definitions the pipeline, lookup and export tests share (three entities,
// a push source and a Redis stream source, raw fields and every kind of aggregation), and a
// generator of random click events as JSON with their reference copies.
#pragma once

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "features/definitions.h"
#include "features/testing/reference.h"
#include "gtest/gtest.h"

namespace flywheel::features::testing {

inline constexpr char kTestDefinitions[] = R"(
entities:
  user: {keys: [user_id]}
  item: {keys: [item_id]}
  pair: {keys: [user_id, item_id]}
sources:
  clicks: {kind: push, timestamp: ts, lateness: 1m}
  orders: {kind: redis_stream, stream: orders-stream, timestamp: ts, timestamp_unit: ms,
           lateness: 5s}
views:
  user_clicks:
    entity: user
    source: clicks
    ttl: 2h
    schema: {page: string, dwell: float64}
    fields: {country: string, age: int64}
    aggregations:
      clicks_1h: count over 1h, every 1m
      clicks_10m: count over 10m
      dwell_1h: sum(dwell) over 1h, every 5m
      mean_dwell_1h: mean(dwell) over 1h, every 5m
      last_pages: last_n(page, 3) over 1h, every 1m
      pages_1h: distinct(page) over 1h, every 10m
  item_clicks:
    entity: item
    source: clicks
    schema: {user_id: string}
    aggregations:
      clicks_1h: count over 1h, every 10m
      users_1h: distinct(user_id) over 1h, every 10m
  pair_clicks:
    entity: pair
    source: clicks
    aggregations: {clicks_1d: "count over 1d, every 1h"}  # quoted: ',' ends a flow value
  user_orders:
    entity: user
    source: orders
    schema: {amount: int64}
    aggregations:
      spend_1h: sum(amount) over 1h, every 1m
      max_order_1d: max(amount) over 1d, every 1h
)";

inline std::unique_ptr<FeatureRegistry> TestRegistry() {
  absl::StatusOr<FeatureRegistry> r = FeatureRegistry::Parse({{"test.yaml", kTestDefinitions}});
  EXPECT_TRUE(r.ok()) << r.status();
  return std::make_unique<FeatureRegistry>(*std::move(r));
}

inline constexpr int64_t kSecondNs = 1'000'000'000;
inline constexpr int64_t kT0 = 1'700'000'000;  // seconds; an hour boundary is kT0 - kT0 % 3600

// One click: its JSON and what each view's reference sees.
struct Click {
  std::string user;
  std::string item;
  int64_t ts_seconds = 0;
  std::string json;
  RefEvent ref;
};

inline Click RandomClick(std::mt19937_64& rng, int64_t ts_seconds, int users, int items) {
  Click c;
  c.user = absl::StrCat("u", rng() % users);
  c.item = absl::StrCat("i", rng() % items);
  c.ts_seconds = ts_seconds;
  c.ref.ts = ts_seconds * kSecondNs;
  c.ref.fields["user_id"] = c.user;
  std::vector<std::string> parts = {absl::StrCat("\"user_id\":\"", c.user, "\""),
                                    absl::StrCat("\"item_id\":\"", c.item, "\""),
                                    absl::StrCat("\"ts\":", ts_seconds)};
  const char* pages[] = {"home", "search", "cart", "item", "help"};
  if (rng() % 10 < 8) {
    std::string page = pages[rng() % 5];
    parts.push_back(absl::StrCat("\"page\":\"", page, "\""));
    c.ref.fields["page"] = page;
  }
  if (rng() % 10 < 6) {
    double dwell = static_cast<double>(rng() % 1000) / 8.0;  // exact in binary
    parts.push_back(absl::StrCat("\"dwell\":", dwell));
    c.ref.fields["dwell"] = dwell;
  }
  if (rng() % 10 < 2) {
    std::string country = rng() % 2 ? "fr" : "jp";
    parts.push_back(absl::StrCat("\"country\":\"", country, "\""));
    c.ref.fields["country"] = country;
  }
  if (rng() % 10 < 2) {
    int64_t age = static_cast<int64_t>(rng() % 80);
    parts.push_back(absl::StrCat("\"age\":", age));
    c.ref.fields["age"] = age;
  }
  c.json = absl::StrCat("{", absl::StrJoin(parts, ","), "}");
  return c;
}

inline std::string JsonArray(const std::vector<Click>& clicks) {
  std::vector<std::string> parts;
  for (const Click& c : clicks) parts.push_back(c.json);
  return absl::StrCat("[", absl::StrJoin(parts, ","), "]");
}

// The entity key of a click in a view of the clicks source.
inline std::string ClickKey(const std::string& view, const Click& c) {
  if (view == "user_clicks") return c.user;
  if (view == "item_clicks") return c.item;
  return absl::StrCat(c.user, "\x1e", c.item);
}

}  // namespace flywheel::features::testing
