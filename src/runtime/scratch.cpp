#include "runtime/scratch.h"

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "support/memory.h"

namespace kiln {

namespace {

// Each block starts with a 64-byte header holding its usable size.
constexpr int64_t kHeader = 64;
// A thread keeps at most this many blocks and bytes; a block is reused for a request of
// at least a quarter of its size (so a big cached block does not serve small requests).
constexpr size_t kMaxBlocks = 16;
constexpr int64_t kMaxBytes = int64_t{256} << 20;
constexpr int64_t kHugePage = int64_t{2} << 20, kHugeFrom = int64_t{1} << 20;

struct Cache {
  std::vector<void *> blocks;  // headers
  int64_t bytes = 0;
  ~Cache() {
    for (void *b : blocks) std::free(b);
  }
};

thread_local Cache cache;

int64_t &size_of(void *header) { return *static_cast<int64_t *>(header); }

}  // namespace

int64_t scratch_cached_bytes() { return cache.bytes; }

}  // namespace kiln

extern "C" void *kiln_scratch_alloc(int64_t bytes) {
  using namespace kiln;
  if (bytes < 0) bytes = 0;
  // The smallest cached block that fits and is not far too big.
  size_t best = cache.blocks.size();
  for (size_t i = 0; i < cache.blocks.size(); ++i) {
    int64_t s = size_of(cache.blocks[i]);
    if (s >= bytes && s / 4 <= bytes && (best == cache.blocks.size() || s < size_of(cache.blocks[best]))) best = i;
  }
  void *h;
  if (best < cache.blocks.size()) {
    h = cache.blocks[best];
    cache.blocks.erase(cache.blocks.begin() + static_cast<std::ptrdiff_t>(best));
    cache.bytes -= size_of(h);
  } else {
    // A block of 1 MiB or more is rounded up to whole 2 MiB transparent huge pages (see
    // alloc_buffer): an im2col panel of 1.8 MB on 4 KiB pages made a 3x3 stride-2 conv's
    // GEMM (which reads it at a stride of 784 B) 2x slower in some processes than others.
    int64_t block = kHeader + bytes;
    if (block >= kHugeFrom) block = (block + kHugePage - 1) / kHugePage * kHugePage;
    bytes = block - kHeader;
    h = alloc_buffer(static_cast<size_t>(block));
    if (!h) {
      std::fprintf(stderr, "kiln: out of memory allocating %lld bytes of kernel scratch\n",
                   static_cast<long long>(bytes));
      std::abort();
    }
    size_of(h) = bytes;
  }
  return static_cast<char *>(h) + kHeader;
}

extern "C" void kiln_scratch_free(void *p) {
  using namespace kiln;
  if (!p) return;
  void *h = static_cast<char *>(p) - kHeader;
  cache.blocks.push_back(h);
  cache.bytes += size_of(h);
  // Over the limits: release the oldest blocks first.
  while (cache.blocks.size() > kMaxBlocks || cache.bytes > kMaxBytes) {
    void *old = cache.blocks.front();
    cache.blocks.erase(cache.blocks.begin());
    cache.bytes -= size_of(old);
    std::free(old);
  }
}
