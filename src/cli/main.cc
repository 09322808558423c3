// The flywheel command line: parses arguments and dispatches to the subcommand files beside this
// one (serve_command.cc, infer_command.cc, bench_command.cc).
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/commands.h"

#ifndef FLYWHEEL_VERSION
#define FLYWHEEL_VERSION "unknown"
#endif

int main(int argc, char** argv) {
  CLI::App app{
      "flywheel: ML serving platform. Run `flywheel <command> --help` for a command's options."};
  app.name("flywheel");
  app.set_version_flag("--version", std::string("flywheel ") + FLYWHEEL_VERSION);
  app.require_subcommand(1);

  const std::vector<flywheel::cli::Command> commands = {
      flywheel::cli::AddInferCommand(app),    flywheel::cli::AddBenchCommand(app),
      flywheel::cli::AddServeCommand(app),    flywheel::cli::AddLogCommand(app),
      flywheel::cli::AddModelsCommand(app),   flywheel::cli::AddMonitorCommand(app),
      flywheel::cli::AddFeaturesCommand(app), flywheel::cli::AddLoopCommand(app),
      flywheel::cli::AddRolloutCommand(app),
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, like every other flywheel error; --help has the details.
    std::fprintf(stderr, "flywheel: error: %s (see flywheel --help)\n", e.what());
    return 2;
  }
  for (const flywheel::cli::Command& command : commands) {
    if (command.app->parsed()) return command.run();
  }
  return 2;
}
