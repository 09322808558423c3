#include "monitor/log_export.h"

#include <algorithm>
#include <charconv>
#include <iterator>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "monitor/log_record.h"

namespace flywheel::monitor {
namespace {

// Record sections that become columns, in column order.
enum Section { kInputs, kFeatures, kOutputs, kParameters, kSectionCount };
constexpr const char* kPrefix[kSectionCount] = {"input", "feature", "output", "parameter"};
constexpr int kFixedColumns = 4;  // id, time, model, version

const NamedTensors& Tensors(const PredictionRecord& r, int section) {
  return section == kInputs ? r.inputs : section == kFeatures ? r.features : r.outputs;
}

std::string Text(const std::string& bytes) {
  return IsValidUtf8(bytes) ? bytes : "b64:" + absl::Base64Escape(bytes);
}

std::string ParameterText(const LogParameterValue& value) {
  if (const bool* b = std::get_if<bool>(&value)) return *b ? "true" : "false";
  if (const int64_t* i = std::get_if<int64_t>(&value)) return absl::StrCat(*i);
  if (const double* d = std::get_if<double>(&value)) {
    char buf[32];
    return std::string(buf, std::to_chars(buf, buf + sizeof(buf), *d).ptr);
  }
  return Text(std::get<std::string>(value));
}

void AppendCsvCell(absl::string_view s, std::string* out) {
  if (s.find_first_of(",\"\r\n") == absl::string_view::npos &&
      (s.empty() || (s.front() != ' ' && s.back() != ' '))) {
    out->append(s.data(), s.size());
    return;
  }
  out->push_back('"');
  for (char c : s) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

// A tensor (or parameter) name of one section: its columns start at `first` (set by Header).
struct Group {
  std::string name;
  int64_t count = 0;  // elements: the most any record had
  int64_t first = 0;
};

class CsvTable {
 public:
  // Pass one: the columns.
  void Survey(const PredictionRecord& r) {
    for (int s = kInputs; s < kParameters; ++s) {
      for (const auto& [name, t] : Tensors(r, s)) {
        Group& g = GroupFor(s, name);
        g.count = std::max(g.count, t.NumElements());
      }
    }
    for (const auto& [name, value] : r.parameters) GroupFor(kParameters, name).count = 1;
  }

  // Lays the columns out; returns the header line.
  std::string Header() {
    std::string line = "id,time,model,version";
    int64_t next = kFixedColumns;
    for (int s = 0; s < kSectionCount; ++s) {
      for (Group& g : groups_[s]) {
        g.first = next;
        next += g.count;
        for (int64_t i = 0; i < g.count; ++i) {
          line.push_back(',');
          AppendCsvCell(s == kParameters ? absl::StrCat(kPrefix[s], ".", g.name)
                                         : absl::StrCat(kPrefix[s], ".", g.name, "[", i, "]"),
                        &line);
        }
      }
    }
    columns_ = next;
    line.push_back('\n');
    return line;
  }

  // Pass two: one row.
  std::string Row(const PredictionRecord& r, int64_t* outside) {
    std::vector<std::string> cells(columns_);
    cells[0] = Text(r.request_id);
    cells[1] = FormatLogTime(r.time);
    cells[2] = r.model;
    cells[3] = absl::StrCat(r.version);
    for (int s = kInputs; s < kParameters; ++s) {
      for (const auto& [name, t] : Tensors(r, s)) {
        const Group* g = Find(s, name);
        const int64_t n = t.NumElements();
        const int64_t fit = g == nullptr ? 0 : std::min(n, g->count);
        *outside += n - fit;
        for (int64_t i = 0; i < fit; ++i) AppendElementText(t, i, &cells[g->first + i]);
      }
    }
    for (const auto& [name, value] : r.parameters) {
      const Group* g = Find(kParameters, name);
      if (g == nullptr) {
        ++*outside;
        continue;
      }
      cells[g->first] = ParameterText(value);
    }
    std::string line;
    for (size_t i = 0; i < cells.size(); ++i) {
      if (i > 0) line.push_back(',');
      AppendCsvCell(cells[i], &line);
    }
    line.push_back('\n');
    return line;
  }

  int64_t columns() const { return columns_; }

 private:
  Group& GroupFor(int section, const std::string& name) {
    auto [it, inserted] = index_[section].try_emplace(name, groups_[section].size());
    if (inserted) groups_[section].push_back(Group{name});
    return groups_[section][it->second];
  }
  const Group* Find(int section, const std::string& name) const {
    auto it = index_[section].find(name);
    return it == index_[section].end() ? nullptr : &groups_[section][it->second];
  }

  std::vector<Group> groups_[kSectionCount];
  absl::flat_hash_map<std::string, size_t> index_[kSectionCount];
  int64_t columns_ = kFixedColumns;
};

absl::Status WriteFailed() {
  return absl::DataLossError("writing the export failed (disk full, or the reader went away)");
}

// Calls fn(entry) for every record `options` selects; returns the reader's stats.
template <typename Fn>
absl::StatusOr<LogReadStats> ForEachEntry(const LogReaderOptions& options, Fn fn) {
  auto reader = LogReader::Open(options);
  if (!reader.ok()) return reader.status();
  LogEntry entry;
  for (;;) {
    auto more = (*reader)->Next(&entry);
    if (!more.ok()) return more.status();
    if (!*more) break;
    if (absl::Status s = fn(entry); !s.ok()) return s;
  }
  return (*reader)->stats();
}

}  // namespace

absl::StatusOr<LogExportFormat> ParseLogExportFormat(absl::string_view name) {
  if (name == "jsonl") return LogExportFormat::kJsonl;
  if (name == "jsonl-raw") return LogExportFormat::kJsonlRaw;
  if (name == "csv") return LogExportFormat::kCsv;
  return absl::InvalidArgumentError(
      absl::StrCat("export format '", name, "' is not one of: jsonl, jsonl-raw, csv"));
}

absl::StatusOr<LogExportStats> ExportLog(const LogReaderOptions& options, LogExportFormat format,
                                         std::ostream& out) {
  LogExportStats stats;
  std::string text;
  auto write = [&](const std::string& s) {
    out.write(s.data(), static_cast<std::streamsize>(s.size()));
    return out ? absl::OkStatus() : WriteFailed();
  };
  absl::StatusOr<LogReadStats> read;
  if (format == LogExportFormat::kJsonlRaw || format == LogExportFormat::kJsonl) {
    read = ForEachEntry(options, [&](const LogEntry& e) {
      if (format == LogExportFormat::kJsonlRaw) {
        text.assign(e.line).push_back('\n');
      } else {
        auto record = ParseRecordJson(e.line);
        if (!record.ok()) {
          ++stats.bad_records;
          return absl::OkStatus();
        }
        text.clear();
        AppendRecordJson(*record, TensorDataFormat::kArray, &text);
      }
      ++stats.records;
      return write(text);
    });
  } else {
    CsvTable table;
    auto survey = ForEachEntry(options, [&](const LogEntry& e) {
      auto record = ParseRecordJson(e.line);
      if (record.ok()) table.Survey(*record);
      return absl::OkStatus();
    });
    if (!survey.ok()) return survey.status();
    if (absl::Status s = write(table.Header()); !s.ok()) return s;
    read = ForEachEntry(options, [&](const LogEntry& e) {
      auto record = ParseRecordJson(e.line);
      if (!record.ok()) {
        ++stats.bad_records;
        return absl::OkStatus();
      }
      ++stats.records;
      return write(table.Row(*record, &stats.values_outside_header));
    });
    stats.columns = table.columns();
  }
  if (!read.ok()) return read.status();
  stats.read = *read;
  out.flush();
  if (!out) return WriteFailed();
  return stats;
}

}  // namespace flywheel::monitor
