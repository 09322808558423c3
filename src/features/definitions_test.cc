#include "features/definitions.h"

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flywheel::features {
namespace {

using ::testing::HasSubstr;

constexpr char kGood[] = R"(entities:
  user:
    keys: [user_id]
  page:
    key: page_id

sources:
  clicks:
    kind: push
    timestamp: ts
    timestamp_unit: ms
    lateness: 30s
  orders:
    kind: redis_stream
    stream: orders-events
    lateness: 1m

views:
  user_clicks:
    entity: user
    source: clicks
    ttl: 2h
    schema:
      amount: float64
      page: string
    fields:
      country: string
      plan: {field: plan_name, type: string}
    aggregations:
      clicks_1h: count over 1h, every 1m
      spend_1h: sum(amount) over 1h, every 5m
      avg_spend_1d: mean(amount) over 1d
      recent_pages: last_n(page, 5) over 1h, every 1m
      amounts: count(amount) over 10m
      pages_1d:
        function: distinct
        field: page
        window: 1d
        every: 1h
        precision: 10
  page_clicks:
    entity: page
    source: clicks
    schema:
      page_id: string
    aggregations:
      users_1h: count over 1h
)";

absl::StatusOr<FeatureRegistry> ParseOne(const std::string& text) {
  return FeatureRegistry::Parse({{"features/user.yaml", text}});
}

TEST(DefinitionsTest, ParsesAGoodFolder) {
  absl::StatusOr<FeatureRegistry> r = ParseOne(kGood);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->entities().size(), 2);
  EXPECT_EQ(r->FindEntity("page")->keys, std::vector<std::string>{"page_id"});

  const SourceDef* clicks = r->FindSource("clicks");
  ASSERT_NE(clicks, nullptr);
  EXPECT_EQ(clicks->kind, SourceKind::kPush);
  EXPECT_EQ(clicks->timestamp_field, "ts");
  EXPECT_EQ(clicks->timestamp_unit, absl::Milliseconds(1));
  EXPECT_EQ(clicks->lateness, absl::Seconds(30));
  EXPECT_EQ(clicks->key_fields, (std::vector<std::string>{"user_id", "page_id"}));
  const SourceDef* orders = r->FindSource("orders");
  EXPECT_EQ(orders->kind, SourceKind::kRedisStream);
  EXPECT_EQ(orders->stream, "orders-events");
  EXPECT_EQ(orders->timestamp_field, "timestamp");

  const ViewDef* view = r->FindView("user_clicks");
  ASSERT_NE(view, nullptr);
  EXPECT_EQ(view->ttl, absl::Hours(2));
  EXPECT_EQ(view->effective_ttl, absl::Hours(2));
  ASSERT_EQ(view->features.size(), 8);
  const FeatureDef* plan = view->FindFeature("plan");
  EXPECT_FALSE(plan->aggregation);
  EXPECT_EQ(plan->field, "plan_name");
  EXPECT_EQ(plan->value_type, (ValueType{FieldType::kString, false}));
  EXPECT_EQ(plan->location.line, 28);

  const FeatureDef* clicks_1h = view->FindFeature("clicks_1h");
  EXPECT_EQ(clicks_1h->function, AggFunction::kCount);
  EXPECT_EQ(clicks_1h->window, absl::Hours(1));
  EXPECT_EQ(clicks_1h->every, absl::Minutes(1));
  EXPECT_EQ(clicks_1h->value_type.Name(), "int64");
  const FeatureDef* spend = view->FindFeature("spend_1h");
  EXPECT_EQ(spend->function, AggFunction::kSum);
  EXPECT_EQ(spend->value_type.Name(), "float64");
  EXPECT_EQ(view->FindFeature("avg_spend_1d")->every, absl::Hours(24));  // tumbling
  const FeatureDef* recent = view->FindFeature("recent_pages");
  EXPECT_EQ(recent->function, AggFunction::kLastN);
  EXPECT_EQ(recent->n, 5);
  EXPECT_EQ(recent->value_type.Name(), "list<string>");
  EXPECT_EQ(view->FindFeature("amounts")->function, AggFunction::kCountField);
  const FeatureDef* pages = view->FindFeature("pages_1d");
  EXPECT_EQ(pages->function, AggFunction::kDistinct);
  EXPECT_EQ(pages->precision, 10);
  EXPECT_EQ(pages->every, absl::Hours(1));

  // Aggregation-only view without ttl: readable for its longest window plus slide.
  EXPECT_EQ(r->FindView("page_clicks")->effective_ttl, absl::Hours(2));

  absl::StatusOr<FeatureRef> ref = r->Resolve("user_clicks:spend_1h");
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(&r->feature(*ref), spend);
  EXPECT_THAT(r->Resolve("nope:x").status().message(), HasSubstr("unknown view 'nope'"));
  EXPECT_THAT(r->Resolve("user_clicks:x").status().message(),
              HasSubstr("view 'user_clicks' has no feature 'x'"));
  EXPECT_THAT(r->Resolve("user_clicks").status().message(), HasSubstr("expected 'view:feature'"));
}

TEST(DefinitionsTest, DefinitionsSpreadOverFilesReferToEachOther) {
  absl::StatusOr<FeatureRegistry> r = FeatureRegistry::Parse(
      {{"a.yaml", "entities:\n  user: {keys: [uid]}\nsources:\n  s: {kind: push}\n"},
       {"b.yml", "views:\n  v:\n    entity: user\n    source: s\n    fields: {age: int64}\n"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->FindView("v")->effective_ttl, std::nullopt);  // raw fields without ttl: forever
}

TEST(DefinitionsTest, LoadsAFolder) {
  std::string dir = ::testing::TempDir() + "/features_defs";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/user.yaml") << kGood;
  std::ofstream(dir + "/notes.txt") << "not yaml: [";
  absl::StatusOr<FeatureRegistry> r = FeatureRegistry::LoadDir(dir);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->views().size(), 2);
  EXPECT_THAT(FeatureRegistry::LoadDir(dir + "/missing").status().message(),
              HasSubstr("not a directory"));
}

TEST(DefinitionsTest, Durations) {
  EXPECT_EQ(*ParseFeatureDuration("1h30m"), absl::Minutes(90));
  EXPECT_EQ(*ParseFeatureDuration("250ms"), absl::Milliseconds(250));
  EXPECT_EQ(*ParseFeatureDuration("2d"), absl::Hours(48));
  EXPECT_EQ(*ParseFeatureDuration("0"), absl::ZeroDuration());
  EXPECT_FALSE(ParseFeatureDuration("1y").ok());
  EXPECT_FALSE(ParseFeatureDuration("h").ok());
  EXPECT_FALSE(ParseFeatureDuration("10").ok());
  EXPECT_EQ(FormatFeatureDuration(absl::Seconds(90)), "1m30s");
  EXPECT_EQ(FormatFeatureDuration(absl::Hours(24)), "1d");
}

struct BadCase {
  const char* name;
  std::string yaml;
  std::string error;  // expected substring, starting with file:line
};

// A prefix that defines an entity and a source; the case adds its view (from line 5 on).
constexpr char kBase[] =
    "entities:\n"
    "  user: {keys: [user_id]}\n"
    "sources:\n"
    "  clicks: {kind: push, timestamp: ts}\n";

std::vector<BadCase> BadCases() {
  auto view = [](const std::string& body) {
    return std::string(kBase) + "views:\n  user_clicks:\n    entity: user\n    source: clicks\n" +
           body;
  };
  return {
      {"unknown_function",
       view("    schema: {amount: float64}\n    aggregations:\n      clicks_1h: cnt over 1h\n"),
       "features/user.yaml:11: view 'user_clicks': aggregation 'clicks_1h': unknown function "
       "'cnt' (expected count, sum, mean, min, max, last, last_n, distinct)"},
      {"invalid_yaml", "views: [unclosed\n", "features/user.yaml:2: invalid YAML"},
      {"unknown_section", std::string(kBase) + "viewz: {}\n",
       "features/user.yaml:5: unknown key 'viewz' (expected entities, sources, views)"},
      {"unknown_entity",
       std::string(kBase) +
           "views:\n  v:\n    entity: usr\n    source: clicks\n    fields: {a: int64}\n",
       "features/user.yaml:7: view 'v': unknown entity 'usr' (defined: user)"},
      {"unknown_source",
       std::string(kBase) +
           "views:\n  v:\n    entity: user\n    source: click\n    fields: {a: int64}\n",
       "features/user.yaml:8: view 'v': unknown source 'click' (defined: clicks)"},
      {"bad_type", view("    fields:\n      age: integer\n"),
       "features/user.yaml:10: view 'user_clicks': field 'age': unknown type 'integer'"},
      {"undeclared_field", view("    aggregations:\n      s: sum(amount) over 1h\n"),
       "features/user.yaml:10: view 'user_clicks': aggregation 's': field 'amount' has no "
       "type"},
      {"sum_of_string",
       view("    schema: {page: string}\n    aggregations:\n      s: sum(page) over 1h\n"),
       "features/user.yaml:11: view 'user_clicks': aggregation 's': sum needs an int64 or "
       "float64 field; 'page' is string"},
      {"window_not_multiple", view("    aggregations:\n      c: count over 1h, every 7m\n"),
       "features/user.yaml:10: view 'user_clicks': aggregation 'c': window 1h must be a "
       "multiple of every 7m"},
      {"bad_duration", view("    aggregations:\n      c: count over 1x\n"),
       "features/user.yaml:10: view 'user_clicks': aggregation 'c': window: bad duration '1x'"},
      {"missing_over", view("    aggregations:\n      c: count 1h\n"),
       "features/user.yaml:10: view 'user_clicks': aggregation 'c': missing 'over'"},
      {"last_n_without_n",
       view("    schema: {p: string}\n    aggregations:\n      c: last_n(p) over 1h\n"),
       "features/user.yaml:11: view 'user_clicks': aggregation 'c': last_n needs a count n"},
      {"too_many_tiles", view("    aggregations:\n      c: count over 30d, every 1s\n"),
       "features/user.yaml:10: view 'user_clicks': aggregation 'c': window 30d every 1s with "
       "lateness 0s needs 2592001 tiles per entity (at most 10000)"},
      {"no_features", view(""), "features/user.yaml:7: view 'user_clicks': no features"},
      {"missing_source",
       std::string(kBase) + "views:\n  v:\n    entity: user\n    fields: {a: "
                            "int64}\n",
       "features/user.yaml:7: view 'v': missing 'source'"},
      {"duplicate_feature",
       view("    fields: {a: int64}\n    aggregations:\n      a: count over 1h\n"),
       "features/user.yaml:11: view 'user_clicks': aggregation 'a': a feature of this name is "
       "already defined"},
      {"unknown_view_key", view("    fields: {a: int64}\n    tll: 1h\n"),
       "features/user.yaml:10: view 'user_clicks': unknown key 'tll'"},
      {"bad_kind", "sources:\n  s:\n    kind: kafka\n",
       "features/user.yaml:3: source 's': unknown kind 'kafka' (expected push, redis_stream)"},
      {"stream_on_push", "sources:\n  s:\n    kind: push\n    stream: x\n",
       "features/user.yaml:4: source 's': 'stream' applies to redis_stream sources only"},
      {"bad_name", "entities:\n  'a:b': {keys: [x]}\n",
       "features/user.yaml:2: entity name 'a:b' is not valid"},
      {"entity_without_keys", "entities:\n  user: {}\n",
       "features/user.yaml:2: entity 'user': missing 'keys'"},
      {"timestamp_as_feature", view("    fields: {ts: int64}\n"),
       "features/user.yaml:9: view 'user_clicks': field 'ts': field 'ts' is the timestamp field "
       "of source 'clicks'"},
      {"bad_precision",
       view("    schema: {p: string}\n    aggregations:\n      d:\n        function: distinct\n"
            "        field: p\n        window: 1h\n        precision: 20\n"),
       "features/user.yaml:12: view 'user_clicks': aggregation 'd': 'precision' applies to "
       "distinct only and must be in 4..16"},
  };
}

TEST(DefinitionsTest, BadDefinitionsAreRefusedWithFileAndLine) {
  for (const BadCase& c : BadCases()) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<FeatureRegistry> r = ParseOne(c.yaml);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr(c.error));
  }
}

TEST(DefinitionsTest, DuplicatesAcrossFilesNameBothPlaces) {
  absl::StatusOr<FeatureRegistry> r =
      FeatureRegistry::Parse({{"a.yaml", "entities:\n  user: {keys: [uid]}\n"},
                              {"b.yaml", "\nentities:\n  user: {keys: [uid]}\n"}});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(),
              HasSubstr("b.yaml:3: entity 'user' is already defined at a.yaml:2"));
}

TEST(DefinitionsTest, ConflictingFieldTypesOnOneSource) {
  std::string yaml = std::string(kBase) +
                     "views:\n"
                     "  a:\n    entity: user\n    source: clicks\n    fields: {amount: int64}\n"
                     "  b:\n    entity: user\n    source: clicks\n    fields: {amount: float64}\n";
  absl::StatusOr<FeatureRegistry> r = ParseOne(yaml);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(),
              HasSubstr("features/user.yaml:13: view 'b': field 'amount': field 'amount' is "
                        "float64 here but int64 in view 'a' (both read source 'clicks')"));
}

TEST(DefinitionsTest, ReportsEveryProblemAtOnce) {
  absl::StatusOr<FeatureRegistry> r =
      ParseOne("sources:\n  a: {kind: kafka}\n  b: {kind: push, lateness: soon}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("features/user.yaml:2: source 'a'"));
  EXPECT_THAT(r.status().message(), HasSubstr("features/user.yaml:3: source 'b': lateness"));
}

}  // namespace
}  // namespace flywheel::features
