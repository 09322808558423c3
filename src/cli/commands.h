// The subcommands of the `flywheel` binary. Each Add*Command registers a subcommand and its
// options on `app` and returns it with a function that runs it (after parsing) and returns the
// process exit code.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace flywheel::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

Command AddInferCommand(CLI::App& app);
Command AddBenchCommand(CLI::App& app);
Command AddServeCommand(CLI::App& app);
Command AddLogCommand(CLI::App& app);
Command AddModelsCommand(CLI::App& app);
Command AddMonitorCommand(CLI::App& app);
Command AddFeaturesCommand(CLI::App& app);
Command AddRolloutCommand(CLI::App& app);
Command AddLoopCommand(CLI::App& app);

}  // namespace flywheel::cli
