// Kernel scratch (runtime/scratch.h): aligned blocks, reused from the calling thread's
// cache instead of going back to malloc, within the cache's limits. (Generated code calls
// it for every heap Allocate: the conv, GEMM and Winograd tests run it.)
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <thread>

#include "runtime/scratch.h"

namespace kiln {
namespace {

TEST(Scratch, BlocksAreAlignedAndReusedByTheirThread) {
  int64_t before = scratch_cached_bytes();
  void *a = kiln_scratch_alloc(3 << 20);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
  std::memset(a, 1, 3 << 20);  // all of it is usable
  kiln_scratch_free(a);
  // A block of 1 MiB or more spans whole 2 MiB (huge) pages from a 2 MiB boundary: the
  // 64-byte header before the data, the rest all usable and cached.
  EXPECT_EQ((reinterpret_cast<uintptr_t>(a) - 64) % (2 << 20), 0u);
  EXPECT_EQ(scratch_cached_bytes(), before + (4 << 20) - 64);
  // The same size, and a somewhat smaller one, get the cached block back.
  void *b = kiln_scratch_alloc(3 << 20);
  EXPECT_EQ(b, a);
  kiln_scratch_free(b);
  void *c = kiln_scratch_alloc(2 << 20);
  EXPECT_EQ(c, a);
  // A much smaller request does not take the big block.
  void *d = kiln_scratch_alloc(4096);
  EXPECT_NE(d, a);
  kiln_scratch_free(d);
  kiln_scratch_free(c);
  // Another thread has its own cache: it cannot get this thread's block.
  void *other = nullptr;
  std::thread t([&] {
    other = kiln_scratch_alloc(3 << 20);
    kiln_scratch_free(other);
  });
  t.join();
  EXPECT_NE(other, a);
  kiln_scratch_free(nullptr);  // a no-op, like free
}

TEST(Scratch, TheCacheStaysWithinItsLimits) {
  // More blocks than the cache keeps (16) and more bytes (256 MiB): the oldest go back.
  std::vector<void *> blocks;
  for (int i = 0; i < 20; ++i) blocks.push_back(kiln_scratch_alloc(int64_t{20} << 20));
  for (void *p : blocks) kiln_scratch_free(p);
  EXPECT_LE(scratch_cached_bytes(), int64_t{256} << 20);
  EXPECT_GT(scratch_cached_bytes(), 0);
}

}  // namespace
}  // namespace kiln
