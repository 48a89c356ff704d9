// vcpu_noise: how steady each CPU's compute speed is over time. One thread pinned to each
// allowed CPU times the same register-only FMA loop (~2 ms) over and over, all threads
// starting each repetition together; a CPU whose core another tenant's thread shares for
// a while (SMT sibling on the host) shows up as a run of slow repetitions on that CPU only.
// On this project's 2-vCPU VM it explained the "slow stretches" in docs/PERFORMANCE.md.
//
// Build: g++ -O2 -march=native -pthread bench/vcpu_noise.cpp -o build-bench/vcpu_noise
// Usage: vcpu_noise [REPETITIONS (default 400)]
// Prints one line per repetition (ms per CPU), then per CPU: median, slowest, and how many
// repetitions took over 1.3x that CPU's median.
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

constexpr int kChains = 12;
constexpr int kSteps = 150000;

// kSteps rounds of kChains independent FMA chains on 256-bit registers; returns ms.
double fma_loop() {
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(0.001f * static_cast<float>(i));
  const __m256 m = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(0.0001f);
  auto t0 = std::chrono::steady_clock::now();
  for (int k = 0; k < kSteps; ++k) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, c);
  }
  auto t1 = std::chrono::steady_clock::now();
  float sink[8];
  __m256 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm256_add_ps(sum, acc[i]);
  _mm256_storeu_ps(sink, sum);
  if (sink[0] == 12345.0f) std::puts("");  // keeps the loop
  return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

}  // namespace

int main(int argc, char **argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 400;
  if (reps <= 0) {
    std::fprintf(stderr, "vcpu_noise: REPETITIONS must be a positive number\n");
    return 2;
  }
  cpu_set_t set;
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  if (cpus.empty()) cpus.push_back(0);
  const size_t n = cpus.size();
  std::vector<std::vector<double>> ms(n, std::vector<double>(static_cast<size_t>(reps)));
  std::atomic<int> arrived{0};
  std::vector<std::thread> threads;
  for (size_t t = 0; t < n; ++t) {
    threads.emplace_back([&, t] {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpus[t], &one);
      pthread_setaffinity_np(pthread_self(), sizeof one, &one);
      for (int r = 0; r < reps; ++r) {
        // Start together: every thread waits for all to reach repetition r.
        arrived.fetch_add(1);
        while (arrived.load() < static_cast<int>(n) * (r + 1)) std::this_thread::yield();
        ms[t][static_cast<size_t>(r)] = fma_loop();
      }
    });
  }
  for (auto &th : threads) th.join();
  for (int r = 0; r < reps; ++r) {
    for (size_t t = 0; t < n; ++t) std::printf("%s%.2f", t ? " " : "", ms[t][static_cast<size_t>(r)]);
    std::printf("\n");
  }
  for (size_t t = 0; t < n; ++t) {
    std::vector<double> v = ms[t];
    std::sort(v.begin(), v.end());
    double median = v[v.size() / 2];
    long slow = std::count_if(v.begin(), v.end(), [&](double x) { return x > 1.3 * median; });
    std::printf("cpu %d: median %.2f ms, slowest %.2f ms, %ld of %d over 1.3x the median\n", cpus[t], median,
                v.back(), slow, reps);
  }
  return 0;
}
