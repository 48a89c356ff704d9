#include "compiler/kernel_builder.h"

#include "lower/lower.h"
#include "support/error.h"

namespace kiln {

std::optional<KernelSpec> build_kernel(const Node &n, const std::vector<OperandDesc> &ins,
                                       const std::vector<OperandDesc> &outs, const std::string &name,
                                       const LowerOptions &opts, int *needed) {
  LowerFn fn = lower_fn_of(n.kind);
  internal_assert(fn) << "no lowering for " << n.describe();
  KernelSpec spec;
  spec.kernel.name = name;
  std::vector<Operand> in_ops, out_ops;
  auto make = [&](const OperandDesc &d, const std::string &buf, int operand_index) {
    Operand o;
    o.dtype = d.dtype;
    o.value = d.value;
    if (!o.present()) return o;
    o.buf = buf;
    for (size_t a = 0; a < d.shape.size(); ++a) {
      if (d.shape[a].is_const()) {
        o.shape.push_back(Expr(d.shape[a].value()));
      } else {
        std::string v = buf + "_d" + std::to_string(a);
        o.shape.push_back(Var::make(Type::index(), v));
        spec.kernel.dims.push_back(v);
        spec.dim_refs.emplace_back(operand_index, static_cast<int>(a));
      }
    }
    spec.kernel.buffers.push_back({buf, o.storage()});
    return o;
  };
  for (size_t i = 0; i < ins.size(); ++i) in_ops.push_back(make(ins[i], "x" + std::to_string(i), static_cast<int>(i)));
  for (size_t i = 0; i < outs.size(); ++i) {
    out_ops.push_back(make(outs[i], "y" + std::to_string(i), static_cast<int>(ins.size() + i)));
  }
  LowerContext ctx(n, std::move(in_ops), std::move(out_ops), opts);
  try {
    spec.kernel.body = fn(ctx);
  } catch (const NeedsValue &nv) {
    if (needed) *needed = nv.input;
    return std::nullopt;
  }
  return spec;
}

}  // namespace kiln
