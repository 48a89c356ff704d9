// Direct convolution over output rows (no im2col): for strided convs (3x3 / 1x1 stride 2
// downsampling, 7x7 stems) the im2col panels of the GEMM path cost as much as the FMAs —
// every panel element is a strided gather with its own index math. Here each work item
// (image, output row) copies the kh input rows of every channel once into a zero-padded
// scratch, split by column phase (col mod stride) so that every tap of every output
// vector is one contiguous load; then g output channels x nv vectors along the row are
// accumulated in registers over all taps (per tap nv loads and g weight broadcasts, like
// the GEMM tiles of gemm.h) and finished by the fused epilogue.
#include "lower/conv_schedule.h"

#include <iterator>
#include <set>

#include "support/error.h"

namespace kiln {

namespace {

struct DirectGeom {
  Expr Cin, H, W, M, OH, OW;
  int64_t cin, kh, kw, sh, sw, dh, dw;
};

}  // namespace

PhaseRows::PhaseRows(Expr OW, int64_t sw_, int64_t kw_, int64_t dw_) : sw(sw_), kw(kw_), dw(dw_) {
  // Padded columns 0 .. Wp-1 (input column col - pad_w).
  Expr Wp = (OW - Expr(1)) * Expr(sw) + Expr(dw * (kw - 1) + 1);
  Wq = (Wp + Expr(sw - 1)) / Expr(sw);
  for (int64_t kx = 0; kx < kw; ++kx) phases.insert(kx * dw % sw);
  Wrow = Wq * Expr(int64_t(phases.size()));
}

Expr PhaseRows::tap(int64_t kx, Expr ow) const {
  int64_t p = kx * dw % sw, q = kx * dw / sw;
  int64_t slot = std::distance(phases.begin(), phases.find(p));
  return Expr(slot) * Wq + Expr(q) + ow;
}

Stmt PhaseRows::fill(LowerContext &c, const std::string &scratch, Expr at_row, const std::string &x, Expr src_row,
                     Expr row_valid, Expr W, Expr pad_w) const {
  Type f = Type::f(32);
  std::string j = c.fresh("j");
  Expr vj = Var::make(Type::index(), j);
  std::vector<Stmt> valid, zero;
  int64_t slot = 0;
  for (int64_t p : phases) {
    Expr at = at_row + Expr(slot++) * Wq;
    auto zeros = [&](Expr from, Expr to) {
      return For::make(j, from, to - from, ForKind::Serial, Store::make(scratch, make_zero(f), at + vj));
    };
    // Positions q with input column q * sw + p - pad_w in [0, W).
    Expr lo = min(Wq, max(Expr(0), (pad_w - Expr(p) + Expr(sw - 1)) / Expr(sw)));
    Expr hi = max(lo, min(Wq, (W + pad_w - Expr(p) + Expr(sw - 1)) / Expr(sw)));
    valid.push_back(zeros(Expr(0), lo));
    valid.push_back(copy_run(c, scratch, x, at + lo, src_row + lo * Expr(sw) + Expr(p) - pad_w, hi - lo, sw));
    valid.push_back(zeros(hi, Wq));
    zero.push_back(zeros(Expr(0), Wq));
  }
  return IfThenElse::make(row_valid, Block::make(valid), Block::make(zero));
}

int conv_direct_lanes(const LowerContext &c, const ConvAttrs &a, int packed_mr) {
  const Operand &x = c.in[0], &w = c.in[1], &y = c.out[0];
  if (x.rank() != 4 || a.group != 1 || c.node.attr_i("packed_nr", 0) != 0) return 0;
  auto *ci = x.shape[1].as<IntImm>();
  auto *ow = y.shape[3].as<IntImm>();
  auto *m = y.shape[1].as<IntImm>();
  int g = packed_mr ? packed_mr : 8;
  if (!ci || !ow || !m || m->value % g != 0 || a.strides[0] > 4 || a.strides[1] > 4 || w.rank() != 4) return 0;
  int vl = c.opts.vector_lanes_f32();
  int64_t k = ci->value * a.kernel[0] * a.kernel[1];
  // Stems: a short reduction the GEMM panels cannot amortize.
  if (ci->value <= 4 && k <= 160 && ow->value >= vl) return vl;
  // Strided convs: rows of at least one vector (half vectors for rows narrower than a
  // full one, e.g. 14 pixels with AVX-512).
  if (a.strides[0] >= 2 || a.strides[1] >= 2) {
    if (ow->value >= vl) return vl;
    if (vl / 2 >= 4 && ow->value >= vl / 2) return vl / 2;
  }
  return 0;
}

Stmt conv_direct_rows(LowerContext &c, const ConvAttrs &a, const std::vector<Expr> &pad, const ConvEpilogue &e,
                      int vl, int packed_mr) {
  const Operand &x = c.in[0], &w = c.in[1], &y = c.out[0];
  const int g = packed_mr ? packed_mr : 8;
  DirectGeom d;
  d.Cin = x.shape[1], d.H = x.shape[2], d.W = x.shape[3], d.M = y.shape[1], d.OH = y.shape[2], d.OW = y.shape[3];
  d.cin = d.Cin.as<IntImm>()->value;
  d.kh = a.kernel[0], d.kw = a.kernel[1], d.sh = a.strides[0], d.sw = a.strides[1];
  d.dh = a.dilations[0], d.dw = a.dilations[1];
  const int64_t K = d.cin * d.kh * d.kw;
  PhaseRows pr(d.OW, d.sw, d.kw, d.dw);

  Type f = Type::f(32), vt = Type::f(32, vl);
  std::string item = c.fresh("row"), rows = c.fresh("rows"), rr = c.fresh("rr");
  Expr vitem = Var::make(Type::index(), item), vrr = Var::make(Type::index(), rr);
  // Work item: (image, output row).
  Expr n = vitem / d.OH, oh = vitem % d.OH;

  // One scratch row (channel ci, input row ih) at `at`: its used phases, zero-padded.
  auto fill_row = [&](Expr at_row, Expr ci, Expr ih) {
    return pr.fill(c, rows, at_row, x.buf, ((n * d.Cin + ci) * d.H + ih) * d.W, ih >= Expr(0) && ih < d.H, d.W, pad[1]);
  };
  // Scratch row rr = ci * kh + ky holds input row oh * sh + ky * dh - pad_h of channel ci.
  // (One scratch per image, filled once, with work items over (channel group, row) so each
  // thread streams its groups' weights once, measured slower on ResNet-50's layer3 convs.)
  Expr ci = vrr / Expr(d.kh), ky = vrr % Expr(d.kh);
  Stmt fill = For::make(rr, Expr(0), Expr(d.cin * d.kh), ForKind::Serial,
                        fill_row(vrr * pr.Wrow, ci, oh * Expr(d.sh) + ky * Expr(d.dh) - pad[0]));

  std::string cg = c.fresh("cg"), ov = c.fresh("ov");
  Expr vcg = Var::make(Type::index(), cg), vov = Var::make(Type::index(), ov);

  // Output vectors starting at `offs` (vl pixels each) for g channels: g * nv accumulators
  // in a scratch that SROA keeps in registers, updated together per tap so the FMA chains
  // interleave. Taps run as loops over (ci, ky) with the kw taps of a row unrolled.
  auto vectors_at = [&](const std::vector<Expr> &offs) {
    int nv = static_cast<int>(offs.size());
    std::string acc = c.fresh("acc"), cn = c.fresh("ci"), yn = c.fresh("ky");
    Expr vci = Var::make(Type::index(), cn), vky = Var::make(Type::index(), yn);
    auto at = [&](int i, int v) { return Ramp::make(Expr(int64_t((i * nv + v) * vl)), Expr(1), vl); };
    std::vector<Stmt> init, taps, fin;
    for (int i = 0; i < g * nv; ++i) init.push_back(Store::make(acc, Broadcast::make(make_zero(f), vl), at(i / nv, i % nv)));
    Expr srow = (vci * Expr(d.kh) + vky) * pr.Wrow;
    Expr tap0 = (vci * Expr(d.kh) + vky) * Expr(d.kw);
    for (int64_t kx = 0; kx < d.kw; ++kx) {
      std::vector<std::pair<std::string, Expr>> lets;
      std::vector<Expr> xv, wv;
      for (int v = 0; v < nv; ++v) {
        std::string nm = c.fresh("x");
        Expr base = srow + pr.tap(kx, offs[v]);
        lets.emplace_back(nm, Load::make(vt, rows, Ramp::make(base, Expr(1), vl)));
        xv.push_back(Var::make(vt, nm));
      }
      for (int i = 0; i < g; ++i) {
        Expr tap = tap0 + Expr(kx);
        Expr idx = packed_mr ? vcg * Expr(g * K) + tap * Expr(g) + Expr(i) : (vcg * Expr(g) + Expr(i)) * Expr(K) + tap;
        std::string nm = c.fresh("w");
        lets.emplace_back(nm, Broadcast::make(Load::make(f, w.buf, idx), vl));
        wv.push_back(Var::make(vt, nm));
      }
      std::vector<Stmt> fmas;
      for (int i = 0; i < g; ++i) {
        for (int v = 0; v < nv; ++v) {
          fmas.push_back(Store::make(acc, call("fma", {wv[i], xv[v], Load::make(vt, acc, at(i, v))}), at(i, v)));
        }
      }
      Stmt body = Block::make(fmas);
      for (size_t l = lets.size(); l-- > 0;) body = LetStmt::make(lets[l].first, lets[l].second, body);
      taps.push_back(body);
    }
    Stmt tap_loops = For::make(cn, Expr(0), d.Cin, ForKind::Serial,
                               For::make(yn, Expr(0), Expr(d.kh), ForKind::Serial, Block::make(taps)));
    for (int i = 0; i < g; ++i) {
      Expr m = vcg * Expr(g) + Expr(i);
      for (int v = 0; v < nv; ++v) {
        fin.push_back(conv_epilogue(e, y, ((n * d.M + m) * d.OH + oh) * d.OW + offs[v], m,
                                    Load::make(vt, acc, at(i, v)), vl));
      }
    }
    std::vector<Stmt> body = init;
    body.push_back(tap_loops);
    body.insert(body.end(), fin.begin(), fin.end());
    return Allocate::make(acc, f, Expr(int64_t(g * nv * vl)), Block::make(body));
  };
  // Pairs of vectors along the row; what is left (less than two vectors) ends the row with
  // a pair or one vector that overlaps the outputs before it (recomputed: same values; the
  // memory plan never lets the output share a buffer with an input of the same node).
  Expr OW = d.OW, V = Expr(vl);
  Expr npairs = OW / Expr(2 * vl), rest = OW - npairs * Expr(2 * vl);
  Stmt pairs = For::make(ov, Expr(0), npairs, ForKind::Serial, vectors_at({vov * Expr(2 * vl), vov * Expr(2 * vl) + V}));
  Stmt tail = IfThenElse::make(
      rest > V,
      IfThenElse::make(OW >= Expr(2 * vl), vectors_at({OW - Expr(2 * vl), OW - V}), vectors_at({Expr(0), OW - V})),
      IfThenElse::make(rest > Expr(0), vectors_at({OW - V})));
  Stmt row_body = Block::make({pairs, tail});
  Stmt all_groups = For::make(cg, Expr(0), d.M / Expr(g), ForKind::Serial, row_body);
  Stmt body = Allocate::make(rows, f, Expr(d.cin * d.kh) * pr.Wrow + Expr(vl), Block::make({fill, all_groups}));
  return For::make(item, Expr(0), y.shape[0] * d.OH, ForKind::Parallel, body);
}

}  // namespace kiln
