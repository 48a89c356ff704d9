// fma_peak: the f32 FMA throughput of this CPU, from registers only (no loads or stores in
// the timed loop), for 1 thread and for T threads. It is the denominator of "% of peak" in
// bench/compare_ort.sh's GEMM section.
//
// Each thread runs kChains independent FMA dependency chains (acc = acc * m + c) so that
// the FMA units' latency is hidden: latency 4 cycles x 2 pipes needs at least 8 chains; we
// use 24 zmm chains with AVX-512 (32 registers) and 12 ymm chains with AVX2 (16 registers).
// One FMA is 2 FLOPs per lane. The best of several repetitions is reported.
//
// Build: g++ -O2 -march=native -pthread bench/fma_peak.cpp -o build-bench/fma_peak
// Usage: fma_peak [--threads T] [--isa avx512|avx2] [--ms MILLISECONDS]
// Prints one JSON line: {"isa", "vector_bits", "chains", "results": [{"threads", "gflops"}]}.
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kRepetitions = 5;

struct Isa {
  const char *name;
  int vector_bits;
  int chains;
  double (*run)(int64_t iterations);  // returns a checksum so the work is not dead
};

#if defined(__AVX512F__)
constexpr int kChains512 = 24;

double run_avx512(int64_t iterations) {
  __m512 acc[kChains512];
#pragma GCC unroll 32
  for (int i = 0; i < kChains512; ++i) acc[i] = _mm512_set1_ps(1.0f + 0.001f * static_cast<float>(i));
  const __m512 m = _mm512_set1_ps(0.999999f);
  const __m512 c = _mm512_set1_ps(1e-6f);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 32
    for (int i = 0; i < kChains512; ++i) acc[i] = _mm512_fmadd_ps(acc[i], m, c);
  }
  __m512 sum = acc[0];
  for (int i = 1; i < kChains512; ++i) sum = _mm512_add_ps(sum, acc[i]);
  float lanes[16];
  _mm512_storeu_ps(lanes, sum);
  double s = 0;
  for (float v : lanes) s += v;
  return s;
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
constexpr int kChains256 = 12;

double run_avx2(int64_t iterations) {
  __m256 acc[kChains256];
#pragma GCC unroll 16
  for (int i = 0; i < kChains256; ++i) acc[i] = _mm256_set1_ps(1.0f + 0.001f * static_cast<float>(i));
  const __m256 m = _mm256_set1_ps(0.999999f);
  const __m256 c = _mm256_set1_ps(1e-6f);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < kChains256; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, c);
  }
  __m256 sum = acc[0];
  for (int i = 1; i < kChains256; ++i) sum = _mm256_add_ps(sum, acc[i]);
  float lanes[8];
  _mm256_storeu_ps(lanes, sum);
  double s = 0;
  for (float v : lanes) s += v;
  return s;
}
#endif

std::vector<Isa> available_isas() {
  std::vector<Isa> isas;
#if defined(__AVX512F__)
  isas.push_back({"avx512", 512, kChains512, run_avx512});
#endif
#if defined(__AVX2__) && defined(__FMA__)
  isas.push_back({"avx2", 256, kChains256, run_avx2});
#endif
  return isas;
}

double flops_per_iteration(const Isa &isa) { return 2.0 * (isa.vector_bits / 32) * isa.chains; }

void pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu % static_cast<int>(std::max(1u, std::thread::hardware_concurrency())), &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

// Wall time of `threads` threads each running `iterations` iterations, started together.
double timed_run(const Isa &isa, int threads, int64_t iterations) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<double> sums(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      pin_to_cpu(t);
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      sums[t] = isa.run(iterations);
    });
  }
  while (ready.load() != threads) {
  }
  auto t0 = std::chrono::steady_clock::now();
  go.store(true, std::memory_order_release);
  for (auto &th : pool) th.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  volatile double sink = 0;
  for (double s : sums) sink = sink + s;
  return seconds;
}

// GFLOP/s of `threads` threads: iterations sized so one run takes about `target_ms`.
double measure(const Isa &isa, int threads, double target_ms) {
  int64_t iterations = 1 << 16;
  double seconds = timed_run(isa, threads, iterations);
  while (seconds < target_ms * 1e-3 / 4) {
    iterations *= 2;
    seconds = timed_run(isa, threads, iterations);
  }
  iterations = static_cast<int64_t>(static_cast<double>(iterations) * (target_ms * 1e-3) / seconds) + 1;
  double best = 1e30;
  for (int r = 0; r < kRepetitions; ++r) best = std::min(best, timed_run(isa, threads, iterations));
  return flops_per_iteration(isa) * static_cast<double>(iterations) * threads / best / 1e9;
}

[[noreturn]] void usage(const char *msg) {
  if (msg) std::fprintf(stderr, "fma_peak: %s\n", msg);
  std::fprintf(stderr, "usage: fma_peak [--threads T] [--isa avx512|avx2] [--ms MILLISECONDS]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char **argv) {
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string isa_name;
  double target_ms = 200;
  for (int i = 1; i < argc; ++i) {
    auto value = [&]() -> const char * {
      if (i + 1 >= argc) usage("missing value");
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(value());
    else if (!std::strcmp(argv[i], "--isa")) isa_name = value();
    else if (!std::strcmp(argv[i], "--ms")) target_ms = std::atof(value());
    else usage("unknown option");
  }
  if (threads < 1 || target_ms <= 0) usage("--threads and --ms must be positive");

  std::vector<Isa> isas = available_isas();
  if (isas.empty()) usage("built without AVX2+FMA or AVX-512 (compile with -march=native on such a CPU)");
  const Isa *isa = &isas.front();
  if (!isa_name.empty()) {
    auto it = std::find_if(isas.begin(), isas.end(), [&](const Isa &x) { return isa_name == x.name; });
    if (it == isas.end()) usage("that ISA is not available in this build");
    isa = &*it;
  }

  std::vector<int> counts = {1};
  if (threads != 1) counts.push_back(threads);
  std::printf("{\"isa\": \"%s\", \"vector_bits\": %d, \"chains\": %d, \"results\": [", isa->name, isa->vector_bits,
              isa->chains);
  for (size_t i = 0; i < counts.size(); ++i)
    std::printf("%s{\"threads\": %d, \"gflops\": %.2f}", i ? ", " : "", counts[i], measure(*isa, counts[i], target_ms));
  std::printf("]}\n");
  return 0;
}
