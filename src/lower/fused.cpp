// Lowerings of the ops made by passes/fuse_epilogues.cpp. At -O1 and above they use the
// GEMM schedules with the epilogue inside the tile; otherwise the reference op followed
// by an elementwise pass over its output (the same result, the -O0 oracle).
#include "graph/conv_attrs.h"
#include "lower/conv_schedule.h"
#include "lower/matmul_schedule.h"
#include "support/error.h"

namespace kiln {

namespace {

// y = act(y + bias[last dim] + z), element by element over the whole output.
// y = act(y + bias + z) * post_scale + post_shift; the per-channel vectors index the
// channel axis `axis`.
Stmt reference_epilogue(LowerContext &c, int axis, const Operand *bias, const Operand *z, const Activation &act,
                        const Operand *post_scale, const Operand *post_shift) {
  const Operand &y = c.out[0];
  return loop_nest(c, y.shape, [&](const std::vector<Expr> &i) {
    Expr v = load(y, i);
    if (bias) v = v + load(*bias, {i[axis]});
    if (z) v = v + load(*z, i);
    v = act.apply(v);
    if (post_scale) v = v * load(*post_scale, {i[axis]});
    if (post_shift) v = v + load(*post_shift, {i[axis]});
    return store(y, i, v);
  }, ForKind::Parallel);
}

const Operand *optional_input(LowerContext &c, size_t i) { return c.has(i) ? &c.in[i] : nullptr; }

}  // namespace

Stmt lower_fused_conv(LowerContext &c) {
  const Operand &x = c.in[0], &w = c.in[1];
  int sp = x.rank() - 2;
  ConvAttrs a = ConvAttrs::read(c.node, sp, static_kernel_dims(c, w));
  ConvEpilogue e;
  if (c.has(2)) e.bias = &c.in[2];
  if (c.has(3)) e.residual = &c.in[3];
  e.act = Activation::of(c.node);
  e.post_scale = optional_input(c, 4);
  e.post_shift = optional_input(c, 5);
  if (conv_schedulable(c)) {
    std::vector<Expr> pad(sp);
    for (int d = 0; d < sp; ++d) {
      Expr o;
      a.geometry(d, x.shape[d + 2], o, pad[d]);
    }
    return conv_schedule(c, a, pad, e);
  }
  internal_assert(!c.node.has_attr("packed_mr") && !c.node.has_attr("packed_nr"))
      << c.node.describe() << ": packed weights need the GEMM schedule";
  // Reference: Conv (with its bias) then residual and activation.
  Stmt conv = lower_conv(c);
  return Block::make({conv, reference_epilogue(c, 1, nullptr, e.residual, e.act, e.post_scale, e.post_shift)});
}

Stmt lower_fused_matmul(LowerContext &c) {
  MatMulEpilogue e;
  if (c.has(2)) e.bias = &c.in[2];
  if (c.has(3)) e.residual = &c.in[3];
  e.act = Activation::of(c.node);
  e.post_scale = optional_input(c, 4);
  e.post_shift = optional_input(c, 5);
  if (matmul_schedulable(c)) return matmul_schedule(c, e);
  internal_assert(!c.node.has_attr("packed_nr")) << c.node.describe() << ": packed weights need the GEMM schedule";
  Stmt mm = lower_matmul(c);
  int last = c.out[0].rank() - 1;
  return Block::make({mm, reference_epilogue(c, last, e.bias, e.residual, e.act, e.post_scale, e.post_shift)});
}

}  // namespace kiln
