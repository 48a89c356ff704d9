// kiln: compile and run ONNX models. `kiln --help` lists the commands.
#include <cstring>
#include <iostream>
#include <string>

#include "commands.h"
#include "support/error.h"

namespace {

const char *kUsage =
    "kiln — a deep-learning compiler: ONNX in, LLVM-generated native code out.\n"
    "\n"
    "usage: kiln <command> [options]\n"
    "\n"
    "commands:\n"
    "  inspect MODEL   what is inside a model and how kiln will run it\n"
    "  run MODEL       compile and run a model on .npy inputs (or seeded random ones)\n"
    "  bench MODEL     compile once, then time repeated runs (median, min, p90)\n"
    "  compile MODEL   compile ahead of time into a shared library (-o MODEL.so) for this\n"
    "                  CPU, x86-64-v3/v4 or aarch64; run, bench and the C/C++/Python APIs\n"
    "                  load it\n"
    "\n"
    "Run `kiln <command> --help` for a command's options.\n"
    "Exit status: 0 on success, 2 on bad input (model, flag or data), 1 on an internal error.\n";

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  try {
    if (cmd == "inspect") return kiln::cmd_inspect(argc, argv);
    if (cmd == "run") return kiln::cmd_run(argc, argv);
    if (cmd == "bench") return kiln::cmd_bench(argc, argv);
    if (cmd == "compile") return kiln::cmd_compile(argc, argv);
    if (cmd == "--version") {
      std::cout << "kiln " KILN_VERSION "\n";
      return 0;
    }
    std::cerr << "kiln: unknown command '" << cmd << "' (try kiln --help)\n";
    return 2;
  } catch (const kiln::Error &e) {
    std::cerr << "kiln: error: " << e.what() << "\n";
    return e.kind() == kiln::ErrorKind::User ? 2 : 1;
  } catch (const std::bad_alloc &) {
    std::cerr << "kiln: error: out of memory\n";
    return 2;
  } catch (const std::exception &e) {
    std::cerr << "kiln: internal error: " << e.what() << "\n";
    return 1;
  }
}
