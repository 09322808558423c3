// The flywheel command line. Subcommands are added by the files beside this one.
#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  CLI::App app{"flywheel: ML serving platform"};
  app.require_subcommand(1);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
