#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>

#include "cli_args.h"
#include "commands.h"
#include "compiler/compiler.h"
#include "onnx/importer.h"
#include "runtime/thread_pool.h"
#include "support/error.h"
#include "support/npy.h"

namespace kiln {

namespace {

const char *kHelp =
    "usage: kiln bench MODEL.onnx [options]\n"
    "\n"
    "Compiles the model once, then times repeated runs on seeded random inputs (or the\n"
    "given .npy inputs). Compile time is reported separately from run time.\n"
    "\n"
    "options:\n"
    "  --shape NAME=DIMS     fix an input's symbolic dims (repeatable)\n"
    "  --input NAME=FILE.npy use this input instead of random data (repeatable)\n"
    "  --threads N           worker threads (default: all cores)\n"
    "  --warmup N            untimed runs first (default 3)\n"
    "  --iterations N        timed runs (default 20)\n"
    "  -O0 .. -O3            optimization level (default -O3; today every level runs the\n"
    "                        -O0 schedules)\n"
    "  --json                one line: {\"model\", \"median_ms\", \"min_ms\", \"p90_ms\", ...}\n"
    "  --help                this text\n";

int positive_int(const std::string &text, const std::string &opt, int def, int lo) {
  if (text.empty()) return def;
  user_assert(text.size() < 7 && text.find_first_not_of("0123456789") == std::string::npos && std::stoi(text) >= lo)
      << opt << " expects an integer >= " << lo << ", got '" << text << "'";
  return std::stoi(text);
}

Tensor random_input(const Value &v, std::mt19937_64 &rng) {
  user_assert(v.has_shape) << "input '" << v.name << "' has unknown rank; give it with --input or --shape";
  std::vector<int64_t> dims;
  for (size_t i = 0; i < v.shape.size(); ++i) {
    user_assert(v.shape[i].is_const() || i == 0) << "input '" << v.name << "' has symbolic dims "
                                                 << shape_str(v.shape) << "; fix them with --shape " << v.name << "=...";
    dims.push_back(v.shape[i].is_const() ? v.shape[i].value() : 1);
  }
  Tensor t(v.dtype, dims);
  std::uniform_real_distribution<double> uf(-1.0, 1.0);
  std::uniform_int_distribution<int> ui(0, 9);
  for (int64_t i = 0; i < t.numel(); ++i) t.set_f64(i, dtype_is_float(v.dtype) ? uf(rng) : ui(rng) % (v.dtype == DType::Bool ? 2 : 10));
  return t;
}

}  // namespace

int cmd_bench(int argc, char **argv) {
  Args a = parse_args(argc, argv, 2, {"--shape", "--input", "--threads", "--warmup", "--iterations"},
                      {"--json", "--help", "-h", "-O0", "-O1", "-O2", "-O3"});
  if (a.flag("--help") || a.flag("-h")) {
    std::cout << kHelp;
    return 0;
  }
  user_assert(a.positional.size() == 1) << "bench expects one MODEL argument (see kiln bench --help)";
  CompileOptions opts;
  opts.opt_level = 3;
  for (int l = 0; l <= 3; ++l) {
    if (a.flag("-O" + std::to_string(l))) opts.opt_level = l;
  }
  for (auto &s : a.all("--shape")) {
    auto [name, dims] = split_pair(s, "--shape");
    opts.input_shapes[name] = parse_shape(dims, "--shape " + name);
  }
  int threads = positive_int(a.get("--threads"), "--threads", 0, 1);
  if (threads) set_num_threads(threads);
  int warmup = positive_int(a.get("--warmup"), "--warmup", 3, 0);
  int iterations = positive_int(a.get("--iterations"), "--iterations", 20, 1);
  std::map<std::string, Tensor> inputs;
  for (auto &s : a.all("--input")) {
    auto [name, file] = split_pair(s, "--input");
    inputs[name] = read_npy(file);
  }

  auto t0 = std::chrono::steady_clock::now();
  auto cm = CompiledModel::compile(load_onnx(a.positional[0]), opts);
  double compile_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::mt19937_64 rng(0);
  for (const Value *v : cm->graph().inputs) {
    if (!inputs.count(v->name)) inputs[v->name] = random_input(*v, rng);
  }
  for (int i = 0; i < warmup; ++i) cm->run(inputs);
  std::vector<double> ms;
  for (int i = 0; i < iterations; ++i) {
    auto r0 = std::chrono::steady_clock::now();
    cm->run(inputs);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - r0).count());
  }
  std::sort(ms.begin(), ms.end());
  double median = ms.size() % 2 ? ms[ms.size() / 2] : (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]) / 2;
  double p90 = ms[std::min(ms.size() - 1, static_cast<size_t>(0.9 * static_cast<double>(ms.size())))];
  if (a.flag("--json")) {
    nlohmann::json j = {{"model", a.positional[0]}, {"median_ms", median}, {"min_ms", ms.front()}, {"p90_ms", p90},
                        {"iterations", iterations}, {"threads", num_threads()}, {"compile_s", compile_s},
                        {"opt_level", opts.opt_level}};
    std::cout << j.dump() << "\n";
  } else {
    std::printf("%s: compile %.2f s; run median %.3f ms, min %.3f ms, p90 %.3f ms (%d iterations, %d threads)\n",
                a.positional[0].c_str(), compile_s, median, ms.front(), p90, iterations, num_threads());
  }
  return 0;
}

}  // namespace kiln
