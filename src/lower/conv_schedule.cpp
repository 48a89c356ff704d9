// Optimized schedules of f32 Conv / FusedConv (-O1 and above), both with the fused
// epilogue y = act(conv(x, w) + bias + z):
//  - GEMM: y[g, m, n] = sum_k W[g, m, k] * col[k, n] with the register-blocked tiles of
//    gemm.h; col is the im2col matrix of the input (k = (ic, ky, kx), n = output pixel),
//    never materialized whole: each work item packs the panel of columns it computes;
//  - depthwise (one input and one output channel per group): each output row computed in
//    vectors along the row from a zero-padded copy of the channel's input plane.
#include "lower/conv_schedule.h"

#include "lower/gemm.h"
#include "support/error.h"

namespace kiln {

Stmt conv_epilogue(const ConvEpilogue &e, const Operand &y, Expr yflat, Expr m, Expr v, int lanes) {
  Type t = v.type();
  auto vec = [&](Expr s) { return lanes == 1 ? s : Broadcast::make(s, lanes); };
  if (e.bias) v = v + vec(load(*e.bias, {m}));
  Expr idx = lanes == 1 ? yflat : Ramp::make(yflat, Expr(1), lanes);
  if (e.residual) v = v + Load::make(t, e.residual->buf, idx);
  v = e.act.apply(v);
  if (e.post_scale) v = v * vec(load(*e.post_scale, {m}));
  if (e.post_shift) v = v + vec(load(*e.post_shift, {m}));
  return Store::make(y.buf, v, idx);
}

namespace {

// The fused epilogue with output channels ch0 .. ch0+lanes-1 across the lanes; `yidx` is
// the flat output index (a Ramp with the channels' stride when lanes > 1).
Stmt channel_epilogue(const ConvEpilogue &e, const Operand &y, Expr yidx, Expr ch0, Expr v, int lanes) {
  Type t = Type::f(32, lanes);
  Expr ch = lanes == 1 ? ch0 : Ramp::make(ch0, Expr(1), lanes);
  if (e.bias) v = v + Load::make(t, e.bias->buf, ch);
  if (e.residual) v = v + Load::make(t, e.residual->buf, yidx);
  v = e.act.apply(v);
  if (e.post_scale) v = v * Load::make(t, e.post_scale->buf, ch);
  if (e.post_shift) v = v + Load::make(t, e.post_shift->buf, ch);
  return Store::make(y.buf, v, yidx);
}

}  // namespace

Stmt copy_run(LowerContext &c, const std::string &panel, const std::string &x, Expr dst, Expr src, Expr len,
              int64_t stride) {
  int vl = c.opts.vector_lanes_f32();
  Type f = Type::f(32);
  // A strided source: one contiguous load of w*stride elements, then every stride-th
  // lane. It reads stride-1 elements past the vector's last one, so a strided vector
  // needs one more element of the run after it (never reading past the run's last one).
  auto piece = [&](Expr at, int w) {
    Type vt = Type::f(32, w);
    Expr value = stride == 1 ? Load::make(vt, x, Ramp::make(src + at, Expr(1), w))
                             : Call::make(vt, "stride_lanes",
                                          {Load::make(Type::f(32, w * static_cast<int>(stride)), x,
                                                      Ramp::make(src + at * Expr(stride), Expr(1), w * static_cast<int>(stride))),
                                           Expr(0), Expr(stride)});
    return Store::make(panel, value, Ramp::make(dst + at, Expr(1), w));
  };
  std::string v = c.fresh("v"), t = c.fresh("t");
  Expr vv = Var::make(Type::index(), v), vtail = Var::make(Type::index(), t);
  Expr nvec = stride == 1 ? len / Expr(vl) : max(len - Expr(1), Expr(0)) / Expr(vl);
  std::vector<Stmt> body = {For::make(v, Expr(0), nvec, ForKind::Serial, piece(vv * Expr(vl), vl))};
  // Then at most one half and one quarter vector (rows narrower than a vector, e.g. 14
  // or 7 pixels with AVX-512), then single elements.
  Expr done = nvec * Expr(vl);
  for (int w = vl / 2; w >= 4; w /= 2) {
    Expr fits = stride == 1 ? len - done >= Expr(w) : len - done > Expr(w);
    body.push_back(IfThenElse::make(fits, piece(done, w)));
    done = done + select(fits, Expr(w), Expr(0));
  }
  std::string d = c.fresh("done");
  Expr vd = Var::make(Type::index(), d);
  body.push_back(For::make(t, vd, len - vd, ForKind::Serial,
                           Store::make(panel, Load::make(f, x, src + vtail * Expr(stride)), dst + vtail)));
  Stmt tail = Block::make(body);
  return LetStmt::make(d, done, tail);
}

namespace {

// Geometry of a 2-D convolution (1-D convs are viewed as H = 1).
struct Geom {
  Expr H, W, OH, OW;
  int64_t kh, kw, sh, sw, dh, dw;
  Expr ph, pw;
};

// panel[k * nw + j] = im2col(k, n0 + j) of one image and group: k = (ic, ky, kx), column
// n = output pixel (oh, ow). The panel's columns cover a few output rows; each row piece
// is a zero / copy / zero run along ow, so the copy is a plain strided loop.
Stmt pack_conv_panel(LowerContext &c, const Geom &gm, bool pointwise, const std::string &panel, Expr base, Expr n0,
                     int nw, Expr x_base, Expr k0, Expr klen) {
  const std::string &x = c.in[0].buf;
  Type f = Type::f(32);
  Expr N = gm.OH * gm.OW, HW = gm.H * gm.W;
  Expr n_valid = min(Expr(nw), N - n0);
  std::string kn = c.fresh("k"), j = c.fresh("j");
  Expr vk = Var::make(Type::index(), kn), vj = Var::make(Type::index(), j);
  Stmt pad_cols = For::make(j, n_valid, Expr(nw) - n_valid, ForKind::Serial,
                            Store::make(panel, make_zero(f), base + (vk - k0) * Expr(nw) + vj));
  Stmt fill;
  if (pointwise) {
    fill = copy_run(c, panel, x, base + (vk - k0) * Expr(nw), x_base + vk * HW + n0, n_valid, 1);
  } else {
    int64_t taps = gm.kh * gm.kw;
    Expr ic = vk / Expr(taps), r = vk % Expr(taps);
    Expr ky = r / Expr(gm.kw), kx = r % Expr(gm.kw);
    std::string sg = c.fresh("seg"), ow = c.fresh("ow");
    Expr vs = Var::make(Type::index(), sg), vow = Var::make(Type::index(), ow);
    Expr row = n0 / gm.OW + vs;
    Expr lo = max(n0, row * gm.OW), hi = min(min(n0 + Expr(nw), (row + Expr(1)) * gm.OW), N);
    Expr ow_a = lo - row * gm.OW, ow_b = max(ow_a, hi - row * gm.OW);
    Expr ih = row * Expr(gm.sh) + ky * Expr(gm.dh) - gm.ph;
    Expr off = kx * Expr(gm.dw) - gm.pw, s = Expr(gm.sw);
    Expr v_lo = min(ow_b, max(ow_a, (Expr(0) - off + s - Expr(1)) / s));
    Expr v_hi = min(ow_b, max(v_lo, (gm.W - off + s - Expr(1)) / s));
    Expr dst = base + (vk - k0) * Expr(nw) + row * gm.OW + vow - n0;
    auto zeros = [&](Expr a, Expr b) { return For::make(ow, a, b - a, ForKind::Serial, Store::make(panel, make_zero(f), dst)); };
    Expr dst0 = base + (vk - k0) * Expr(nw) + row * gm.OW + v_lo - n0;
    Expr src0 = x_base + ic * HW + ih * gm.W + v_lo * s + off;
    Stmt copy = copy_run(c, panel, x, dst0, src0, v_hi - v_lo, gm.sw);
    Expr row_ok = ih >= Expr(0) && ih < gm.H;
    Stmt piece = IfThenElse::make(row_ok, Block::make({zeros(ow_a, v_lo), copy, zeros(v_hi, ow_b)}), zeros(ow_a, ow_b));
    Expr segs = (Expr(nw) + gm.OW - Expr(1)) / gm.OW + Expr(1);
    fill = For::make(sg, Expr(0), segs, ForKind::Serial, piece);
  }
  return For::make(kn, k0, klen, ForKind::Serial, Block::make({fill, pad_cols}));
}

// The im2col rows of channels ic0 .. ic0 + count - 1 on a small output map (static geometry,
// rows of at most 32): k = (ic, ky, kx), column = output pixel, col[base + k * P + p]. Per
// (channel, kernel row, kernel column, output row) the row's OW values are each a load or --
// where the input column lies in the padding, known when compiling -- a zero; rows whose
// input row lies in the padding are zeros. (The general panel packer's run arithmetic per
// row segment cost as much as the copies: layer4.0's 3x3 stride-2 conv -12%, layer3.0's
// -19%, layer2.0's strided 1x1 onto 28x28 -7% at one thread.)
bool small_im2col_fits(const Geom &gm) {
  for (const Expr &e : {gm.H, gm.W, gm.OH, gm.OW, gm.ph, gm.pw}) {
    if (!e.as<IntImm>()) return false;
  }
  return gm.OW.as<IntImm>()->value <= 32;
}

Stmt pack_small_im2col(LowerContext &c, const Geom &gm, const std::string &col, Expr base, Expr x_img, Expr ic0, Expr count) {
  auto v = [](const Expr &e) { return e.as<IntImm>()->value; };
  const int64_t H = v(gm.H), W = v(gm.W), OH = v(gm.OH), OW = v(gm.OW), ph = v(gm.ph), pw = v(gm.pw);
  const int64_t P = OH * OW;
  Type f = Type::f(32);
  const std::string &x = c.in[0].buf;
  std::string icn = c.fresh("ic");
  Expr vic = Var::make(Type::index(), icn);
  std::vector<Stmt> taps;
  for (int64_t ky = 0; ky < gm.kh; ++ky) {
    for (int64_t kx = 0; kx < gm.kw; ++kx) {
      std::string ohn = c.fresh("oh");
      Expr voh = Var::make(Type::index(), ohn);
      Expr ih = voh * Expr(gm.sh) + Expr(ky * gm.dh - ph);
      Expr dst = base + ((vic * Expr(gm.kh) + Expr(ky)) * Expr(gm.kw) + Expr(kx)) * Expr(P) + voh * Expr(OW);
      Expr src = x_img + vic * Expr(H * W) + ih * Expr(W);
      std::vector<Stmt> copies, zeros;
      for (int64_t ow = 0; ow < OW; ++ow) {
        int64_t iw = ow * gm.sw + kx * gm.dw - pw;
        Expr val = iw >= 0 && iw < W ? Load::make(f, x, src + Expr(iw)) : make_zero(f);
        copies.push_back(Store::make(col, val, dst + Expr(ow)));
        zeros.push_back(Store::make(col, make_zero(f), dst + Expr(ow)));
      }
      taps.push_back(For::make(ohn, Expr(0), Expr(OH), ForKind::Serial,
                               IfThenElse::make(ih >= Expr(0) && ih < Expr(H), Block::make(copies), Block::make(zeros))));
    }
  }
  return For::make(icn, ic0, count, ForKind::Serial, Block::make(taps));
}

// Depthwise conv of small planes (output rows narrower than a vector, e.g. 7x7 and 14x14
// with AVX-512): vectors run across `vl` channels instead of along a row. Each work item
// gathers its channels' zero-padded planes into a pixel-major scratch ([Hp][Wp][vl]), so
// every tap is one contiguous vector load and one FMA for vl channels; the weights of a
// tap are one strided load; results are scattered back to the channels' planes.
Stmt depthwise_across_channels(LowerContext &c, const ConvAttrs &a, const std::vector<Expr> &pad,
                               const ConvEpilogue &e, Expr Hp, Expr Wp) {
  const Operand &x = c.in[0], &w = c.in[1], &y = c.out[0];
  Expr H = x.shape[2], W = x.shape[3], OH = y.shape[2], OW = y.shape[3], C = y.shape[1];
  int64_t kh = a.kernel[0], kw = a.kernel[1];
  int vl = c.opts.vector_lanes_f32();
  Type vt = Type::f(32, vl);
  Expr zero = Broadcast::make(make_zero(Type::f(32)), vl);
  std::string blk = c.fresh("cb"), pl = c.fresh("planes");
  Expr vblk = Var::make(Type::index(), blk);
  // The last block ends at the last channel, overlapping the one before when C is not a
  // multiple of vl (those channels are computed twice, to the same values).
  Expr blocks = (C + Expr(vl - 1)) / Expr(vl);
  Expr n = vblk / blocks, c0 = min((vblk % blocks) * Expr(vl), C - Expr(vl));
  // Gather: planes[(r * Wp + q) * vl + lane] = x[n, c0 + lane, r - pad_h, q - pad_w] or 0.
  std::string r = c.fresh("r"), q = c.fresh("q");
  Expr vr = Var::make(Type::index(), r), vq = Var::make(Type::index(), q);
  Expr ih = vr - pad[0], iw = vq - pad[1];
  Expr inside = ih >= Expr(0) && ih < H && iw >= Expr(0) && iw < W;
  Expr src = (n * C + c0) * H * W + ih * W + iw;
  Stmt gather = Store::make(pl, select(inside, Load::make(vt, x.buf, Ramp::make(select(inside, src, Expr(0)), H * W, vl)), zero),
                            Ramp::make((vr * Wp + vq) * Expr(vl), Expr(1), vl));
  // Select evaluates both sides: the gather's index is clamped to 0 outside the image.
  Stmt fill = For::make(r, Expr(0), Hp, ForKind::Serial, For::make(q, Expr(0), Wp, ForKind::Serial, gather));
  // The block's weights, tap-major ([taps][vl]), gathered once: loads from this scratch
  // stay in registers across the pixels (the output stores cannot alias it).
  std::string wb = c.fresh("wtaps"), t = c.fresh("t");
  Expr vt_ = Var::make(Type::index(), t);
  int64_t taps = kh * kw;
  Stmt wfill = For::make(t, Expr(0), Expr(taps), ForKind::Serial,
                         Store::make(wb, Load::make(vt, w.buf, Ramp::make(c0 * Expr(taps) + vt_, Expr(taps), vl)),
                                     Ramp::make(vt_ * Expr(vl), Expr(1), vl)));
  std::string oh = c.fresh("oh"), ow = c.fresh("ow");
  Expr voh = Var::make(Type::index(), oh), vow = Var::make(Type::index(), ow);
  Expr acc = zero;
  for (int64_t ky = 0; ky < kh; ++ky) {
    for (int64_t kx = 0; kx < kw; ++kx) {
      Expr wv = Load::make(vt, wb, Ramp::make(Expr((ky * kw + kx) * vl), Expr(1), vl));
      Expr pix = (voh * Expr(a.strides[0]) + Expr(ky * a.dilations[0])) * Wp + vow * Expr(a.strides[1]) +
                 Expr(kx * a.dilations[1]);
      acc = call("fma", {wv, Load::make(vt, pl, Ramp::make(pix * Expr(vl), Expr(1), vl)), acc});
    }
  }
  Expr yidx = Ramp::make((n * C + c0) * OH * OW + voh * OW + vow, OH * OW, vl);
  Stmt rows = For::make(oh, Expr(0), OH, ForKind::Serial,
                        For::make(ow, Expr(0), OW, ForKind::Serial, channel_epilogue(e, y, yidx, c0, acc, vl)));
  Stmt body = Allocate::make(pl, Type::f(32), Hp * Wp * Expr(vl),
                             Allocate::make(wb, Type::f(32), Expr(taps * vl), Block::make({wfill, fill, rows})));
  return For::make(blk, Expr(0), y.shape[0] * blocks, ForKind::Parallel, body);
}

Stmt depthwise(LowerContext &c, const ConvAttrs &a, const std::vector<Expr> &pad, const ConvEpilogue &e) {
  const Operand &x = c.in[0], &w = c.in[1], &y = c.out[0];
  Expr H = x.shape[2], W = x.shape[3], OH = y.shape[2], OW = y.shape[3], C = y.shape[1];
  int64_t kh = a.kernel[0], kw = a.kernel[1];
  // The zero-padded plane spans every window (auto_pad may pad more at the end).
  Expr Hp = (OH - Expr(1)) * Expr(a.strides[0]) + Expr(a.dilations[0] * (kh - 1) + 1);
  Expr Wp = (OW - Expr(1)) * Expr(a.strides[1]) + Expr(a.dilations[1] * (kw - 1) + 1);
  int vl = c.opts.vector_lanes_f32();
  auto *ow_c = OW.as<IntImm>();
  auto *c_c = C.as<IntImm>();
  // Rows narrower than a vector but at least half of one (14x14 with AVX-512) run half
  // vectors along the row; 3x3 convs on rows of at least 4 (7x7) run quarter vectors (the
  // gather and scatter of the across-channels layout cost more than their few taps); the
  // rest across channels.
  if (ow_c && ow_c->value < vl && vl / 2 >= 4 && ow_c->value >= vl / 2) {
    vl /= 2;
  } else if (ow_c && ow_c->value < vl && vl / 4 >= 4 && ow_c->value >= vl / 4 && kh * kw <= 9) {
    vl /= 4;
  }
  if (ow_c && ow_c->value < vl && c_c && c_c->value >= c.opts.vector_lanes_f32()) {
    return depthwise_across_channels(c, a, pad, e, Hp, Wp);
  }
  Type f = Type::f(32);
  std::string nc = c.fresh("nc"), pl = c.fresh("plane");
  Expr vnc = Var::make(Type::index(), nc);
  Expr ch = vnc % C;
  // Zero-padded copy of this channel's plane, rows split by column phase (PhaseRows), so
  // every tap of an output vector is one contiguous load, strided convs included.
  PhaseRows pr(OW, a.strides[1], kw, a.dilations[1]);
  std::string r = c.fresh("r");
  Expr vr = Var::make(Type::index(), r);
  Expr ih = vr - pad[0];
  Stmt fill = For::make(r, Expr(0), Hp, ForKind::Serial,
                        pr.fill(c, pl, vr * pr.Wrow, x.buf, (vnc * H + ih) * W, ih >= Expr(0) && ih < H, W, pad[1]));
  auto tap_row = [&](Expr oh, int64_t ky) { return (oh * Expr(a.strides[0]) + Expr(ky * a.dilations[0])) * pr.Wrow; };
  // Output vectors (or one element, lanes == 1) of rows `ohs` starting at `offs` (one per
  // row and offset): one accumulator each, updated together per tap so the FMA chains
  // interleave (a single chain of kh*kw dependent FMAs per vector would wait on FMA latency).
  auto outputs_at = [&](const std::vector<Expr> &ohs, const std::vector<Expr> &row_offs, int lanes) {
    std::vector<std::pair<Expr, Expr>> outs;
    for (const Expr &o : ohs) {
      for (const Expr &off : row_offs) outs.emplace_back(o, off);
    }
    int nv = static_cast<int>(outs.size());
    Type t = Type::f(32, lanes);
    std::string acc = c.fresh("acc");
    auto at = [&](int v) { return lanes == 1 ? Expr(int64_t(v)) : Ramp::make(Expr(int64_t(v * lanes)), Expr(1), lanes); };
    auto wide = [&](Expr e) { return lanes == 1 ? e : Broadcast::make(e, lanes); };
    std::vector<Stmt> body;
    for (int v = 0; v < nv; ++v) body.push_back(Store::make(acc, wide(make_zero(f)), at(v)));
    for (int64_t ky = 0; ky < kh; ++ky) {
      for (int64_t kx = 0; kx < kw; ++kx) {
        Expr wv = wide(load(w, {ch, Expr(0), Expr(ky), Expr(kx)}));
        for (int v = 0; v < nv; ++v) {
          Expr base = tap_row(outs[v].first, ky) + pr.tap(kx, outs[v].second);
          Expr xv = lanes == 1 ? Load::make(f, pl, base) : Load::make(t, pl, Ramp::make(base, Expr(1), lanes));
          body.push_back(Store::make(acc, call("fma", {wv, xv, Load::make(t, acc, at(v))}), at(v)));
        }
      }
    }
    for (int v = 0; v < nv; ++v) {
      body.push_back(conv_epilogue(e, y, (vnc * OH + outs[v].first) * OW + outs[v].second, ch,
                                   Load::make(t, acc, at(v)), lanes));
    }
    return Allocate::make(acc, f, Expr(int64_t(nv * lanes)), Block::make(body));
  };
  std::string oh = c.fresh("oh"), ov = c.fresh("ov"), os = c.fresh("os");
  Expr voh = Var::make(Type::index(), oh), vov = Var::make(Type::index(), ov), vos = Var::make(Type::index(), os);
  Stmt rows;
  auto *oh_c = OH.as<IntImm>();
  if (ow_c && oh_c && ow_c->value >= vl) {
    // The row's vectors in groups of up to 8 (accumulators in registers); the last vector
    // ends at the row's end, overlapping the one before (recomputed: the same values).
    // Rows of one or two vectors run several rows at once (the last group of rows ends at
    // the last row, likewise).
    int64_t nvec = (ow_c->value + vl - 1) / vl, ngroups = (nvec + 7) / 8, per = (nvec + ngroups - 1) / ngroups;
    int64_t nrows = std::max<int64_t>(1, std::min<int64_t>(oh_c->value, 8 / nvec));
    std::vector<Expr> ohs;
    for (int64_t i = 0; i < nrows; ++i) ohs.push_back(min(voh * Expr(nrows) + Expr(i), OH - Expr(1)));
    std::vector<Stmt> groups;
    for (int64_t gi = 0; gi < ngroups; ++gi) {
      std::vector<Expr> offs;
      for (int64_t i = gi * per; i < std::min(nvec, (gi + 1) * per); ++i) offs.push_back(Expr(std::min(i * vl, ow_c->value - vl)));
      groups.push_back(outputs_at(ohs, offs, vl));
    }
    rows = For::make(oh, Expr(0), Expr((oh_c->value + nrows - 1) / nrows), ForKind::Serial, Block::make(groups));
  } else {
    // Symbolic or narrow rows: vectors along the row, then one ending at the row's end or
    // (rows narrower than a vector) element by element.
    Expr nvec = OW / Expr(vl);
    Stmt vec = For::make(ov, Expr(0), nvec, ForKind::Serial, outputs_at({voh}, {vov * Expr(vl)}, vl));
    Stmt scl = For::make(os, nvec * Expr(vl), OW - nvec * Expr(vl), ForKind::Serial, outputs_at({voh}, {vos}, 1));
    Stmt rest = IfThenElse::make(nvec > Expr(0), outputs_at({voh}, {OW - Expr(vl)}, vl), scl);
    rows = For::make(oh, Expr(0), OH, ForKind::Serial, Block::make({vec, IfThenElse::make(OW % Expr(vl) != Expr(0), rest)}));
  }
  Stmt body = Allocate::make(pl, f, Hp * pr.Wrow + Expr(vl), Block::make({fill, rows}));
  return For::make(nc, Expr(0), y.shape[0] * C, ForKind::Parallel, body);
}

// A 1x1 conv of a 1x1 image (SE blocks' fully connected layers): a matrix-vector product.
// The GEMM's 32-column panels would be 31/32 padding; instead each row block of the
// packed weights (A(b * mr + i, k) at (b * mr) * K + k * mr + i) accumulates mr output
// channels in one vector, one FMA per k, with the epilogue across channels.
Stmt conv_gemv(LowerContext &c, const ConvEpilogue &e, int mr) {
  const Operand &x = c.in[0], &w = c.in[1], &y = c.out[0];
  Expr M = y.shape[1], K = x.shape[1];
  Type f = Type::f(32), vt = Type::f(32, mr);
  std::string bn = c.fresh("n"), rb = c.fresh("rb"), kn = c.fresh("k"), acc = c.fresh("acc");
  Expr vb = Var::make(Type::index(), bn), vr = Var::make(Type::index(), rb), vk = Var::make(Type::index(), kn);
  Expr blocks = M / Expr(mr);
  auto epilogue = [&](Expr m0, Expr v, int lanes) {
    Expr yi = lanes == 1 ? vb * M + m0 : Ramp::make(vb * M + m0, Expr(1), lanes);
    return channel_epilogue(e, y, yi, m0, v, lanes);
  };
  Expr a_vec = Load::make(vt, w.buf, Ramp::make(vr * Expr(mr) * K + vk * Expr(mr), Expr(1), mr));
  Expr xk = Broadcast::make(Load::make(f, x.buf, vb * K + vk), mr);
  Expr accv = Load::make(vt, acc, Ramp::make(Expr(0), Expr(1), mr));
  Stmt block = Allocate::make(
      acc, f, Expr(mr),
      Block::make({Store::make(acc, Broadcast::make(make_zero(f), mr), Ramp::make(Expr(0), Expr(1), mr)),
                   For::make(kn, Expr(0), K, ForKind::Serial,
                             Store::make(acc, call("fma", {a_vec, xk, accv}), Ramp::make(Expr(0), Expr(1), mr))),
                   epilogue(vr * Expr(mr), accv, mr)}));
  // Rows past the last whole block are stored unpacked: A(m, k) = w[m * K + k].
  std::string tm = c.fresh("m"), s = c.fresh("sum");
  Expr vm = Var::make(Type::index(), tm);
  Expr sum = Load::make(f, s, Expr(0));
  Stmt tail_row = Allocate::make(
      s, f, Expr(1),
      Block::make({Store::make(s, make_zero(f), Expr(0)),
                   For::make(kn, Expr(0), K, ForKind::Serial,
                             Store::make(s, call("fma", {Load::make(f, w.buf, vm * K + vk), Load::make(f, x.buf, vb * K + vk), sum}),
                                         Expr(0))),
                   epilogue(vm, sum, 1)}));
  Expr work = M * K;
  auto *mk = work.as<IntImm>();
  ForKind kind = mk && mk->value < (int64_t{1} << 16) ? ForKind::Serial : ForKind::Parallel;
  Stmt body = Block::make({For::make(rb, Expr(0), blocks, kind, block),
                           For::make(tm, blocks * Expr(mr), M - blocks * Expr(mr), ForKind::Serial, tail_row)});
  return For::make(bn, Expr(0), y.shape[0], ForKind::Serial, body);
}

}  // namespace

bool conv_schedulable(const LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  return c.opts.opt_level >= 1 && x.dtype == DType::F32 && c.in[1].dtype == DType::F32 &&
         y.dtype == DType::F32 && (x.rank() == 3 || x.rank() == 4);
}

Stmt conv_schedule(LowerContext &c, const ConvAttrs &a, const std::vector<Expr> &pad, const ConvEpilogue &e) {
  const Operand &x = c.in[0], &w = c.in[1], &y = c.out[0];
  int sp = x.rank() - 2;
  Expr cin_g = w.shape[1], M = y.shape[1], Mg = M / Expr(a.group);
  if (sp == 2 && is_const(cin_g, 1) && is_const(Mg, 1)) return depthwise(c, a, pad, e);
  int packed_mr = static_cast<int>(c.node.attr_i("packed_mr", 0));
  bool one_pixel = sp == 2 && is_const(x.shape[2], 1) && is_const(x.shape[3], 1) && is_const(y.shape[2], 1) &&
                   is_const(y.shape[3], 1) && a.kernel[0] == 1 && a.kernel[1] == 1;
  if (one_pixel && a.group == 1 && packed_mr > 0) return conv_gemv(c, e, packed_mr);
  if (sp == 2) {
    if (int vl = conv_direct_lanes(c, a, packed_mr)) return conv_direct_rows(c, a, pad, e, vl, packed_mr);
  }
  Geom gm;
  bool two = sp == 2;
  gm.H = two ? x.shape[2] : Expr(1);
  gm.W = x.shape[sp + 1];
  gm.OH = two ? y.shape[2] : Expr(1);
  gm.OW = y.shape[sp + 1];
  gm.kh = two ? a.kernel[0] : 1;
  gm.kw = a.kernel[sp - 1];
  gm.sh = two ? a.strides[0] : 1;
  gm.sw = a.strides[sp - 1];
  gm.dh = two ? a.dilations[0] : 1;
  gm.dw = a.dilations[sp - 1];
  gm.ph = two ? pad[0] : Expr(0);
  gm.pw = pad[sp - 1];
  bool pointwise = gm.kh == 1 && gm.kw == 1 && gm.sh == 1 && gm.sw == 1 && is_const(gm.ph, 0) && is_const(gm.pw, 0);
  Expr K = cin_g * Expr(gm.kh * gm.kw), N = gm.OH * gm.OW, HW = gm.H * gm.W;
  std::string bn = c.fresh("n"), gn = c.fresh("g");
  Expr vb = Var::make(Type::index(), bn), vg = Var::make(Type::index(), gn);
  Expr x_base = (vb * x.shape[1] + vg * cin_g) * HW;
  if (int nw = static_cast<int>(c.node.attr_i("packed_nr", 0)); nw > 0) {
    // Few output pixels (7x7 and 14x14 maps, see pack_weights.cpp): the GEMM transposed,
    // C'(pixel, co) = col^T W^T, so the vectors run along output channels (weights packed
    // in column panels at compile time) and no tile is mostly padding; the im2col matrix
    // (K x N, small) is packed once, in parallel over blocks of K -- or, for a 1x1 stride-1
    // conv, is the input itself -- and each result vector scatters to its channels.
    auto *n_c = N.as<IntImm>();
    internal_assert(n_c && a.group == 1 && nw == gemm_tile_for(c.opts).nv * gemm_tile_for(c.opts).vl)
        << c.node.describe() << ": weights packed for " << nw << "-column panels";
    int64_t n_px = n_c->value;
    GemmTile tl = gemm_tile_for_rows(c.opts, n_px);
    // The images of a static batch fold into the GEMM's rows (row m: image m / P, pixel m % P)
    // where the weights outweigh the batch's rows (more output channels than rows): each
    // weight panel then serves every image's row tiles from cache instead of streaming once
    // per image (ResNet-50 at batch 8: layer4). Otherwise image by image, each image's rows
    // staying in cache across all panels (layer3: folding measured 3.5% slower at 1 thread).
    auto *batch_c = y.shape[0].as<IntImm>(), *m_c = M.as<IntImm>();
    const int64_t images = batch_c && m_c && m_c->value > batch_c->value * n_px ? batch_c->value : 1;
    const bool fold = images > 1;
    // Per image: the input [C][P] (1x1 stride 1, read in place) or its im2col matrix [K][P].
    Expr per_image = pointwise ? x.shape[1] * HW : K * N;
    GemmSpec t;
    t.a = pointwise ? x.buf : c.fresh("col");
    t.a_base = fold || !pointwise ? Expr(0) : x_base;
    if (fold) t.a_row = [=](Expr m) { return m / Expr(n_px) * per_image + m % Expr(n_px); };
    t.a_sm = Expr(1);
    t.a_sk = N;
    t.b = w.buf;
    t.b_base = Expr(0);
    t.b_sk = Expr(0);
    t.b_packed_nw = nw;
    t.prefetch_packed = true;
    t.prefetch_next_panel = true;
    t.M = Expr(images * n_px);
    t.N = M;
    t.K = K;
    t.overlap_last_tile = true;  // the output shares no memory with the conv's inputs
    t.epilogue = [&](Expr m, Expr co, Expr v, int lanes) {
      Expr img = fold ? m / Expr(n_px) : vb, px = fold ? m % Expr(n_px) : m;
      Expr yi = (img * M + co) * N + px;
      return channel_epilogue(e, y, lanes == 1 ? yi : Ramp::make(yi, N, lanes), co, v, lanes);
    };
    Stmt body = gemm_panel_items_fit(t, tl) ? gemm_panel_items(c, t, tl) : gemm_tiles(c, t, tl);
    if (!pointwise) {
      // The im2col matrix of each image, in parallel over (image, part): on rows of at most 32
      // per 8 input channels (pack_small_im2col), otherwise per 64 rows of K (pack_conv_panel).
      const bool small = small_im2col_fits(gm);
      constexpr int64_t kChannels = 8, kRows = 64;
      Expr parts = small ? (cin_g + Expr(kChannels - 1)) / Expr(kChannels) : (K + Expr(kRows - 1)) / Expr(kRows);
      std::string it = c.fresh("kc");
      Expr vit = Var::make(Type::index(), it);
      Expr img = fold ? vit / parts : vb, part = fold ? vit % parts : vit;
      Expr img_x = (img * x.shape[1] + vg * cin_g) * HW, img_col = fold ? img * per_image : Expr(0);
      Stmt fill;
      if (small) {
        Expr ic0 = part * Expr(kChannels);
        fill = pack_small_im2col(c, gm, t.a, img_col, img_x, ic0, min(Expr(kChannels), cin_g - ic0));
      } else {
        Expr k0 = part * Expr(kRows);
        fill = pack_conv_panel(c, gm, false, t.a, img_col + k0 * N, Expr(0), static_cast<int>(n_px), img_x, k0,
                               min(Expr(kRows), K - k0));
      }
      Stmt pack = For::make(it, Expr(0), parts * Expr(images), ForKind::Parallel, fill);
      body = Allocate::make(t.a, Type::f(32), per_image * Expr(images), Block::make({pack, body}));
    }
    body = For::make(gn, Expr(0), Expr(1), ForKind::Serial, body);
    return fold ? body : For::make(bn, Expr(0), y.shape[0], ForKind::Serial, body);
  }
  auto *n_px = N.as<IntImm>();
  int nr = gemm_tile_for(c.opts).nv * gemm_tile_for(c.opts).vl;
  if (pointwise && a.group == 1 && n_px && n_px->value >= nr) {
    // 1x1 stride 1: B is the input itself (row k = channel k's plane), read in place by
    // whole tiles (the last one overlapping the one before it) -- no panels to pack.
    GemmSpec g;
    g.a = w.buf;
    g.a_base = Expr(0);
    g.a_sm = K;
    g.a_sk = Expr(1);
    g.a_packed_mr = static_cast<int>(c.node.attr_i("packed_mr", 0));
    g.prefetch_packed = true;
    internal_assert(g.a_packed_mr == 0 || g.a_packed_mr == gemm_tile_for(c.opts).mr)
        << c.node.describe() << ": weights packed for " << g.a_packed_mr << "-row tiles";
    g.b = x.buf;
    g.b_base = x_base;
    g.b_sk = HW;
    g.M = M;
    g.N = N;
    g.K = K;
    g.overlap_last_tile = true;
    g.epilogue = [&](Expr m, Expr n, Expr v, int lanes) { return conv_epilogue(e, y, (vb * M + m) * N + n, m, v, lanes); };
    g.epilogue_touches = [&](Expr m, Expr n) {
      Expr at = (vb * M + m) * N + n;
      std::vector<GemmSpec::Touch> t = {{Load::make(Type::f(32), y.buf, at), true}};
      if (e.residual) t.push_back({Load::make(Type::f(32), e.residual->buf, at), false});
      return t;
    };
    return For::make(bn, Expr(0), y.shape[0], ForKind::Serial,
                     LetStmt::make(gn, Expr(0), gemm_tiles(c, g, gemm_tile_for(c.opts))));
  }
  GemmSpec g;
  g.a = w.buf;
  g.a_base = vg * Mg * K;
  g.a_sm = K;
  g.a_sk = Expr(1);
  g.a_packed_mr = static_cast<int>(c.node.attr_i("packed_mr", 0));
  g.prefetch_packed = true;
  internal_assert(g.a_packed_mr == 0 || g.a_packed_mr == gemm_tile_for(c.opts).mr)
      << c.node.describe() << ": weights packed for " << g.a_packed_mr << "-row tiles";
  g.M = Mg;
  g.N = N;
  g.K = K;
  g.epilogue = [&](Expr m, Expr n, Expr v, int lanes) {
    Expr mc = vg * Mg + m;
    return conv_epilogue(e, y, (vb * M + mc) * N + n, mc, v, lanes);
  };
  g.epilogue_touches = [&](Expr m, Expr n) {
    Expr at = (vb * M + vg * Mg + m) * N + n;
    std::vector<GemmSpec::Touch> t = {{Load::make(Type::f(32), y.buf, at), true}};
    if (e.residual) t.push_back({Load::make(Type::f(32), e.residual->buf, at), false});
    return t;
  };
  Stmt gemm = gemm_packed_tiles(c, g, gemm_tile_for(c.opts),
                                [&](const std::string &panel, Expr base, Expr n0, int nw, Expr k0, Expr klen) {
                                  return pack_conv_panel(c, gm, pointwise, panel, base, n0, nw, x_base, k0, klen);
                                });
  return For::make(bn, Expr(0), y.shape[0], ForKind::Serial,
                   For::make(gn, Expr(0), Expr(a.group), ForKind::Serial, gemm));
}

std::optional<Stmt> conv_transpose_schedule(LowerContext &c, const ConvAttrs &a, const std::vector<Expr> &pad) {
  const Operand &x = c.in[0], &w = c.in[1], &y = c.out[0];
  if (c.opts.opt_level < 1 || x.dtype != DType::F32 || w.dtype != DType::F32 || y.dtype != DType::F32 ||
      x.rank() != 4 || a.group != 1) {
    return std::nullopt;
  }
  for (int d = 0; d < 2; ++d) {
    bool plain = a.strides[d] == a.kernel[d] && a.dilations[d] == 1 && is_const(pad[d], 0) &&
                 (a.output_padding.empty() || a.output_padding[d] == 0);
    if (!plain) return std::nullopt;
  }
  // The output must be exactly the input scaled by the stride (every position written once).
  Expr H = x.shape[2], W = x.shape[3];
  if (!is_const(y.shape[2] - H * Expr(a.strides[0]), 0) || !is_const(y.shape[3] - W * Expr(a.strides[1]), 0)) {
    return std::nullopt;
  }
  int64_t kh = a.kernel[0], kw = a.kernel[1], taps = kh * kw;
  Expr Cin = x.shape[1], Cout = y.shape[1], OH = y.shape[2], OW = y.shape[3];
  Expr M = Cout * Expr(taps), N = H * W;
  std::string bn = c.fresh("n");
  Expr vb = Var::make(Type::index(), bn);
  GemmSpec g;
  g.a = w.buf;  // W[ci, co, ky, kx]: A(m = (co, ky, kx), k = ci)
  g.a_base = Expr(0);
  g.a_sm = Expr(1);
  g.a_sk = M;
  g.b = x.buf;
  g.b_base = vb * Cin * N;
  g.b_sk = N;
  g.M = M;
  g.N = N;
  g.K = Cin;
  g.epilogue = [&](Expr m, Expr n, Expr v, int lanes) {
    Expr co = m / Expr(taps), ky = m % Expr(taps) / Expr(kw), kx = m % Expr(kw);
    if (c.has(2)) v = v + (lanes == 1 ? load(c.in[2], {co}) : Broadcast::make(load(c.in[2], {co}), lanes));
    Expr nv = lanes == 1 ? n : Ramp::make(n, Expr(1), lanes);
    auto bc = [&](Expr e) { return lanes == 1 ? e : Broadcast::make(e, lanes); };
    Expr ih = nv / bc(W), iw = nv % bc(W);
    Expr idx = bc((vb * Cout + co) * OH * OW) + (ih * bc(Expr(a.strides[0])) + bc(ky)) * bc(OW) +
               iw * bc(Expr(a.strides[1])) + bc(kx);
    return Store::make(y.buf, v, idx);
  };
  return For::make(bn, Expr(0), y.shape[0], ForKind::Serial, gemm_tiles(c, g, gemm_tile_for(c.opts)));
}

}  // namespace kiln
