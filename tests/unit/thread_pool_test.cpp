// The persistent thread pool (runtime/thread_pool.cpp): every item of a parallel loop runs
// exactly once, in contiguous chunks, for any item count and thread count; chunks shrink
// as the loop drains (guided scheduling) and run in short pieces, and a stalled thread's
// unstarted pieces are taken over by the others; a loop inside a parallel body runs inline;
// workers are pinned to distinct CPUs where the process has enough of them.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <chrono>
#include <cstdlib>
#include <set>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

#include "runtime/thread_pool.h"

namespace kiln {
namespace {

class ThreadPoolTest : public ::testing::Test {
 protected:
  int saved_ = num_threads();
  ~ThreadPoolTest() override { set_num_threads(saved_); }
};

TEST_F(ThreadPoolTest, EveryItemRunsExactlyOnce) {
  for (int threads : {1, 2, 3, 4}) {
    set_num_threads(threads);
    EXPECT_EQ(num_threads(), threads);
    for (int64_t n : {1, 2, 3, 7, 28, 1000, 100003}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      for (auto &h : hits) h.store(0);
      std::mutex m;
      std::vector<std::pair<int64_t, int64_t>> chunks;
      parallel_for(10, 10 + n, [&](int64_t b, int64_t e) {
        ASSERT_LT(b, e);
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i - 10)].fetch_add(1);
        std::lock_guard<std::mutex> g(m);
        chunks.emplace_back(b, e);
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "item " << i << " of " << n;
      // One thread runs the loop whole. Otherwise guided: a claim is at most half the
      // loop's share per thread and runs in halves (stolen ranges are halves too), so no
      // call is longer than half a claim; the claims shrink, so a long loop ends in
      // one-item calls.
      std::sort(chunks.begin(), chunks.end());
      if (threads == 1) {
        EXPECT_EQ(chunks.size(), 1u);
        continue;
      }
      for (auto [b, e] : chunks) EXPECT_LE(e - b, std::max<int64_t>(1, (n / (2 * threads) + 1) / 2)) << n << " items";
      if (n >= 1000) {
        EXPECT_EQ(chunks.back().second - chunks.back().first, 1) << n << " items";
      }
    }
  }
}

TEST_F(ThreadPoolTest, AStalledThreadHoldsUpOnlyThePieceItRuns) {
  // A worker stops in its first item until every other item is done (at most 10 s): the
  // rest of its chunk must be taken over by the caller, or the loop would wait on it.
  set_num_threads(2);
  const std::thread::id caller = std::this_thread::get_id();
  for (int attempt = 0; attempt < 20; ++attempt) {
    const int64_t n = 64;
    std::atomic<int64_t> finished{0};
    std::atomic<int> stalled{0};
    std::atomic<bool> released{false};
    std::vector<std::atomic<int>> hits(n);
    for (auto &h : hits) h.store(0);
    parallel_for(0, n, [&](int64_t b, int64_t e) {
      if (std::this_thread::get_id() != caller && stalled.fetch_add(1) == 0) {
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (finished.load() < n - (e - b) && std::chrono::steady_clock::now() < until) std::this_thread::yield();
        released = finished.load() == n - (e - b);
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(200));  // time for the worker to join
      }
      for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
      finished.fetch_add(e - b);
    });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "item " << i;
    if (stalled.load() == 0) continue;  // the worker joined too late to run anything: again
    EXPECT_TRUE(released.load()) << "the items after the stalled worker's first piece waited for it";
    return;
  }
  GTEST_SKIP() << "the worker never ran an item";
}

TEST_F(ThreadPoolTest, EmptyAndNestedLoops) {
  set_num_threads(2);
  int calls = 0;
  parallel_for(5, 5, [&](int64_t, int64_t) { ++calls; });
  parallel_for(5, 3, [&](int64_t, int64_t) { ++calls; });
  EXPECT_EQ(calls, 0);
  // A loop inside a parallel body runs on the calling thread, whole.
  std::atomic<int64_t> inner{0};
  parallel_for(0, 8, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      int pieces = 0;
      parallel_for(0, 100, [&](int64_t ib, int64_t ie) {
        ++pieces;
        inner.fetch_add(ie - ib);
      });
      EXPECT_EQ(pieces, 1);
    }
  });
  EXPECT_EQ(inner.load(), 800);
}

#if defined(__linux__)
std::vector<int> allowed() {
  cpu_set_t set;
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

TEST_F(ThreadPoolTest, WorkersArePinnedToDistinctCpus) {
  std::vector<int> cpus = allowed();
  if (cpus.size() < 2) GTEST_SKIP() << "one CPU";
  int threads = static_cast<int>(std::min<size_t>(cpus.size(), 4));
  set_num_threads(threads);
  std::vector<int> pinned = pool_worker_cpus();
  ASSERT_EQ(pinned.size(), static_cast<size_t>(threads - 1));
  std::set<int> distinct(pinned.begin(), pinned.end());
  EXPECT_EQ(distinct.size(), pinned.size());
  for (int c : pinned) EXPECT_NE(std::find(cpus.begin(), cpus.end(), c), cpus.end()) << c;
  // The workers run where they are pinned (a worker that met the caller on its CPU moved
  // to a free one when it joined the loop: compare with where they are after it).
  std::thread::id caller = std::this_thread::get_id();
  std::mutex m;
  std::set<int> seen;
  parallel_for(0, 64, [&](int64_t b, int64_t e) {
    std::this_thread::sleep_for(std::chrono::microseconds(200 * (e - b)));
    if (std::this_thread::get_id() == caller) return;
    std::lock_guard<std::mutex> g(m);
    seen.insert(sched_getcpu());
  });
  pinned = pool_worker_cpus();
  for (int c : seen) EXPECT_NE(std::find(pinned.begin(), pinned.end(), c), pinned.end()) << "a worker ran on CPU " << c;
  distinct = std::set<int>(pinned.begin(), pinned.end());
  EXPECT_EQ(distinct.size(), pinned.size());
}

TEST_F(ThreadPoolTest, NoPinningWhenOptedOutOrOversubscribed) {
  size_t ncpu = allowed().size();
  setenv("KILN_PIN_THREADS", "0", 1);
  set_num_threads(2);
  unsetenv("KILN_PIN_THREADS");
  EXPECT_EQ(pool_worker_cpus(), std::vector<int>({-1}));
  // More threads than CPUs: none pinned, and loops still run every item once.
  int threads = static_cast<int>(ncpu) + 1;
  set_num_threads(threads);
  EXPECT_EQ(pool_worker_cpus(), std::vector<int>(static_cast<size_t>(threads - 1), -1));
  std::atomic<int64_t> sum{0};
  parallel_for(0, 1000, [&](int64_t b, int64_t e) { sum.fetch_add(e - b); });
  EXPECT_EQ(sum.load(), 1000);
}
#endif

}  // namespace
}  // namespace kiln
