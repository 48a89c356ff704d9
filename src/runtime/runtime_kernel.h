// Runtime kernels: plain C++ implementations of non-affine ops (TopK, NonZero, NMS,
// random generators, ...). The executor calls them with the node (for attributes) and
// concrete input tensors; they allocate and fill their outputs, whose shapes may depend
// on the data.
#pragma once
#include <vector>

#include "graph/graph.h"

namespace kiln {

struct RuntimeKernelContext {
  const Node &node;
  std::vector<const Tensor *> in;  // null for omitted optional inputs
  std::vector<Tensor> out;         // sized to node.outputs; kernels fill the present ones
  bool has(size_t i) const { return i < in.size() && in[i] != nullptr; }
  const Tensor &input(size_t i) const;
};

using RunFn = void (*)(RuntimeKernelContext &);
RunFn run_fn_of(OpKind k);
// C++ kernels for string instances of codegen ops (generated code has no strings):
// Cast/CastLike to and from strings. nullptr when the op has none.
RunFn string_kernel_of(OpKind k);
void run_cast_strings(RuntimeKernelContext &c);

#define KILN_OP(name, pattern, shape_fn, lower_fn)
#define KILN_RUNTIME_OP(name, shape_fn, run_fn) void run_fn(RuntimeKernelContext &);
#define KILN_CONTROL_OP(name)
#include "graph/ops.def"
#undef KILN_OP
#undef KILN_RUNTIME_OP
#undef KILN_CONTROL_OP

}  // namespace kiln
