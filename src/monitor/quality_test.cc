#include "monitor/quality.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"

namespace flywheel::monitor {
namespace {

using ::testing::HasSubstr;

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

// AUC by counting pairs: P(score of a positive > score of a negative), ties counting half.
double PairAuc(const std::vector<double>& scores, const std::vector<int>& labels) {
  double wins = 0, pairs = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    for (size_t j = 0; j < scores.size(); ++j) {
      if (labels[i] != 1 || labels[j] != 0) continue;
      pairs += 1;
      wins += scores[i] > scores[j] ? 1.0 : (scores[i] == scores[j] ? 0.5 : 0.0);
    }
  }
  return wins / pairs;
}

TEST(QualityTest, BinaryMetricsEqualBruteForce) {
  QualityOptions options;
  options.window = 300;  // of 500 joined pairs, the last 300 count
  LabelJoiner joiner(options);
  QualityWindow* w = joiner.Window("clf", "1", TaskKind::kBinary);
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> uniform;
  std::vector<double> scores;
  std::vector<int> labels;
  for (int i = 0; i < 500; ++i) {
    // Scores on a coarse grid, so that many tie.
    const double s = std::round(uniform(rng) * 20) / 20;
    scores.push_back(static_cast<float>(s));
    labels.push_back(uniform(rng) < s ? 1 : 0);
    const float p = static_cast<float>(s);
    joiner.RecordPrediction(w, "req-" + std::to_string(i), 0, {&p, 1}, kT0);
  }
  // Labels arrive in a shuffled order; the window keeps the last 300 in join order.
  std::vector<int> order(500);
  for (int i = 0; i < 500; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  for (int i : order) {
    ASSERT_EQ(joiner.AddLabel("req-" + std::to_string(i), 0, labels[i], kT0 + absl::Seconds(1)),
              LabelOutcome::kJoined);
  }
  std::vector<double> s_last;
  std::vector<int> y_last;
  for (int k = 200; k < 500; ++k) {
    s_last.push_back(scores[order[k]]);
    y_last.push_back(labels[order[k]]);
  }
  double correct = 0, loss = 0;
  for (size_t i = 0; i < s_last.size(); ++i) {
    correct += (s_last[i] >= 0.5) == (y_last[i] == 1);
    const double p = std::clamp(s_last[i], 1e-15, 1 - 1e-15);
    loss -= y_last[i] == 1 ? std::log(p) : std::log(1 - p);
  }
  const QualityReport r = w->Compute();
  EXPECT_EQ(r.resolved, TaskKind::kBinary);
  EXPECT_EQ(r.pairs, 300);
  EXPECT_EQ(r.joined_total, 500);
  EXPECT_NEAR(*r.accuracy, correct / 300, 1e-12);
  EXPECT_NEAR(*r.log_loss, loss / 300, 1e-9);
  EXPECT_NEAR(*r.auc, PairAuc(s_last, y_last), 1e-12);
  EXPECT_FALSE(r.mae.has_value());
  EXPECT_EQ(joiner.Counts(kT0).joined, 500);
  EXPECT_EQ(joiner.Counts(kT0).pending, 0);
  // The cheap count the retraining loop's trigger reads agrees with the report's.
  EXPECT_EQ(w->joined(), 500);
  joiner.Window("other_model", "1");
  const std::map<std::string, int64_t> counts = joiner.JoinedCounts(w->model());
  EXPECT_EQ(counts, (std::map<std::string, int64_t>{{w->version(), 500}}));
  EXPECT_TRUE(joiner.JoinedCounts("no_such_model").empty());
}

TEST(QualityTest, AutoDetectsBinaryFromTwoClassOutputsAndLogits) {
  LabelJoiner joiner;
  QualityWindow* two = joiner.Window("a", "1");
  QualityWindow* logit = joiner.Window("b", "1", TaskKind::kBinary);
  const float probs[][2] = {{0.9f, 0.1f}, {0.2f, 0.8f}, {0.6f, 0.4f}, {0.3f, 0.7f}};
  const int y[] = {0, 1, 1, 0};
  for (int i = 0; i < 4; ++i) {
    joiner.RecordPrediction(two, "t" + std::to_string(i), 0, {probs[i], 2}, kT0);
    const float z = std::log(probs[i][1] / probs[i][0]);  // the logit of P(class 1)
    joiner.RecordPrediction(logit, "l" + std::to_string(i), 0, {&z, 1}, kT0);
    joiner.AddLabel("t" + std::to_string(i), 0, y[i], kT0);
    joiner.AddLabel("l" + std::to_string(i), 0, y[i], kT0);
  }
  for (QualityWindow* w : {two, logit}) {
    const QualityReport r = w->Compute();
    EXPECT_EQ(r.resolved, TaskKind::kBinary);
    EXPECT_DOUBLE_EQ(*r.accuracy, 0.5);
    EXPECT_NEAR(*r.log_loss, -(std::log(0.9) + std::log(0.8) + std::log(0.4) + std::log(0.3)) / 4,
                1e-6);
    EXPECT_DOUBLE_EQ(*r.auc, 0.75);  // PairAuc({.1,.8,.4,.7}, {0,1,1,0})
  }
}

TEST(QualityTest, MulticlassMetricsEqualBruteForce) {
  LabelJoiner joiner;
  QualityWindow* w = joiner.Window("mc", "1");
  std::mt19937_64 rng(8);
  std::normal_distribution<double> normal;
  double correct = 0, loss = 0;
  for (int i = 0; i < 200; ++i) {
    float logits[3];
    for (float& z : logits) z = static_cast<float>(normal(rng));
    const int label = static_cast<int>(rng() % 3);
    // Half the rows are logits, half probabilities: both are read as distributions.
    std::vector<double> p(3);
    double total = 0;
    for (int k = 0; k < 3; ++k) total += (p[k] = std::exp(static_cast<double>(logits[k])));
    for (double& v : p) v /= total;
    float row[3];
    for (int k = 0; k < 3; ++k) row[k] = i % 2 ? logits[k] : static_cast<float>(p[k]);
    if (i % 2 == 0) {
      // Recompute from the float probabilities, as the window sees them.
      const double sum = static_cast<double>(row[0]) + row[1] + row[2];
      if (std::fabs(sum - 1) <= 1e-3) {
        for (int k = 0; k < 3; ++k) p[k] = row[k];
      }
    }
    correct += (std::max_element(p.begin(), p.end()) - p.begin()) == label;
    loss -= std::log(std::max(p[label], 1e-15));
    joiner.RecordPrediction(w, "m" + std::to_string(i), 0, {row, 3}, kT0);
    ASSERT_EQ(joiner.AddLabel("m" + std::to_string(i), 0, label, kT0), LabelOutcome::kJoined);
  }
  const QualityReport r = w->Compute();
  EXPECT_EQ(r.resolved, TaskKind::kMulticlass);
  EXPECT_NEAR(*r.accuracy, correct / 200, 1e-12);
  EXPECT_NEAR(*r.log_loss, loss / 200, 1e-5);
  EXPECT_FALSE(r.auc.has_value());
}

TEST(QualityTest, RegressionMetricsEqualBruteForce) {
  LabelJoiner joiner;
  QualityWindow* w = joiner.Window("reg", "4");
  Tensor out = Tensor::Allocate(DataType::kFp64, Shape{50});
  std::vector<double> labels;
  for (int i = 0; i < 50; ++i) {
    out.data<double>()[i] = i * 0.5;
    labels.push_back(i * 0.5 + (i % 3) - 1.0 + 3.0 * (i == 7));
  }
  ASSERT_TRUE(joiner.RecordOutput(w, "batch-1", out, false, kT0).ok());
  double abs_sum = 0, sq_sum = 0;
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(joiner.AddLabel("batch-1", i, labels[i], kT0), LabelOutcome::kJoined);
    const double e = static_cast<float>(i * 0.5) - labels[i];
    abs_sum += std::fabs(e);
    sq_sum += e * e;
  }
  const QualityReport r = w->Compute();
  EXPECT_EQ(r.resolved, TaskKind::kRegression);
  EXPECT_NEAR(*r.mae, abs_sum / 50, 1e-12);
  EXPECT_NEAR(*r.rmse, std::sqrt(sq_sum / 50), 1e-12);
  EXPECT_FALSE(r.accuracy.has_value());
}

TEST(QualityTest, UnknownDuplicateExpiredAndInvalidLabelsAreCounted) {
  QualityOptions options;
  options.horizon = absl::Minutes(10);
  LabelJoiner joiner(options);
  QualityWindow* w = joiner.Window("clf", "1", TaskKind::kBinary);
  const float p = 0.7f;
  joiner.RecordPrediction(w, "a", 0, {&p, 1}, kT0);
  joiner.RecordPrediction(w, "b", 0, {&p, 1}, kT0);
  joiner.RecordPrediction(w, "c", 0, {&p, 1}, kT0 + absl::Minutes(8));
  joiner.RecordPrediction(w, "", 0, {&p, 1}, kT0);  // no id: ignored

  EXPECT_EQ(joiner.AddLabel("nobody", 0, 1, kT0), LabelOutcome::kUnknown);
  EXPECT_EQ(joiner.AddLabel("a", 1, 1, kT0), LabelOutcome::kUnknown);  // wrong row
  EXPECT_EQ(joiner.AddLabel("a", 0, 2, kT0), LabelOutcome::kInvalid);  // not 0/1
  EXPECT_EQ(joiner.AddLabel("a", 0, NAN, kT0), LabelOutcome::kInvalid);
  EXPECT_EQ(joiner.AddLabel("a", 0, 1, kT0), LabelOutcome::kJoined);  // still waiting
  EXPECT_EQ(joiner.AddLabel("a", 0, 1, kT0), LabelOutcome::kDuplicate);
  // Eleven minutes later "b" is past the horizon, "c" is not.
  const absl::Time later = kT0 + absl::Minutes(11);
  EXPECT_EQ(joiner.AddLabel("b", 0, 0, later), LabelOutcome::kExpired);
  EXPECT_EQ(joiner.AddLabel("c", 0, 0, later), LabelOutcome::kJoined);
  const LabelCounts c = joiner.Counts(later);
  EXPECT_EQ(c.predictions, 3);
  EXPECT_EQ(c.pending, 0);
  EXPECT_EQ(c.dropped, 1);
  EXPECT_EQ(c.joined, 2);
  EXPECT_EQ(c.unknown, 2);
  EXPECT_EQ(c.duplicate, 1);
  EXPECT_EQ(c.expired, 1);
  EXPECT_EQ(c.invalid, 2);
  EXPECT_EQ(w->Compute().invalid_labels, 2);
  EXPECT_EQ(w->Compute().pairs, 2);

  rapidjson::Document doc;
  doc.Parse(LabelCountsToJson(c).c_str());
  ASSERT_TRUE(doc.IsObject());
  EXPECT_EQ(doc["labels"]["unknown"].GetInt64(), 2);
  EXPECT_EQ(doc["dropped"].GetInt64(), 1);
}

TEST(QualityTest, MemoryBoundDropsTheOldestPredictions) {
  QualityOptions options;
  options.max_pending = 100;
  options.shards = 1;
  LabelJoiner joiner(options);
  QualityWindow* w = joiner.Window("clf", "1");
  const float p = 0.5f;
  for (int i = 0; i < 250; ++i) joiner.RecordPrediction(w, std::to_string(i), 0, {&p, 1}, kT0);
  const LabelCounts c = joiner.Counts(kT0);
  EXPECT_EQ(c.pending, 100);
  EXPECT_EQ(c.dropped, 150);
  EXPECT_EQ(joiner.AddLabel("0", 0, 1, kT0), LabelOutcome::kExpired);
  EXPECT_EQ(joiner.AddLabel("249", 0, 1, kT0), LabelOutcome::kJoined);
  // A re-recorded id replaces its prediction instead of adding one.
  joiner.RecordPrediction(w, "248", 0, {&p, 1}, kT0);
  EXPECT_EQ(joiner.Counts(kT0).pending, 99);
}

TEST(QualityTest, ReportsAsJsonAndPrometheus) {
  LabelJoiner joiner;
  QualityWindow* w = joiner.Window("clf", "1", TaskKind::kBinary);
  joiner.Window("idle", "1");
  Tensor out = Tensor::Allocate(DataType::kFp32, Shape{2, 2});
  const float values[] = {0.8f, 0.2f, 0.1f, 0.9f};
  std::copy(values, values + 4, out.data<float>());
  ASSERT_TRUE(joiner.RecordOutput(w, "r", out, false, kT0).ok());
  EXPECT_EQ(joiner.AddLabel("r", 0, 0, kT0), LabelOutcome::kJoined);
  EXPECT_EQ(joiner.AddLabel("r", 1, 1, kT0), LabelOutcome::kJoined);
  EXPECT_EQ(joiner.AddLabel("zzz", 0, 1, kT0), LabelOutcome::kUnknown);
  Tensor text = Tensor::Allocate(DataType::kBytes, Shape{1});
  EXPECT_THAT(joiner.RecordOutput(w, "s", text, false, kT0).message(),
              HasSubstr("expected a numeric tensor"));

  rapidjson::Document doc;
  doc.Parse(QualityReportToJson(w->Compute()).c_str());
  ASSERT_TRUE(doc.IsObject());
  EXPECT_EQ(std::string(doc["resolved_task"].GetString()), "binary");
  EXPECT_DOUBLE_EQ(doc["accuracy"].GetDouble(), 1.0);
  EXPECT_DOUBLE_EQ(doc["auc"].GetDouble(), 1.0);
  EXPECT_TRUE(doc["mae"].IsNull());
  EXPECT_EQ(joiner.Compute().size(), 2u);

  Registry registry;
  registry.AddCollector([&](SampleWriter& writer) { joiner.Collect(writer); });
  const std::string metrics = registry.Render();
  EXPECT_THAT(metrics, HasSubstr("flywheel_model_accuracy{model=\"clf\",version=\"1\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("flywheel_labels_total{outcome=\"unknown\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("flywheel_labels_total{outcome=\"joined\"} 2"));
  EXPECT_THAT(metrics, HasSubstr("flywheel_model_quality_pairs{model=\"idle\",version=\"1\"} 0"));
}

}  // namespace
}  // namespace flywheel::monitor
