// Kernels of the NCHWc blocked layout (ops.def; passes/blocked_layout.cpp): a blocked
// tensor [N, CB, H, W, b] keeps the b channels of a block contiguous per pixel, so
//  - a 1x1 conv is a GEMM with pixels as rows and output channels across the lanes:
//    per input channel, R pixel broadcasts times nb weight vectors into R x nb
//    accumulators, each result one contiguous vector store (no scatter, the residual
//    read the same way);
//  - a depthwise conv runs every tap as one vector of b channels: no plane copies, no
//    gathers, any map size and stride;
//  - a stem (a dense conv over an image's few channels) reads NCHW and writes blocked;
//  - global average pooling sums whole vectors.
// ToBlocked / FromBlocked reorder at the edges of a blocked region.
#include "lower/conv_blocked.h"
#include "lower/conv_schedule.h"
#include "support/error.h"

namespace kiln {

namespace {

const std::string &x_buf(const LowerContext &c) { return c.in[0].buf; }

struct Blocked {
  int64_t b;        // channels per block (vector lanes)
  Expr N, CB, H, W;  // input
};

Blocked blocked_input(const LowerContext &c) {
  const Operand &x = c.in[0];
  internal_assert(x.rank() == 5) << c.node.describe() << ": expects a blocked input";
  auto *b = x.shape[4].as<IntImm>();
  internal_assert(b) << c.node.describe() << ": the block must be static";
  return {b->value, x.shape[0], x.shape[1], x.shape[2], x.shape[3]};
}

int64_t static_dim(const LowerContext &c, const Expr &e, const char *what) {
  auto *v = e.as<IntImm>();
  internal_assert(v) << c.node.describe() << ": the " << what << " must be static";
  return v->value;
}

// The epilogue of a single blocked conv node: inputs B?, Z?, S?, T? at 2 .. 5.
BlockedEpilogue node_epilogue(const LowerContext &c) {
  BlockedEpilogue ep;
  auto opt = [&](size_t i) { return c.has(i) ? &c.in[i] : nullptr; };
  ep.bias = opt(2);
  ep.residual = opt(3);
  ep.scale = opt(4);
  ep.shift = opt(5);
  ep.act = Activation::of(c.node);
  return ep;
}

// 1x1 conv (group 1, no padding, any stride). Work items: (image, pair of output blocks,
// tile of R pixels), tiles fastest so a thread's consecutive items reuse one pair's
// weights from cache, and prefetch the next pair's (MobileNetV3's 1x1 convs on 7x7 and
// 14x14 maps and its squeeze-and-excitation FCs 10-40% faster per node at 2 threads,
// the model -5% at 1 thread); an odd last block runs alone in a second loop.
Stmt blocked_pointwise(LowerContext &c, const ConvAttrs &a) {
  const Operand &w = c.in[1], &y = c.out[0];
  Blocked x = blocked_input(c);
  const int b = static_cast<int>(x.b);
  int64_t H = static_dim(c, x.H, "input height"), W = static_dim(c, x.W, "input width");
  int64_t OH = static_dim(c, y.shape[2], "output height"), OW = static_dim(c, y.shape[3], "output width");
  int64_t ICB = static_dim(c, x.CB, "input block count"), OCB = static_dim(c, y.shape[1], "output block count");
  int64_t P = OH * OW, ICp = ICB * b;
  // The real input channels (the padded ones past them have zero weights).
  int64_t K = c.node.attr_i("in_channels", ICp);
  internal_assert(K > (ICB - 1) * b && K <= ICp) << c.node.describe() << ": in_channels " << K << " do not fit " << ICB << " blocks";
  int64_t sh = a.strides[0], sw = a.strides[1];
  bool dense = sh == 1 && sw == 1;
  BlockedEpilogue ep = node_epilogue(c);

  auto loop = [&](int nb, int64_t groups, Expr ocb_first) {
    PixelTiling tiles = pixel_tiling(c, P, nb);
    std::string item = c.fresh("item");
    Expr vi = Var::make(Type::index(), item);
    Expr t = vi % Expr(tiles.T), grp = vi / Expr(tiles.T) % Expr(groups), n = vi / Expr(tiles.T * groups);
    BlockedPixels in{x_buf(c), [=](Expr icb, Expr p) {
                       Expr pin = dense ? p : (p / Expr(OW)) * Expr(sh * W) + (p % Expr(OW)) * Expr(sw);
                       return ((n * Expr(ICB) + icb) * Expr(H * W) + pin) * Expr(int64_t(b));
                     }};
    BlockedPixels out{y.buf, [=](Expr ocb, Expr p) { return ((n * Expr(OCB) + ocb) * Expr(P) + p) * Expr(int64_t(b)); }};
    PointwiseTile tile{b, nb, tiles.R, K, ICp, w.buf, OCB};
    Stmt body = pointwise_tile(c, tile, in, out, ep, ocb_first + grp * Expr(int64_t(nb)), tiles.first(t, P));
    return For::make(item, Expr(0), x.N * Expr(tiles.T * groups), ForKind::Parallel, body);
  };
  std::vector<Stmt> loops;
  if (OCB / 2 > 0) loops.push_back(loop(2, OCB / 2, Expr(0)));
  if (OCB % 2) loops.push_back(loop(1, 1, Expr(OCB - 1)));
  return Block::make(loops);
}

// Depthwise conv (one input and one output channel per group, any kernel, stride,
// dilation and padding). Work items: (image, block, output row).
Stmt blocked_depthwise(LowerContext &c, const ConvAttrs &a, int64_t pad_h, int64_t pad_w) {
  const Operand &w = c.in[1], &y = c.out[0];
  Blocked x = blocked_input(c);
  const int b = static_cast<int>(x.b);
  int64_t H = static_dim(c, x.H, "input height"), W = static_dim(c, x.W, "input width");
  int64_t OH = static_dim(c, y.shape[2], "output height"), OW = static_dim(c, y.shape[3], "output width");
  int64_t CB = static_dim(c, x.CB, "input block count");
  int64_t taps = a.kernel[0] * a.kernel[1];
  std::string item = c.fresh("row");
  Expr vi = Var::make(Type::index(), item);
  Expr oh = vi % Expr(OH), cb = vi / Expr(OH) % Expr(CB), n = vi / Expr(OH * CB);
  Expr plane = (n * Expr(CB) + cb) * Expr(H * W), row_out = ((n * Expr(CB) + cb) * Expr(OH) + oh) * Expr(OW);
  DepthwiseRow d{b, H, W, OW, pad_h, pad_w, a, w.buf};
  Stmt row = depthwise_row(
      c, d, x_buf(c), [=](Expr ih, Expr iw) { return (plane + ih * Expr(W) + iw) * Expr(int64_t(b)); },
      cb * Expr(taps * b), oh, y.buf, [=](Expr ow) { return (row_out + ow) * Expr(int64_t(b)); }, node_epilogue(c),
      cb * Expr(int64_t(b)));
  return For::make(item, Expr(0), x.N * Expr(CB * OH), ForKind::Parallel, row);
}

// Stem: a dense conv over few NCHW input channels writing blocked output (any kernel,
// stride, dilation, padding). Work items: (image, pair of output blocks, output row, tile
// of R pixels along the row); per (input channel, tap) R broadcasts of x and nb weight
// vectors into R x nb accumulators. Kernel rows outside the input are skipped per row;
// tiles whose windows leave the input's width test each column (zero outside).
Stmt blocked_stem(LowerContext &c, const ConvAttrs &a, int64_t ph, int64_t pw) {
  const Operand &x = c.in[0], &w = c.in[1], &y = c.out[0];
  const int b = static_cast<int>(static_dim(c, y.shape[4], "block"));
  int64_t C = static_dim(c, x.shape[1], "input channels"), H = static_dim(c, x.shape[2], "input height");
  int64_t W = static_dim(c, x.shape[3], "input width"), OCB = static_dim(c, y.shape[1], "output block count");
  int64_t OH = static_dim(c, y.shape[2], "output height"), OW = static_dim(c, y.shape[3], "output width");
  int64_t kh = a.kernel[0], kw = a.kernel[1], sh = a.strides[0], sw = a.strides[1];
  int64_t dh = a.dilations[0], dw = a.dilations[1], K = C * kh * kw;
  const int nb = OCB % 2 == 0 ? 2 : 1;
  const int64_t groups = OCB / nb;
  // R x nb = 16 accumulators of 32 registers (8 of 16): 24, as in the 1x1 kernel, ran the
  // MobileNetV2 stem 30% slower (R broadcasts per tap in flight besides them). One block
  // (MobileNetV3's 16 channels) takes R = 14: at 16 a tile's broadcasts of a strided row
  // (stride 2: 16 loads 8 bytes apart, kx = 2 of one column shared with kx = 0 of the next)
  // came out of LLVM 1.8x slower (3->16 stem on 224x224: 0.21 ms -> 0.115 ms at 14 on one
  // thread; 12..15 all 0.11-0.13).
  const int64_t R = std::min<int64_t>(c.opts.vector_registers >= 32 ? (nb == 1 ? 14 : 8) : 8 / nb, OW);
  const int64_t T = (OW + R - 1) / R;  // the last tile ends at OW, overlapping the one before
  Type f = Type::f(32), vt = Type::f(32, b);
  std::string item = c.fresh("item"), ci = c.fresh("ci");
  Expr vi = Var::make(Type::index(), item), vci = Var::make(Type::index(), ci);
  Expr t = vi % Expr(T), oh = vi / Expr(T) % Expr(OH), grp = vi / Expr(T * OH) % Expr(groups);
  Expr n = vi / Expr(T * OH * groups);
  Expr ocb0 = grp * Expr(int64_t(nb)), ow0 = min(t * Expr(R), Expr(OW - R));
  // Every column of the tile inside the input for every kx.
  Expr inside = ow0 * Expr(sw) - Expr(pw) >= Expr(0) &&
                (ow0 + Expr(R - 1)) * Expr(sw) + Expr((kw - 1) * dw - pw) < Expr(W);
  Accs acc{c.fresh("acc"), b};
  auto reduction = [&](bool checked) {
    std::vector<Stmt> rows;
    for (int64_t ky = 0; ky < kh; ++ky) {
      Expr ih = oh * Expr(sh) + Expr(ky * dh - ph);
      Expr row = ((n * Expr(C) + vci) * Expr(H) + ih) * Expr(W);
      std::vector<Stmt> taps;
      for (int64_t kx = 0; kx < kw; ++kx) {
        std::vector<std::pair<std::string, Expr>> lets;
        std::vector<Expr> wv, xv;
        Expr k = (vci * Expr(kh) + Expr(ky)) * Expr(kw) + Expr(kx);
        for (int j = 0; j < nb; ++j) {
          std::string nm = c.fresh("w");
          lets.emplace_back(nm, Load::make(vt, w.buf, Ramp::make(((ocb0 + Expr(int64_t(j))) * Expr(K) + k) * Expr(int64_t(b)), Expr(1), b)));
          wv.push_back(Var::make(vt, nm));
        }
        for (int64_t r = 0; r < R; ++r) {
          Expr iw = (ow0 + Expr(r)) * Expr(sw) + Expr(kx * dw - pw);
          Expr v = checked ? select(iw >= Expr(0) && iw < Expr(W),
                                    Load::make(f, x.buf, row + max(min(iw, Expr(W - 1)), Expr(0))), make_zero(f))
                           : Load::make(f, x.buf, row + iw);
          std::string nm = c.fresh("x");
          lets.emplace_back(nm, Broadcast::make(v, b));
          xv.push_back(Var::make(vt, nm));
        }
        taps.push_back(outer_product(acc, lets, wv, xv));
      }
      rows.push_back(IfThenElse::make(ih >= Expr(0) && ih < Expr(H), Block::make(taps)));
    }
    return For::make(ci, Expr(0), Expr(C), ForKind::Serial, Block::make(rows));
  };
  BlockedEpilogue ep = node_epilogue(c);
  std::vector<Stmt> body = {acc.zero(static_cast<int>(R) * nb)};
  body.push_back(IfThenElse::make(inside, reduction(false), reduction(true)));
  for (int64_t r = 0; r < R; ++r) {
    for (int j = 0; j < nb; ++j) {
      Expr ocb = ocb0 + Expr(int64_t(j));
      Expr at = (((n * Expr(OCB) + ocb) * Expr(OH) + oh) * Expr(OW) + ow0 + Expr(r)) * Expr(int64_t(b));
      body.push_back(ep.store(y.buf, at, ocb * Expr(int64_t(b)), acc.get(static_cast<int>(r * nb + j)), b));
    }
  }
  Stmt item_body = Allocate::make(acc.buf, f, Expr(int64_t(R * nb * b)), Block::make(body));
  return For::make(item, Expr(0), x.shape[0] * Expr(groups * OH * T), ForKind::Parallel, item_body);
}

}  // namespace

Stmt Accs::zero(int n) const {
  std::vector<Stmt> s;
  for (int i = 0; i < n; ++i) s.push_back(Store::make(buf, Broadcast::make(make_zero(Type::f(32)), b), at(i)));
  return Block::make(s);
}

Stmt outer_product(const Accs &acc, const std::vector<std::pair<std::string, Expr>> &lets, const std::vector<Expr> &wv,
                   const std::vector<Expr> &xv) {
  std::vector<Stmt> fmas;
  for (size_t r = 0; r < xv.size(); ++r) {
    for (size_t j = 0; j < wv.size(); ++j) fmas.push_back(acc.fma(static_cast<int>(r * wv.size() + j), wv[j], xv[r]));
  }
  Stmt s = Block::make(fmas);
  for (size_t i = lets.size(); i-- > 0;) s = LetStmt::make(lets[i].first, lets[i].second, s);
  return s;
}

Stmt BlockedEpilogue::store(const std::string &y, Expr at, Expr ch0, Expr v, int b) const {
  Type t = Type::f(32, b);
  auto vec = [&](const Operand &o, Expr base) { return Load::make(t, o.buf, Ramp::make(base, Expr(1), b)); };
  if (bias) v = v + vec(*bias, ch0);
  if (residual) v = v + vec(*residual, at);
  v = act.apply(v);
  if (scale) v = v * vec(*scale, ch0);
  if (shift) v = v + vec(*shift, ch0);
  return Store::make(y, v, Ramp::make(at, Expr(1), b));
}

PixelTiling pixel_tiling(const LowerContext &c, int64_t P, int nb, bool exact) {
  // Registers: R x nb accumulators + nb weight vectors + broadcasts in flight; R x nb = 24
  // of 32 (AVX-512, NEON; more spill) or 12 of 16 (AVX2), so a lone last block runs twice
  // the pixels. Tiles as even as the pixel count allows (49 pixels, nb = 2: 5 tiles of
  // 10, not 4 of 12 and an overlapping one).
  const int64_t acc_regs = c.opts.vector_registers >= 32 ? 24 : 12;
  int64_t r_max = acc_regs / nb;
  int64_t T0 = (P + r_max - 1) / r_max, R = (P + T0 - 1) / T0;
  if (exact) {
    // Fewer pixels per tile where that wastes fewer on the overlap (a row of 56: 7 tiles of
    // 8, not 5 of 12 = 60); each register fewer costs ~1%.
    double best = 1e300;
    for (int64_t r = std::max<int64_t>(1, r_max / 2 + 1); r <= std::min(r_max, P); ++r) {
      double cost = static_cast<double>((P + r - 1) / r * r) * (1 + 0.01 * static_cast<double>(r_max - r));
      if (cost < best) best = cost, R = r;
    }
  }
  return {R, (P + R - 1) / R};
}

Stmt pointwise_tile(LowerContext &c, const PointwiseTile &t, const BlockedPixels &x, const BlockedPixels &y,
                    const BlockedEpilogue &ep, Expr ocb0, Expr p0) {
  const int b = t.b, nb = t.nb;
  Type f = Type::f(32), vt = Type::f(32, b);
  Accs acc{c.fresh("acc"), b};
  std::vector<Stmt> body = {acc.zero(static_cast<int>(t.R) * nb)};
  // Per input channel ic = icb * b + l: R broadcasts of x, nb weight vectors. Whole
  // blocks, then the real channels of a padded last block (its padded weights are zero).
  auto k_step = [&](Expr vicb, Expr vl) {
    std::vector<std::pair<std::string, Expr>> lets;
    std::vector<Expr> wv, xv;
    Expr ic = vicb * Expr(int64_t(b)) + vl;
    for (int j = 0; j < nb; ++j) {
      std::string nm = c.fresh("w");
      Expr at = ((ocb0 + Expr(int64_t(j))) * Expr(t.icp) + ic) * Expr(int64_t(b));
      lets.emplace_back(nm, Load::make(vt, t.w, Ramp::make(at, Expr(1), b)));
      wv.push_back(Var::make(vt, nm));
    }
    for (int64_t r = 0; r < t.R; ++r) {
      std::string nm = c.fresh("x");
      lets.emplace_back(nm, Broadcast::make(Load::make(f, x.buf, x.at(vicb, p0 + Expr(r)) + vl), b));
      xv.push_back(Var::make(vt, nm));
    }
    Stmt s = outer_product(acc, lets, wv, xv);
    if (t.prefetch_ocbs > 0) {
      Stmt pf = Block::make({});
      for (int j = 0; j < nb; ++j) {
        Expr next = min(ocb0 + Expr(int64_t(nb + j)), Expr(t.prefetch_ocbs - 1));
        Expr at = (next * Expr(t.icp) + ic) * Expr(int64_t(b));
        pf = LetStmt::make(c.fresh("pf"), call(Type::index(), "prefetch", {Load::make(f, t.w, at), Expr(0)}), pf);
      }
      s = Block::make({s, pf});
    }
    return s;
  };
  std::string icb = c.fresh("icb"), l = c.fresh("l"), lr = c.fresh("l");
  Expr vicb = Var::make(Type::index(), icb), vl = Var::make(Type::index(), l), vlr = Var::make(Type::index(), lr);
  body.push_back(For::make(icb, Expr(0), Expr(t.k / b), ForKind::Serial,
                           For::make(l, Expr(0), Expr(int64_t(b)), ForKind::Serial, k_step(vicb, vl))));
  if (t.k % b) body.push_back(For::make(lr, Expr(0), Expr(t.k % b), ForKind::Serial, k_step(Expr(t.k / b), vlr)));
  for (int64_t r = 0; r < t.R; ++r) {
    for (int j = 0; j < nb; ++j) {
      Expr ocb = ocb0 + Expr(int64_t(j));
      body.push_back(ep.store(y.buf, y.at(ocb, p0 + Expr(r)), ocb * Expr(int64_t(b)), acc.get(static_cast<int>(r * nb + j)), b));
    }
  }
  return Allocate::make(acc.buf, f, Expr(t.R * nb * b), Block::make(body));
}

Stmt depthwise_row(LowerContext &c, const DepthwiseRow &d, const std::string &xbuf,
                   const std::function<Expr(Expr ih, Expr iw)> &x_at, Expr wcb, Expr oh, const std::string &ybuf,
                   const std::function<Expr(Expr ow)> &y_at, const BlockedEpilogue &ep, Expr ch0) {
  const ConvAttrs &a = d.a;
  const int b = d.b;
  int64_t kh = a.kernel[0], kw = a.kernel[1], sh = a.strides[0], sw = a.strides[1];
  int64_t dh = a.dilations[0], dw = a.dilations[1];
  // Interior columns: every tap column inside [0, W).
  auto col_ok = [&](int64_t ow, int64_t kx) {
    int64_t iw = ow * sw + kx * dw - d.pad_w;
    return iw >= 0 && iw < d.W;
  };
  int64_t lo = 0;
  while (lo < d.OW && !(col_ok(lo, 0) && col_ok(lo, kw - 1))) ++lo;
  int64_t hi = lo;
  while (hi < d.OW && col_ok(hi, 0) && col_ok(hi, kw - 1)) ++hi;
  Type f = Type::f(32), vt = Type::f(32, b);
  auto wtap = [&](int64_t t) { return Load::make(vt, d.w, Ramp::make(wcb + Expr(t * b), Expr(1), b)); };

  // Output columns `ows` (Exprs) of this row; `static_cols` (when the columns are known
  // border columns) limits each one's taps to those inside the input. Accumulators updated
  // together per tap so the FMA chains interleave; rows test each kernel row against H.
  auto columns = [&](const std::vector<Expr> &ows, const std::vector<int64_t> &static_cols) {
    int nv = static_cast<int>(ows.size());
    Accs acc{c.fresh("acc"), b};
    std::vector<Stmt> body = {acc.zero(nv)};
    for (int64_t ky = 0; ky < kh; ++ky) {
      Expr ih = oh * Expr(sh) + Expr(ky * dh - d.pad_h);
      std::vector<Stmt> row;
      for (int64_t kx = 0; kx < kw; ++kx) {
        std::string wn = c.fresh("w");
        std::vector<Stmt> fmas;
        for (int i = 0; i < nv; ++i) {
          if (!static_cols.empty() && !col_ok(static_cols[i], kx)) continue;
          Expr iw = ows[i] * Expr(sw) + Expr(kx * dw - d.pad_w);
          fmas.push_back(acc.fma(i, Var::make(vt, wn), Load::make(vt, xbuf, Ramp::make(x_at(ih, iw), Expr(1), b))));
        }
        if (!fmas.empty()) row.push_back(LetStmt::make(wn, wtap(ky * kw + kx), Block::make(fmas)));
      }
      if (!row.empty()) body.push_back(IfThenElse::make(ih >= Expr(0) && ih < Expr(d.H), Block::make(row)));
    }
    for (int i = 0; i < nv; ++i) body.push_back(ep.store(ybuf, y_at(ows[i]), ch0, acc.get(i), b));
    return Allocate::make(acc.buf, f, Expr(int64_t(nv * b)), Block::make(body));
  };
  std::vector<Stmt> row;
  for (int64_t ow = 0; ow < lo; ++ow) row.push_back(columns({Expr(ow)}, {ow}));
  // Interior columns in groups of U; the last group ends at `hi`, overlapping the one
  // before (recomputed: the same values); fewer than U interior columns run one by one.
  const int64_t U = std::min<int64_t>(4, std::max<int64_t>(1, hi - lo));
  if (hi > lo) {
    std::string g = c.fresh("og");
    Expr vg = Var::make(Type::index(), g);
    int64_t groups = (hi - lo + U - 1) / U;
    std::vector<Expr> ows;
    for (int64_t u = 0; u < U; ++u) ows.push_back(min(Expr(lo) + vg * Expr(U), Expr(hi - U)) + Expr(u));
    row.push_back(For::make(g, Expr(0), Expr(groups), ForKind::Serial, columns(ows, {})));
  }
  for (int64_t ow = hi; ow < d.OW; ++ow) row.push_back(columns({Expr(ow)}, {ow}));
  return Block::make(row);
}

Stmt lower_blocked_conv(LowerContext &c) {
  const Operand &w = c.in[1];
  internal_assert(c.in[0].dtype == DType::F32 && w.dtype == DType::F32 && c.out[0].dtype == DType::F32 && w.rank() == 4)
      << c.node.describe() << ": blocked convs are f32 with 4-D weights";
  ConvAttrs a = ConvAttrs::read(c.node, 2, static_kernel_dims(c, w));
  const Operand &in = c.in[0];
  bool stem = in.rank() == 4;  // NCHW input, blocked output
  std::vector<int64_t> pad(2);
  for (int d = 0; d < 2; ++d) {
    Expr o, p;
    a.geometry(d, in.shape[in.rank() - (stem ? 2 : 3) + d], o, p);
    pad[d] = static_dim(c, p, "padding");
  }
  if (stem) return blocked_stem(c, a, pad[0], pad[1]);
  int64_t cin_g = static_dim(c, w.shape[1], "weight's input channels");
  if (cin_g == 1 && a.group > 1) return blocked_depthwise(c, a, pad[0], pad[1]);
  internal_assert(a.group == 1 && a.kernel[0] == 1 && a.kernel[1] == 1 && pad[0] == 0 && pad[1] == 0)
      << c.node.describe() << ": blocked convs are 1x1 without padding or depthwise";
  return blocked_pointwise(c, a);
}

Stmt lower_blocked_global_pool(LowerContext &c) {
  const Operand &y = c.out[0];
  Blocked x = blocked_input(c);
  const int b = static_cast<int>(x.b);
  Type f = Type::f(32), vt = Type::f(32, b);
  Expr HW = x.H * x.W;
  std::string item = c.fresh("blk"), p = c.fresh("p"), q = c.fresh("q");
  Expr vi = Var::make(Type::index(), item), vp = Var::make(Type::index(), p), vq = Var::make(Type::index(), q);
  // Four partial sums (independent add chains), then the pixels past the last group of 4.
  Accs acc{c.fresh("acc"), b};
  auto px = [&](Expr at) { return Load::make(vt, x_buf(c), Ramp::make((vi * HW + at) * Expr(int64_t(b)), Expr(1), b)); };
  std::vector<Stmt> body, four;
  for (int i = 0; i < 4; ++i) body.push_back(Store::make(acc.buf, Broadcast::make(make_zero(f), b), acc.at(i)));
  for (int i = 0; i < 4; ++i) four.push_back(Store::make(acc.buf, acc.get(i) + px(vp * Expr(4) + Expr(i)), acc.at(i)));
  body.push_back(For::make(p, Expr(0), HW / Expr(4), ForKind::Serial, Block::make(four)));
  body.push_back(For::make(q, HW / Expr(4) * Expr(4), HW % Expr(4), ForKind::Serial,
                           Store::make(acc.buf, acc.get(0) + px(vq), acc.at(0))));
  Expr mean = (acc.get(0) + acc.get(1) + (acc.get(2) + acc.get(3))) / Broadcast::make(cast(f, HW), b);
  body.push_back(Store::make(y.buf, mean, Ramp::make(vi * Expr(int64_t(b)), Expr(1), b)));
  return For::make(item, Expr(0), x.N * x.CB, ForKind::Serial,
                   Allocate::make(acc.buf, f, Expr(int64_t(4 * b)), Block::make(body)));
}

Stmt lower_to_blocked(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  internal_assert(x.rank() == 4 && y.rank() == 5) << c.node.describe() << ": expects NCHW in, blocked out";
  int64_t b = static_dim(c, y.shape[4], "block");
  Expr C = x.shape[1], H = x.shape[2], W = x.shape[3], CB = y.shape[1];
  Type t = x.storage();
  // Work items: (image, block, row); per pixel the block's channels gathered (stride H*W)
  // when the block is whole, else one by one with the channels past C zero.
  std::string item = c.fresh("row"), wn = c.fresh("w"), ln = c.fresh("l");
  Expr vi = Var::make(Type::index(), item), vw = Var::make(Type::index(), wn), vl = Var::make(Type::index(), ln);
  Expr h = vi % H, cb = vi / H % CB, n = vi / (H * CB);
  Expr c0 = cb * Expr(b);
  Expr dst = (((n * CB + cb) * H + h) * W + vw) * Expr(b);
  Expr src = ((n * C + c0) * H + h) * W + vw;
  Stmt whole = Store::make(y.buf, Load::make(t.with_lanes(static_cast<int>(b)), x.buf, Ramp::make(src, H * W, static_cast<int>(b))),
                           Ramp::make(dst, Expr(1), static_cast<int>(b)));
  Expr ch = c0 + vl;
  Stmt part = For::make(ln, Expr(0), Expr(b), ForKind::Serial,
                        Store::make(y.buf, select(ch < C, Load::make(t, x.buf, select(ch < C, src + vl * H * W, Expr(0))), make_zero(t)),
                                    dst + vl));
  Stmt px = IfThenElse::make(c0 + Expr(b) <= C, whole, part);
  return For::make(item, Expr(0), x.shape[0] * CB * H, ForKind::Parallel, For::make(wn, Expr(0), W, ForKind::Serial, px));
}

Stmt lower_from_blocked(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  internal_assert(x.rank() == 5 && y.rank() == 4) << c.node.describe() << ": expects blocked in, NCHW out";
  int64_t b = static_dim(c, x.shape[4], "block");
  Expr C = y.shape[1], H = y.shape[2], W = y.shape[3], CB = x.shape[1];
  Type t = x.storage();
  // Work items: (image, block, row), so the block's row (W x b) stays in L1 while each of
  // its channels is read out (stride b: gathers of b pixels, then single pixels).
  std::string item = c.fresh("row"), ln = c.fresh("l"), vn = c.fresh("v"), wn = c.fresh("w");
  Expr vi = Var::make(Type::index(), item), vl = Var::make(Type::index(), ln), vv = Var::make(Type::index(), vn),
       vw = Var::make(Type::index(), wn);
  Expr h = vi % H, cb = vi / H % CB, n = vi / (H * CB);
  Expr ch = cb * Expr(b) + vl;
  Expr src_row = (((n * CB + cb) * H + h) * W) * Expr(b) + vl, dst_row = ((n * C + ch) * H + h) * W;
  int lanes = static_cast<int>(b);
  Stmt vec = Store::make(y.buf, Load::make(t.with_lanes(lanes), x.buf, Ramp::make(src_row + vv * Expr(b * b), Expr(b), lanes)),
                         Ramp::make(dst_row + vv * Expr(b), Expr(1), lanes));
  Stmt one = Store::make(y.buf, Load::make(t, x.buf, src_row + vw * Expr(b)), dst_row + vw);
  Expr nvec = W / Expr(b);
  Stmt channel = Block::make({For::make(vn, Expr(0), nvec, ForKind::Serial, vec),
                              For::make(wn, nvec * Expr(b), W - nvec * Expr(b), ForKind::Serial, one)});
  Stmt body = For::make(ln, Expr(0), min(Expr(b), C - cb * Expr(b)), ForKind::Serial, channel);
  return For::make(item, Expr(0), x.shape[0] * CB * H, ForKind::Parallel, body);
}

}  // namespace kiln
