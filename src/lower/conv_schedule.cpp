// Optimized schedules of f32 Conv / FusedConv (-O1 and above), both with the fused
// epilogue y = act(conv(x, w) + bias + z):
//  - GEMM: y[g, m, n] = sum_k W[g, m, k] * col[k, n] with the register-blocked tiles of
//    gemm.h; col is the im2col matrix of the input (k = (ic, ky, kx), n = output pixel),
//    or the input itself for 1x1 stride-1 unpadded convs;
//  - depthwise (one input and one output channel per group): each output row computed in
//    vectors along the row from a zero-padded copy of the channel's input plane.
#include "lower/conv_schedule.h"

#include "lower/gemm.h"
#include "support/error.h"

namespace kiln {

namespace {

Expr prod(const std::vector<Expr> &v, size_t from = 0) {
  Expr p = Expr(1);
  for (size_t i = from; i < v.size(); ++i) p = p * v[i];
  return p;
}

// The fused epilogue for output element (batch n, channel m, flat pixel p .. p+lanes-1).
Stmt conv_epilogue(const ConvEpilogue &e, const Operand &y, Expr yflat, Expr m, Expr v, int lanes) {
  Type t = v.type();
  auto vec = [&](Expr s) { return lanes == 1 ? s : Broadcast::make(s, lanes); };
  if (e.bias) v = v + vec(load(*e.bias, {m}));
  Expr idx = lanes == 1 ? yflat : Ramp::make(yflat, Expr(1), lanes);
  if (e.residual) v = v + Load::make(t, e.residual->buf, idx);
  v = e.act.apply(v);
  return Store::make(y.buf, v, idx);
}

// col[k, n] for one image and one group: k = (ic, ky, kx, ...), n = output pixel.
Stmt im2col(LowerContext &c, const ConvAttrs &a, const std::vector<Expr> &pad, const std::string &col, Expr x_base,
            const std::vector<Expr> &in_sp, const std::vector<Expr> &out_sp, Expr cin_g) {
  int sp = static_cast<int>(in_sp.size());
  int64_t taps = 1;
  for (int64_t k : a.kernel) taps *= k;
  Expr N = prod(out_sp), HWin = prod(in_sp);
  Type f = Type::f(32);
  std::string kn = c.fresh("k");
  Expr vk = Var::make(Type::index(), kn);
  Expr ic = vk / Expr(taps);
  std::vector<Expr> r(sp);
  Expr rest = vk % Expr(taps);
  for (int d = sp - 1; d >= 0; --d) {
    r[d] = rest % Expr(a.kernel[d]);
    rest = rest / Expr(a.kernel[d]);
  }
  // Outer spatial dims: rows; a row whose input row is padding is zero.
  std::vector<Expr> outer(out_sp.begin(), out_sp.end() - 1);
  Stmt rows = loop_nest(c, outer, [&](const std::vector<Expr> &o) {
    Expr inside = make_const(Type::boolean(), 1);
    Expr in_off = x_base + ic * HWin, out_off = vk * N;
    Expr in_stride = HWin, out_stride = N;
    for (int d = 0; d + 1 < sp; ++d) {
      Expr p = o[d] * Expr(a.strides[d]) + r[d] * Expr(a.dilations[d]) - pad[d];
      inside = inside && p >= Expr(0) && p < in_sp[d];
      in_stride = in_stride / in_sp[d];
      out_stride = out_stride / out_sp[d];
      in_off = in_off + p * in_stride;
      out_off = out_off + o[d] * out_stride;
    }
    int L = sp - 1;
    Expr s = Expr(a.strides[L]), off = r[L] * Expr(a.dilations[L]) - pad[L], W = in_sp[L], OW = out_sp[L];
    Expr lo = min(OW, max(Expr(0), (Expr(0) - off + s - Expr(1)) / s));
    Expr hi = max(lo, min(OW, (W - off + s - Expr(1)) / s));
    std::string j = c.fresh("ow");
    Expr vj = Var::make(Type::index(), j);
    Stmt zl = For::make(j, Expr(0), lo, ForKind::Serial, Store::make(col, make_zero(f), out_off + vj));
    Stmt cp = For::make(j, lo, hi - lo, ForKind::Serial,
                        Store::make(col, Load::make(f, c.in[0].buf, in_off + vj * s + off), out_off + vj));
    Stmt zh = For::make(j, hi, OW - hi, ForKind::Serial, Store::make(col, make_zero(f), out_off + vj));
    Stmt zero_row = For::make(j, Expr(0), OW, ForKind::Serial, Store::make(col, make_zero(f), out_off + vj));
    if (is_const(inside, 1)) return Block::make({zl, cp, zh});
    return IfThenElse::make(inside, Block::make({zl, cp, zh}), zero_row);
  });
  return For::make(kn, Expr(0), cin_g * Expr(taps), ForKind::Parallel, rows);
}

Stmt depthwise(LowerContext &c, const ConvAttrs &a, const std::vector<Expr> &pad, const ConvEpilogue &e) {
  const Operand &x = c.in[0], &w = c.in[1], &y = c.out[0];
  Expr H = x.shape[2], W = x.shape[3], OH = y.shape[2], OW = y.shape[3], C = y.shape[1];
  int64_t kh = a.kernel[0], kw = a.kernel[1];
  // The zero-padded plane spans every window (auto_pad may pad more at the end).
  Expr Hp = (OH - Expr(1)) * Expr(a.strides[0]) + Expr(a.dilations[0] * (kh - 1) + 1);
  Expr Wp = (OW - Expr(1)) * Expr(a.strides[1]) + Expr(a.dilations[1] * (kw - 1) + 1);
  int vl = c.opts.vector_lanes_f32();
  Type f = Type::f(32), vt = Type::f(32, vl);
  std::string nc = c.fresh("nc"), pl = c.fresh("plane");
  Expr vnc = Var::make(Type::index(), nc);
  Expr ch = vnc % C;
  // Zero-padded copy of this channel's plane.
  Stmt fill = loop_nest(c, {Hp, Wp}, [&](const std::vector<Expr> &i) {
    Expr ih = i[0] - pad[0], iw = i[1] - pad[1];
    Expr inside = ih >= Expr(0) && ih < H && iw >= Expr(0) && iw < W;
    Expr src = vnc * H * W + max(min(ih, H - Expr(1)), Expr(0)) * W + max(min(iw, W - Expr(1)), Expr(0));
    return Store::make(pl, select(inside, Load::make(f, x.buf, src), make_zero(f)), i[0] * Wp + i[1]);
  });
  auto row_body = [&](Expr oh, Expr ow0, int lanes) {
    Expr acc = lanes == 1 ? make_zero(f) : Broadcast::make(make_zero(f), lanes);
    for (int64_t ky = 0; ky < kh; ++ky) {
      for (int64_t kx = 0; kx < kw; ++kx) {
        Expr wv = load(w, {ch, Expr(0), Expr(ky), Expr(kx)});
        Expr base = (oh * Expr(a.strides[0]) + Expr(ky * a.dilations[0])) * Wp + ow0 * Expr(a.strides[1]) +
                    Expr(kx * a.dilations[1]);
        Expr xv = lanes == 1 ? Load::make(f, pl, base) : Load::make(vt, pl, Ramp::make(base, Expr(a.strides[1]), lanes));
        acc = call("fma", {lanes == 1 ? wv : Broadcast::make(wv, lanes), xv, acc});
      }
    }
    return conv_epilogue(e, y, (vnc * OH + oh) * OW + ow0, ch, acc, lanes);
  };
  std::string oh = c.fresh("oh"), ov = c.fresh("ov"), os = c.fresh("os");
  Expr voh = Var::make(Type::index(), oh), vov = Var::make(Type::index(), ov), vos = Var::make(Type::index(), os);
  Expr nvec = OW / Expr(vl);
  Stmt vec = For::make(ov, Expr(0), nvec, ForKind::Serial, row_body(voh, vov * Expr(vl), vl));
  Stmt scl = For::make(os, nvec * Expr(vl), OW - nvec * Expr(vl), ForKind::Serial, row_body(voh, vos, 1));
  Stmt rows = For::make(oh, Expr(0), OH, ForKind::Serial, Block::make({vec, scl}));
  Stmt body = Allocate::make(pl, f, Hp * Wp, Block::make({fill, rows}));
  return For::make(nc, Expr(0), y.shape[0] * C, ForKind::Parallel, body);
}

}  // namespace

bool conv_schedulable(const LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  return c.opts.opt_level >= 1 && x.dtype == DType::F32 && c.in[1].dtype == DType::F32 &&
         y.dtype == DType::F32 && x.rank() >= 3;
}

Stmt conv_schedule(LowerContext &c, const ConvAttrs &a, const std::vector<Expr> &pad, const ConvEpilogue &e) {
  const Operand &x = c.in[0], &w = c.in[1], &y = c.out[0];
  int sp = x.rank() - 2;
  Expr cin_g = w.shape[1], M = y.shape[1], Mg = M / Expr(a.group);
  if (sp == 2 && is_const(cin_g, 1) && is_const(Mg, 1)) return depthwise(c, a, pad, e);
  std::vector<Expr> in_sp(x.shape.begin() + 2, x.shape.end()), out_sp(y.shape.begin() + 2, y.shape.end());
  Expr N = prod(out_sp), HWin = prod(in_sp);
  int64_t taps = 1;
  bool pointwise = true;
  for (int d = 0; d < sp; ++d) {
    taps *= a.kernel[d];
    bool pad0 = is_const(pad[d], 0) && (a.pads.empty() || a.pads[sp + d] == 0) && a.auto_pad != "SAME_UPPER" &&
                a.auto_pad != "SAME_LOWER";
    pointwise = pointwise && a.kernel[d] == 1 && a.strides[d] == 1 && pad0;
  }
  Expr K = cin_g * Expr(taps);
  GemmTile tile = gemm_tile_for(c.opts);
  std::string bn = c.fresh("n"), gn = c.fresh("g");
  Expr vb = Var::make(Type::index(), bn), vg = Var::make(Type::index(), gn);
  std::string col = pointwise ? x.buf : c.fresh("col");
  GemmSpec g;
  g.a = w.buf;
  g.a_base = vg * Mg * K;
  g.a_sm = K;
  g.a_sk = Expr(1);
  g.b = col;
  g.b_base = pointwise ? (vb * x.shape[1] + vg * cin_g) * HWin : Expr(0);
  g.b_sk = N;
  g.M = Mg;
  g.N = N;
  g.K = K;
  g.epilogue = [&](Expr m, Expr n, Expr v, int lanes) {
    Expr mc = vg * Mg + m;
    return conv_epilogue(e, y, (vb * M + mc) * N + n, mc, v, lanes);
  };
  Stmt gemm = gemm_tiles(c, g, tile);
  Stmt per_group = gemm;
  if (!pointwise) {
    Expr x_base = (vb * x.shape[1] + vg * cin_g) * HWin;
    per_group = Allocate::make(col, Type::f(32), K * N,
                               Block::make({im2col(c, a, pad, col, x_base, in_sp, out_sp, cin_g), gemm}));
  }
  return For::make(bn, Expr(0), y.shape[0], ForKind::Serial,
                   For::make(gn, Expr(0), Expr(a.group), ForKind::Serial, per_group));
}

}  // namespace kiln
