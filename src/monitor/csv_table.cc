#include "monitor/csv_table.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace flywheel::monitor {
namespace {

bool ParseNumber(absl::string_view cell, double* out) {
  return absl::SimpleAtod(absl::StripAsciiWhitespace(cell), out);
}

// Splits one record starting at text[*pos]; advances *pos past its line end. Quoted fields may
// span lines.
absl::Status NextRecord(absl::string_view text, size_t* pos, int* line,
                        std::vector<std::string>* fields, absl::string_view what) {
  fields->clear();
  std::string field;
  bool quoted = false;
  bool was_quoted = false;
  const int start_line = *line;
  size_t i = *pos;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field.push_back('"');
          ++i;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++*line;
        field.push_back(c);
      }
      continue;
    }
    if (c == '"') {
      if (!field.empty() || was_quoted) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": line ", *line, ": a quote inside an unquoted field"));
      }
      quoted = true;
      was_quoted = true;
    } else if (c == ',') {
      fields->push_back(std::move(field));
      field.clear();
      was_quoted = false;
    } else if (c == '\n' || c == '\r') {
      break;
    } else {
      field.push_back(c);
    }
  }
  if (quoted) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": line ", start_line, ": a quoted field is not closed"));
  }
  fields->push_back(std::move(field));
  if (i < text.size() && text[i] == '\r') ++i;
  if (i < text.size() && text[i] == '\n') ++i;
  ++*line;
  *pos = i;
  return absl::OkStatus();
}

}  // namespace

std::vector<double> CsvColumn::Numbers() const {
  std::vector<double> out;
  out.reserve(cells.size());
  for (const std::string& cell : cells) {
    double v;
    out.push_back(ParseNumber(cell, &v) ? v : NAN);
  }
  return out;
}

absl::StatusOr<CsvTable> ParseCsv(absl::string_view text, absl::string_view what) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // a UTF-8 byte order mark
  CsvTable table;
  size_t pos = 0;
  int line = 1;
  std::vector<std::string> fields;
  // The header: the first non-empty line.
  while (pos < text.size() && (text[pos] == '\n' || text[pos] == '\r')) {
    line += text[pos] == '\n';
    ++pos;
  }
  if (pos >= text.size()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": empty; expected a header row"));
  }
  const int header_line = line;
  if (absl::Status s = NextRecord(text, &pos, &line, &fields, what); !s.ok()) return s;
  absl::flat_hash_set<std::string> names;
  for (size_t j = 0; j < fields.size(); ++j) {
    std::string name(absl::StripAsciiWhitespace(fields[j]));
    if (name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": line ", header_line, ": column ", j + 1, " has no name"));
    }
    if (!names.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": line ", header_line, ": column '", name, "' appears twice"));
    }
    table.columns.push_back({std::move(name), {}, true});
  }
  while (pos < text.size()) {
    if (text[pos] == '\n' || text[pos] == '\r') {  // an empty line
      line += text[pos] == '\n';
      ++pos;
      continue;
    }
    const int record_line = line;
    if (absl::Status s = NextRecord(text, &pos, &line, &fields, what); !s.ok()) return s;
    if (fields.size() != table.columns.size()) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": line ", record_line, ": ",
                                                     fields.size(), " fields, expected ",
                                                     table.columns.size()));
    }
    for (size_t j = 0; j < fields.size(); ++j)
      table.columns[j].cells.push_back(std::move(fields[j]));
    ++table.rows;
  }
  for (CsvColumn& column : table.columns) {
    for (const std::string& cell : column.cells) {
      double v;
      if (!absl::StripAsciiWhitespace(cell).empty() && !ParseNumber(cell, &v)) {
        column.numeric = false;
        break;
      }
    }
  }
  return table;
}

absl::StatusOr<CsvTable> ReadCsv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::ostringstream text;
  text << in.rdbuf();
  return ParseCsv(text.str(), path);
}

}  // namespace flywheel::monitor
