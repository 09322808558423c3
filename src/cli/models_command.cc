// `flywheel models list|show|register|alias|promote|rollback`: the model registry of a model
// repository folder (lifecycle/registry.h), read and changed in place. Safe to run while a
// server serves the same repository and while other `flywheel models` commands run.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "lifecycle/registry.h"
#include "lifecycle/registry_json.h"

namespace flywheel::cli {
namespace {

using lifecycle::AliasChange;
using lifecycle::ModelInfo;
using lifecycle::Registry;
using lifecycle::VersionInfo;
using lifecycle::VersionMetadata;

struct ModelsOptions {
  std::string repository;
  std::string model;
  std::string version;  // a number, or an alias where the command allows one
  std::string alias;
  bool remove = false;
  bool json = false;
  std::string by;
  std::string note;
  // register
  std::string training_data;
  std::string code_revision;
  std::vector<std::string> params;
  std::vector<std::string> metrics;
  int64_t parent = 0;
  std::string description;
  std::string created;
  bool update = false;
  bool replace = false;
  CLI::Option* parent_option = nullptr;
  CLI::Option* description_option = nullptr;
  CLI::Option* training_data_option = nullptr;
  CLI::Option* code_revision_option = nullptr;
};

int Fail(const char* command, const absl::Status& status) {
  std::fprintf(stderr, "flywheel models %s: error: %s\n", command, OneLine(status).c_str());
  return 1;
}

std::string DefaultAuthor() {
  for (const char* var : {"FLYWHEEL_USER", "USER", "LOGNAME"}) {
    const char* value = std::getenv(var);
    if (value != nullptr && *value != '\0') return value;
  }
  return "unknown";
}

lifecycle::ChangeAuthor Author(const ModelsOptions& opt) {
  return {opt.by.empty() ? DefaultAuthor() : opt.by, opt.note};
}

std::string TimeText(absl::Time t) {
  if (t == absl::InfinitePast()) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

// The shortest of %.15g and %.17g that reads back as the same double (0.81, not 0.810...05).
std::string NumberText(double value) {
  std::string text = absl::StrFormat("%.15g", value);
  double back = 0;
  if (absl::SimpleAtod(text, &back) && back == value) return text;
  return absl::StrFormat("%.17g", value);
}

void PrintJson(const std::string& json) { std::printf("%s\n", json.c_str()); }

void PrintVersionTable(const std::vector<ModelInfo>& models) {
  std::printf("%-20s %-8s %-8s %-11s %-24s %-21s %s\n", "MODEL", "VERSION", "ON DISK", "REGISTERED",
              "ALIASES", "CREATED", "DESCRIPTION");
  for (const ModelInfo& info : models) {
    if (info.versions.empty()) {
      std::printf("%-20s %-8s\n", info.model.c_str(), "-");
      continue;
    }
    for (const VersionInfo& v : info.versions) {
      const std::string aliases = v.aliases.empty() ? "-" : absl::StrJoin(v.aliases, ",");
      std::printf("%-20s %-8lld %-8s %-11s %-24s %-21s %s\n", info.model.c_str(),
                  static_cast<long long>(v.version), v.on_disk ? "yes" : "no",
                  v.registered ? "yes" : "no", aliases.c_str(),
                  v.registered ? TimeText(v.metadata.created).c_str() : "-",
                  v.registered ? OrDash(v.metadata.description).c_str() : "-");
    }
  }
}

void PrintVersion(const std::string& model, const VersionInfo& v) {
  std::printf("model:         %s\n", model.c_str());
  std::printf("version:       %lld\n", static_cast<long long>(v.version));
  std::printf("on disk:       %s\n", v.on_disk ? "yes" : "no");
  std::printf("aliases:       %s\n",
              v.aliases.empty() ? "-" : absl::StrJoin(v.aliases, ", ").c_str());
  if (!v.registered) {
    std::printf("registered:    no (no metadata; `flywheel models register` records it)\n");
    return;
  }
  const VersionMetadata& m = v.metadata;
  std::printf("created:       %s\n", TimeText(m.created).c_str());
  std::printf("registered by: %s\n", OrDash(m.registered_by).c_str());
  std::printf("training data: %s\n", OrDash(m.training_data).c_str());
  std::printf("code revision: %s\n", OrDash(m.code_revision).c_str());
  std::printf("parent:        %s\n", m.parent == 0 ? "-" : std::to_string(m.parent).c_str());
  std::printf("description:   %s\n", OrDash(m.description).c_str());
  std::printf("parameters:%s\n", m.parameters.empty() ? "    -" : "");
  for (const auto& [k, value] : m.parameters) {
    std::printf("  %s = %s\n", k.c_str(), value.c_str());
  }
  std::printf("metrics:%s\n", m.metrics.empty() ? "       -" : "");
  for (const auto& [k, value] : m.metrics) {
    std::printf("  %s = %s\n", k.c_str(), NumberText(value).c_str());
  }
}

void PrintModel(const ModelInfo& info) {
  PrintVersionTable({info});
  std::printf("\nregistry file: %s\n", info.registry_file.c_str());
  std::printf("aliases:%s\n", info.aliases.empty() ? " -" : "");
  for (const auto& [name, alias] : info.aliases) {
    std::string previous = "-";
    if (!alias.previous.empty()) previous = absl::StrJoin(alias.previous, " <- ");
    std::printf("  %-16s -> %-6lld (rollback to: %s; set %s by %s)\n", name.c_str(),
                static_cast<long long>(alias.version),
                alias.previous.empty() ? "-" : std::to_string(alias.previous.back()).c_str(),
                TimeText(alias.updated).c_str(), OrDash(alias.updated_by).c_str());
  }
  std::printf("history:%s\n", info.history.empty() ? " -" : "");
  for (const AliasChange& c : info.history) {
    std::printf("  %s  %-9s %-16s %s -> %s  by %s%s%s\n", TimeText(c.time).c_str(),
                c.action.c_str(), c.alias.c_str(),
                c.from == 0 ? "-" : std::to_string(c.from).c_str(),
                c.to == 0 ? "-" : std::to_string(c.to).c_str(), OrDash(c.by).c_str(),
                c.note.empty() ? "" : ": ", c.note.c_str());
  }
}

void PrintChange(const std::string& model, const AliasChange& c, bool json) {
  if (json) return PrintJson(lifecycle::AliasChangeJson(model, c, true));
  if (c.from == c.to) {
    std::printf("%s: alias '%s' already points at version %lld (unchanged)\n", model.c_str(),
                c.alias.c_str(), static_cast<long long>(c.to));
  } else if (c.to == 0) {
    std::printf("%s: alias '%s' removed (was version %lld)\n", model.c_str(), c.alias.c_str(),
                static_cast<long long>(c.from));
  } else {
    std::printf("%s: alias '%s' %s -> %lld (%s)\n", model.c_str(), c.alias.c_str(),
                c.from == 0 ? "(new)" : std::to_string(c.from).c_str(),
                static_cast<long long>(c.to), c.action.c_str());
  }
}

absl::StatusOr<std::unique_ptr<Registry>> OpenRegistry(const ModelsOptions& opt) {
  return Registry::Open(opt.repository, {.refresh_interval = absl::ZeroDuration()});
}

int RunList(const ModelsOptions& opt) {
  auto registry = OpenRegistry(opt);
  if (!registry.ok()) return Fail("list", registry.status());
  std::vector<ModelInfo> models;
  if (!opt.model.empty()) {
    auto info = (*registry)->List(opt.model);
    if (!info.ok()) return Fail("list", info.status());
    models.push_back(*std::move(info));
  } else {
    auto all = (*registry)->ListAll();
    if (!all.ok()) return Fail("list", all.status());
    models = *std::move(all);
  }
  if (opt.json) {
    PrintJson(lifecycle::ModelListJson(models, true));
  } else {
    PrintVersionTable(models);
  }
  return 0;
}

int RunShow(const ModelsOptions& opt) {
  auto registry = OpenRegistry(opt);
  if (!registry.ok()) return Fail("show", registry.status());
  if (opt.version.empty()) {
    auto info = (*registry)->List(opt.model);
    if (!info.ok()) return Fail("show", info.status());
    if (opt.json) {
      PrintJson(lifecycle::ModelInfoJson(*info, true));
    } else {
      PrintModel(*info);
    }
    return 0;
  }
  auto version = (*registry)->Show(opt.model, opt.version);
  if (!version.ok()) return Fail("show", version.status());
  if (opt.json) {
    PrintJson(lifecycle::VersionInfoJson(opt.model, *version, true));
  } else {
    PrintVersion(opt.model, *version);
  }
  return 0;
}

// "K=V" → (K, V); K must not be empty.
absl::StatusOr<std::pair<std::string, std::string>> SplitAssignment(const std::string& text,
                                                                    const char* flag) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " '", text, "': expected NAME=VALUE"));
  }
  return std::make_pair(text.substr(0, eq), text.substr(eq + 1));
}

// Applies the register flags to `m`: only what was given, so that --update keeps the rest.
absl::Status ApplyFlags(const ModelsOptions& opt, VersionMetadata& m) {
  if (opt.training_data_option->count() > 0) m.training_data = opt.training_data;
  if (opt.code_revision_option->count() > 0) m.code_revision = opt.code_revision;
  if (opt.description_option->count() > 0) m.description = opt.description;
  if (opt.parent_option->count() > 0) m.parent = opt.parent;
  if (!opt.created.empty()) {
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, opt.created, &m.created, &err)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--created '", opt.created, "': not an RFC 3339 time (", err, ")"));
    }
  }
  for (const std::string& p : opt.params) {
    auto kv = SplitAssignment(p, "--param");
    if (!kv.ok()) return kv.status();
    m.parameters[kv->first] = kv->second;
  }
  for (const std::string& metric : opt.metrics) {
    auto kv = SplitAssignment(metric, "--metric");
    if (!kv.ok()) return kv.status();
    double value = 0;
    if (!absl::SimpleAtod(kv->second, &value) || !std::isfinite(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--metric '", metric, "': '", kv->second, "' is not a finite number"));
    }
    m.metrics[kv->first] = value;
  }
  return absl::OkStatus();
}

int RunRegister(const ModelsOptions& opt) {
  auto registry = OpenRegistry(opt);
  if (!registry.ok()) return Fail("register", registry.status());
  auto version = lifecycle::ParseVersionNumber(opt.version);
  if (!version.ok()) return Fail("register", version.status());
  if (opt.update && opt.replace) {
    return Fail("register",
                absl::InvalidArgumentError("--update and --replace exclude each other"));
  }
  absl::StatusOr<VersionMetadata> done;
  if (opt.update) {
    absl::Status flags = absl::OkStatus();
    done = (*registry)->Update(
        opt.model, *version, [&](VersionMetadata& m) { flags = ApplyFlags(opt, m); }, Author(opt));
    if (!flags.ok()) return Fail("register", flags);
  } else {
    VersionMetadata m;
    m.version = *version;
    if (absl::Status flags = ApplyFlags(opt, m); !flags.ok()) return Fail("register", flags);
    done = (*registry)->Register(opt.model, std::move(m), Author(opt), opt.replace);
  }
  if (!done.ok()) return Fail("register", done.status());
  if (opt.json) {
    PrintJson(lifecycle::VersionMetadataJson(opt.model, *done, true));
  } else {
    std::printf("%s: version %lld %s\n", opt.model.c_str(), static_cast<long long>(*version),
                opt.update ? "updated" : "registered");
  }
  return 0;
}

int RunAlias(const ModelsOptions& opt) {
  auto registry = OpenRegistry(opt);
  if (!registry.ok()) return Fail("alias", registry.status());
  absl::StatusOr<AliasChange> change;
  if (opt.remove) {
    if (!opt.version.empty()) {
      return Fail("alias", absl::InvalidArgumentError("--remove takes no --version"));
    }
    change = (*registry)->RemoveAlias(opt.model, opt.alias, Author(opt));
  } else {
    if (opt.version.empty()) {
      return Fail("alias", absl::InvalidArgumentError("give --version N (or --remove)"));
    }
    auto version = (*registry)->Resolve(opt.model, opt.version);
    if (!version.ok()) return Fail("alias", version.status());
    change = (*registry)->SetAlias(opt.model, opt.alias, *version, Author(opt));
  }
  if (!change.ok()) return Fail("alias", change.status());
  PrintChange(opt.model, *change, opt.json);
  return 0;
}

int RunPromote(const ModelsOptions& opt) {
  auto registry = OpenRegistry(opt);
  if (!registry.ok()) return Fail("promote", registry.status());
  auto version = (*registry)->Resolve(opt.model, opt.version);
  if (!version.ok()) return Fail("promote", version.status());
  auto change = (*registry)->Promote(opt.model, *version, Author(opt), opt.alias);
  if (!change.ok()) return Fail("promote", change.status());
  PrintChange(opt.model, *change, opt.json);
  return 0;
}

int RunRollback(const ModelsOptions& opt) {
  auto registry = OpenRegistry(opt);
  if (!registry.ok()) return Fail("rollback", registry.status());
  auto change = (*registry)->Rollback(opt.model, Author(opt), opt.alias);
  if (!change.ok()) return Fail("rollback", change.status());
  PrintChange(opt.model, *change, opt.json);
  return 0;
}

void AddCommon(CLI::App* sub, ModelsOptions* opt, bool model_required) {
  sub->add_option("--model-repository", opt->repository, "the model repository folder")->required();
  auto* model =
      sub->add_option("--model,-m", opt->model, "model name (a folder of the repository)");
  if (model_required) model->required();
  sub->add_flag("--json", opt->json, "print JSON instead of text");
}

void AddAuthor(CLI::App* sub, ModelsOptions* opt) {
  sub->add_option("--by", opt->by,
                  "who makes the change (default: $FLYWHEEL_USER, $USER or $LOGNAME)");
  sub->add_option("--note", opt->note, "why, kept in the alias history");
}

}  // namespace

Command AddModelsCommand(CLI::App& app) {
  auto opt = std::make_shared<ModelsOptions>();
  CLI::App* models = app.add_subcommand(
      "models", "Model registry: version metadata and aliases (production, ...)");
  models->require_subcommand(1);
  models->footer(
      "The registry of a model is <repository>/<model>/.flywheel/registry.json (see "
      "docs/lifecycle.md).\n"
      "Versions are the numbered folders; aliases name one of them and keep a rollback history.");

  CLI::App* list = models->add_subcommand("list", "List models and versions (on disk, registered)");
  AddCommon(list, opt.get(), false);

  CLI::App* show = models->add_subcommand(
      "show", "Show a model (versions, aliases, history) or one version's metadata");
  AddCommon(show, opt.get(), true);
  show->add_option("--version,-v", opt->version, "version number or alias");

  CLI::App* reg = models->add_subcommand("register", "Record how a version was made");
  AddCommon(reg, opt.get(), true);
  AddAuthor(reg, opt.get());
  reg->add_option("--version,-v", opt->version, "version number (its folder must exist)")
      ->required();
  opt->training_data_option =
      reg->add_option("--training-data", opt->training_data, "training data reference");
  opt->code_revision_option =
      reg->add_option("--code-revision", opt->code_revision, "revision of the training code");
  reg->add_option("--param", opt->params, "training parameter NAME=VALUE (repeatable)");
  reg->add_option("--metric", opt->metrics, "evaluation metric NAME=NUMBER (repeatable)");
  opt->parent_option =
      reg->add_option("--parent", opt->parent, "the version this one descends from")
          ->check(CLI::NonNegativeNumber);
  opt->description_option = reg->add_option("--description", opt->description, "free text");
  reg->add_option("--created", opt->created, "when it was made, RFC 3339 (default: now)");
  reg->add_flag("--update", opt->update,
                "change the given fields of existing metadata (parameters and metrics are "
                "merged) instead of refusing a registered version");
  reg->add_flag("--replace", opt->replace, "overwrite the metadata of a registered version");

  CLI::App* alias = models->add_subcommand("alias", "Point an alias at a version, or remove it");
  AddCommon(alias, opt.get(), true);
  AddAuthor(alias, opt.get());
  alias->add_option("--alias,-a", opt->alias, "alias name: [a-z0-9_-], not all digits")->required();
  alias->add_option("--version,-v", opt->version, "version number or another alias");
  alias->add_flag("--remove", opt->remove, "remove the alias");

  CLI::App* promote =
      models->add_subcommand("promote", "Point an alias (default production) at a version");
  AddCommon(promote, opt.get(), true);
  AddAuthor(promote, opt.get());
  promote->add_option("--version,-v", opt->version, "version number or alias (e.g. staging)")
      ->required();
  promote->add_option("--alias,-a", opt->alias, "the alias to move")
      ->default_val("production")
      ->capture_default_str();
  promote->footer("Example: flywheel models promote --model-repository models -m rank -v 3");

  CLI::App* rollback = models->add_subcommand(
      "rollback", "Move an alias back to its previous version (repeat to go further back)");
  AddCommon(rollback, opt.get(), true);
  AddAuthor(rollback, opt.get());
  rollback->add_option("--alias,-a", opt->alias, "the alias to move back")
      ->default_val("production")
      ->capture_default_str();

  return {models, [=]() {
            if (list->parsed()) return RunList(*opt);
            if (show->parsed()) return RunShow(*opt);
            if (reg->parsed()) return RunRegister(*opt);
            if (alias->parsed()) return RunAlias(*opt);
            if (promote->parsed()) return RunPromote(*opt);
            if (rollback->parsed()) return RunRollback(*opt);
            return 2;
          }};
}

}  // namespace flywheel::cli
