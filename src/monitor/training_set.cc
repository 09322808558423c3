#include "monitor/training_set.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "core/data_type.h"
#include "monitor/label_log.h"
#include "monitor/log_reader.h"
#include "monitor/log_record.h"
#include "monitor/log_sampler.h"

namespace flywheel::monitor {
namespace {

namespace fs = std::filesystem;

using LabelKey = std::pair<std::string, int64_t>;

// One input's share of a row: the columns "<name>:0" .. "<name>:<elements - 1>".
struct InputColumns {
  std::string name;
  int64_t elements = 0;
};

// A CSV cell (RFC 4180): quoted when it holds a separator, a quote or a line break.
void AppendCsvCell(absl::string_view cell, std::string* out) {
  if (cell.find_first_of(",\"\r\n") == absl::string_view::npos) {
    out->append(cell.data(), cell.size());
    return;
  }
  out->push_back('"');
  for (char c : cell) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

void AppendLabel(double v, std::string* out) {
  if (std::isnan(v)) {
    out->append("NaN");
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "Infinity" : "-Infinity");
  } else {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof(buf), v);
    out->append(buf, r.ptr);
  }
}

// The record's batch size: B when every input and output has a first dimension equal to B,
// else nullopt (one row).
std::optional<int64_t> BatchOf(const PredictionRecord& record) {
  std::optional<int64_t> batch;
  for (const NamedTensors* tensors : {&record.inputs, &record.outputs}) {
    for (const auto& [name, t] : *tensors) {
      if (t.rank() == 0) return std::nullopt;
      if (batch.has_value() && *batch != t.dim(0)) return std::nullopt;
      batch = t.dim(0);
    }
  }
  if (!batch.has_value() || *batch <= 0) return std::nullopt;
  return batch;
}

std::string Describe(const std::vector<InputColumns>& columns) {
  std::string out;
  for (const InputColumns& c : columns) {
    absl::StrAppend(&out, out.empty() ? "" : ", ", c.name, " (", c.elements, ")");
  }
  return out.empty() ? "none" : out;
}

// Writes to `path` through a temporary file beside it, renamed over it by Commit.
class CsvFile {
 public:
  absl::Status Open(const std::string& path) {
    path_ = path;
    tmp_ = path + ".tmp";
    out_.open(tmp_, std::ios::binary | std::ios::trunc);
    if (!out_) return absl::NotFoundError(absl::StrCat("cannot create '", tmp_, "'"));
    return absl::OkStatus();
  }
  bool is_open() const { return out_.is_open(); }
  void Write(const std::string& text) {
    out_.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  absl::Status Commit() {
    out_.close();
    if (out_.fail()) {
      std::remove(tmp_.c_str());
      return absl::DataLossError(absl::StrCat("writing '", tmp_, "' failed"));
    }
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
      std::remove(tmp_.c_str());
      return absl::InternalError(absl::StrCat("cannot rename '", tmp_, "' to '", path_, "'"));
    }
    tmp_.clear();
    return absl::OkStatus();
  }
  ~CsvFile() {
    if (!tmp_.empty()) {
      out_.close();
      std::remove(tmp_.c_str());
    }
  }

 private:
  std::string path_;
  std::string tmp_;
  std::ofstream out_;
};

absl::StatusOr<absl::flat_hash_map<LabelKey, double>> ReadLabels(const std::string& dir,
                                                                 TrainingSetStats* stats) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(
        absl::StrCat("no label log folder '", dir,
                     "': the server writes it when it runs with a prediction log folder and "
                     "labels are posted to /v1/monitor/labels"));
  }
  LogReaderOptions options;
  options.dir = dir;
  options.flat = true;
  auto reader = LogReader::Open(options);
  if (!reader.ok()) return reader.status();
  absl::flat_hash_map<LabelKey, double> labels;
  LogEntry entry;
  for (;;) {
    auto more = (*reader)->Next(&entry);
    if (!more.ok()) return more.status();
    if (!*more) break;
    absl::StatusOr<LabelRecord> label = ParseLabelJson(entry.line);
    if (!label.ok()) {
      ++stats->bad_lines;
      continue;
    }
    ++stats->labels;
    // In time order: the first label of a (id, row) wins.
    labels.try_emplace(LabelKey{std::move(label->request_id), label->row}, label->label);
  }
  stats->bad_lines += (*reader)->stats().bad_lines;
  return labels;
}

}  // namespace

bool InHoldout(const std::string& request_id, int64_t row, double holdout_fraction) {
  // The sampler's hash over the id and the row's 8 little-endian bytes.
  std::string key = request_id;
  const uint64_t r = static_cast<uint64_t>(row);
  for (int i = 0; i < 8; ++i) key.push_back(static_cast<char>(r >> (8 * i)));
  return static_cast<double>(LogSampler::HashId(key) >> 11) * 0x1.0p-53 < holdout_fraction;
}

absl::StatusOr<TrainingSetStats> BuildTrainingSet(const TrainingSetOptions& options) {
  if (options.model.empty()) return absl::InvalidArgumentError("training set: no model given");
  if (!(options.holdout_fraction >= 0 && options.holdout_fraction < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "training set: holdout fraction must be in [0, 1), got ", options.holdout_fraction));
  }
  if (options.train_path.empty()) {
    return absl::InvalidArgumentError("training set: no training file given");
  }
  if (options.holdout_fraction > 0 && options.holdout_path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "training set: a holdout fraction of ", options.holdout_fraction, " needs a holdout file"));
  }
  if (options.since >= options.until) {
    return absl::InvalidArgumentError("training set: since must be earlier than until");
  }
  TrainingSetStats stats;
  auto labels = ReadLabels((fs::path(options.log_dir) / kLabelLogDirName).string(), &stats);
  if (!labels.ok()) return labels.status();

  LogReaderOptions reader_options;
  reader_options.dir = options.log_dir;
  reader_options.model = options.model;
  if (options.versions.size() == 1) reader_options.version = options.versions.front();
  reader_options.since = options.since;
  reader_options.until = options.until;
  auto reader = LogReader::Open(reader_options);
  if (!reader.ok()) return reader.status();

  CsvFile train;
  CsvFile holdout;
  if (absl::Status s = train.Open(options.train_path); !s.ok()) return s;
  if (!options.holdout_path.empty()) {
    if (absl::Status s = holdout.Open(options.holdout_path); !s.ok()) return s;
  }

  std::vector<InputColumns> columns;
  bool have_columns = false;
  std::string header = "id,row,time,version,label";
  auto write_header = [&] {
    train.Write(header + "\n");
    if (holdout.is_open()) holdout.Write(header + "\n");
  };
  std::string line;
  LogEntry entry;
  for (;;) {
    auto more = (*reader)->Next(&entry);
    if (!more.ok()) return more.status();
    if (!*more) break;
    if (options.versions.size() > 1 && std::find(options.versions.begin(), options.versions.end(),
                                                 entry.version) == options.versions.end()) {
      continue;
    }
    absl::StatusOr<PredictionRecord> record = ParseRecordJson(entry.line);
    if (!record.ok()) {
      ++stats.bad_lines;
      continue;
    }
    ++stats.predictions;
    const std::optional<int64_t> batch = BatchOf(*record);
    const int64_t rows = batch.value_or(1);
    // The labelled rows first: a record without any adds nothing, whatever its inputs.
    std::vector<std::pair<int64_t, double>> labelled;
    for (int64_t r = 0; r < rows; ++r) {
      auto it = record->request_id.empty() ? labels->end()
                                           : labels->find(LabelKey{record->request_id, r});
      if (it == labels->end()) {
        ++stats.unlabelled_rows;
      } else {
        labelled.emplace_back(r, it->second);
      }
    }
    if (labelled.empty()) continue;
    std::vector<InputColumns> these;
    for (const auto& [name, t] : record->inputs) {
      if (t.dtype() == DataType::kBytes) {
        return absl::InvalidArgumentError(absl::StrCat(
            "model '", options.model, "' input '", name, "' is BYTES (record '", record->request_id,
            "'): training sets take numeric and BOOL inputs only"));
      }
      these.push_back({name, t.NumElements() / rows});
    }
    if (!have_columns) {
      columns = these;
      have_columns = true;
      for (const InputColumns& c : columns) {
        for (int64_t j = 0; j < c.elements; ++j) {
          stats.feature_columns.push_back(absl::StrCat(c.name, ":", j));
          absl::StrAppend(&header, ",");
          AppendCsvCell(stats.feature_columns.back(), &header);
        }
      }
      write_header();
    } else {
      bool same = these.size() == columns.size();
      for (size_t i = 0; same && i < these.size(); ++i) {
        same = these[i].name == columns[i].name && these[i].elements == columns[i].elements;
      }
      if (!same) {
        return absl::FailedPreconditionError(absl::StrCat(
            "model '", options.model, "' record '", record->request_id, "' (",
            FormatLogTime(record->time), ", version ", record->version,
            ") has inputs (elements per row) ", Describe(these), "; earlier labelled records have ",
            Describe(columns), ": narrow --since/--until or --version to one input layout"));
      }
    }
    const std::string time = FormatLogTime(record->time);
    for (const auto& [r, label] : labelled) {
      line.clear();
      AppendCsvCell(record->request_id, &line);
      absl::StrAppend(&line, ",", r, ",", time, ",", record->version, ",");
      AppendLabel(label, &line);
      for (const auto& [name, t] : record->inputs) {
        const int64_t per_row = t.NumElements() / rows;
        for (int64_t j = 0; j < per_row; ++j) {
          line.push_back(',');
          AppendElementText(t, r * per_row + j, &line);
        }
      }
      line.push_back('\n');
      if (InHoldout(record->request_id, r, options.holdout_fraction)) {
        ++stats.holdout_rows;
        if (holdout.is_open()) holdout.Write(line);
      } else {
        ++stats.train_rows;
        train.Write(line);
      }
    }
  }
  stats.bad_lines += (*reader)->stats().bad_lines;
  if (!have_columns) write_header();
  if (absl::Status s = train.Commit(); !s.ok()) return s;
  if (holdout.is_open()) {
    if (absl::Status s = holdout.Commit(); !s.ok()) return s;
  }
  return stats;
}

}  // namespace flywheel::monitor
