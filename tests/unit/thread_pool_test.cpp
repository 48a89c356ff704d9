// The persistent thread pool (runtime/thread_pool.cpp): every item of a parallel loop runs
// exactly once, in contiguous chunks, for any item count and thread count; chunks shrink
// as the loop drains (guided scheduling); a loop inside a parallel body runs inline.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <vector>

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
      // One thread runs the loop whole. Otherwise guided: no chunk is longer than half the
      // loop's share per thread, and the chunks shrink, so a long loop ends in short chunks.
      std::sort(chunks.begin(), chunks.end());
      if (threads == 1) {
        EXPECT_EQ(chunks.size(), 1u);
        continue;
      }
      for (auto [b, e] : chunks) EXPECT_LE(e - b, std::max<int64_t>(1, n / (2 * threads))) << n << " items";
      if (n >= 1000) EXPECT_EQ(chunks.back().second - chunks.back().first, 1) << n << " items";
    }
  }
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

}  // namespace
}  // namespace kiln
