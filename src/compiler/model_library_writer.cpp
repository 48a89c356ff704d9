#include "compiler/model_library_writer.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <unistd.h>

#include "codegen/jit.h"
#include "codegen/object_compiler.h"
#include "compiler/kernel_table.h"
#include "runtime/cpu_features.h"
#include "runtime/model_format.h"
#include "support/error.h"

namespace kiln {

namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Every codegen node needs its kernel now: a library cannot compile at run time.
void check_all_compiled(const Graph &g, const KernelTable &table) {
  for (auto &n : g.nodes) {
    for (auto &[name, a] : n->attrs) {
      for (auto &sub : a.graphs) check_all_compiled(*sub, table);
    }
    if (op_path(n->kind) != ExecPath::Codegen || node_uses_strings(*n) || table.count(n.get())) continue;
    user_error << n->describe() << ": its kernel depends on values known only at run time, which a compiled "
               << "library cannot specialize; pin the input shapes with --shape (or use kiln run on the .onnx)";
  }
}

std::string quote(const std::string &s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

void write_file(const fs::path &p, const char *data, size_t n) {
  std::ofstream f(p, std::ios::binary);
  f.write(data, static_cast<std::streamsize>(n));
  user_assert(f.good()) << "cannot write " << p.string();
}

}  // namespace

std::string linker_for(const std::string &arch) {
  if (arch == host_arch()) return "cc";
  return arch + "-linux-gnu-gcc";
}

LibraryStats compile_library(Model model, const CompileOptions &opts, const std::string &path) {
  LibraryStats stats;
  ObjectCompiler target(opts.target, opts.kernel_cache, /*runnable=*/false);
  // Constant folding runs on this machine: with the target's own code when it runs here
  // (so the library computes exactly what the JIT does), else with the host's.
  Jit folder(target.arch() == host_arch() ? opts.target : "native", opts.kernel_cache);
  std::string linker = linker_for(target.arch());
  user_assert(std::system(("command -v " + linker + " >/dev/null 2>&1").c_str()) == 0)
      << "linking for " << target.arch() << " needs `" << linker << "`, which is not installed "
      << "(scripts/install-deps.sh installs it)";

  LowerOptions lopts;
  lopts.opt_level = opts.opt_level;
  lopts.vector_bits = target.vector_bits();
  lopts.vector_registers = target.vector_registers();
  auto t0 = std::chrono::steady_clock::now();
  CompileOptions whole = opts;
  whole.split_batch = false;  // the library runtime runs a batch whole (no sample loop)
  run_pipeline(model, whole, folder, lopts, stats.compile);
  stats.compile.seconds_passes = seconds_since(t0);

  t0 = std::chrono::steady_clock::now();
  std::vector<Kernel> kernels;
  std::map<std::string, std::string> dedup;
  KernelTable table;
  build_kernel_table(*model.graph, lopts, kernels, dedup, table);
  check_all_compiled(*model.graph, table);
  stats.compile.seconds_lower = seconds_since(t0);
  stats.compile.kernels = kernels.size();
  if (opts.progress) {
    std::cerr << "[kiln] lowered " << kernels.size() << " distinct kernels; compiling for " << target.triple()
              << " with LLVM\n";
  }

  t0 = std::chrono::steady_clock::now();
  std::vector<ObjectGroup> groups = target.compile(kernels, JitOptions{}, "kiln_");
  stats.compile.seconds_llvm = seconds_since(t0);
  stats.compile.kernel_cache_hits = target.cache_stats().hits;
  stats.compile.kernel_cache_misses = target.cache_stats().misses;

  t0 = std::chrono::steady_clock::now();
  ModelLibraryInfo info;
  info.kiln_version = KILN_VERSION;
  info.target = opts.target;
  info.arch = target.arch();
  info.cpu_features = target.cpu_features();
  info.opt_level = opts.opt_level;
  info.source = fs::path(model.path).filename().string();
  std::string data = target.model_data_object(serialize_model(info, model, table));

  // Objects go to a private directory, the library to a temporary name next to `path`,
  // renamed once the linker succeeded: a failed compile never leaves a broken library.
  fs::path dir = fs::temp_directory_path() / ("kiln-link-" + std::to_string(getpid()) + "-" +
                                              std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  fs::create_directories(dir);
  struct Cleanup {
    fs::path d;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(d, ec);
    }
  } cleanup{dir};
  std::string cmd = linker + " -shared -nostartfiles -Wl,-z,noexecstack -Wl,--hash-style=gnu -o " +
                    quote(path + ".tmp");
  for (size_t g = 0; g < groups.size(); ++g) {
    fs::path p = dir / ("kernels" + std::to_string(g) + ".o");
    write_file(p, groups[g].object.data(), groups[g].object.size());
    cmd += " " + quote(p.string());
  }
  fs::path dp = dir / "model_data.o";
  write_file(dp, data.data(), data.size());
  cmd += " " + quote(dp.string()) + " -lm -lc 2>" + quote((dir / "link.log").string());
  int rc = std::system(cmd.c_str());
  if (rc != 0) {
    std::ifstream log(dir / "link.log");
    std::string first;
    std::getline(log, first);
    std::error_code ec;
    fs::remove(path + ".tmp", ec);
    user_error << "linking " << path << " with " << linker << " failed: " << first;
  }
  std::error_code ec;
  fs::rename(path + ".tmp", path, ec);
  user_assert(!ec) << "cannot write " << path << ": " << ec.message();
  stats.seconds_link = seconds_since(t0);
  stats.bytes = fs::file_size(path);
  if (opts.progress) std::cerr << "[kiln] wrote " << path << " (" << stats.bytes << " bytes)\n";
  return stats;
}

}  // namespace kiln
