#include "monitor/log_export.h"

#include <algorithm>
#include <iterator>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "rapidjson/document.h"

namespace flywheel::monitor {
namespace {

namespace rj = rapidjson;

// Record sections that become columns, in column order: JSON key and column prefix.
struct Section {
  const char* key;
  const char* prefix;
  bool tensors;  // {name: {"data": [...]}} rather than {name: value}
};
constexpr Section kSections[] = {{"inputs", "input", true},
                                 {"features", "feature", true},
                                 {"outputs", "output", true},
                                 {"parameters", "parameter", false}};
constexpr int kFixedColumns = 4;  // id, time, model, version

// A tensor (or parameter) of one section: its columns start at `first` (set after pass one).
struct Group {
  std::string name;
  int64_t count = 0;  // elements: the most any record had
  int64_t first = 0;
};

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

// A scalar JSON value as cell text (numbers are kept as written: parsed as strings).
std::string CellText(const rj::Value& v) {
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  if (v.IsBool()) return v.GetBool() ? "true" : "false";
  if (v.IsObject()) {
    auto b64 = v.FindMember("b64");
    if (b64 != v.MemberEnd() && b64->value.IsString()) {
      return absl::StrCat("b64:",
                          absl::string_view(b64->value.GetString(), b64->value.GetStringLength()));
    }
  }
  return "";  // null, or nested values the log never writes
}

// The values of one section's entry: a tensor's data, or one parameter.
const rj::Value* Values(const Section& section, const rj::Value& v) {
  if (!section.tensors) return &v;
  if (!v.IsObject()) return nullptr;
  auto data = v.FindMember("data");
  if (data == v.MemberEnd() || !data->value.IsArray()) return nullptr;
  return &data->value;
}

class CsvExporter {
 public:
  // Pass one: the columns.
  void Survey(const rj::Document& d) {
    for (size_t s = 0; s < std::size(kSections); ++s) {
      auto section = d.FindMember(kSections[s].key);
      if (section == d.MemberEnd() || !section->value.IsObject()) continue;
      for (const auto& m : section->value.GetObject()) {
        const rj::Value* values = Values(kSections[s], m.value);
        if (values == nullptr) continue;
        Group& g = GroupFor(s, std::string(m.name.GetString(), m.name.GetStringLength()));
        const int64_t count = values->IsArray() ? values->Size() : 1;
        g.count = std::max(g.count, count);
      }
    }
  }

  // Lays the columns out; returns the header line.
  std::string Header() {
    std::string line = "id,time,model,version";
    int64_t next = kFixedColumns;
    for (size_t s = 0; s < std::size(kSections); ++s) {
      for (Group& g : groups_[s]) {
        g.first = next;
        next += g.count;
        for (int64_t i = 0; i < g.count; ++i) {
          line.push_back(',');
          AppendCsvCell(kSections[s].tensors
                            ? absl::StrCat(kSections[s].prefix, ".", g.name, "[", i, "]")
                            : absl::StrCat(kSections[s].prefix, ".", g.name),
                        &line);
        }
      }
    }
    columns_ = next;
    line.push_back('\n');
    return line;
  }

  // Pass two: one row.
  std::string Row(const LogEntry& entry, const rj::Document& d, int64_t* outside) {
    std::vector<std::string> cells(columns_);
    auto id = d.FindMember("id");
    if (id != d.MemberEnd()) cells[0] = CellText(id->value);
    auto time = d.FindMember("time");
    if (time != d.MemberEnd()) cells[1] = CellText(time->value);
    cells[2] = entry.model;
    cells[3] = absl::StrCat(entry.version);
    for (size_t s = 0; s < std::size(kSections); ++s) {
      auto section = d.FindMember(kSections[s].key);
      if (section == d.MemberEnd() || !section->value.IsObject()) continue;
      for (const auto& m : section->value.GetObject()) {
        const rj::Value* values = Values(kSections[s], m.value);
        if (values == nullptr) continue;
        auto it = index_[s].find(absl::string_view(m.name.GetString(), m.name.GetStringLength()));
        if (it == index_[s].end()) {
          *outside += values->IsArray() ? values->Size() : 1;
          continue;
        }
        const Group& g = groups_[s][it->second];
        if (!values->IsArray()) {
          cells[g.first] = CellText(*values);
          continue;
        }
        for (rj::SizeType i = 0; i < values->Size(); ++i) {
          if (static_cast<int64_t>(i) >= g.count) {
            *outside += values->Size() - i;
            break;
          }
          cells[g.first + i] = CellText((*values)[i]);
        }
      }
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
  Group& GroupFor(size_t section, std::string name) {
    auto [it, inserted] = index_[section].try_emplace(name, groups_[section].size());
    if (inserted) groups_[section].push_back(Group{std::move(name)});
    return groups_[section][it->second];
  }

  std::vector<Group> groups_[std::size(kSections)];
  absl::flat_hash_map<std::string, size_t> index_[std::size(kSections)];
  int64_t columns_ = kFixedColumns;
};

bool ParseRecord(const std::string& line, rj::Document* d) {
  d->Parse<rj::kParseNumbersAsStringsFlag>(line.data(), line.size());
  return !d->HasParseError() && d->IsObject();
}

absl::Status WriteFailed() {
  return absl::DataLossError("writing the export failed (disk full, or the reader went away)");
}

}  // namespace

absl::StatusOr<LogExportFormat> ParseLogExportFormat(absl::string_view name) {
  if (name == "jsonl") return LogExportFormat::kJsonl;
  if (name == "csv") return LogExportFormat::kCsv;
  return absl::InvalidArgumentError(
      absl::StrCat("export format '", name, "' is not one of: jsonl, csv"));
}

absl::StatusOr<LogExportStats> ExportLog(const LogReaderOptions& options, LogExportFormat format,
                                         std::ostream& out) {
  LogExportStats stats;
  LogEntry entry;
  if (format == LogExportFormat::kJsonl) {
    auto reader = LogReader::Open(options);
    if (!reader.ok()) return reader.status();
    for (;;) {
      auto more = (*reader)->Next(&entry);
      if (!more.ok()) return more.status();
      if (!*more) break;
      out.write(entry.line.data(), static_cast<std::streamsize>(entry.line.size()));
      out.put('\n');
      if (!out) return WriteFailed();
      ++stats.records;
    }
    stats.read = (*reader)->stats();
    out.flush();
    if (!out) return WriteFailed();
    return stats;
  }

  CsvExporter csv;
  rj::Document d;
  {
    auto survey = LogReader::Open(options);
    if (!survey.ok()) return survey.status();
    for (;;) {
      auto more = (*survey)->Next(&entry);
      if (!more.ok()) return more.status();
      if (!*more) break;
      if (ParseRecord(entry.line, &d)) csv.Survey(d);
    }
  }
  const std::string header = csv.Header();
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  auto reader = LogReader::Open(options);
  if (!reader.ok()) return reader.status();
  for (;;) {
    auto more = (*reader)->Next(&entry);
    if (!more.ok()) return more.status();
    if (!*more) break;
    if (!ParseRecord(entry.line, &d)) {
      ++stats.bad_records;
      continue;
    }
    const std::string row = csv.Row(entry, d, &stats.values_outside_header);
    out.write(row.data(), static_cast<std::streamsize>(row.size()));
    if (!out) return WriteFailed();
    ++stats.records;
  }
  stats.columns = csv.columns();
  stats.read = (*reader)->stats();
  out.flush();
  if (!out) return WriteFailed();
  return stats;
}

}  // namespace flywheel::monitor
