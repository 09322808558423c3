// CSV for the export: reading the spine, writing the joined rows.
#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "features/event_parse.h"
#include "features/export.h"

namespace flywheel::features {

absl::StatusOr<std::vector<std::vector<std::string>>> ParseCsv(absl::string_view csv,
                                                               std::vector<int>* lines) {
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> record;
  std::string cell;
  int line = 1;
  int record_line = 1;
  size_t i = 0;
  bool cell_started = false;  // a record has begun (even with an empty first cell)
  auto end_record = [&] {
    record.push_back(std::move(cell));
    cell.clear();
    // A blank line is no record.
    if (!(record.size() == 1 && record[0].empty())) {
      records.push_back(std::move(record));
      if (lines) lines->push_back(record_line);
    }
    record.clear();
    cell_started = false;
  };
  while (i < csv.size()) {
    char c = csv[i];
    if (!cell_started) {
      record_line = line;
      cell_started = true;
    }
    if (c == '"' && cell.empty()) {
      // A quoted cell runs to the next quote not followed by another quote.
      size_t j = i + 1;
      while (true) {
        if (j >= csv.size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("CSV line ", line, ": a quoted cell is not closed"));
        }
        if (csv[j] == '"') {
          if (j + 1 < csv.size() && csv[j + 1] == '"') {
            cell.push_back('"');
            j += 2;
            continue;
          }
          break;
        }
        if (csv[j] == '\n') ++line;
        cell.push_back(csv[j++]);
      }
      i = j + 1;
      if (i < csv.size() && csv[i] != ',' && csv[i] != '\n' && csv[i] != '\r') {
        return absl::InvalidArgumentError(
            absl::StrCat("CSV line ", line, ": text after a closing quote"));
      }
      continue;
    }
    if (c == ',') {
      record.push_back(std::move(cell));
      cell.clear();
      ++i;
    } else if (c == '\r' && i + 1 < csv.size() && csv[i + 1] == '\n') {
      ++i;
    } else if (c == '\n') {
      end_record();
      ++line;
      ++i;
    } else {
      cell.push_back(c);
      ++i;
    }
  }
  if (cell_started) end_record();
  return records;
}

std::string CsvCell(absl::string_view cell) {
  if (cell.find_first_of(",\"\r\n") == absl::string_view::npos) return std::string(cell);
  std::string out = "\"";
  for (char c : cell) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string ValueToCell(const Value& value) {
  if (std::holds_alternative<std::monostate>(value)) return "";
  if (const std::string* s = std::get_if<std::string>(&value)) return *s;
  if (const double* d = std::get_if<double>(&value)) {
    if (!std::isfinite(*d)) return "";
    char buffer[32];
    auto result = std::to_chars(buffer, buffer + sizeof(buffer), *d);
    return std::string(buffer, result.ptr);
  }
  return ValueToJson(value);  // integers, booleans and lists read the same as JSON
}

absl::StatusOr<Spine> ReadSpineCsv(absl::string_view csv, absl::string_view time_column) {
  std::vector<int> lines;
  absl::StatusOr<std::vector<std::vector<std::string>>> records = ParseCsv(csv, &lines);
  if (!records.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("spine: ", records.status().message()));
  }
  if (records->empty()) return absl::InvalidArgumentError("spine: empty (expected a header line)");
  Spine spine;
  spine.header = std::move((*records)[0]);
  auto time_it = std::find(spine.header.begin(), spine.header.end(), time_column);
  if (time_it == spine.header.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "spine: no '", time_column, "' column (columns: ", absl::StrJoin(spine.header, ", "), ")"));
  }
  size_t time_index = time_it - spine.header.begin();
  for (size_t r = 1; r < records->size(); ++r) {
    std::vector<std::string>& cells = (*records)[r];
    if (cells.size() != spine.header.size()) {
      return absl::InvalidArgumentError(absl::StrCat("spine line ", lines[r], ": expected ",
                                                     spine.header.size(), " cells, got ",
                                                     cells.size()));
    }
    SpineRow row;
    int64_t ns = 0;
    absl::Status status = EventParser::ParseTimeText(cells[time_index], absl::Seconds(1), &ns);
    if (!status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("spine line ", lines[r], ": column '",
                                                     time_column, "': ", status.message()));
    }
    row.time = absl::FromUnixNanos(ns);
    for (size_t c = 0; c < cells.size(); ++c) {
      if (c != time_index) row.keys.emplace_back(spine.header[c], cells[c]);
    }
    spine.rows.push_back(std::move(row));
    spine.cells.push_back(std::move(cells));
  }
  return spine;
}

std::string WriteExportCsv(const Spine& spine, absl::Span<const std::string> features,
                           const std::vector<std::vector<FeatureValue>>& values) {
  std::string out;
  auto write_row = [&](const std::vector<std::string>& cells, absl::Span<const std::string> more) {
    bool first = true;
    for (const std::string& cell : cells) {
      if (!first) out.push_back(',');
      first = false;
      out += CsvCell(cell);
    }
    for (const std::string& cell : more) {
      if (!first) out.push_back(',');
      first = false;
      out += CsvCell(cell);
    }
    out.push_back('\n');
  };
  write_row(spine.header, features);
  std::vector<std::string> cells;
  for (size_t r = 0; r < spine.cells.size(); ++r) {
    cells.clear();
    for (size_t c = 0; c < features.size(); ++c) {
      bool present = r < values.size() && c < values[r].size() && values[r][c].present();
      cells.push_back(present ? ValueToCell(values[r][c].value) : "");
    }
    write_row(spine.cells[r], cells);
  }
  return out;
}

}  // namespace flywheel::features
