// Reference data as CSV (RFC 4180): a header row of column names, then one row per example.
// Columns whose every non-empty cell is a number are numeric; the rest are categorical strings.
// Used by `flywheel monitor profile --data train.csv`.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace flywheel::monitor {

struct CsvColumn {
  std::string name;
  // One cell per row, unquoted.
  std::vector<std::string> cells;
  // True when every non-empty cell parses as a number ("nan" and "inf" included).
  bool numeric = true;
  // The cells as numbers when `numeric`; empty cells are NaN (missing).
  std::vector<double> Numbers() const;
};

struct CsvTable {
  std::vector<CsvColumn> columns;
  size_t rows = 0;
};

// Parses `text`; `what` (the file) names errors, e.g. "train.csv: line 7: 3 fields, expected 4".
// Fields may be quoted ("a, b", "say ""hi"""), lines end in LF or CRLF, and a final newline is
// optional. Empty lines are skipped.
absl::StatusOr<CsvTable> ParseCsv(absl::string_view text, absl::string_view what);
absl::StatusOr<CsvTable> ReadCsv(const std::string& path);

}  // namespace flywheel::monitor
