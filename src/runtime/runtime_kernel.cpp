#include "runtime/runtime_kernel.h"

#include "support/error.h"

namespace kiln {

const Tensor &RuntimeKernelContext::input(size_t i) const {
  user_assert(has(i)) << node.describe() << ": missing required input " << i;
  return *in[i];
}

RunFn string_kernel_of(OpKind k) {
  return k == OpKind::Cast || k == OpKind::CastLike ? &run_cast_strings : nullptr;
}

RunFn run_fn_of(OpKind k) {
  static const RunFn table[] = {
      nullptr,
#define KILN_OP(name, pattern, shape_fn, lower_fn) nullptr,
#define KILN_RUNTIME_OP(name, shape_fn, run_fn) &run_fn,
#define KILN_CONTROL_OP(name) nullptr,
#include "graph/ops.def"
#undef KILN_OP
#undef KILN_RUNTIME_OP
#undef KILN_CONTROL_OP
  };
  return table[static_cast<int>(k)];
}

}  // namespace kiln
