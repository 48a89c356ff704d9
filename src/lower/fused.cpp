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
Stmt reference_epilogue(LowerContext &c, const Operand *bias_last, const Operand *bias_channel, const Operand *z,
                        const Activation &act) {
  const Operand &y = c.out[0];
  return loop_nest(c, y.shape, [&](const std::vector<Expr> &i) {
    Expr v = load(y, i);
    if (bias_last) v = v + load(*bias_last, {i.back()});
    if (bias_channel) v = v + load(*bias_channel, {i[1]});
    if (z) v = v + load(*z, i);
    return store(y, i, act.apply(v));
  }, ForKind::Parallel);
}

}  // namespace

Stmt lower_fused_conv(LowerContext &c) {
  const Operand &x = c.in[0], &w = c.in[1];
  int sp = x.rank() - 2;
  ConvAttrs a = ConvAttrs::read(c.node, sp, static_kernel_dims(c, w));
  ConvEpilogue e;
  if (c.has(2)) e.bias = &c.in[2];
  if (c.has(3)) e.residual = &c.in[3];
  e.act = Activation::of(c.node);
  if (conv_schedulable(c)) {
    std::vector<Expr> pad(sp);
    for (int d = 0; d < sp; ++d) {
      Expr o;
      a.geometry(d, x.shape[d + 2], o, pad[d]);
    }
    return conv_schedule(c, a, pad, e);
  }
  // Reference: Conv (with its bias) then residual and activation.
  Stmt conv = lower_conv(c);
  return Block::make({conv, reference_epilogue(c, nullptr, nullptr, e.residual, e.act)});
}

Stmt lower_fused_matmul(LowerContext &c) {
  MatMulEpilogue e;
  if (c.has(2)) e.bias = &c.in[2];
  if (c.has(3)) e.residual = &c.in[3];
  e.act = Activation::of(c.node);
  if (matmul_schedulable(c)) return matmul_schedule(c, e);
  Stmt mm = lower_matmul(c);
  return Block::make({mm, reference_epilogue(c, e.bias, nullptr, e.residual, e.act)});
}

}  // namespace kiln
