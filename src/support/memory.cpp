#include "support/memory.h"

#include <cstdlib>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace kiln {

void *alloc_buffer(size_t bytes) {
  constexpr size_t kHuge = size_t{2} << 20;
  size_t alloc = bytes < 64 ? 64 : (bytes + 63) / 64 * 64;
  if (alloc < kHuge) return std::aligned_alloc(64, alloc);
  void *p = nullptr;
  if (posix_memalign(&p, kHuge, alloc) != 0) return nullptr;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // Only whole 2 MiB pages: a huge page over the tail would back memory never asked for.
  madvise(p, alloc / kHuge * kHuge, MADV_HUGEPAGE);  // advice only: failure is harmless
#endif
  return p;
}

}  // namespace kiln
