// A persistent thread pool. Generated code reaches it through the C ABI below.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

extern "C" {
// Runs body(closure, b, e) over disjoint chunks covering [begin, end), on the pool.
void kiln_parallel_for(void (*body)(void *closure, int64_t begin, int64_t end), void *closure,
                       int64_t begin, int64_t end);
}

namespace kiln {

// Number of threads parallel loops use (default: hardware concurrency, or KILN_THREADS).
int num_threads();
void set_num_threads(int n);
void parallel_for(int64_t begin, int64_t end, const std::function<void(int64_t, int64_t)> &fn);
// Per worker (threads - 1 of them), the CPU it is pinned to, or -1: workers are pinned to
// distinct CPUs when the process may use at least as many CPUs as threads, unless the
// environment sets KILN_PIN_THREADS=0 (read by set_num_threads).
std::vector<int> pool_worker_cpus();

}  // namespace kiln
