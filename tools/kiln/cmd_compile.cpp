#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli_args.h"
#include "commands.h"
#include "compiler/model_library_writer.h"
#include "model_source.h"
#include "onnx/importer.h"
#include "support/error.h"

namespace kiln {

namespace {

const char *kHelp =
    "usage: kiln compile MODEL.onnx -o MODEL.so [options]\n"
    "\n"
    "Compiles the model ahead of time into one shared library: the generated kernels, the\n"
    "execution plan and the (pre-packed) weights. Run it with `kiln run MODEL.so`, from C or\n"
    "C++ through libkiln_runtime (include/kiln/runtime.h), or from Python (kiln.load).\n"
    "Nothing is compiled when the library loads; it needs no LLVM.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE       the library to write (required)\n"
    "  --target T              native (default: this CPU), x86-64-v3 (AVX2), x86-64-v4\n"
    "                          (AVX-512) or aarch64-linux-gnu (NEON; cross-compiled)\n"
    "  --shape NAME=DIMS       fix an input's symbolic dims, e.g. x=1x3x224x224 (repeatable);\n"
    "                          dims left symbolic stay dynamic in the library\n"
    "  -O0 .. -O3              optimization level (default -O3)\n"
    "  --no-cache              compile every kernel with LLVM, without the kernel cache\n"
    "  --json                  one JSON line: output, bytes, target, timings\n"
    "  -v, --verbose           progress of each compile step on stderr\n"
    "  --help                  this text\n";

}  // namespace

int cmd_compile(int argc, char **argv) {
  Args a = parse_args(argc, argv, 2, {"--output", "-o", "--target", "--shape"},
                      {"--json", "--no-cache", "--help", "-h", "-O0", "-O1", "-O2", "-O3", "--verbose", "-v"});
  if (a.flag("--help") || a.flag("-h")) {
    std::cout << kHelp;
    return 0;
  }
  user_assert(a.positional.size() == 1) << "compile expects one MODEL argument (see kiln compile --help)";
  std::string out = a.get("--output", a.get("-o"));
  user_assert(!out.empty()) << "compile needs the library to write: -o MODEL.so";
  user_assert(!std::filesystem::is_directory(out)) << "-o " << out << " is a directory; give a file name";
  CompileOptions opts = compile_options_from(a);
  auto t0 = std::chrono::steady_clock::now();
  Model m = load_onnx(a.positional[0]);
  LibraryStats st = compile_library(std::move(m), opts, out);
  double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (a.flag("--json")) {
    nlohmann::json j = {{"model", a.positional[0]}, {"output", out}, {"bytes", st.bytes}, {"target", opts.target},
                        {"opt_level", opts.opt_level}, {"kernels", st.compile.kernels}, {"compile_s", total},
                        {"link_s", st.seconds_link}, {"kernel_cache_hits", st.compile.kernel_cache_hits},
                        {"kernel_cache_misses", st.compile.kernel_cache_misses}};
    std::cout << j.dump() << "\n";
  } else {
    std::printf("%s: %zu kernels for %s, %.1f MB, compiled in %.2f s\n", out.c_str(), st.compile.kernels,
                opts.target.c_str(), static_cast<double>(st.bytes) / 1e6, total);
  }
  return 0;
}

}  // namespace kiln
