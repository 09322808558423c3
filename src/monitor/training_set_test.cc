// Training sets: the join of logged predictions with logged labels against a brute-force
// reference, the holdout split, the row rules (batch or not) and the errors.
#include "monitor/training_set.h"

#include <atomic>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "monitor/csv_table.h"
#include "monitor/label_log.h"
#include "monitor/log_file_writer.h"
#include "monitor/log_test_util.h"
#include "monitor/prediction_log.h"

namespace flywheel::monitor {
namespace {

using testing_util::TempDir;

const absl::Time kT0 = absl::FromUnixSeconds(1714564800);

Tensor Fp32(Shape shape, const std::vector<float>& values) {
  Tensor t = Tensor::Allocate(DataType::kFp32, shape);
  for (size_t i = 0; i < values.size(); ++i) t.data<float>()[i] = values[i];
  return t;
}

void WritePredictions(const std::string& dir, std::vector<PredictionRecord> records) {
  auto log = PredictionLog::Create({.dir = dir});
  ASSERT_TRUE(log.ok()) << log.status();
  for (PredictionRecord& r : records) ASSERT_TRUE((*log)->Submit(std::move(r)));
  (*log)->Close();
}

void WriteLabels(const std::string& log_dir, const std::vector<LabelRecord>& labels) {
  auto log = LabelLog::Create({.dir = log_dir + "/" + kLabelLogDirName});
  ASSERT_TRUE(log.ok()) << log.status();
  for (const LabelRecord& l : labels) ASSERT_TRUE((*log)->Submit(l));
  (*log)->Close();
}

// A record of `model` with inputs x FP32 [B,3] and b BOOL [B,1], output y FP32 [B,1] (no batch
// dimension at all when `batched` is false: x [3], b [1], y [1]).
PredictionRecord Record(const std::string& model, int64_t version, const std::string& id,
                        absl::Time time, int64_t batch, float base, bool batched = true) {
  PredictionRecord r;
  r.request_id = id;
  r.time = time;
  r.model = model;
  r.version = version;
  std::vector<float> x;
  for (int64_t i = 0; i < batch * 3; ++i) x.push_back(base + static_cast<float>(i) * 0.25f);
  Tensor b = Tensor::Allocate(DataType::kBool, batched ? Shape{batch, 1} : Shape{1});
  for (int64_t i = 0; i < batch; ++i) b.data<bool>()[i] = (i % 2) == 1;
  std::vector<float> y(static_cast<size_t>(batch), base);
  r.inputs.emplace_back("x", Fp32(batched ? Shape{batch, 3} : Shape{3}, x));
  r.inputs.emplace_back("b", std::move(b));
  r.outputs.emplace_back("y", Fp32(batched ? Shape{batch, 1} : Shape{1}, y));
  return r;
}

struct Csv {
  std::vector<std::string> header;
  std::vector<std::map<std::string, std::string>> rows;
};

Csv ReadCsvRows(const std::string& path) {
  Csv out;
  auto table = ReadCsv(path);
  EXPECT_TRUE(table.ok()) << table.status();
  if (!table.ok()) return out;
  for (const CsvColumn& c : table->columns) out.header.push_back(c.name);
  for (size_t r = 0; r < table->rows; ++r) {
    std::map<std::string, std::string> row;
    for (const CsvColumn& c : table->columns) row[c.name] = c.cells[r];
    out.rows.push_back(std::move(row));
  }
  return out;
}

// Model "m" from the logs in `log_dir`, every row to <log_dir>/train.csv (no holdout).
TrainingSetOptions AllTrain(const std::string& log_dir) {
  return {.log_dir = log_dir,
          .model = "m",
          .holdout_fraction = 0,
          .train_path = log_dir + "/train.csv"};
}

double Num(const std::string& s) {
  double v = 0;
  EXPECT_TRUE(absl::SimpleAtod(s, &v)) << s;
  return v;
}

TEST(TrainingSetTest, JoinMatchesBruteForce) {
  TempDir dir;
  std::mt19937 rng(7);
  std::vector<PredictionRecord> records;
  // Reference copies: what each record of model "m" holds.
  struct Ref {
    std::string id;
    absl::Time time;
    int64_t version;
    int64_t batch;
    float base;
  };
  std::vector<Ref> refs;
  for (int i = 0; i < 300; ++i) {
    const absl::Time t = kT0 + absl::Milliseconds(10 * i);
    // Ids repeat now and then: a client retrying with the same id.
    const std::string id = absl::StrCat("req-", rng() % 250);
    const int64_t batch = 1 + static_cast<int64_t>(rng() % 4);
    const float base = static_cast<float>(i);
    const bool other = rng() % 5 == 0;
    const int64_t version = 1 + static_cast<int64_t>(rng() % 3);
    records.push_back(Record(other ? "other" : "m", version, id, t, batch, base));
    if (!other) refs.push_back({id, t, version, batch, base});
  }
  WritePredictions(dir.path(), std::move(records));

  std::vector<LabelRecord> labels;
  for (int i = 0; i < 900; ++i) {
    LabelRecord l;
    // Some for ids nobody predicted, some for rows past the batch, many duplicates.
    l.request_id = absl::StrCat(rng() % 10 == 0 ? "ghost-" : "req-", rng() % 250);
    l.row = static_cast<int64_t>(rng() % 5);
    l.label = static_cast<double>(rng() % 1000) / 7.0;
    l.time = kT0 + absl::Milliseconds(i);
    labels.push_back(l);
  }
  WriteLabels(dir.path(), labels);

  // Reference: the first label of each (id, row), then every row of every version-1/3 record.
  std::map<std::pair<std::string, int64_t>, double> first;
  for (const LabelRecord& l : labels) first.try_emplace({l.request_id, l.row}, l.label);
  std::map<std::tuple<std::string, int64_t, std::string>, std::pair<double, float>> expected;
  int64_t predictions = 0;
  int64_t unlabelled = 0;
  for (const Ref& r : refs) {
    if (r.version == 2) continue;
    ++predictions;
    for (int64_t row = 0; row < r.batch; ++row) {
      auto it = first.find({r.id, row});
      if (it == first.end()) {
        ++unlabelled;
        continue;
      }
      expected[{r.id, row, FormatLogTime(r.time)}] = {it->second,
                                                      r.base + static_cast<float>(row * 3) * 0.25f};
    }
  }
  ASSERT_GT(expected.size(), 50u);
  ASSERT_GT(unlabelled, 50);

  TrainingSetOptions options;
  options.log_dir = dir.path();
  options.model = "m";
  options.versions = {1, 3};
  options.holdout_fraction = 0.3;
  options.train_path = dir.path() + "/train.csv";
  options.holdout_path = dir.path() + "/holdout.csv";
  auto stats = BuildTrainingSet(options);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->predictions, predictions);
  EXPECT_EQ(stats->labels, 900);
  EXPECT_EQ(stats->unlabelled_rows, unlabelled);
  EXPECT_EQ(stats->bad_lines, 0);
  EXPECT_EQ(stats->train_rows + stats->holdout_rows, static_cast<int64_t>(expected.size()));
  EXPECT_EQ(stats->feature_columns, (std::vector<std::string>{"x:0", "x:1", "x:2", "b:0"}));

  std::set<std::tuple<std::string, int64_t, std::string>> seen;
  for (const auto& [path, holdout] :
       {std::pair{options.train_path, false}, std::pair{options.holdout_path, true}}) {
    const Csv csv = ReadCsvRows(path);
    EXPECT_EQ(csv.header, (std::vector<std::string>{"id", "row", "time", "version", "label", "x:0",
                                                    "x:1", "x:2", "b:0"}));
    EXPECT_EQ(static_cast<int64_t>(csv.rows.size()),
              holdout ? stats->holdout_rows : stats->train_rows);
    for (const auto& row : csv.rows) {
      const int64_t r = static_cast<int64_t>(Num(row.at("row")));
      const auto key = std::make_tuple(row.at("id"), r, row.at("time"));
      auto it = expected.find(key);
      ASSERT_NE(it, expected.end()) << row.at("id") << " row " << r << " " << row.at("time");
      EXPECT_TRUE(seen.insert(key).second) << "twice: " << row.at("id");
      EXPECT_EQ(InHoldout(row.at("id"), r, 0.3), holdout);
      EXPECT_EQ(Num(row.at("label")), it->second.first);
      const float x0 = it->second.second;
      EXPECT_EQ(Num(row.at("x:0")), x0);
      EXPECT_EQ(Num(row.at("x:2")), x0 + 0.5f);
      EXPECT_EQ(row.at("b:0"), r % 2 == 1 ? "true" : "false");
      EXPECT_NE(row.at("version"), "2");
    }
  }
  EXPECT_EQ(seen.size(), expected.size());
}

TEST(TrainingSetTest, HoldoutIsStableAndNearTheFraction) {
  int64_t in = 0;
  constexpr int kN = 100000;
  for (int i = 0; i < kN; ++i) {
    const std::string id = absl::StrCat("req-", i);
    const bool h = InHoldout(id, i % 4, 0.2);
    in += h;
    EXPECT_EQ(InHoldout(id, i % 4, 0.2), h);
    // A larger holdout contains a smaller one.
    if (h) {
      EXPECT_TRUE(InHoldout(id, i % 4, 0.5));
    }
    if (InHoldout(id, i % 4, 0.05)) {
      EXPECT_TRUE(h);
    }
  }
  EXPECT_NEAR(static_cast<double>(in) / kN, 0.2, 0.01);
  EXPECT_FALSE(InHoldout("anything", 0, 0));
  // Pinned: the split must not move between releases, or a model's holdout leaks into training.
  std::string pinned;
  for (int i = 0; i < 16; ++i) pinned += InHoldout(absl::StrCat("id", i), i, 0.5) ? '1' : '0';
  EXPECT_EQ(pinned, "0000111100111101");  // also computed by a Python re-implementation
  // Rows of one request go their own ways.
  int rows_in = 0;
  for (int r = 0; r < 1000; ++r) rows_in += InHoldout("one-request", r, 0.5);
  EXPECT_NEAR(rows_in, 500, 60);
}

TEST(TrainingSetTest, UnbatchedRecordsAreOneRow) {
  TempDir dir;
  WritePredictions(dir.path(), {Record("m", 1, "a", kT0, 3, 1.0f, /*batched=*/false),
                                Record("m", 1, "b", kT0 + absl::Seconds(1), 3, 5.0f, false)});
  WriteLabels(dir.path(), {{.request_id = "a", .row = 0, .label = 1, .time = kT0},
                           {.request_id = "a", .row = 1, .label = 0, .time = kT0},
                           {.request_id = "b", .row = 0, .label = 0.5, .time = kT0}});
  TrainingSetOptions options = AllTrain(dir.path());
  auto stats = BuildTrainingSet(options);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->train_rows, 2);
  EXPECT_EQ(stats->holdout_rows, 0);
  EXPECT_EQ(stats->unlabelled_rows, 0);
  const Csv csv = ReadCsvRows(options.train_path);
  ASSERT_EQ(csv.rows.size(), 2u);
  EXPECT_EQ(csv.header.size(), 5u + 4u);  // x:0..2, b:0
  EXPECT_EQ(csv.rows[0].at("id"), "a");
  EXPECT_EQ(csv.rows[0].at("x:2"), "1.5");
  EXPECT_EQ(csv.rows[1].at("id"), "b");
  EXPECT_EQ(csv.rows[1].at("label"), "0.5");
}

TEST(TrainingSetTest, QuotesIdsAndCountsBadLines) {
  TempDir dir;
  WritePredictions(dir.path(), {Record("m", 1, "a,\"b\"", kT0, 1, 1.0f)});
  // A label folder holding good lines and two unreadable ones, written as the server would.
  PredictionLogOptions writer_options;
  writer_options.dir = dir.path() + "/" + kLabelLogDirName;
  std::filesystem::create_directories(writer_options.dir);
  std::atomic<int64_t> pending{3};
  {
    LogFileWriter writer(writer_options, &pending, "label log");
    std::string line;
    AppendLabelJson({.request_id = "a,\"b\"", .row = 0, .label = 2, .time = kT0}, &line);
    writer.AddLine(line);
    writer.AddLine("{\"id\":\"x\",\"time\":\"2024-05-01T00:00:00Z\"}\n");  // no row, no label
    writer.AddLine("garbage\n");
    writer.CloseAll();
  }
  TrainingSetOptions options = AllTrain(dir.path());
  auto stats = BuildTrainingSet(options);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->labels, 1);
  EXPECT_EQ(stats->bad_lines, 2);
  const Csv csv = ReadCsvRows(options.train_path);
  ASSERT_EQ(csv.rows.size(), 1u);
  EXPECT_EQ(csv.rows[0].at("id"), "a,\"b\"");
  EXPECT_EQ(csv.rows[0].at("label"), "2");
}

TEST(TrainingSetTest, Errors) {
  TempDir dir;
  TrainingSetOptions options = AllTrain(dir.path());
  // No label log yet.
  WritePredictions(dir.path(), {Record("m", 1, "a", kT0, 2, 1)});
  auto missing = BuildTrainingSet(options);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(".labels"), std::string::npos);

  WriteLabels(dir.path(), {{.request_id = "a", .label = 1, .time = kT0},
                           {.request_id = "c", .label = 1, .time = kT0},
                           {.request_id = "s", .label = 1, .time = kT0}});
  ASSERT_TRUE(BuildTrainingSet(options).ok());

  TrainingSetOptions bad = options;
  bad.holdout_fraction = 1;
  EXPECT_FALSE(BuildTrainingSet(bad).ok());
  bad.holdout_fraction = 0.2;  // without a holdout file
  EXPECT_FALSE(BuildTrainingSet(bad).ok());
  bad = options;
  bad.model = "";
  EXPECT_FALSE(BuildTrainingSet(bad).ok());

  // The input layout changes: x [2,3] then [1,4].
  PredictionRecord wide = Record("m", 1, "c", kT0 + absl::Seconds(1), 1, 1);
  wide.inputs[0].second = Fp32(Shape{1, 4}, {1, 2, 3, 4});
  WritePredictions(dir.path(), {std::move(wide)});
  auto changed = BuildTrainingSet(options);
  ASSERT_FALSE(changed.ok());
  EXPECT_NE(changed.status().message().find("'c'"), std::string::npos) << changed.status();
  // Unlabelled records with other layouts are fine: --since past the change works.
  options.since = kT0 + absl::Seconds(1);
  auto after = BuildTrainingSet(options);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->train_rows, 1);

  // A BYTES input.
  TempDir dir2;
  PredictionRecord text = Record("m", 1, "s", kT0, 1, 1);
  Tensor s = Tensor::Allocate(DataType::kBytes, Shape{1, 1});
  s.strings()[0] = "hello";
  text.inputs.emplace_back("query", std::move(s));
  WritePredictions(dir2.path(), {std::move(text)});
  WriteLabels(dir2.path(), {{.request_id = "s", .label = 1, .time = kT0}});
  options = AllTrain(dir2.path());
  auto bytes = BuildTrainingSet(options);
  ASSERT_FALSE(bytes.ok());
  EXPECT_NE(bytes.status().message().find("'query'"), std::string::npos) << bytes.status();
  // Nothing half-written is left behind.
  EXPECT_FALSE(std::filesystem::exists(options.train_path));
  EXPECT_FALSE(std::filesystem::exists(options.train_path + ".tmp"));
}

}  // namespace
}  // namespace flywheel::monitor
