// Compute definitions of pooling: MaxPool (with its optional Indices output), AveragePool,
// LpPool, the Global* pools, and MaxUnpool.
#include <cmath>

#include "graph/conv_attrs.h"
#include "lower/conv_schedule.h"
#include "lower/lower.h"
#include "lower/vector_loop.h"
#include "support/error.h"

namespace kiln {

namespace {

// The window of output position `o` over spatial dim d: input positions
// o*stride + r*dilation - pad_begin for r in [0, kernel).
struct Window {
  ConvAttrs a;
  int sp = 0;
  std::vector<Expr> pad_begin, pad_end;

  Window(LowerContext &c, const Operand &x, const Operand &y) {
    sp = x.rank() - 2;
    a = ConvAttrs::read(c.node, sp, {});
    for (int d = 0; d < sp; ++d) {
      Expr out, pb;
      a.geometry(d, x.shape[d + 2], out, pb);
      pad_begin.push_back(pb);
      Expr pe;
      if (a.auto_pad == "SAME_UPPER" || a.auto_pad == "SAME_LOWER") {
        int64_t k_eff = a.dilations[d] * (a.kernel[d] - 1) + 1;
        Expr total = max((y.shape[d + 2] - 1) * Expr(a.strides[d]) + Expr(k_eff) - x.shape[d + 2], Expr(0));
        pe = total - pb;
      } else {
        pe = Expr(a.auto_pad == "VALID" ? 0 : a.pads[d + sp]);
      }
      pad_end.push_back(pe);
    }
  }
  std::vector<Expr> kernel_extents() const {
    std::vector<Expr> k;
    for (int64_t v : a.kernel) k.push_back(Expr(v));
    return k;
  }
  // Input position along spatial dim d.
  Expr pos(int d, const Expr &o, const Expr &r) const {
    return o * Expr(a.strides[d]) + r * Expr(a.dilations[d]) - pad_begin[d];
  }
};

Expr in_range(const Expr &p, const Expr &lo, const Expr &hi) { return p >= lo && p < hi; }

// Index of x at output index `i` (N, C, spatial...) and window offsets `r`, clamped in
// bounds (the caller discards out-of-window values), and whether it lies inside x.
std::vector<Expr> window_index(const Window &w, const Operand &x, const std::vector<Expr> &i,
                               const std::vector<Expr> &r, Expr &inside) {
  std::vector<Expr> xi = {i[0], i[1]};
  inside = make_const(Type::boolean(), 1);
  for (int d = 0; d < w.sp; ++d) {
    Expr p = w.pos(d, i[d + 2], r[d]);
    inside = inside && in_range(p, Expr(0), x.shape[d + 2]);
    xi.push_back(max(min(p, x.shape[d + 2] - Expr(1)), Expr(0)));
  }
  return xi;
}

// Flat index of x element `xi` as MaxPool's Indices output reports it: row-major, or with
// the spatial dims column-major when storage_order = 1.
Expr argmax_index(const Operand &x, const std::vector<Expr> &xi, bool column_major) {
  int sp = x.rank() - 2;
  Expr plane = Expr(1), s = Expr(0);
  for (int d = 0; d < sp; ++d) plane = plane * x.shape[d + 2];
  if (column_major) {
    for (int d = sp; d-- > 0;) s = s * x.shape[d + 2] + xi[d + 2];
  } else {
    for (int d = 0; d < sp; ++d) s = s * x.shape[d + 2] + xi[d + 2];
  }
  return (xi[0] * x.shape[1] + xi[1]) * plane + s;
}

Type float_acc(const Operand &x) {
  Type t = x.compute();
  return t.is_float() ? t : Type::f(32);
}

// -O1+: f32 2-D MaxPool without Indices, one (image, channel) plane per work item: the
// plane is copied into a scratch padded with -inf (so no window needs bounds checks), then
// each output row is computed in vectors along the row (a strided row through
// stride_lanes, as depthwise convs do), its tail as one overlapping vector.
Stmt max_pool_rows(LowerContext &c, const Window &w) {
  const Operand &x = c.in[0], &y = c.out[0];
  Expr H = x.shape[2], W = x.shape[3], OH = y.shape[2], OW = y.shape[3];
  const ConvAttrs &a = w.a;
  int64_t kh = a.kernel[0], kw = a.kernel[1], sh = a.strides[0], sw = a.strides[1];
  Expr Hp = (OH - Expr(1)) * Expr(sh) + Expr(a.dilations[0] * (kh - 1) + 1);
  Expr Wp = (OW - Expr(1)) * Expr(sw) + Expr(a.dilations[1] * (kw - 1) + 1);
  int vl = c.opts.vector_lanes_f32();
  Type f = Type::f(32), vt = Type::f(32, vl);
  Expr lowest = type_min(f);
  std::string nc = c.fresh("nc"), pl = c.fresh("plane"), r = c.fresh("r"), j = c.fresh("j");
  Expr vnc = Var::make(Type::index(), nc), vr = Var::make(Type::index(), r), vj = Var::make(Type::index(), j);
  Expr ih = vr - w.pad_begin[0];
  Expr lo = min(Wp, max(Expr(0), w.pad_begin[1])), hi = max(lo, min(Wp, w.pad_begin[1] + W));
  auto fill_lowest = [&](Expr from, Expr to) {
    return For::make(j, from, to - from, ForKind::Serial, Store::make(pl, lowest, vr * Wp + vj));
  };
  Stmt row_copy = Block::make({fill_lowest(Expr(0), lo),
                               copy_run(c, pl, x.buf, vr * Wp + lo, vnc * H * W + ih * W + lo - w.pad_begin[1], hi - lo, 1),
                               fill_lowest(hi, Wp)});
  Stmt fill = For::make(r, Expr(0), Hp, ForKind::Serial,
                        IfThenElse::make(ih >= Expr(0) && ih < H, row_copy, fill_lowest(Expr(0), Wp)));
  auto row = [&](Expr oh, Expr ow0, int lanes) {
    // Each running maximum is bound to a name: select(v > best, v, best) refers to `best`
    // twice, so an unnamed chain would grow exponentially with the window.
    std::vector<std::pair<std::string, Expr>> steps;
    Expr best;
    for (int64_t ky = 0; ky < kh; ++ky) {
      for (int64_t kx = 0; kx < kw; ++kx) {
        Expr base = (oh * Expr(sh) + Expr(ky * a.dilations[0])) * Wp + ow0 * Expr(sw) + Expr(kx * a.dilations[1]);
        Expr v = lanes == 1 ? Load::make(f, pl, base)
                 : sw == 1  ? Load::make(vt, pl, Ramp::make(base, Expr(1), lanes))
                            : Call::make(vt, "stride_lanes",
                                         {Load::make(Type::f(32, lanes * static_cast<int>(sw)), pl,
                                                     Ramp::make(base, Expr(1), lanes * static_cast<int>(sw))),
                                          Expr(0), Expr(sw)});
        // The first maximum wins, as in the reference (a NaN never replaces a value).
        std::string name = c.fresh("best");
        steps.emplace_back(name, best.defined() ? select(v > best, v, best) : v);
        best = Var::make(v.type(), name);
      }
    }
    Expr idx = (vnc * OH + oh) * OW + ow0;
    Stmt st = Store::make(y.buf, best, lanes == 1 ? idx : Ramp::make(idx, Expr(1), lanes));
    for (size_t i = steps.size(); i-- > 0;) st = LetStmt::make(steps[i].first, steps[i].second, st);
    return st;
  };
  std::string oh = c.fresh("oh"), ov = c.fresh("ov"), os = c.fresh("os");
  Expr voh = Var::make(Type::index(), oh), vov = Var::make(Type::index(), ov), vos = Var::make(Type::index(), os);
  Expr nvec = OW / Expr(vl);
  Stmt vec = For::make(ov, Expr(0), nvec, ForKind::Serial, row(voh, vov * Expr(vl), vl));
  Stmt scl = For::make(os, nvec * Expr(vl), OW - nvec * Expr(vl), ForKind::Serial, row(voh, vos, 1));
  Stmt tail = IfThenElse::make(OW % Expr(vl) != Expr(0), IfThenElse::make(nvec > Expr(0), row(voh, OW - Expr(vl), vl), scl));
  Stmt rows = For::make(oh, Expr(0), OH, ForKind::Serial, Block::make({vec, tail}));
  Stmt body = Allocate::make(pl, f, Hp * Wp + Expr(vl * sw), Block::make({fill, rows}));
  return For::make(nc, Expr(0), y.shape[0] * y.shape[1], ForKind::Parallel, body);
}

}  // namespace

Stmt lower_max_pool(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  bool with_indices = c.out.size() > 1 && c.out[1].present();
  bool column_major = c.node.attr_i("storage_order", 0) == 1;
  Window w(c, x, y);
  Type t = x.compute();
  if (c.opts.opt_level >= 1 && !with_indices && x.dtype == DType::F32 && x.rank() == 4) return max_pool_rows(c, w);
  return parallel_loop_nest(c, y.shape, [&](const std::vector<Expr> &i) {
    std::string vbuf = c.fresh("max"), ibuf = c.fresh("arg");
    Expr best = Load::make(t, vbuf, Expr(0)), arg = Load::make(Type::index(), ibuf, Expr(0));
    Stmt scan = loop_nest(c, w.kernel_extents(), [&](const std::vector<Expr> &r) {
      Expr inside;
      std::vector<Expr> xi = window_index(w, x, i, r, inside);
      Expr v = load(x, xi);
      // The first maximum wins; arg < 0 until the window has met an input element.
      std::string tn = c.fresh("take");
      Expr take = Var::make(Type::boolean(), tn);
      return LetStmt::make(tn, inside && (v > best || arg < Expr(0)),
                           Block::make({Store::make(vbuf, select(take, v, best), Expr(0)),
                                        Store::make(ibuf, select(take, argmax_index(x, xi, column_major), arg),
                                                    Expr(0))}));
    });
    std::vector<Stmt> body = {Store::make(vbuf, type_min(t), Expr(0)), Store::make(ibuf, Expr(-1), Expr(0)), scan,
                              store(y, i, best)};
    if (with_indices) body.push_back(store(c.out[1], i, arg));
    return Allocate::make(vbuf, t, Expr(1), Allocate::make(ibuf, Type::index(), Expr(1), Block::make(body)));
  });
}

// AveragePool divides by the number of window elements inside the input, or, with
// count_include_pad, inside the padded input (never past the end padding: ceil_mode
// windows may overhang it).
Stmt lower_average_pool(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  bool include_pad = c.node.attr_i("count_include_pad", 0) != 0;
  Window w(c, x, y);
  Type acc = float_acc(x);
  return parallel_loop_nest(c, y.shape, [&](const std::vector<Expr> &i) {
    std::string sbuf = c.fresh("sum"), nbuf = c.fresh("count");
    Expr sum = Load::make(acc, sbuf, Expr(0)), count = Load::make(acc, nbuf, Expr(0));
    Stmt scan = loop_nest(c, w.kernel_extents(), [&](const std::vector<Expr> &r) {
      Expr inside;
      std::vector<Expr> xi = window_index(w, x, i, r, inside);
      Expr counted = inside;
      if (include_pad) {
        counted = make_const(Type::boolean(), 1);
        for (int d = 0; d < w.sp; ++d) {
          counted = counted && in_range(w.pos(d, i[d + 2], r[d]), -w.pad_begin[d], x.shape[d + 2] + w.pad_end[d]);
        }
      }
      return Block::make({Store::make(sbuf, select(inside, sum + cast(acc, load(x, xi)), sum), Expr(0)),
                          Store::make(nbuf, select(counted, count + make_const(acc, 1), count), Expr(0))});
    });
    Stmt body = Block::make({Store::make(sbuf, make_zero(acc), Expr(0)), Store::make(nbuf, make_zero(acc), Expr(0)),
                             scan, store(y, i, cast(y.compute(), sum / count))});
    return Allocate::make(sbuf, acc, Expr(1), Allocate::make(nbuf, acc, Expr(1), body));
  });
}

namespace {
// |v|^p and its inverse for LpPool; p = 1 and 2 avoid pow.
Expr lp_term(const Expr &v, int64_t p) {
  Expr a = call("abs", {v});
  if (p == 1) return a;
  if (p == 2) return v * v;
  return call("pow", {a, make_const(v.type(), static_cast<double>(p))});
}
Expr lp_root(const Expr &s, int64_t p) {
  if (p == 1) return s;
  if (p == 2) return call("sqrt", {s});
  return call("pow", {s, make_const(s.type(), 1.0 / static_cast<double>(p))});
}
int64_t lp_order(const Node &n) {
  int64_t p = n.attr_i("p", 2);
  user_assert(p >= 1) << n.describe() << ": p must be >= 1";
  return p;
}
}  // namespace

Stmt lower_lp_pool(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  int64_t p = lp_order(c.node);
  Window w(c, x, y);
  Type acc = float_acc(x);
  return parallel_loop_nest(c, y.shape, [&](const std::vector<Expr> &i) {
    return reduce(c, acc, make_zero(acc), w.kernel_extents(),
                  [&](Expr s, const std::vector<Expr> &r) {
                    Expr inside;
                    std::vector<Expr> xi = window_index(w, x, i, r, inside);
                    return select(inside, s + lp_term(cast(acc, load(x, xi)), p), s);
                  },
                  [&](Expr s) { return store(y, i, cast(y.compute(), lp_root(s, p))); });
  });
}

Stmt lower_global_pool(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  std::vector<Expr> ext(x.shape.begin() + 2, x.shape.end());
  OpKind k = c.node.kind;
  if (c.opts.opt_level >= 1 && x.dtype == DType::F32 && y.dtype == DType::F32 &&
      (k == OpKind::GlobalAveragePool || k == OpKind::GlobalMaxPool)) {
    // Each plane reduced in vectors (partial sums / maxima per lane, folded at the end),
    // blocks of planes in parallel; -O0 keeps the serial sum.
    Type t = Type::f(32);
    Expr hw = numel(ext), planes = x.shape[0] * x.shape[1];
    bool avg = k == OpKind::GlobalAveragePool;
    constexpr int64_t kBlockElements = 16384;
    return parallel_blocks(c, planes, rows_per_block(hw, kBlockElements), [&](Expr begin, Expr count) {
      std::string pn = c.fresh("plane");
      Expr vp = Var::make(Type::index(), pn);
      auto xs = [&](Expr j, int w) { return run_load(t, x.buf, vp * hw, j, w); };
      auto combine = [avg](Expr a, Expr b) { return avg ? a + b : max(a, b); };
      Stmt plane = vector_reduce(c, hw, c.opts.vector_lanes_f32(), avg ? make_zero(t) : make_const(t, -INFINITY), xs,
                                 combine, [&](Expr s) {
                                   return Store::make(y.buf, avg ? s / cast(t, hw) : s, vp);
                                 });
      return For::make(pn, begin, count, ForKind::Serial, plane);
    });
  }
  Type acc = k == OpKind::GlobalMaxPool ? x.compute() : float_acc(x);
  int64_t p = k == OpKind::GlobalLpPool ? lp_order(c.node) : 2;
  Expr init = k == OpKind::GlobalMaxPool ? type_min(acc) : make_zero(acc);
  return parallel_loop_nest(c, y.shape, [&](const std::vector<Expr> &i) {
    return reduce(c, acc, init, ext,
                  [&](Expr s, const std::vector<Expr> &r) {
                    std::vector<Expr> xi = {i[0], i[1]};
                    xi.insert(xi.end(), r.begin(), r.end());
                    Expr v = cast(acc, load(x, xi));
                    if (k == OpKind::GlobalMaxPool) return max(s, v);
                    if (k == OpKind::GlobalLpPool) return s + lp_term(v, p);
                    return s + v;
                  },
                  [&](Expr s) {
                    if (k == OpKind::GlobalAveragePool) s = s / cast(acc, numel(ext));
                    if (k == OpKind::GlobalLpPool) s = lp_root(s, p);
                    return store(y, i, cast(y.compute(), s));
                  });
  });
}

// MaxUnpool scatters X into a zero tensor at the flat positions I. The indices address
// the unpooled shape the attributes imply; a larger output_shape pads each dim at its
// end, so an index is re-encoded from that shape into the output's.
Stmt lower_max_unpool(LowerContext &c) {
  const Operand &x = c.in[0], &ind = c.in[1], &y = c.out[0];
  int sp = x.rank() - 2;
  ConvAttrs a = ConvAttrs::read(c.node, sp, {});
  std::vector<Expr> implied = {x.shape[0], x.shape[1]};
  for (int d = 0; d < sp; ++d) {
    implied.push_back((x.shape[d + 2] - 1) * Expr(a.strides[d]) + Expr(a.kernel[d] - a.pads[d] - a.pads[d + sp]));
  }
  Stmt zero = compute(c, y, [&](const std::vector<Expr> &) { return make_zero(y.compute()); });
  Stmt scatter = loop_nest(c, x.shape, [&](const std::vector<Expr> &i) {
    Expr k = cast(Type::index(), load(ind, i));
    Expr off = k, ok = k >= Expr(0) && k < numel(implied);
    if (c.has(2)) {
      std::vector<Expr> coord(implied.size());
      Expr rest = k;
      for (size_t d = implied.size(); d-- > 0;) {
        coord[d] = rest % implied[d];
        rest = rest / implied[d];
        ok = ok && coord[d] < y.shape[d];
      }
      off = flat_index(y.shape, coord);
    }
    return IfThenElse::make(ok, store_flat(y, off, load(x, i)));
  });
  return Block::make({zero, scatter});
}

}  // namespace kiln
