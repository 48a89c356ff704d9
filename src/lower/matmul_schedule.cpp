// The f32 MatMul schedule: batched GEMM tiles (see matmul_schedule.h). A 2-D right
// operand (a weight) folds the left operand's batch dims into its rows.
#include "lower/matmul_schedule.h"

#include "support/error.h"

namespace kiln {

bool matmul_schedulable(const LowerContext &c) {
  const Operand &a = c.in[0], &b = c.in[1], &y = c.out[0];
  return c.opts.opt_level >= 1 && a.dtype == DType::F32 && b.dtype == DType::F32 &&
         y.dtype == DType::F32 && a.rank() >= 2 && b.rank() >= 2;
}

Stmt matmul_schedule(LowerContext &c, const MatMulEpilogue &e) {
  const Operand &a = c.in[0], &b = c.in[1], &y = c.out[0];
  Expr M = a.shape[a.rank() - 2], K = a.shape[a.rank() - 1], N = b.shape[b.rank() - 1];
  std::vector<Expr> batch(y.shape.begin(), y.shape.end() - 2);
  bool fold = b.rank() == 2;
  if (fold) {
    for (const Expr &d : batch) M = M * d;
    batch.clear();
  }
  Operand ab = a, bb = b;
  ab.shape.resize(a.rank() - 2);
  bb.shape.resize(b.rank() - 2);
  auto body = [&](const std::vector<Expr> &ob) {
    Expr a_batch = fold ? Expr(0) : flat_index(ab.shape, broadcast_index(ab, ob));
    Expr b_batch = fold ? Expr(0) : flat_index(bb.shape, broadcast_index(bb, ob));
    Expr y_batch = fold ? Expr(0) : flat_index(batch, ob);
    GemmSpec g;
    g.a = a.buf;
    g.a_base = a_batch * M * K;
    g.a_sm = K;
    g.a_sk = Expr(1);
    g.b = b.buf;
    g.b_base = b_batch * K * N;
    g.b_sk = N;
    g.b_packed_nw = static_cast<int>(c.node.attr_i("packed_nr", 0));
    g.M = M;
    g.N = N;
    g.K = K;
    g.c = y.buf;
    g.c_index = [&, y_batch](Expr m, Expr n) { return (y_batch * M + m) * N + n; };
    g.epilogue = [&, y_batch](Expr m, Expr n, Expr v, int lanes) {
      Type t = v.type();
      Expr yflat = (y_batch * M + m) * N + n;
      Expr idx = lanes == 1 ? yflat : Ramp::make(yflat, Expr(1), lanes);
      Expr nidx = lanes == 1 ? n : Ramp::make(n, Expr(1), lanes);
      if (e.bias) v = v + Load::make(t, e.bias->buf, nidx);
      if (e.residual) v = v + Load::make(t, e.residual->buf, idx);
      v = e.act.apply(v);
      if (e.post_scale) v = v * Load::make(t, e.post_scale->buf, nidx);
      if (e.post_shift) v = v + Load::make(t, e.post_shift->buf, nidx);
      return Store::make(y.buf, v, idx);
    };
    return gemm_tiles(c, g, gemm_tile_for(c.opts));
  };
  if (batch.empty()) return body({});
  return loop_nest(c, batch, body);
}

}  // namespace kiln
