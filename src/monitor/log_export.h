// Exports prediction log records (log_reader.h) as JSON Lines or CSV. JSON Lines show tensor data
// as arrays of numbers (TensorDataFormat::kArray), or the lines as stored (kJsonlRaw); CSV has
// one column per scalar element: id,time,model,version, then input.<name>[i] (flat row-major
// index), feature.<name>[i], output.<name>[i] and parameter.<name>. Used by `flywheel log`.
#pragma once

#include <cstdint>
#include <ostream>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "monitor/log_reader.h"

namespace flywheel::monitor {

enum class LogExportFormat { kJsonl, kJsonlRaw, kCsv };

// "jsonl", "jsonl-raw" or "csv".
absl::StatusOr<LogExportFormat> ParseLogExportFormat(absl::string_view name);

struct LogExportStats {
  int64_t records = 0;
  int64_t columns = 0;      // CSV only
  int64_t bad_records = 0;  // lines that do not read as a record (kJsonl and kCsv), skipped
  // CSV only: values without a column, from records that arrived between the pass that chose the
  // columns and the pass that wrote the rows (a log being written while exported).
  int64_t values_outside_header = 0;
  LogReadStats read;  // of the pass that wrote the output
};

// Writes the records `options` selects to `out`, in time order. CSV reads the log twice: once
// to find the columns, once for the rows. Cells are AppendElementText's (log_record.h); the
// request id and string parameters are text, or "b64:<base64>" when not UTF-8; a cell a record
// lacks is empty.
absl::StatusOr<LogExportStats> ExportLog(const LogReaderOptions& options, LogExportFormat format,
                                         std::ostream& out);

}  // namespace flywheel::monitor
