// Kernel scratch memory: what a kernel's Allocate of more than a few KiB (im2col panels,
// Winograd transforms) takes and gives back on every run. Generated code reaches it
// through the C ABI below.
//
// Blocks are cached per thread instead of going back to malloc: a multi-MiB block that
// malloc returns to the kernel (trimmed heap top, munmap) costs a page fault per 4 KiB
// page the next time a kernel touches it -- measured as more than half of a Winograd
// conv's time before this cache.
#pragma once
#include <cstdint>

extern "C" {
// `bytes` of 64-byte-aligned scratch (aborts with a message when out of memory).
void *kiln_scratch_alloc(int64_t bytes);
// Gives a block from kiln_scratch_alloc back (to the calling thread's cache).
void kiln_scratch_free(void *p);
}

namespace kiln {

// Bytes the calling thread holds in its cache (for tests).
int64_t scratch_cached_bytes();

}  // namespace kiln
