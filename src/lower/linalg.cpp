// Compute definitions of MatMul, Gemm and Conv (naive schedules: the -O0 reference);
// at -O1 and above MatMul and f32 Conv take the schedules of conv_schedule.cpp and
// matmul_schedule.cpp.
#include "graph/conv_attrs.h"
#include "lower/conv_schedule.h"
#include "lower/lower.h"
#include "lower/matmul_schedule.h"
#include "support/error.h"

namespace kiln {

namespace {
Type acc_type_of(const Operand &o) {
  Type t = o.compute();
  return t.is_float() ? t : Type::i(std::max<int>(32, t.bits));
}
}  // namespace

Stmt lower_matmul(LowerContext &c) {
  if (matmul_schedulable(c)) return matmul_schedule(c, MatMulEpilogue{});
  Operand a = c.in[0], b = c.in[1];
  const Operand &y = c.out[0];
  bool a1 = a.rank() == 1, b1 = b.rank() == 1;
  if (a1) a.shape.insert(a.shape.begin(), Expr(1));
  if (b1) b.shape.push_back(Expr(1));
  // View the output with the promoted dims restored so indexing is uniform.
  Operand yv = y;
  if (a1) yv.shape.insert(yv.shape.end() - (b1 ? 0 : 1), Expr(1));
  if (b1) yv.shape.push_back(Expr(1));
  int R = yv.rank();
  Expr K = a.shape.back();
  Type acc = acc_type_of(a);
  Operand ab = a, bb = b;
  ab.shape.resize(a.rank() - 2);
  bb.shape.resize(b.rank() - 2);
  std::vector<Expr> rows(yv.shape.begin(), yv.shape.end() - 1);
  if (yv.compute() == acc && acc.is_float()) {
    // Row-wise accumulation: y[.., m, :] += a[.., m, k] * b[.., k, :]; the innermost loop
    // runs along contiguous rows of b and y.
    return loop_nest(c, rows, [&](const std::vector<Expr> &i) {
      std::vector<Expr> ob(i.begin(), i.end() - 1);
      std::vector<Expr> ai = broadcast_index(ab, ob), bi = broadcast_index(bb, ob);
      Stmt zero = loop_nest(c, {yv.shape[R - 1]}, [&](const std::vector<Expr> &n) {
        std::vector<Expr> yi = i;
        yi.push_back(n[0]);
        return store(yv, yi, make_zero(acc));
      });
      Stmt acc_loop = loop_nest(c, {K, yv.shape[R - 1]}, [&](const std::vector<Expr> &kn) {
        std::vector<Expr> ia = ai, ib = bi, yi = i;
        ia.push_back(i[R - 2]);
        ia.push_back(kn[0]);
        ib.push_back(kn[0]);
        ib.push_back(kn[1]);
        yi.push_back(kn[1]);
        return store(yv, yi, load(yv, yi) + load(a, ia) * load(b, ib));
      });
      return Block::make({zero, acc_loop});
    }, ForKind::Parallel);
  }
  return loop_nest(c, yv.shape, [&](const std::vector<Expr> &i) {
    std::vector<Expr> ob(i.begin(), i.end() - 2);
    std::vector<Expr> ai = broadcast_index(ab, ob), bi = broadcast_index(bb, ob);
    return reduce(c, acc, make_zero(acc), {K},
                  [&](Expr s, const std::vector<Expr> &k) {
                    std::vector<Expr> ia = ai, ib = bi;
                    ia.push_back(i[R - 2]);
                    ia.push_back(k[0]);
                    ib.push_back(k[0]);
                    ib.push_back(i[R - 1]);
                    return s + cast(acc, load(a, ia)) * cast(acc, load(b, ib));
                  },
                  [&](Expr r) { return store(yv, i, cast(yv.compute(), r)); });
  }, ForKind::Parallel);
}

Stmt lower_gemm(LowerContext &c) {
  const Operand &a = c.in[0], &b = c.in[1], &y = c.out[0];
  bool ta = c.node.attr_i("transA", 0), tb = c.node.attr_i("transB", 0);
  Type t = y.compute();
  Type acc = acc_type_of(a);
  Expr alpha = make_const(acc, c.node.attr_f("alpha", 1.0)), beta = make_const(acc, c.node.attr_f("beta", 1.0));
  Expr K = ta ? a.shape[0] : a.shape[1];
  return loop_nest(c, y.shape, [&](const std::vector<Expr> &i) {
    return reduce(c, acc, make_zero(acc), {K},
                  [&](Expr s, const std::vector<Expr> &k) {
                    Expr va = ta ? load(a, {k[0], i[0]}) : load(a, {i[0], k[0]});
                    Expr vb = tb ? load(b, {i[1], k[0]}) : load(b, {k[0], i[1]});
                    return s + cast(acc, va) * cast(acc, vb);
                  },
                  [&](Expr r) {
                    Expr v = alpha * r;
                    if (c.has(2)) v = v + beta * cast(acc, load(c.in[2], broadcast_index(c.in[2], i)));
                    return store(y, i, cast(t, v));
                  });
  }, ForKind::Parallel);
}

namespace {

// Conv as accumulation into the output: y = bias; then for every reduction index,
// y[.., oh, ow] += x[.., ih, iw] * w. The last spatial dim runs over exactly the range of
// output positions whose input position is inside the image, so the innermost loop is a
// plain affine (vectorizable) loop; the other spatial dims test validity once per row.
Stmt conv_accumulate(LowerContext &c, const ConvAttrs &a, const std::vector<Expr> &pad) {
  const Operand &x = c.in[0], &w = c.in[1], &y = c.out[0];
  int sp = x.rank() - 2;
  Expr cin_g = w.shape[1], cout_g = y.shape[1] / Expr(a.group);
  Type t = y.compute();
  std::string n = c.fresh("n"), oc = c.fresh("oc");
  Expr vn = Var::make(Type::index(), n), voc = Var::make(Type::index(), oc);
  std::vector<Expr> ysp(y.shape.begin() + 2, y.shape.end());
  Stmt init = loop_nest(c, ysp, [&](const std::vector<Expr> &o) {
    std::vector<Expr> yi = {vn, voc};
    yi.insert(yi.end(), o.begin(), o.end());
    Expr b = c.has(2) ? load(c.in[2], {voc}) : make_zero(t);
    return store(y, yi, cast(t, b));
  });
  std::vector<Expr> rext = {cin_g};
  for (int d = 0; d < sp; ++d) rext.push_back(Expr(a.kernel[d]));
  Stmt accumulate = loop_nest(c, rext, [&](const std::vector<Expr> &r) {
    Expr g = voc / cout_g;
    Expr wv = load(w, [&] {
      std::vector<Expr> wi = {voc, r[0]};
      for (int d = 0; d < sp; ++d) wi.push_back(r[d + 1]);
      return wi;
    }());
    std::string wname = c.fresh("wv");
    Expr wvar = Var::make(t, wname);
    // Outer spatial dims: loop over output rows, skip rows whose input row is padding.
    std::vector<Expr> o_outer(ysp.begin(), ysp.end() - 1);
    Stmt body = loop_nest(c, o_outer, [&](const std::vector<Expr> &o) {
      std::vector<Expr> xi = {vn, g * cin_g + r[0]}, yi = {vn, voc};
      Expr inside = make_const(Type::boolean(), 1);
      for (int d = 0; d + 1 < sp; ++d) {
        Expr p = o[d] * Expr(a.strides[d]) + r[d + 1] * Expr(a.dilations[d]) - pad[d];
        inside = inside && p >= Expr(0) && p < x.shape[d + 2];
        xi.push_back(p);
        yi.push_back(o[d]);
      }
      int L = sp - 1;
      Expr s = Expr(a.strides[L]), off = r[L + 1] * Expr(a.dilations[L]) - pad[L], W = x.shape[L + 2];
      // valid ow: 0 <= ow*s + off < W  <=>  ceil(-off / s) <= ow < ceil((W - off) / s)
      Expr lo = max(Expr(0), (Expr(0) - off + s - Expr(1)) / s);
      Expr hi = min(ysp[L], (W - off + s - Expr(1)) / s);
      std::string ow = c.fresh("ow");
      Expr vow = Var::make(Type::index(), ow);
      std::vector<Expr> xl = xi, yl = yi;
      xl.push_back(vow * s + off);
      yl.push_back(vow);
      Stmt st = store(y, yl, load(y, yl) + cast(t, load(x, xl)) * wvar);
      Stmt loop = For::make(ow, lo, max(hi - lo, Expr(0)), ForKind::Serial, st);
      return is_const(inside, 1) ? loop : IfThenElse::make(inside, loop);
    });
    return LetStmt::make(wname, cast(t, wv), body);
  });
  Stmt per_channel = Block::make({init, accumulate});
  return For::make(n, Expr(0), y.shape[0], ForKind::Serial,
                   For::make(oc, Expr(0), y.shape[1], ForKind::Parallel, per_channel));
}

}  // namespace

Stmt lower_conv(LowerContext &c) {
  const Operand &x = c.in[0], &w = c.in[1], &y = c.out[0];
  int sp = x.rank() - 2;
  ConvAttrs a = ConvAttrs::read(c.node, sp, static_kernel_dims(c, w));
  std::vector<Expr> pad(sp);
  for (int d = 0; d < sp; ++d) {
    Expr o;
    a.geometry(d, x.shape[d + 2], o, pad[d]);
  }
  if (conv_schedulable(c)) {
    ConvEpilogue e;
    if (c.has(2)) e.bias = &c.in[2];
    return conv_schedule(c, a, pad, e);
  }
  if (y.compute() == y.storage() && y.compute().is_float()) return conv_accumulate(c, a, pad);
  Expr cin_g = w.shape[1];                   // input channels per group
  Expr cout_g = y.shape[1] / Expr(a.group);  // output channels per group
  Type acc = acc_type_of(x);
  std::vector<Expr> rext = {cin_g};
  for (int d = 0; d < sp; ++d) rext.push_back(Expr(a.kernel[d]));
  return loop_nest(c, y.shape, [&](const std::vector<Expr> &i) {
    Expr g = i[1] / cout_g;
    return reduce(c, acc, make_zero(acc), rext,
                  [&](Expr s, const std::vector<Expr> &r) {
                    std::vector<Expr> xi = {i[0], g * cin_g + r[0]}, wi = {i[1], r[0]};
                    Expr inside = make_const(Type::boolean(), 1);
                    for (int d = 0; d < sp; ++d) {
                      Expr p = i[d + 2] * Expr(a.strides[d]) + r[d + 1] * Expr(a.dilations[d]) - pad[d];
                      inside = inside && p >= Expr(0) && p < x.shape[d + 2];
                      xi.push_back(p);
                      wi.push_back(r[d + 1]);
                    }
                    // Clamp the index so the load is always in bounds; select discards it.
                    std::vector<Expr> xc = xi;
                    for (int d = 0; d < sp; ++d) xc[d + 2] = max(min(xi[d + 2], x.shape[d + 2] - Expr(1)), Expr(0));
                    Expr prod = cast(acc, load(x, xc)) * cast(acc, load(w, wi));
                    return select(inside, s + prod, s);
                  },
                  [&](Expr r) {
                    if (c.has(2)) r = r + cast(acc, load(c.in[2], {i[1]}));
                    return store(y, i, cast(y.compute(), r));
                  });
  }, ForKind::Parallel);
}

}  // namespace kiln
