// `flywheel log cat|export|training-set`: reads the prediction log that `flywheel serve` writes
// (see monitor/prediction_log.h) back, filtered by model, version and time, as JSON Lines or CSV,
// or joined with the label log as a training and a holdout CSV (monitor/training_set.h).
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/commands.h"
#include "monitor/log_export.h"
#include "monitor/log_reader.h"
#include "monitor/training_set.h"

namespace flywheel::cli {
namespace {

struct LogOptions {
  std::string dir;
  std::string model;
  int64_t version = 0;
  std::string since;
  std::string until;
  std::string format = "jsonl";
  std::string out;
  bool raw = false;
  CLI::Option* model_option = nullptr;
  CLI::Option* version_option = nullptr;
};

absl::StatusOr<monitor::LogReaderOptions> ReaderOptions(const LogOptions& opt) {
  monitor::LogReaderOptions r;
  r.dir = opt.dir;
  if (opt.model_option->count() > 0) r.model = opt.model;
  if (opt.version_option->count() > 0) r.version = opt.version;
  const absl::Time now = absl::Now();
  if (!opt.since.empty()) {
    auto t = monitor::ParseTimeArg(opt.since, now);
    if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat("--since: ", t.status().message()));
    r.since = *t;
  }
  if (!opt.until.empty()) {
    auto t = monitor::ParseTimeArg(opt.until, now);
    if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat("--until: ", t.status().message()));
    r.until = *t;
  }
  if (r.since >= r.until) {
    return absl::InvalidArgumentError("--since must be earlier than --until");
  }
  return r;
}

// What the reader skipped, on stderr: the output stays clean.
void ReportSkipped(const char* command, const monitor::LogReadStats& s, int64_t bad_records) {
  for (const std::string& problem : s.problems) {
    std::fprintf(stderr, "flywheel log %s: warning: %s\n", command, problem.c_str());
  }
  if (s.truncated_frames + s.corrupt_frames + s.bad_lines + bad_records > 0) {
    std::fprintf(stderr,
                 "flywheel log %s: skipped %lld incomplete and %lld damaged frames (%lld bytes) "
                 "and %lld unreadable lines\n",
                 command, static_cast<long long>(s.truncated_frames),
                 static_cast<long long>(s.corrupt_frames), static_cast<long long>(s.skipped_bytes),
                 static_cast<long long>(s.bad_lines + bad_records));
  }
}

int Fail(const char* command, const absl::Status& status) {
  std::fprintf(stderr, "flywheel log %s: error: %s\n", command,
               std::string(status.message()).c_str());
  return 1;
}

int RunCat(const LogOptions& opt) {
  auto reader = ReaderOptions(opt);
  if (!reader.ok()) return Fail("cat", reader.status());
  std::ios::sync_with_stdio(false);
  auto stats = monitor::ExportLog(
      *reader, opt.raw ? monitor::LogExportFormat::kJsonlRaw : monitor::LogExportFormat::kJsonl,
      std::cout);
  if (!stats.ok()) return Fail("cat", stats.status());
  ReportSkipped("cat", stats->read, stats->bad_records);
  return 0;
}

int RunExport(const LogOptions& opt) {
  auto reader = ReaderOptions(opt);
  if (!reader.ok()) return Fail("export", reader.status());
  auto format = monitor::ParseLogExportFormat(opt.format);
  if (!format.ok()) return Fail("export", format.status());
  absl::StatusOr<monitor::LogExportStats> stats;
  if (opt.out == "-") {
    std::ios::sync_with_stdio(false);
    stats = monitor::ExportLog(*reader, *format, std::cout);
  } else {
    // Written beside the target and renamed over it, so that FILE is whole or untouched.
    const std::string tmp = opt.out + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out) {
        return Fail("export", absl::NotFoundError(absl::StrCat("cannot create '", tmp, "'")));
      }
      stats = monitor::ExportLog(*reader, *format, out);
    }
    if (!stats.ok() || std::rename(tmp.c_str(), opt.out.c_str()) != 0) {
      std::remove(tmp.c_str());
      if (stats.ok()) {
        return Fail("export", absl::InternalError(
                                  absl::StrCat("cannot rename '", tmp, "' to '", opt.out, "'")));
      }
    }
  }
  if (!stats.ok()) return Fail("export", stats.status());
  ReportSkipped("export", stats->read, stats->bad_records);
  if (stats->values_outside_header > 0) {
    std::fprintf(stderr,
                 "flywheel log export: warning: %lld values had no column (records written to "
                 "the log during the export)\n",
                 static_cast<long long>(stats->values_outside_header));
  }
  if (opt.out != "-") {
    std::fprintf(stderr, "flywheel log export: %lld records%s to %s\n",
                 static_cast<long long>(stats->records),
                 *format == monitor::LogExportFormat::kCsv
                     ? absl::StrCat(" (", stats->columns, " columns)").c_str()
                     : "",
                 opt.out.c_str());
  }
  return 0;
}

struct TrainingSetCliOptions {
  std::string dir;
  std::string model;
  std::vector<int64_t> versions;
  std::string since;
  std::string until;
  double holdout = 0.2;
  std::string train;
  std::string holdout_out;
};

int RunTrainingSet(const TrainingSetCliOptions& opt) {
  monitor::TrainingSetOptions options;
  options.log_dir = opt.dir;
  options.model = opt.model;
  options.versions = opt.versions;
  const absl::Time now = absl::Now();
  if (!opt.since.empty()) {
    auto t = monitor::ParseTimeArg(opt.since, now);
    if (!t.ok()) {
      return Fail("training-set",
                  absl::InvalidArgumentError(absl::StrCat("--since: ", t.status().message())));
    }
    options.since = *t;
  }
  if (!opt.until.empty()) {
    auto t = monitor::ParseTimeArg(opt.until, now);
    if (!t.ok()) {
      return Fail("training-set",
                  absl::InvalidArgumentError(absl::StrCat("--until: ", t.status().message())));
    }
    options.until = *t;
  }
  if (options.since >= options.until) {
    return Fail("training-set", absl::InvalidArgumentError("--since must be earlier than --until"));
  }
  options.holdout_fraction = opt.holdout;
  options.train_path = opt.train;
  options.holdout_path = opt.holdout_out;
  if (opt.holdout > 0 && opt.holdout_out.empty()) {
    return Fail("training-set", absl::InvalidArgumentError(absl::StrCat(
                                    "--holdout ", opt.holdout,
                                    " needs --holdout-out FILE (or --holdout 0 for no holdout)")));
  }
  auto stats = monitor::BuildTrainingSet(options);
  if (!stats.ok()) return Fail("training-set", stats.status());
  // The figures on stdout, one "key value" a line, for scripts; nothing else goes there.
  std::printf(
      "train_rows %lld\nholdout_rows %lld\npredictions %lld\nlabels %lld\nunlabelled_rows "
      "%lld\nbad_lines %lld\nfeature_columns %zu\n",
      static_cast<long long>(stats->train_rows), static_cast<long long>(stats->holdout_rows),
      static_cast<long long>(stats->predictions), static_cast<long long>(stats->labels),
      static_cast<long long>(stats->unlabelled_rows), static_cast<long long>(stats->bad_lines),
      stats->feature_columns.size());
  if (stats->train_rows + stats->holdout_rows == 0) {
    std::fprintf(stderr,
                 "flywheel log training-set: warning: no labelled rows (%lld predictions of "
                 "model '%s' read, %lld labels)\n",
                 static_cast<long long>(stats->predictions), opt.model.c_str(),
                 static_cast<long long>(stats->labels));
  }
  return 0;
}

void AddFilters(CLI::App* sub, LogOptions* opt) {
  sub->add_option("--log-dir", opt->dir, "the prediction log folder (the server's log dir)")
      ->required();
  opt->model_option = sub->add_option("--model", opt->model, "only this model");
  opt->version_option = sub->add_option("--version", opt->version, "only this model version");
  sub->add_option("--since", opt->since,
                  "only records at or after T: RFC 3339 (2024-05-01T12:00:00Z, any offset), a UTC "
                  "date (2024-05-01), 'now', or a duration from now (-1h, -30m, -1h30m, -2d)");
  sub->add_option("--until", opt->until, "only records before T (same forms as --since)");
}

}  // namespace

Command AddLogCommand(CLI::App& app) {
  auto cat_opt = std::make_shared<LogOptions>();
  auto export_opt = std::make_shared<LogOptions>();
  CLI::App* log = app.add_subcommand(
      "log", "Read the prediction log back (cat, export) or make training sets from it");
  log->require_subcommand(1);
  log->footer(
      "The server writes sampled requests to <log dir>/<model>/<version>/*.jsonl.zst (zstd, "
      "JSON Lines).\nRecords come out in time order; frames cut short by a crash are skipped and "
      "counted on stderr.");

  CLI::App* cat = log->add_subcommand("cat", "Print records as JSON Lines on stdout");
  AddFilters(cat, cat_opt.get());
  cat->add_flag("--raw", cat_opt->raw,
                "print lines as stored (numeric tensor data as base64 \"data_b64\") instead of "
                "with \"data\" arrays of numbers");
  cat->footer("Example: flywheel log cat --log-dir /var/log/flywheel --model rank --since -1h");

  CLI::App* exp = log->add_subcommand("export", "Write records to a file as JSON Lines or CSV");
  AddFilters(exp, export_opt.get());
  exp->add_option("--format", export_opt->format,
                  "jsonl (tensor data as arrays of numbers), jsonl-raw (lines as stored) or csv "
                  "(id,time,model,version, then one column per element: input.x[0], ..., "
                  "feature.f[0], output.y[0], parameter.p)")
      ->check(CLI::IsMember({"jsonl", "jsonl-raw", "csv"}))
      ->capture_default_str();
  exp->add_option("--out", export_opt->out, "output file ('-' for stdout)")->required();
  exp->footer(
      "Example: flywheel log export --log-dir logs --model rank --version 2 --since "
      "2024-05-01T00:00:00Z --format csv --out rank.csv");

  auto ts_opt = std::make_shared<TrainingSetCliOptions>();
  CLI::App* ts = log->add_subcommand(
      "training-set", "Join logged inputs with posted labels into a training and a holdout CSV");
  ts->add_option("--log-dir", ts_opt->dir, "the prediction log folder (the server's log dir)")
      ->required();
  ts->add_option("--model", ts_opt->model, "the model")->required();
  ts->add_option("--version", ts_opt->versions, "only this model version (repeatable)");
  ts->add_option("--since", ts_opt->since,
                 "only predictions at or after T (same forms as for cat and export)");
  ts->add_option("--until", ts_opt->until, "only predictions before T");
  ts->add_option("--holdout", ts_opt->holdout,
                 "the share of labelled rows for the holdout, in [0, 1), chosen by a stable hash "
                 "of (request id, row)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  ts->add_option("--train", ts_opt->train, "the training CSV written")->required();
  ts->add_option("--holdout-out", ts_opt->holdout_out,
                 "the holdout CSV written (required unless --holdout 0)");
  ts->footer(
      "Columns: id,row,time,version,label, then <input>:<j> for each element j of a row's "
      "input.\nLabels come from <log dir>/.labels (every label posted to /v1/monitor/labels); "
      "the figures go to stdout.\nExample: flywheel log training-set --log-dir logs --model rank "
      "--since -7d --holdout 0.2 --train train.csv --holdout-out holdout.csv");

  return {log, [cat, exp, ts, cat_opt, export_opt, ts_opt]() {
            if (cat->parsed()) return RunCat(*cat_opt);
            if (exp->parsed()) return RunExport(*export_opt);
            if (ts->parsed()) return RunTrainingSet(*ts_opt);
            return 2;
          }};
}

}  // namespace flywheel::cli
