// Allocation of large buffers (tensors, the run-time arena).
#pragma once
#include <cstddef>

namespace kiln {

// `bytes` (rounded up to 64) of 64-byte-aligned memory, released with std::free; nullptr
// when out of memory. Buffers of 2 MiB and more start on a 2 MiB boundary and are advised
// as transparent huge pages (Linux): the conv and GEMM kernels walk activations and
// weights with strides of many KiB, which on 4 KiB pages costs a TLB miss per row.
void *alloc_buffer(size_t bytes);

}  // namespace kiln
