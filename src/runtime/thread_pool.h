// A persistent thread pool. Generated code reaches it through the C ABI below.
#pragma once
#include <cstdint>
#include <functional>

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

}  // namespace kiln
