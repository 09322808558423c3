#include "monitor/profile.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flywheel::monitor {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string TempDir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("flywheel_profile_test_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

TEST(ProfileNumbersTest, QuantilesHistogramAndMoments) {
  std::vector<double> values;
  for (int i = 1; i <= 100; ++i) values.push_back(i);
  values.push_back(NAN);
  values.push_back(-INFINITY);
  ProfileOptions options;
  options.histogram_bins = 4;
  const FeatureProfile f = ProfileNumbers("x", values, options);
  EXPECT_EQ(f.kind, FeatureKind::kNumeric);
  EXPECT_EQ(f.count, 100);
  EXPECT_EQ(f.missing, 2);
  EXPECT_NEAR(f.missing_rate(), 2.0 / 102, 1e-12);
  EXPECT_EQ(f.distinct, 100);
  EXPECT_EQ(f.min, 1);
  EXPECT_EQ(f.max, 100);
  EXPECT_DOUBLE_EQ(f.mean, 50.5);
  EXPECT_NEAR(f.stddev, std::sqrt((100.0 * 100 - 1) / 12), 1e-9);
  ASSERT_EQ(f.quantiles.size(), static_cast<size_t>(kProfileQuantiles));
  // numpy.percentile(range(1, 101), [0, 25, 50, 99, 100]) with linear interpolation.
  EXPECT_DOUBLE_EQ(f.quantiles[0], 1);
  EXPECT_DOUBLE_EQ(f.quantiles[25], 25.75);
  EXPECT_DOUBLE_EQ(f.quantiles[50], 50.5);
  EXPECT_DOUBLE_EQ(f.quantiles[99], 99.01);
  EXPECT_DOUBLE_EQ(f.quantiles[100], 100);
  EXPECT_THAT(f.bin_edges, ElementsAre(26, 51, 76));  // values at ranks 25, 50, 75
  EXPECT_THAT(f.bin_counts, ElementsAre(25, 25, 25, 25));
}

TEST(ProfileNumbersTest, TiesMergeBins) {
  // 70% zeros, 30% ones: every decile edge is 0 or 1; the edge at the minimum is dropped.
  std::vector<double> values(70, 0.0);
  values.insert(values.end(), 30, 1.0);
  const FeatureProfile f = ProfileNumbers("flag", values, ProfileOptions{});
  EXPECT_THAT(f.bin_edges, ElementsAre(1.0));
  EXPECT_THAT(f.bin_counts, ElementsAre(70, 30));
  EXPECT_EQ(f.distinct, 2);

  const FeatureProfile constant = ProfileNumbers("c", std::vector<double>(10, 3.0), {});
  EXPECT_TRUE(constant.bin_edges.empty());
  EXPECT_THAT(constant.bin_counts, ElementsAre(10));

  const FeatureProfile empty = ProfileNumbers("e", std::vector<double>{NAN}, {});
  EXPECT_EQ(empty.count, 0);
  EXPECT_EQ(empty.missing, 1);
  EXPECT_TRUE(empty.quantiles.empty());
  EXPECT_THAT(empty.bin_counts, ElementsAre(0));
}

TEST(ProfileStringsTest, TopCategoriesAndOther) {
  std::vector<std::string> values = {"US", "FR", "US", "DE", "", "US", "FR", "JP", "BR"};
  ProfileOptions options;
  options.max_categories = 3;
  const FeatureProfile f = ProfileStrings("country", values, options);
  EXPECT_EQ(f.kind, FeatureKind::kCategorical);
  EXPECT_EQ(f.count, 8);
  EXPECT_EQ(f.missing, 1);
  EXPECT_EQ(f.distinct, 5);
  ASSERT_EQ(f.categories.size(), 3u);
  EXPECT_EQ(f.categories[0].value, "US");
  EXPECT_EQ(f.categories[0].count, 3);
  EXPECT_EQ(f.categories[1].value, "FR");
  EXPECT_EQ(f.categories[2].value, "BR");  // ties by value
  EXPECT_EQ(f.other_count, 2);             // DE, JP
}

TEST(ProfileTensorTest, ColumnsOfA2DInput) {
  Tensor x = Tensor::Allocate(DataType::kFp32, Shape{4, 3});
  float* p = x.data<float>();
  for (int i = 0; i < 12; ++i) p[i] = static_cast<float>(i % 3 == 2 ? i % 2 : i);
  auto features = ProfileTensor(x, "x", FeatureRole::kInput, {}, {"x[2]"}, ProfileOptions{});
  ASSERT_TRUE(features.ok()) << features.status();
  ASSERT_EQ(features->size(), 3u);
  EXPECT_EQ((*features)[0].name, "x[0]");
  EXPECT_EQ((*features)[0].tensor, "x");
  EXPECT_EQ((*features)[0].column, 0);
  EXPECT_EQ((*features)[0].min, 0);
  EXPECT_EQ((*features)[0].max, 9);
  EXPECT_EQ((*features)[2].kind, FeatureKind::kCategorical);
  ASSERT_EQ((*features)[2].categories.size(), 2u);
  EXPECT_EQ((*features)[2].categories[0].value, "0");

  auto named = ProfileTensor(x, "x", FeatureRole::kOutput, {"a", "b", "c"}, {}, {});
  ASSERT_TRUE(named.ok());
  EXPECT_EQ((*named)[1].name, "b");
  EXPECT_EQ((*named)[1].role, FeatureRole::kOutput);

  auto wrong = ProfileTensor(x, "x", FeatureRole::kInput, {"a"}, {}, {});
  EXPECT_THAT(wrong.status().message(), HasSubstr("1 feature names for 3 columns"));

  Tensor s = Tensor::Allocate(DataType::kBytes, Shape{3});
  s.strings() = {"a", "b", "a"};
  auto strings = ProfileTensor(s, "tag", FeatureRole::kInput, {}, {}, {});
  ASSERT_TRUE(strings.ok());
  EXPECT_EQ((*strings)[0].name, "tag");
  EXPECT_EQ((*strings)[0].column, -1);
  EXPECT_EQ((*strings)[0].kind, FeatureKind::kCategorical);

  EXPECT_FALSE(ProfileTensor(Tensor(), "y", FeatureRole::kInput, {}, {}, {}).ok());
}

TEST(NumberAsCategoryTest, IntegersWithoutPoint) {
  char buffer[32];
  EXPECT_EQ(NumberAsCategory(3.0, buffer), "3");
  EXPECT_EQ(NumberAsCategory(-12.0, buffer), "-12");
  EXPECT_EQ(NumberAsCategory(0.5, buffer), "0.5");
  EXPECT_EQ(NumberAsCategory(1e300, buffer), "1e+300");
}

ReferenceProfile SampleProfile() {
  ReferenceProfile profile;
  profile.model = "rank";
  profile.version = 3;
  profile.source = "train.npy";
  profile.created = "2024-01-01T00:00:00Z";
  std::vector<double> numbers;
  for (int i = 0; i < 1000; ++i) numbers.push_back(std::sin(i) * 10 + 0.1 * i);
  FeatureProfile x = ProfileNumbers("x[0]", numbers, {});
  x.tensor = "x";
  x.column = 0;
  FeatureProfile c = ProfileStrings("city", {"Paris", "Lyon", "Paris", "", "Nice \"x\""}, {});
  c.tensor = "city";
  FeatureProfile y = ProfileNumbers("score", {0.1, 0.9, 0.4}, {});
  y.tensor = "score";
  y.role = FeatureRole::kOutput;
  profile.features = {x, c, y};
  profile.rows = 1000;
  return profile;
}

void ExpectSameProfile(const ReferenceProfile& a, const ReferenceProfile& b) {
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(a.created, b.created);
  EXPECT_EQ(a.rows, b.rows);
  ASSERT_EQ(a.features.size(), b.features.size());
  for (size_t i = 0; i < a.features.size(); ++i) {
    const FeatureProfile& f = a.features[i];
    const FeatureProfile& g = b.features[i];
    EXPECT_EQ(f.name, g.name);
    EXPECT_EQ(f.role, g.role);
    EXPECT_EQ(f.tensor, g.tensor);
    EXPECT_EQ(f.column, g.column);
    EXPECT_EQ(f.kind, g.kind);
    EXPECT_EQ(f.count, g.count);
    EXPECT_EQ(f.missing, g.missing);
    EXPECT_EQ(f.distinct, g.distinct);
    EXPECT_EQ(f.min, g.min);
    EXPECT_EQ(f.max, g.max);
    EXPECT_EQ(f.mean, g.mean);
    EXPECT_EQ(f.stddev, g.stddev);
    EXPECT_EQ(f.quantiles, g.quantiles);  // exact: shortest round-trip doubles
    EXPECT_EQ(f.bin_edges, g.bin_edges);
    EXPECT_EQ(f.bin_counts, g.bin_counts);
    ASSERT_EQ(f.categories.size(), g.categories.size());
    for (size_t k = 0; k < f.categories.size(); ++k) {
      EXPECT_EQ(f.categories[k].value, g.categories[k].value);
      EXPECT_EQ(f.categories[k].count, g.categories[k].count);
    }
    EXPECT_EQ(f.other_count, g.other_count);
  }
}

TEST(ProfileJsonTest, RoundTripThroughAFile) {
  const ReferenceProfile profile = SampleProfile();
  ASSERT_TRUE(ValidateProfile(profile, "sample").ok());
  const std::string dir = TempDir("roundtrip");
  const std::string path = ProfilePath(dir + "/");
  EXPECT_EQ(path, dir + "/profile.json");
  ASSERT_TRUE(SaveProfile(profile, path).ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  auto loaded = LoadProfile(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ExpectSameProfile(profile, *loaded);
  std::filesystem::remove_all(dir);
}

// The error of loading `json`, with the file name "p.json".
std::string ErrorOf(const std::string& json) {
  auto r = ProfileFromJson(json, "p.json");
  return r.ok() ? "ok" : std::string(r.status().message());
}

TEST(ProfileJsonTest, BadFilesNameTheFileAndMember) {
  const std::string dir = TempDir("bad");
  auto missing = LoadProfile(dir + "/profile.json");
  EXPECT_TRUE(absl::IsNotFound(missing.status()));
  EXPECT_THAT(missing.status().message(), HasSubstr(dir + "/profile.json"));

  EXPECT_THAT(ErrorOf("{\"format\": "), HasSubstr("p.json: not valid JSON at offset"));
  EXPECT_THAT(ErrorOf("[1]"), HasSubstr("p.json: (top level): expected an object"));
  EXPECT_THAT(ErrorOf("{\"format\": \"other\"}"), HasSubstr("p.json: format: expected"));

  const std::string good = ProfileToJson(SampleProfile());
  EXPECT_EQ(ErrorOf(good), "ok");
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  EXPECT_THAT(ErrorOf(replace("\"format_version\": 1", "\"format_version\": 2")),
              HasSubstr("format_version: this flywheel reads version 1, got 2"));
  EXPECT_THAT(ErrorOf(replace("\"kind\": \"numeric\"", "\"kind\": \"ordinal\"")),
              HasSubstr("p.json: features[0].kind: expected \"numeric\" or \"categorical\""));
  EXPECT_THAT(ErrorOf(replace("\"bin_counts\": [", "\"bin_counts\": [7, ")),
              HasSubstr("p.json: features[0].bin_counts: expected 20 counts"));
  EXPECT_THAT(ErrorOf(replace("\"bin_counts\"", "\"bin_count\"")),
              HasSubstr("p.json: features[0].bin_counts: missing"));
  EXPECT_THAT(ErrorOf(replace("\"bin_counts\": [", "\"bin_counts\": [\"a\", ")),
              HasSubstr("features[0].bin_counts[0]: expected an integer"));
  EXPECT_THAT(ErrorOf(replace("\"name\": \"city\"", "\"name\": \"x[0]\"")),
              HasSubstr("features[1].name: 'x[0]' appears twice"));
  EXPECT_THAT(ErrorOf(replace("\"value\": \"Lyon\"", "\"value\": \"Paris\"")),
              HasSubstr("features[1].categories: 'Paris' appears twice"));
  EXPECT_THAT(ErrorOf(replace("\"other_count\": 0", "\"other_count\": 1")),
              HasSubstr("features[1].categories: category counts add up to 5, not count 4"));
  EXPECT_THAT(ErrorOf(replace("\"count\": 1000", "\"count\": 999")),
              HasSubstr("features[0].bin_counts: counts add up to 1000, not count 999"));
  EXPECT_THAT(ErrorOf(replace("\"role\": \"output\"", "\"role\": 1")),
              HasSubstr("features[2].role: expected a string"));

  // Non-increasing edges, through a file.
  ReferenceProfile bad = SampleProfile();
  std::swap(bad.features[0].bin_edges[0], bad.features[0].bin_edges[1]);
  EXPECT_THAT(ValidateProfile(bad, "bad").message(),
              HasSubstr("bad: features[0].bin_edges: must be finite and strictly increasing"));
  const std::string path = dir + "/profile.json";
  std::ofstream(path) << ProfileToJson(bad);
  EXPECT_THAT(LoadProfile(path).status().message(), HasSubstr(path + ": features[0].bin_edges"));
  EXPECT_FALSE(SaveProfile(bad, dir + "/other.json").ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flywheel::monitor
