// `flywheel features views|export`: the feature definitions as the server reads them, and the
// point-in-time-correct training export from the event log that `flywheel serve --features`
// writes (see features/export.h).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "features/definitions.h"
#include "features/event_log.h"
#include "features/export.h"
#include "features/ingest_log.h"
#include "features/lookup.h"
#include "rapidjson/document.h"
#include "rapidjson/prettywriter.h"
#include "rapidjson/stringbuffer.h"

namespace flywheel::cli {
namespace {

struct ViewsOptions {
  std::string definitions;
};

struct ExportOptions {
  std::string definitions;
  std::string events;
  std::string spine;
  std::string time_column = "timestamp";
  std::vector<std::string> features;
  std::string out;
};

int Fail(const char* command, const absl::Status& status) {
  std::fprintf(stderr, "flywheel features %s: error: %s\n", command,
               std::string(status.message()).c_str());
  return 1;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read '", path, "'"));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

int RunViews(const ViewsOptions& opt) {
  absl::StatusOr<features::FeatureRegistry> registry =
      features::FeatureRegistry::LoadDir(opt.definitions);
  if (!registry.ok()) return Fail("views", registry.status());
  const std::string json = features::ViewsToJson(*registry);
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
  writer.SetIndent(' ', 2);
  doc.Accept(writer);
  std::printf("%s\n", buffer.GetString());
  return 0;
}

int RunExport(const ExportOptions& opt) {
  absl::StatusOr<features::FeatureRegistry> registry =
      features::FeatureRegistry::LoadDir(opt.definitions);
  if (!registry.ok()) return Fail("export", registry.status());
  // --features a,b --features c: both forms.
  std::vector<std::string> refs;
  for (const std::string& arg : opt.features) {
    for (absl::string_view f : absl::StrSplit(arg, ',', absl::SkipWhitespace())) {
      refs.emplace_back(f);
    }
  }
  if (refs.empty()) return Fail("export", absl::InvalidArgumentError("--features names none"));
  // The sources of the requested views: only their events are read.
  std::vector<std::string> sources;
  for (const std::string& ref : refs) {
    absl::StatusOr<features::FeatureRef> resolved = registry->Resolve(ref);
    if (!resolved.ok()) {
      return Fail("export", absl::InvalidArgumentError(
                                absl::StrCat("--features: ", resolved.status().message())));
    }
    const std::string& source = registry->views()[resolved->view].source;
    bool known = false;
    for (const std::string& s : sources) known |= s == source;
    if (!known) sources.push_back(source);
  }
  absl::StatusOr<std::string> csv = ReadFile(opt.spine);
  if (!csv.ok()) return Fail("export", csv.status());
  absl::StatusOr<features::Spine> spine = features::ReadSpineCsv(*csv, opt.time_column);
  if (!spine.ok()) {
    return Fail("export", absl::Status(spine.status().code(),
                                       absl::StrCat(opt.spine, ": ", spine.status().message())));
  }
  // Events up to the latest spine time (the log keeps microseconds; the join checks exactly).
  absl::Time until = absl::UnixEpoch();
  for (const features::SpineRow& row : spine->rows) until = std::max(until, row.time);
  absl::StatusOr<std::unique_ptr<features::EventLogReader>> reader = features::EventLogReader::Open(
      opt.events, sources, absl::UnixEpoch(), until + absl::Microseconds(1));
  if (!reader.ok()) return Fail("export", reader.status());

  features::EventLogEntry entry;
  features::StreamDuplicateFilter duplicates;
  features::ExportEventStream stream = [&](features::ExportEvent* event) -> absl::StatusOr<bool> {
    while (true) {
      absl::StatusOr<bool> next = (*reader)->Next(&entry);
      if (!next.ok() || !*next) return next;
      // A stream entry logged again after a crash (before its state was committed).
      if (duplicates.Duplicate(entry.source, entry.time, entry.json)) continue;
      event->source = entry.source;
      event->json = entry.json;
      return true;
    }
  };
  features::ExportStats stats;
  absl::StatusOr<std::vector<std::vector<features::FeatureValue>>> values =
      features::PointInTimeJoin(*registry, spine->rows, refs, stream, &stats);
  if (!values.ok()) return Fail("export", values.status());
  const std::string out = features::WriteExportCsv(*spine, refs, *values);
  if (opt.out == "-") {
    std::fwrite(out.data(), 1, out.size(), stdout);
  } else {
    std::ofstream file(opt.out, std::ios::binary | std::ios::trunc);
    file.write(out.data(), static_cast<std::streamsize>(out.size()));
    file.close();
    if (!file) {
      return Fail("export", absl::UnavailableError(absl::StrCat("cannot write '", opt.out, "'")));
    }
  }
  for (const std::string& file : (*reader)->truncated_files()) {
    std::fprintf(stderr,
                 "flywheel features export: warning: %s ends in an incomplete frame (a crash "
                 "while appending); its last frame was skipped\n",
                 file.c_str());
  }
  std::fprintf(stderr,
               "flywheel features export: %zu rows x %zu features from %llu events (%llu "
               "applied, %llu malformed, %llu repeated stream entries)%s%s\n",
               spine->rows.size(), refs.size(), static_cast<unsigned long long>(stats.events),
               static_cast<unsigned long long>(stats.applied),
               static_cast<unsigned long long>(stats.invalid),
               static_cast<unsigned long long>(duplicates.dropped()), opt.out == "-" ? "" : " -> ",
               opt.out == "-" ? "" : opt.out.c_str());
  return 0;
}

}  // namespace

Command AddFeaturesCommand(CLI::App& app) {
  auto views_opt = std::make_shared<ViewsOptions>();
  auto export_opt = std::make_shared<ExportOptions>();
  CLI::App* features = app.add_subcommand(
      "features", "Feature store tools: the definitions (views) and training exports (export)");
  features->require_subcommand(1);

  CLI::App* views = features->add_subcommand(
      "views", "Check a definitions folder and print its entities, sources and views as JSON");
  views->add_option("--definitions", views_opt->definitions, "feature definitions folder (YAML)")
      ->required();

  CLI::App* exp = features->add_subcommand(
      "export",
      "Point-in-time-correct training data: each spine row gets every feature as it was at the "
      "row's own time, computed from the event log");
  exp->add_option("--definitions", export_opt->definitions, "feature definitions folder (YAML)")
      ->required();
  exp->add_option("--events", export_opt->events,
                  "event log folder (<data-dir>/events of `flywheel serve --features`)")
      ->required();
  exp->add_option("--spine", export_opt->spine,
                  "CSV with a header: the entity key columns and the time column")
      ->required();
  exp->add_option("--time-column", export_opt->time_column,
                  "spine column holding each row's time (RFC 3339 or Unix seconds)")
      ->capture_default_str();
  exp->add_option("--features", export_opt->features,
                  "view:feature references, comma-separated (repeatable)")
      ->required();
  exp->add_option("--out", export_opt->out,
                  "output CSV: the spine's columns, then one per feature ('-' for stdout)")
      ->required();
  exp->footer(
      "Example: flywheel features export --definitions examples/features --events "
      "flywheel-data/events --spine rows.csv --features user_clicks:clicks_1h,user_clicks:country "
      "--out train.csv");

  return {features, [views, exp, views_opt, export_opt]() {
            if (views->parsed()) return RunViews(*views_opt);
            if (exp->parsed()) return RunExport(*export_opt);
            return 2;
          }};
}

}  // namespace flywheel::cli
