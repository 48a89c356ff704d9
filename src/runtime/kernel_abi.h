// The calling convention of generated kernels, shared by the JIT, model libraries and the
// executor: operand buffers (inputs then outputs, omitted optionals skipped) and the
// run-time extents of the kernel's symbolic dims.
#pragma once
#include <cstdint>

namespace kiln {

using KernelFn = void (*)(void **buffers, const int64_t *dims);

}  // namespace kiln
