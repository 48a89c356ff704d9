#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>

#include "cli_args.h"
#include "commands.h"
#include "model_source.h"
#include "runtime/thread_pool.h"
#include "support/error.h"
#include "support/npy.h"

namespace kiln {

namespace {

const char *kHelp =
    "usage: kiln bench MODEL.onnx|MODEL.so [options]\n"
    "\n"
    "Compiles the model once (or loads a library from `kiln compile`), then times repeated runs on seeded random inputs (or the\n"
    "given .npy inputs). Compile time is reported separately from run time.\n"
    "\n"
    "options:\n"
    "  --shape NAME=DIMS     fix an input's symbolic dims (repeatable)\n"
    "  --input NAME=FILE.npy use this input instead of random data (repeatable); the\n"
    "                        model is compiled for its shape unless --shape says otherwise\n"
    "  --threads N           worker threads (default: all cores)\n"
    "  --warmup N            untimed runs first (default 3)\n"
    "  --iterations N        timed runs (default 20)\n"
    "  -O0 .. -O3            optimization level (default -O3; -O0 is the naive reference)\n"
    "  --target T            native (default), x86-64-v3 (AVX2) or x86-64-v4 (AVX-512)\n"
    "  --profile             after timing, the time per node and per op kind\n"
    "  --top N               nodes listed by --profile (default 25; 0: all)\n"
    "  --no-cache            compile every kernel with LLVM, without the kernel cache\n"
    "                        (${KILN_CACHE:-~/.cache/kiln}/kernels; KILN_KERNEL_CACHE=0 also\n"
    "                        turns it off)\n"
    "  --json                one line: {\"model\", \"median_ms\", \"min_ms\", \"p90_ms\",\n"
    "                        \"samples_ms\", \"compile_s\", \"kernel_cache_hits\", \"batch_split\", ...}\n"
    "  --help                this text\n";

int positive_int(const std::string &text, const std::string &opt, int def, int lo) {
  if (text.empty()) return def;
  user_assert(text.size() < 7 && text.find_first_not_of("0123456789") == std::string::npos && std::stoi(text) >= lo)
      << opt << " expects an integer >= " << lo << ", got '" << text << "'";
  return std::stoi(text);
}

// Random values for graph input `v`, whose callers pass `shape`.
Tensor random_input(const Value &v, const Shape &shape, std::mt19937_64 &rng) {
  user_assert(v.has_shape) << "input '" << v.name << "' has unknown rank; give it with --input or --shape";
  std::vector<int64_t> dims;
  for (size_t i = 0; i < shape.size(); ++i) {
    user_assert(shape[i].is_const() || i == 0) << "input '" << v.name << "' has symbolic dims " << shape_str(shape)
                                               << "; fix them with --shape " << v.name << "=...";
    dims.push_back(shape[i].is_const() ? shape[i].value() : 1);
  }
  Tensor t(v.dtype, dims);
  std::uniform_real_distribution<double> uf(-1.0, 1.0);
  std::uniform_int_distribution<int> ui(0, 9);
  for (int64_t i = 0; i < t.numel(); ++i) t.set_f64(i, dtype_is_float(v.dtype) ? uf(rng) : ui(rng) % (v.dtype == DType::Bool ? 2 : 10));
  return t;
}

// Runs `iterations` more times with per-node timing; prints the slowest nodes and the
// time per op kind.
void print_profile(const ModelSource &cm, const std::map<std::string, Tensor> &inputs, int iterations, size_t top) {
  cm.set_profiling(true);
  for (int i = 0; i < iterations; ++i) cm.run(inputs);
  cm.set_profiling(false);
  auto prof = cm.profile_ms();
  double total = 0;
  std::map<std::string, std::pair<double, int>> by_op;
  for (auto &[n, t] : prof) {
    total += t;
    auto &e = by_op[op_name(n->kind)];
    e.first += t;
    e.second += 1;
  }
  std::sort(prof.begin(), prof.end(), [](auto &x, auto &y) { return x.second > y.second; });
  std::printf("\nprofile: %.3f ms per run over %zu nodes\n  %-10s %6s  %s\n", total / iterations, prof.size(), "ms/run",
              "share", "node");
  for (size_t i = 0; i < prof.size() && (top == 0 || i < top); ++i) {
    std::printf("  %-10.3f %5.1f%%  %s\n", prof[i].second / iterations, 100 * prof[i].second / total,
                prof[i].first->describe().c_str());
  }
  std::vector<std::pair<std::string, std::pair<double, int>>> ops(by_op.begin(), by_op.end());
  std::sort(ops.begin(), ops.end(), [](auto &x, auto &y) { return x.second.first > y.second.first; });
  std::printf("\n  %-10s %6s  %-20s %s\n", "ms/run", "share", "op", "nodes");
  for (auto &[op, e] : ops) {
    std::printf("  %-10.3f %5.1f%%  %-20s %d\n", e.first / iterations, 100 * e.first / total, op.c_str(), e.second);
  }
}

}  // namespace

int cmd_bench(int argc, char **argv) {
  Args a = parse_args(argc, argv, 2, {"--shape", "--input", "--threads", "--warmup", "--iterations", "--target", "--top"},
                      {"--json", "--profile", "--no-cache", "--help", "-h", "-O0", "-O1", "-O2", "-O3"});
  if (a.flag("--help") || a.flag("-h")) {
    std::cout << kHelp;
    return 0;
  }
  user_assert(a.positional.size() == 1) << "bench expects one MODEL argument (see kiln bench --help)";
  CompileOptions opts = compile_options_from(a);
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
  auto cm = ModelSource::open(a.positional[0], opts, inputs, a);
  double compile_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::mt19937_64 rng(0);
  for (const Value *v : cm->graph().inputs) {
    if (!inputs.count(v->name)) inputs[v->name] = random_input(*v, cm->caller_shape(*v), rng);
  }
  for (int i = 0; i < warmup; ++i) cm->run(inputs);
  std::vector<double> ms;
  for (int i = 0; i < iterations; ++i) {
    auto r0 = std::chrono::steady_clock::now();
    cm->run(inputs);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - r0).count());
  }
  std::vector<double> samples = ms;
  std::sort(ms.begin(), ms.end());
  double median = ms.size() % 2 ? ms[ms.size() / 2] : (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]) / 2;
  double p90 = ms[std::min(ms.size() - 1, static_cast<size_t>(0.9 * static_cast<double>(ms.size())))];
  if (a.flag("--json")) {
    nlohmann::json j = {{"model", a.positional[0]}, {"median_ms", median}, {"min_ms", ms.front()}, {"p90_ms", p90},
                        {"iterations", iterations}, {"threads", num_threads()}, {"compile_s", compile_s},
                        {"opt_level", opts.opt_level}, {"target", opts.target}, {"samples_ms", samples},
                        {"kernel_cache_hits", cm->compiled() ? cm->compiled()->stats().kernel_cache_hits : 0},
                        {"kernel_cache_misses", cm->compiled() ? cm->compiled()->stats().kernel_cache_misses : 0},
                        {"batch_split", cm->compiled() ? cm->compiled()->stats().batch_split : 0}};
    if (cm->library()) {
      j["target"] = cm->library()->info().target;
      j["opt_level"] = cm->library()->info().opt_level;
      j["load_s"] = compile_s;
      j.erase("compile_s");
    }
    std::cout << j.dump() << "\n";
  } else {
    std::printf("%s: compile %.2f s; run median %.3f ms, min %.3f ms, p90 %.3f ms (%d iterations, %d threads)\n",
                a.positional[0].c_str(), compile_s, median, ms.front(), p90, iterations, num_threads());
    if (cm->compiled() && cm->compiled()->stats().batch_split > 1) {
      const CompileStats &st = cm->compiled()->stats();
      if (st.split_prefix_nodes) {
        std::printf("batch of %lld: the first %zu nodes run one sample at a time, the rest on the batch (split-batch; -O1 "
                    "keeps it whole)\n",
                    static_cast<long long>(st.batch_split), st.split_prefix_nodes);
      } else {
        std::printf("batch of %lld run one sample at a time (split-batch; -O1 keeps it whole)\n",
                    static_cast<long long>(st.batch_split));
      }
    }
  }
  if (a.flag("--profile")) print_profile(*cm, inputs, iterations, size_t(positive_int(a.get("--top"), "--top", 25, 0)));
  return 0;
}

}  // namespace kiln
