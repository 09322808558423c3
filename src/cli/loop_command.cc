// `flywheel loop status|check`: reads the retraining loops' history files of a model repository
// (lifecycle/loop_history.h) into one line per run with its outcome, and checks loop definition
// files (lifecycle/loop_config.h) without a server.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/loop_definition_text.h"
#include "lifecycle/loop_config.h"
#include "lifecycle/loop_history.h"
#include "rapidjson/prettywriter.h"
#include "rapidjson/stringbuffer.h"

namespace flywheel::cli {
namespace {

using lifecycle::LoopDefinition;
using lifecycle::LoopEvent;
using lifecycle::LoopHistory;

namespace fs = std::filesystem;

struct LoopOptions {
  std::string repository;
  std::string model;
  std::string loop;
  std::string path;  // check: a file or a folder
  bool json = false;
  int last = 20;
};

int Fail(const char* command, const absl::Status& status) {
  std::fprintf(stderr, "flywheel loop %s: error: %s\n", command, OneLine(status).c_str());
  return 1;
}

std::string TimeText(absl::Time t) {
  if (t == absl::InfinitePast()) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", t, absl::UTCTimeZone());
}

std::string RfcTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

std::string Number(double v) { return absl::StrFormat("%g", v); }

// ---- status ----

struct HistoryFile {
  std::string model;
  std::string loop;
  std::string path;
};

// The history files of the repository (or of one model), sorted by model, then loop.
absl::StatusOr<std::vector<HistoryFile>> FindHistories(const LoopOptions& opt) {
  std::error_code ec;
  if (!fs::is_directory(opt.repository, ec)) {
    return absl::NotFoundError(
        absl::StrCat("model repository '", opt.repository, "' is not a folder"));
  }
  std::vector<std::string> models;
  if (!opt.model.empty()) {
    if (!fs::is_directory(fs::path(opt.repository) / opt.model, ec)) {
      return absl::NotFoundError(absl::StrCat("model '", opt.model, "': no folder ",
                                              (fs::path(opt.repository) / opt.model).string()));
    }
    models.push_back(opt.model);
  } else {
    for (fs::directory_iterator it(opt.repository, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      std::error_code type_ec;
      if (!name.empty() && name[0] != '.' && it->is_directory(type_ec)) models.push_back(name);
    }
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot list model repository '", opt.repository, "': ", ec.message()));
    }
  }
  std::sort(models.begin(), models.end());
  std::vector<HistoryFile> files;
  for (const std::string& model : models) {
    const fs::path dir = fs::path(opt.repository) / model / ".flywheel";
    std::vector<HistoryFile> found;
    std::error_code list_ec;
    for (fs::directory_iterator it(dir, list_ec), end; !list_ec && it != end;
         it.increment(list_ec)) {
      const std::string name = it->path().filename().string();
      if (!absl::StartsWith(name, "loop-") || !absl::EndsWith(name, ".jsonl")) continue;
      std::string loop = name.substr(5, name.size() - 5 - 6);
      if (loop.empty() || (!opt.loop.empty() && loop != opt.loop)) continue;
      // PathFor is the one place that knows the layout; the listing only finds the names.
      found.push_back({model, loop, LoopHistory::PathFor(opt.repository, model, loop)});
    }
    std::sort(found.begin(), found.end(),
              [](const HistoryFile& a, const HistoryFile& b) { return a.loop < b.loop; });
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

struct RunSummary {
  int64_t run = 0;
  absl::Time started = absl::InfinitePast();
  absl::Time ended = absl::InfinitePast();
  std::string outcome;       // promoted, stopped_at_gate, rolled_back, failed, skipped, ...
  std::string outcome_text;  // "failed at train"
  std::string step;          // the step that decided it (or the last one)
  std::string detail;        // that step's detail
  int64_t champion = 0;
  int64_t candidate = 0;
  std::vector<LoopEvent> events;
};

// A run's outcome from its steps: the deciding step wins over the order events came in.
void Summarise(RunSummary& r, bool newer_run_exists) {
  const LoopEvent* decisive = nullptr;
  auto find = [&](const std::string& step, std::initializer_list<const char*> statuses) {
    for (const LoopEvent& e : r.events) {
      if (e.step != step) continue;
      for (const char* s : statuses) {
        if (e.status == s) return &e;
      }
    }
    return static_cast<const LoopEvent*>(nullptr);
  };
  const bool done = find("done", {"ok", "failed", "skipped", "started"}) != nullptr;
  if ((decisive = find("promote", {"ok"})) != nullptr) {
    r.outcome = "promoted";
    r.outcome_text = "promoted";
  } else if ((decisive = find("rollback", {"ok", "started", "failed"})) != nullptr) {
    r.outcome = "rolled_back";
    r.outcome_text = decisive->status == "failed" ? "rollback failed" : "rolled back";
  } else if ((decisive = find("gate", {"failed"})) != nullptr) {
    r.outcome = "stopped_at_gate";
    r.outcome_text = "stopped at gate";
  } else {
    for (const LoopEvent& e : r.events) {
      if (e.status == "failed" && e.step != "done") {
        decisive = &e;
        r.outcome = "failed";
        r.outcome_text = absl::StrCat("failed at ", e.step);
        break;
      }
    }
    if (decisive == nullptr) {
      for (const LoopEvent& e : r.events) {
        if (e.status == "skipped") {
          decisive = &e;
          r.outcome = "skipped";
          r.outcome_text = absl::StrCat("skipped at ", e.step);
          break;
        }
      }
    }
    if (decisive == nullptr && done) {
      decisive = find("done", {"ok", "failed", "skipped", "started"});
      r.outcome = decisive->status == "failed" ? "failed" : "done";
      r.outcome_text = decisive->status == "failed" ? "failed" : "done";
    }
    if (decisive == nullptr) {
      decisive = &r.events.back();
      // A newer run means this one never finished (the server stopped mid-run).
      r.outcome = newer_run_exists ? "interrupted" : "running";
      r.outcome_text =
          absl::StrCat(newer_run_exists ? "interrupted at " : "running: ", decisive->step);
    }
  }
  // The loop's own outcome word (the `done` step's detail: promoted, stopped_at_gate,
  // not_enough_data, ...) is what GET /v1/loops and the metrics say; it wins over the derived one.
  if (const LoopEvent* end = find("done", {"ok", "failed", "skipped"}); end != nullptr) {
    const bool word = !end->detail.empty() &&
                      std::all_of(end->detail.begin(), end->detail.end(),
                                  [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
    if (word) {
      r.outcome = end->detail;
      if (decisive == end) r.outcome_text = absl::StrReplaceAll(end->detail, {{"_", " "}});
    }
  }
  r.step = decisive->step;
  r.detail = decisive->detail;
  for (const LoopEvent& e : r.events) {
    if (e.champion != 0) r.champion = e.champion;
    if (e.candidate != 0) r.candidate = e.candidate;
  }
  if (r.detail.empty()) {
    for (auto it = r.events.rbegin(); it != r.events.rend(); ++it) {
      if (!it->detail.empty()) {
        r.detail = it->detail;
        break;
      }
    }
  }
}

std::vector<RunSummary> Runs(const std::vector<LoopEvent>& events) {
  std::map<int64_t, RunSummary> by_run;
  for (const LoopEvent& e : events) {
    RunSummary& r = by_run[e.run];
    r.run = e.run;
    if (r.events.empty() || e.time < r.started) r.started = e.time;
    if (r.events.empty() || e.time > r.ended) r.ended = e.time;
    r.events.push_back(e);
  }
  std::vector<RunSummary> runs;
  for (auto& [run, r] : by_run) runs.push_back(std::move(r));
  for (size_t i = 0; i < runs.size(); ++i) Summarise(runs[i], i + 1 < runs.size());
  return runs;
}

std::string Shorten(std::string text, size_t max) {
  text = absl::StrReplaceAll(text, {{"\n", " "}});
  if (text.size() <= max) return text;
  return text.substr(0, max - 3) + "...";
}

std::string Version(int64_t v) { return v == 0 ? "-" : std::to_string(v); }

std::string FiguresText(const std::map<std::string, double>& figures) {
  std::vector<std::string> parts;
  for (const auto& [name, value] : figures) parts.push_back(absl::StrCat(name, "=", Number(value)));
  return absl::StrJoin(parts, " ");
}

void PrintStatusText(const HistoryFile& file, const LoopHistory::ReadResult& read,
                     const std::vector<RunSummary>& runs, size_t first) {
  std::printf("loop %s (model %s): %zu run%s, history %s\n", file.loop.c_str(), file.model.c_str(),
              runs.size(), runs.size() == 1 ? "" : "s", file.path.c_str());
  if (read.bad_lines > 0) {
    std::printf("  (%lld unreadable line%s skipped: a torn append or a hand edit)\n",
                static_cast<long long>(read.bad_lines), read.bad_lines == 1 ? "" : "s");
  }
  if (runs.empty()) return;
  std::printf("  %-5s %-19s %-10s %-8s %-9s %-20s %s\n", "RUN", "STARTED (UTC)", "DURATION",
              "CHAMPION", "CANDIDATE", "OUTCOME", "DETAIL");
  for (size_t i = first; i < runs.size(); ++i) {
    const RunSummary& r = runs[i];
    std::printf("  %-5lld %-19s %-10s %-8s %-9s %-20s %s\n", static_cast<long long>(r.run),
                TimeText(r.started).c_str(), LoopDurationText(r.ended - r.started).c_str(),
                Version(r.champion).c_str(), Version(r.candidate).c_str(), r.outcome_text.c_str(),
                Shorten(r.detail, 100).c_str());
  }
  const RunSummary& last = runs.back();
  std::printf("  steps of run %lld:\n", static_cast<long long>(last.run));
  for (const LoopEvent& e : last.events) {
    std::string line = absl::StrFormat("    %-19s %-9s %-8s %s", TimeText(e.time), e.step, e.status,
                                       Shorten(e.detail, 120));
    if (!e.figures.empty()) absl::StrAppend(&line, " [", FiguresText(e.figures), "]");
    std::printf("%s\n", std::string(absl::StripTrailingAsciiWhitespace(line)).c_str());
  }
}

template <typename W>
void Str(W& w, const std::string& s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

template <typename W>
void WriteStatusJson(W& w, const HistoryFile& file, const LoopHistory::ReadResult& read,
                     const std::vector<RunSummary>& runs, size_t first) {
  w.StartObject();
  w.Key("loop");
  Str(w, file.loop);
  w.Key("model");
  Str(w, file.model);
  w.Key("history_file");
  Str(w, file.path);
  w.Key("bad_lines");
  w.Int64(read.bad_lines);
  w.Key("total_runs");
  w.Int64(static_cast<int64_t>(runs.size()));
  w.Key("runs");
  w.StartArray();
  for (size_t i = first; i < runs.size(); ++i) {
    const RunSummary& r = runs[i];
    w.StartObject();
    w.Key("run");
    w.Int64(r.run);
    w.Key("started");
    Str(w, RfcTime(r.started));
    w.Key("ended");
    Str(w, RfcTime(r.ended));
    w.Key("outcome");
    Str(w, r.outcome);
    w.Key("outcome_text");
    Str(w, r.outcome_text);
    w.Key("step");
    Str(w, r.step);
    w.Key("detail");
    Str(w, r.detail);
    w.Key("champion");
    w.Int64(r.champion);
    w.Key("candidate");
    w.Int64(r.candidate);
    w.Key("steps");
    w.StartArray();
    for (const LoopEvent& e : r.events) {
      const std::string json = lifecycle::LoopEventToJson(e);
      w.RawValue(json.data(), json.size(), rapidjson::kObjectType);
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

int RunStatus(const LoopOptions& opt) {
  if (opt.last < 1) return Fail("status", absl::InvalidArgumentError("--last must be at least 1"));
  absl::StatusOr<std::vector<HistoryFile>> files = FindHistories(opt);
  if (!files.ok()) return Fail("status", files.status());
  if (files->empty() && !opt.loop.empty()) {
    return Fail("status", absl::NotFoundError(absl::StrCat(
                              "no history of loop '", opt.loop, "' in ", opt.repository,
                              opt.model.empty() ? "" : absl::StrCat(" (model ", opt.model, ")"),
                              ": it has not run yet, or it retrains another model")));
  }
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
  w.SetIndent(' ', 2);
  if (opt.json) {
    w.StartObject();
    w.Key("loops");
    w.StartArray();
  } else if (files->empty()) {
    std::printf(
        "no loop history in %s (a loop writes <model>/.flywheel/loop-<name>.jsonl when it "
        "first runs)\n",
        opt.repository.c_str());
  }
  for (size_t i = 0; i < files->size(); ++i) {
    const HistoryFile& file = (*files)[i];
    absl::StatusOr<LoopHistory::ReadResult> read = LoopHistory(file.path).Read();
    if (!read.ok()) return Fail("status", read.status());
    const std::vector<RunSummary> runs = Runs(read->events);
    const size_t first = runs.size() > static_cast<size_t>(opt.last) ? runs.size() - opt.last : 0;
    if (opt.json) {
      WriteStatusJson(w, file, *read, runs, first);
    } else {
      if (i > 0) std::printf("\n");
      PrintStatusText(file, *read, runs, first);
    }
  }
  if (opt.json) {
    w.EndArray();
    w.EndObject();
    std::printf("%s\n", buffer.GetString());
  }
  return 0;
}

int RunCheck(const LoopOptions& opt) {
  std::error_code ec;
  std::vector<LoopDefinition> defs;
  if (fs::is_directory(opt.path, ec)) {
    absl::StatusOr<std::vector<LoopDefinition>> read = lifecycle::ReadLoopDefinitions(opt.path);
    if (!read.ok()) return Fail("check", read.status());
    defs = *std::move(read);
  } else {
    absl::StatusOr<LoopDefinition> read = lifecycle::ReadLoopDefinition(opt.path);
    if (!read.ok()) return Fail("check", read.status());
    defs.push_back(*std::move(read));
  }
  if (opt.json) {
    std::printf("%s\n", LoopDefinitionsJson(defs).c_str());
    return 0;
  }
  for (size_t i = 0; i < defs.size(); ++i) {
    if (i > 0) std::printf("\n");
    std::printf("%s", LoopDefinitionText(defs[i]).c_str());
  }
  std::printf("%s%zu loop definition%s OK\n", defs.empty() ? "" : "\n", defs.size(),
              defs.size() == 1 ? "" : "s");
  return 0;
}

}  // namespace

Command AddLoopCommand(CLI::App& app) {
  auto opt = std::make_shared<LoopOptions>();
  CLI::App* loop = app.add_subcommand(
      "loop", "Retraining loops: the history of their runs, and checks of their definitions");
  loop->require_subcommand(1);
  loop->footer(
      "A loop's history is <repository>/<model>/.flywheel/loop-<name>.jsonl; definitions are "
      "YAML files (see docs/lifecycle.md).");

  CLI::App* status = loop->add_subcommand(
      "status",
      "One line per run of each loop (promoted, stopped at gate, rolled back, failed "
      "at <step>) and the steps of its last run");
  status->add_option("--model-repository", opt->repository, "the model repository folder")
      ->required();
  status->add_option("--model,-m", opt->model, "only the loops of this model");
  status->add_option("--loop,-l", opt->loop, "only this loop");
  status->add_option("--last,-n", opt->last, "show the last N runs of each loop")
      ->capture_default_str();
  status->add_flag("--json", opt->json, "print JSON (every step of each run shown)");

  CLI::App* check = loop->add_subcommand(
      "check", "Parse loop definitions (a YAML file, or a folder of them) and print them");
  check->add_option("path", opt->path, "a loop definition file or a folder of *.yaml / *.yml")
      ->required();
  check->add_flag("--json", opt->json, "print the definitions as JSON (defaults filled in)");
  check->footer("Example: flywheel loop check examples/loops");

  return {loop, [=]() {
            if (status->parsed()) return RunStatus(*opt);
            if (check->parsed()) return RunCheck(*opt);
            return 2;
          }};
}

}  // namespace flywheel::cli
