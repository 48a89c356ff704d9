// Subcommands of the kiln tool. Each returns the process exit code; user errors are
// thrown as kiln::Error and turned into exit code 2 by main().
#pragma once

namespace kiln {

int cmd_inspect(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_compile(int argc, char **argv);

}  // namespace kiln
