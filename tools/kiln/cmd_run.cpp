#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>

#include "cli_args.h"
#include "codegen/kernel_cache.h"
#include "commands.h"
#include "model_source.h"
#include "runtime/thread_pool.h"
#include "support/error.h"
#include "support/npy.h"

namespace kiln {

namespace {

const char *kHelp =
    "usage: kiln run MODEL.onnx|MODEL.so [options]\n"
    "\n"
    "Compiles the model (or loads a library from `kiln compile`) and runs it once. Inputs come from .npy files; inputs not given\n"
    "are filled with seeded random values (floats uniform in [-1, 1), integers in [0, 10)).\n"
    "Prints each output's name, dtype, shape and a short summary.\n"
    "\n"
    "options:\n"
    "  --input NAME=FILE.npy   an input (repeatable); the model is compiled for its shape\n"
    "                          unless --shape says otherwise\n"
    "  --shape NAME=DIMS       fix an input's symbolic dims, e.g. x=1x3x640x640 (repeatable)\n"
    "  --output-dir DIR        write every output to DIR/<name>.npy\n"
    "  --seed N                seed for random inputs (default 0)\n"
    "  --threads N             worker threads (default: all cores)\n"
    "  -O0 .. -O3              optimization level (default -O3; -O0 runs the naive reference\n"
    "                          schedules every optimization is checked against)\n"
    "  --target T              native (default), x86-64-v3 (AVX2) or x86-64-v4 (AVX-512)\n"
    "  --repeat N              run N times (default 1); outputs and timing of the last run\n"
    "  --print-after PASS      print the Graph IR after PASS (or 'all') to stderr\n"
    "  --no-cache              compile every kernel with LLVM, without the kernel cache\n"
    "                          (${KILN_CACHE:-~/.cache/kiln}/kernels; KILN_KERNEL_CACHE=0\n"
    "                          also turns it off)\n"
    "  --json                  one JSON object on stdout: outputs and timings\n"
    "  -v, --verbose           progress of each compile step on stderr\n"
    "  --help                  this text\n";

Tensor random_tensor(DType t, const std::vector<int64_t> &shape, std::mt19937_64 &rng) {
  Tensor x(t, shape);
  std::uniform_real_distribution<double> uf(-1.0, 1.0);
  std::uniform_int_distribution<int> ui(0, 9);
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (t == DType::String) x.strings()[i] = std::to_string(ui(rng));
    else if (dtype_is_float(t)) x.set_f64(i, uf(rng));
    else x.set_f64(i, t == DType::Bool ? ui(rng) % 2 : ui(rng));
  }
  return x;
}

std::string safe_name(const std::string &s) {
  std::string r;
  for (char c : s) r += (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.') ? c : '_';
  return r.empty() ? "output" : r;
}

struct Summary {
  double min = 0, max = 0, mean = 0;
  int64_t nan = 0;
};

Summary summarize(const Tensor &t) {
  Summary s;
  if (t.dtype() == DType::String || t.numel() == 0) return s;
  s.min = INFINITY;
  s.max = -INFINITY;
  double sum = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = t.get_f64(i);
    if (std::isnan(v)) {
      ++s.nan;
      continue;
    }
    s.min = std::min(s.min, v);
    s.max = std::max(s.max, v);
    sum += v;
  }
  s.mean = sum / static_cast<double>(std::max<int64_t>(1, t.numel() - s.nan));
  return s;
}

}  // namespace

int cmd_run(int argc, char **argv) {
  Args a = parse_args(argc, argv, 2, {"--input", "--shape", "--output-dir", "--seed", "--threads", "--print-after", "--target",
                                            "--repeat"},
                      {"--json", "--no-cache", "--help", "-h", "-O0", "-O1", "-O2", "-O3", "--verbose", "-v"});
  if (a.flag("--help") || a.flag("-h")) {
    std::cout << kHelp;
    return 0;
  }
  user_assert(a.positional.size() == 1) << "run expects one MODEL argument (see kiln run --help)";
  CompileOptions opts = compile_options_from(a);
  int repeat = 1;
  if (!a.get("--repeat").empty()) {
    std::string r = a.get("--repeat");
    user_assert(r.find_first_not_of("0123456789") == std::string::npos && r.size() < 6 && std::stoi(r) > 0)
        << "--repeat expects a positive integer, got '" << r << "'";
    repeat = std::stoi(r);
  }
  if (!a.get("--threads").empty()) {
    std::string t = a.get("--threads");
    user_assert(t.find_first_not_of("0123456789") == std::string::npos && t.size() < 4 && std::stoi(t) > 0)
        << "--threads expects a positive integer, got '" << t << "'";
    set_num_threads(std::stoi(t));
  }
  uint64_t seed = 0;
  if (!a.get("--seed").empty()) {
    std::string s = a.get("--seed");
    user_assert(!s.empty() && s.find_first_not_of("0123456789") == std::string::npos && s.size() < 19)
        << "--seed expects a non-negative integer, got '" << s << "'";
    seed = std::stoull(s);
  }
  std::map<std::string, Tensor> inputs;
  for (auto &s : a.all("--input")) {
    auto [name, file] = split_pair(s, "--input");
    inputs[name] = read_npy(file);
  }

  auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<ModelSource> cm = ModelSource::open(a.positional[0], opts, inputs, a);
  double compile_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (opts.progress && cm->compiled()) {
    const CompileStats &st = cm->compiled()->stats();
    std::string dir = opts.kernel_cache ? kernel_cache_dir() : "";
    if (dir.empty()) {
      std::fprintf(stderr, "[kiln] kernel cache: off\n");
    } else {
      std::fprintf(stderr, "[kiln] kernel cache %s: %zu object groups loaded, %zu compiled\n", dir.c_str(),
                   st.kernel_cache_hits, st.kernel_cache_misses);
    }
  }

  std::mt19937_64 rng(seed);
  for (const Value *v : cm->graph().inputs) {
    if (inputs.count(v->name)) continue;
    user_assert(v->has_shape) << "input '" << v->name << "' has unknown rank; give it with --input or --shape";
    Shape shape = cm->caller_shape(*v);
    std::vector<int64_t> dims;
    for (size_t i = 0; i < shape.size(); ++i) {
      const Dim &d = shape[i];
      if (d.is_const()) {
        dims.push_back(d.value());
      } else {
        user_assert(i == 0) << "input '" << v->name << "' has symbolic dims " << shape_str(shape)
                            << "; fix them with --shape " << v->name << "=... or give --input";
        dims.push_back(1);  // a symbolic leading dim is the batch: 1
      }
    }
    inputs[v->name] = random_tensor(v->dtype, dims, rng);
  }

  for (int i = 1; i < repeat; ++i) cm->run(inputs);
  t0 = std::chrono::steady_clock::now();
  std::vector<Tensor> outs = cm->run(inputs);
  double run_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  std::string dir = a.get("--output-dir");
  if (!dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    user_assert(!ec) << "cannot create output directory '" << dir << "': " << ec.message();
  }
  nlohmann::json j;
  for (size_t i = 0; i < outs.size(); ++i) {
    const std::string &name = cm->graph().outputs[i]->name;
    const Tensor &t = outs[i];
    Summary s = summarize(t);
    if (!dir.empty()) write_npy(dir + "/" + safe_name(name) + ".npy", t);
    if (a.flag("--json")) {
      j["outputs"].push_back({{"name", name}, {"dtype", dtype_name(t.dtype())}, {"shape", t.shape()},
                              {"min", s.min}, {"max", s.max}, {"mean", s.mean}, {"nan", s.nan}});
    } else {
      std::printf("%s: %s[%s]  min %.6g  max %.6g  mean %.6g%s\n", name.c_str(), dtype_name(t.dtype()),
                  shape_str(t.shape()).c_str(), s.min, s.max, s.mean,
                  s.nan ? ("  (" + std::to_string(s.nan) + " NaN)").c_str() : "");
    }
  }
  if (a.flag("--json")) {
    j[cm->compiled() ? "compile_s" : "load_s"] = compile_s;
    j["run_ms"] = run_ms;
    std::cout << j.dump() << "\n";
  } else {
    std::printf("%s %.2f s, run %.2f ms (%d threads)\n", cm->compiled() ? "compile" : "load", compile_s, run_ms,
                num_threads());
  }
  return 0;
}

}  // namespace kiln
