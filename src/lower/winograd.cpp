// WinogradConv: a 3x3 stride-1 convolution as F(m x m, 3x3) (Lavin & Gray), m = 4, or 2
// for small maps (passes/winograd.cpp picks; U's first dim, (m + 2)^2, says which). With
// a = m + 2, per image:
//  1. input transform, one parallel task per input channel: the channel's plane is
//     copied with zero padding, then for every m x m output tile the a x a input patch d
//     becomes V = B^T d B; vectors run over L neighbouring tiles of a tile row (each
//     patch row is two wide loads and `stride_lanes` shuffles);
//  2. a^2 GEMMs Mb[e] = U[e] (M x C, transformed at compile time) x V[e] (C x tiles), with
//     the register tiles of gemm.h, in parallel over e (tile columns rounded up to whole
//     vectors: V and Mb rows have slack);
//  3. output transform, one parallel task per output channel: Y = A^T m A for every
//     tile, then the FusedConv epilogue (bias, residual, activation, affine) and the store;
//     partial tiles at the right / bottom edge store element by element.
// With the GEMMs transposed (few tiles; passes/pack_weights.cpp) and channel counts of whole
// vectors, winograd_channels_last() lays V and Mb out tile-major and runs both transforms
// across L channels instead (ResNet-50's 3x3 convs: 28x28 maps -20%, 14x14 -17%).
#include <algorithm>

#include "graph/conv_attrs.h"
#include "lower/conv_schedule.h"
#include "lower/gemm.h"
#include "support/error.h"

namespace kiln {

namespace {

// F(4x4, 3x3): interpolation points 0, +-1, +-2, infinity.
constexpr double kBT6[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                               {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
constexpr double kAT4[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
// F(2x2, 3x3): points 0, +-1, infinity.
constexpr double kBT4[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
constexpr double kAT2[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};

// sum_i coef[i] * v[i], skipping zero coefficients.
Expr combine(const double *coef, const std::vector<Expr> &v, int n) {
  Expr s;
  for (int i = 0; i < n; ++i) {
    if (coef[i] == 0) continue;
    Type t = v[i].type();
    Expr k = t.is_vector() ? Broadcast::make(make_const(t.element(), coef[i]), t.lanes) : make_const(t, coef[i]);
    Expr term = coef[i] == 1 ? v[i] : coef[i] == -1 ? Expr() : v[i] * k;
    if (!s.defined()) {
      s = term.defined() ? term : v[i] * k;
    } else {
      s = term.defined() ? s + term : s - v[i];
    }
  }
  return s;
}

// Binds `values` to fresh variables around the statement that `body` builds from them.
Stmt let_all(LowerContext &c, const std::vector<Expr> &values, const std::function<Stmt(const std::vector<Expr> &)> &body) {
  std::vector<std::string> names;
  std::vector<Expr> vars;
  for (const Expr &v : values) {
    names.push_back(c.fresh("w"));
    vars.push_back(Var::make(v.type(), names.back()));
  }
  Stmt s = body(vars);
  for (size_t i = values.size(); i-- > 0;) s = LetStmt::make(names[i], values[i], s);
  return s;
}

// The transpose of L vectors of L lanes (rows[i][k] -> cols[k][i]) handed to `use`:
// log2(L) rounds of interleaving vector i with vector i + L/2 (low halves to 2i, high
// halves to 2i + 1), each a rotation of the (row, lane) index bits by one.
Stmt transpose_lanes(LowerContext &c, const std::vector<Expr> &rows, const std::function<Stmt(const std::vector<Expr> &)> &use,
                     int round = 0) {
  const int L = static_cast<int>(rows.size());
  if ((1 << round) >= L) return use(rows);
  return let_all(c, rows, [&](const std::vector<Expr> &v) {
    std::vector<Expr> next;
    for (int i = 0; i < L / 2; ++i) {
      for (int half = 0; half < 2; ++half) next.push_back(Call::make(v[i].type(), "interleave", {v[i], v[i + L / 2], Expr(half)}));
    }
    return transpose_lanes(c, next, use, round + 1);
  });
}

// Y = K^T X K for an al x al tile X of vectors (row-major, x[r * al + q]), K^T given by its n
// rows of al coefficients kt(i): `use` gets Y (n x n, row-major), with X and the rows of
// K^T X bound once.
Stmt sandwich(LowerContext &c, const std::vector<Expr> &x, int al, int n, const std::function<const double *(int)> &kt,
              const std::function<Stmt(const std::vector<Expr> &)> &use) {
  return let_all(c, x, [&](const std::vector<Expr> &xv) {
    std::vector<Expr> tmp;  // tmp[i * al + q] = sum_r KT[i][r] x[r][q]
    for (int i = 0; i < n; ++i) {
      for (int q = 0; q < al; ++q) {
        std::vector<Expr> col;
        for (int r = 0; r < al; ++r) col.push_back(xv[r * al + q]);
        tmp.push_back(combine(kt(i), col, al));
      }
    }
    return let_all(c, tmp, [&](const std::vector<Expr> &tv) {
      std::vector<Expr> y;
      for (int i = 0; i < n; ++i) {
        std::vector<Expr> row(tv.begin() + i * al, tv.begin() + (i + 1) * al);
        for (int j = 0; j < n; ++j) y.push_back(combine(kt(j), row, al));
      }
      return use(y);
    });
  });
}

// The GEMMs' register tile for `rows` rows of A (read in place): rows per tile dividing
// them where one close to the full tile does and full tiles would recompute >= 5% of the
// rows (28x28 maps: 49 image tiles, 7 row tiles of 7 instead of 8 with the last
// overlapping: -7% on layer2 of ResNet-50 at 1 thread; 56x56 maps' 196 stay in tiles of 8).
GemmTile gemm_tile(const LowerOptions &o, int64_t rows) {
  GemmTile tl = gemm_tile_for(o);
  return (rows + tl.mr - 1) / tl.mr * tl.mr * 20 >= rows * 21 ? gemm_tile_for_rows(o, rows) : tl;
}

// Small maps (the GEMMs transposed, channel counts whole vectors): V and Mb tile-major,
// [a^2][tiles][channels], and both transforms vectorized across L channels instead of
// across the tiles of a tile row (4 on a 14x14 map: quarter vectors, and every tile an edge
// tile stored element by element). Per (tile, L channels) the input transform gathers the
// a x a patch of each channel (zero outside the image, tested once per patch element: the
// lanes share their position) and stores contiguous V vectors; the GEMM's results are
// contiguous Mb vectors; the output transform reads them contiguously and scatters each
// output pixel's L channels, skipping pixels past the map's edge. On maps at least 4
// pixels wide both go through a channels-last band of the tile row's rows instead, with
// w x w transposes (`transpose_lanes`; w the largest power of two <= min(L, row width), per
// w of the L channels) between it and the planes: whole row segments are loaded / stored
// contiguously (the transforms' share of a conv: 56x56 44% -> 24%, 14x14 13% -> 9%).
struct WinogradShape {
  int m, al;
  int64_t C, M, H, W, OH, OW, TH, TW, ph, pw;
};

Stmt winograd_channels_last(LowerContext &c, const WinogradShape &s, const ConvEpilogue &e, int nw,
                            const std::function<const double *(int)> &bt, const std::function<const double *(int)> &at) {
  const Operand &x = c.in[0], &u = c.in[1], &y = c.out[0];
  const int L = c.opts.vector_lanes_f32(), m = s.m, al = s.al, P = al * al;
  const int64_t T = s.TH * s.TW, HW = s.H * s.W, OHW = s.OH * s.OW;
  Type f = Type::f(32), vt = Type::f(32, L);
  std::string bn = c.fresh("n"), V = c.fresh("V"), Mb = c.fresh("Mb");
  Expr vb = Var::make(Type::index(), bn);

  // 1. Input transform: work items (channel group, tile row), tiles of the row in turn.
  std::string it = c.fresh("item"), tw = c.fresh("tw");
  Expr vit = Var::make(Type::index(), it), vtw = Var::make(Type::index(), tw);
  Expr c0 = vit / Expr(s.TH) * Expr(int64_t(L)), th = vit % Expr(s.TH), t = th * Expr(s.TW) + vtw;
  Expr x_base = (vb * Expr(s.C) + c0) * Expr(HW);
  std::vector<Expr> d;  // d[r * al + q]: the patch element of L channels
  // The tile row's band of input rows is first transposed to channels-last (band[r][j][L],
  // j = iw + pw, zero outside the image) by in-register transposes of whole row segments,
  // so each patch element is one contiguous load instead of L strided ones (every input
  // element was gathered ~(al / m)^2 times). Rows narrower than a vector (14x14 with
  // AVX-512) transpose w x w blocks (w the largest power of two <= the row, at least 4)
  // per w of the L channels.
  auto width = [&](int64_t n) {
    int w = L;
    while (w > n) w /= 2;
    return w;
  };
  const int wi = width(s.W);
  const bool banded = wi >= 4;
  const int64_t band_w = (s.TW - 1) * m + al;
  std::string band = c.fresh("band");
  for (int r = 0; r < al; ++r) {
    for (int q = 0; q < al; ++q) {
      if (banded) {
        d.push_back(Load::make(vt, band, Ramp::make((Expr(int64_t(r * band_w + q)) + vtw * Expr(int64_t(m))) * Expr(int64_t(L)), Expr(1), L)));
        continue;
      }
      Expr ih = th * Expr(int64_t(m)) + Expr(r - s.ph), iw = vtw * Expr(int64_t(m)) + Expr(q - s.pw);
      Expr inside = ih >= Expr(0) && ih < Expr(s.H) && iw >= Expr(0) && iw < Expr(s.W);
      Expr at_px = max(min(ih, Expr(s.H - 1)), Expr(0)) * Expr(s.W) + max(min(iw, Expr(s.W - 1)), Expr(0));
      Expr g = Load::make(vt, x.buf, Ramp::make(x_base + at_px, Expr(HW), L));
      d.push_back(select(Broadcast::make(inside, L), g, Broadcast::make(make_zero(f), L)));
    }
  }
  Stmt tile_in = sandwich(c, d, al, al, bt, [&](const std::vector<Expr> &v) {
    std::vector<Stmt> st;
    for (int k = 0; k < P; ++k) {
      Expr idx = (Expr(int64_t(k)) * Expr(T) + t) * Expr(s.C) + c0;
      st.push_back(Store::make(V, v[k], Ramp::make(idx, Expr(1), L)));
    }
    return Block::make(st);
  });
  Stmt tiles = For::make(tw, Expr(0), Expr(s.TW), ForKind::Serial, tile_in);
  if (banded) {
    std::string rn = c.fresh("r"), jn = c.fresh("j");
    Expr vr = Var::make(Type::index(), rn), vj = Var::make(Type::index(), jn);
    Expr ih = th * Expr(int64_t(m)) + vr - Expr(s.ph), row = vr * Expr(band_w);
    Expr zero = Broadcast::make(make_zero(f), L);
    auto put = [&](Expr j, Expr v) { return Store::make(band, v, Ramp::make((row + j) * Expr(int64_t(L)), Expr(1), L)); };
    // Segments of wi columns from iw0 = 0, wi, 2 wi, ..., the last one ending at W; per
    // segment a wi x wi transpose for each wi of the L channels.
    std::vector<Stmt> fill;
    const Type wt = Type::f(32, wi);
    for (int64_t iw0 = 0;; iw0 += wi) {
      iw0 = std::min<int64_t>(iw0, s.W - wi);
      for (int c1 = 0; c1 < L; c1 += wi) {
        std::vector<Expr> rows;
        for (int l = 0; l < wi; ++l) {
          Expr at = x_base + Expr(int64_t(c1 + l) * HW) + ih * Expr(s.W) + Expr(iw0);
          rows.push_back(Load::make(wt, x.buf, Ramp::make(at, Expr(1), wi)));
        }
        fill.push_back(transpose_lanes(c, rows, [&](const std::vector<Expr> &cols) {
          std::vector<Stmt> st;
          for (int j = 0; j < wi; ++j) {
            Expr at = (row + Expr(iw0 + j + s.pw)) * Expr(int64_t(L)) + Expr(int64_t(c1));
            st.push_back(Store::make(band, cols[j], Ramp::make(at, Expr(1), wi)));
          }
          return Block::make(st);
        }));
      }
      if (iw0 + wi >= s.W) break;
    }
    // Columns of the padding: zero.
    for (int64_t j = 0; j < band_w; ++j) {
      if (j < s.pw || j >= s.W + s.pw) fill.push_back(put(Expr(j), zero));
    }
    Stmt inside_row = Block::make(fill);
    Stmt outside_row = For::make(jn, Expr(0), Expr(band_w), ForKind::Serial, put(vj, zero));
    Stmt rows = For::make(rn, Expr(0), Expr(int64_t(al)), ForKind::Serial,
                          IfThenElse::make(ih >= Expr(0) && ih < Expr(s.H), inside_row, outside_row));
    tiles = Allocate::make(band, f, Expr(int64_t(al) * band_w * L), Block::make({rows, tiles}));
  }
  Stmt input = For::make(it, Expr(0), Expr(s.C / L * s.TH), ForKind::Parallel, tiles);

  // 2. The a^2 GEMMs, transposed: Mb[e] (T x M) = V[e] (T x C) x U[e]^T (U in column panels).
  std::string en = c.fresh("e");
  Expr ve = Var::make(Type::index(), en);
  GemmSpec g;
  g.a = V;
  g.a_base = ve * Expr(T * s.C);
  g.a_sm = Expr(s.C);
  g.a_sk = Expr(1);
  g.b = u.buf;
  g.b_base = ve * Expr(s.M * s.C);
  g.b_sk = Expr(0);
  g.b_packed_nw = nw;
  g.M = Expr(T);
  g.N = Expr(s.M);
  g.K = Expr(s.C);
  g.overlap_last_tile = true;  // the last row tile (of image tiles) ends at T
  // U streams from memory at batch 1 (36 / 9 of the conv's weights): row tiles prefetch
  // the next panel while the current one is in L1 / L2 (layer3/4 of ResNet-50: -14..-21%).
  g.prefetch_next_panel = true;
  g.epilogue = [&](Expr tt, Expr mm, Expr v, int lanes) {
    Expr i = (ve * Expr(T) + tt) * Expr(s.M) + mm;
    return Store::make(Mb, v, lanes == 1 ? i : Ramp::make(i, Expr(1), lanes));
  };
  Stmt gemms = For::make(en, Expr(0), Expr(int64_t(P)), ForKind::Parallel, gemm_tiles(c, g, gemm_tile(c.opts, T)));

  // 3. Output transform: work items (channel group, tile row); per output pixel inside the
  // map the epilogue on L channels and a scatter to their planes.
  std::string ot = c.fresh("item"), tw2 = c.fresh("tw");
  Expr vot = Var::make(Type::index(), ot), vtw2 = Var::make(Type::index(), tw2);
  Expr m0 = vot / Expr(s.TH) * Expr(int64_t(L)), th2 = vot % Expr(s.TH), t2 = th2 * Expr(s.TW) + vtw2;
  std::vector<Expr> mloads;
  for (int k = 0; k < P; ++k) mloads.push_back(Load::make(vt, Mb, Ramp::make((Expr(int64_t(k)) * Expr(T) + t2) * Expr(s.M) + m0, Expr(1), L)));
  auto vec = [&](const Operand *o) { return Load::make(vt, o->buf, Ramp::make(m0, Expr(1), L)); };
  // The tile row's m output rows go to a channels-last band first, then w x w transposes
  // (as for the input) turn each segment of w pixels into w channel rows that take the
  // epilogue and store contiguously (instead of L lanes scattered per pixel).
  const int wo = width(s.OW);
  const bool out_banded = wo >= 4;
  const int64_t oband_w = s.TW * m;
  std::string oband = c.fresh("oband");
  Stmt tile_out = sandwich(c, mloads, al, m, at, [&](const std::vector<Expr> &Y) {
    std::vector<Stmt> st;
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < m; ++j) {
        if (out_banded) {
          Expr at_px = Expr(int64_t(i) * oband_w + j) + vtw2 * Expr(int64_t(m));
          st.push_back(Store::make(oband, Y[i * m + j], Ramp::make(at_px * Expr(int64_t(L)), Expr(1), L)));
          continue;
        }
        Expr oh = th2 * Expr(int64_t(m)) + Expr(int64_t(i)), ow = vtw2 * Expr(int64_t(m)) + Expr(int64_t(j));
        Expr idx = Ramp::make((vb * Expr(s.M) + m0) * Expr(OHW) + oh * Expr(s.OW) + ow, Expr(OHW), L);
        Expr v = Y[i * m + j];
        if (e.bias) v = v + vec(e.bias);
        if (e.residual) v = v + Load::make(vt, e.residual->buf, idx);
        v = e.act.apply(v);
        if (e.post_scale) v = v * vec(e.post_scale);
        if (e.post_shift) v = v + vec(e.post_shift);
        st.push_back(IfThenElse::make(oh < Expr(s.OH) && ow < Expr(s.OW), Store::make(y.buf, v, idx)));
      }
    }
    return Block::make(st);
  });
  Stmt out_tiles = For::make(tw2, Expr(0), Expr(s.TW), ForKind::Serial, tile_out);
  if (out_banded) {
    std::string rn = c.fresh("r");
    Expr vr = Var::make(Type::index(), rn), oh = th2 * Expr(int64_t(m)) + vr;
    const Type wt = Type::f(32, wo);
    auto scalar = [&](const Operand *o, int l) { return Broadcast::make(Load::make(f, o->buf, m0 + Expr(int64_t(l))), wo); };
    // Segments of wo pixels from ow0 = 0, wo, 2 wo, ..., the last one ending at OW; per
    // segment a wo x wo transpose for each wo of the L channels.
    std::vector<Stmt> segs;
    for (int64_t ow0 = 0;; ow0 += wo) {
      ow0 = std::min<int64_t>(ow0, s.OW - wo);
      for (int c1 = 0; c1 < L; c1 += wo) {
        std::vector<Expr> px;
        for (int j = 0; j < wo; ++j) {
          Expr at = (vr * Expr(oband_w) + Expr(ow0 + j)) * Expr(int64_t(L)) + Expr(int64_t(c1));
          px.push_back(Load::make(wt, oband, Ramp::make(at, Expr(1), wo)));
        }
        segs.push_back(transpose_lanes(c, px, [&](const std::vector<Expr> &rows) {
          std::vector<Stmt> st;
          for (int l = 0; l < wo; ++l) {
            Expr ch = m0 + Expr(int64_t(c1 + l));
            Expr idx = Ramp::make((vb * Expr(s.M) + ch) * Expr(OHW) + oh * Expr(s.OW) + Expr(ow0), Expr(1), wo);
            Expr v = rows[l];
            if (e.bias) v = v + scalar(e.bias, c1 + l);
            if (e.residual) v = v + Load::make(wt, e.residual->buf, idx);
            v = e.act.apply(v);
            if (e.post_scale) v = v * scalar(e.post_scale, c1 + l);
            if (e.post_shift) v = v + scalar(e.post_shift, c1 + l);
            st.push_back(Store::make(y.buf, v, idx));
          }
          return Block::make(st);
        }));
      }
      if (ow0 + wo >= s.OW) break;
    }
    Stmt rows = For::make(rn, Expr(0), Expr(int64_t(m)), ForKind::Serial,
                          IfThenElse::make(oh < Expr(s.OH), Block::make(segs)));
    out_tiles = Allocate::make(oband, f, Expr(int64_t(m) * oband_w * L), Block::make({out_tiles, rows}));
  }
  Stmt output = For::make(ot, Expr(0), Expr(s.M / L * s.TH), ForKind::Parallel, out_tiles);

  Stmt per_image = Allocate::make(V, f, Expr(int64_t(P) * T * s.C),
                                  Allocate::make(Mb, f, Expr(int64_t(P) * T * s.M), Block::make({input, gemms, output})));
  return For::make(bn, Expr(0), x.shape[0], ForKind::Serial, per_image);
}

}  // namespace

Stmt lower_winograd_conv(LowerContext &c) {
  const Operand &x = c.in[0], &u = c.in[1], &y = c.out[0];
  internal_assert(x.dtype == DType::F32 && y.dtype == DType::F32 && x.rank() == 4) << c.node.describe();
  ConvAttrs a = ConvAttrs::read(c.node, 2, {3, 3});
  Expr ph, pw, oh_, ow_;
  a.geometry(0, x.shape[2], oh_, ph);
  a.geometry(1, x.shape[3], ow_, pw);
  Expr C = x.shape[1], H = x.shape[2], W = x.shape[3];
  Expr M = y.shape[1], OH = y.shape[2], OW = y.shape[3];
  ConvEpilogue e;
  if (c.has(2)) e.bias = &c.in[2];
  if (c.has(3)) e.residual = &c.in[3];
  e.act = Activation::of(c.node);
  if (c.has(4)) e.post_scale = &c.in[4];
  if (c.has(5)) e.post_shift = &c.in[5];

  int L = c.opts.opt_level >= 1 ? c.opts.vector_lanes_f32() : 1;
  internal_assert(L > 1) << c.node.describe() << ": WinogradConv needs vector lanes";
  auto *positions = u.shape[0].as<IntImm>();
  internal_assert(positions && (positions->value == 16 || positions->value == 36))
      << c.node.describe() << ": Winograd weights are not f32[36 or 16, M, C]";
  const int m = positions->value == 16 ? 2 : 4, al = m + 2, P = al * al;
  auto bt = [&](int i) { return m == 2 ? kBT4[i] : kBT6[i]; };
  auto at = [&](int i) { return m == 2 ? kAT2[i] : kAT4[i]; };
  Expr TH = (OH + Expr(m - 1)) / Expr(m), TW = (OW + Expr(m - 1)) / Expr(m), T = TH * TW;
  if (int nw = static_cast<int>(c.node.attr_i("packed_nr", 0)); nw > 0) {
    std::vector<const IntImm *> dims = {C.as<IntImm>(), M.as<IntImm>(), H.as<IntImm>(), W.as<IntImm>(),
                                        OH.as<IntImm>(), OW.as<IntImm>(), ph.as<IntImm>(), pw.as<IntImm>()};
    bool known = std::all_of(dims.begin(), dims.end(), [](const IntImm *d) { return d != nullptr; });
    if (known && dims[0]->value % L == 0 && dims[1]->value % L == 0) {
      WinogradShape ws{m, al, dims[0]->value, dims[1]->value, dims[2]->value, dims[3]->value, dims[4]->value,
                       dims[5]->value, (dims[4]->value + m - 1) / m, (dims[5]->value + m - 1) / m, dims[6]->value,
                       dims[7]->value};
      return winograd_channels_last(c, ws, e, nw, bt, at);
    }
  }
  // The transforms' vectors run over the tiles of a tile row: with at most 4 tiles per row
  // (14x14 maps; 7x7 with 2x2 tiles) 4 lanes wide, not a quarter-filled full vector (the
  // GEMMs keep the full width), and V's and Mb's rows start on cache lines (below).
  // Measured 5-19% faster on those maps; narrowing 28x28 maps' 7-tile rows to 8 lanes, or
  // aligning their rows, measured slower.
  auto *tw_c = TW.as<IntImm>();
  const bool narrow = tw_c && tw_c->value <= 4 && L > 4;
  if (narrow) L = 4;
  Type f = Type::f(32), vt = Type::f(32, L), wide = Type::f(32, m * L);
  // Row stride of V and Mb: slack for the last vector of tiles (narrow: whole cache lines).
  Expr TS = narrow ? (T + Expr(L) + Expr(15)) / Expr(16) * Expr(16) : T + Expr(L);
  Expr NV = (TW + Expr(L - 1)) / Expr(L);
  Expr PH = TH * Expr(m) + Expr(2), PW = NV * Expr(m * L) + Expr(m);
  std::string bn = c.fresh("n"), V = c.fresh("V"), Mb = c.fresh("Mb");
  Expr vb = Var::make(Type::index(), bn);

  // 1. Input transform.
  std::string ch = c.fresh("c"), plane = c.fresh("plane"), r = c.fresh("r"), j = c.fresh("j");
  Expr vc = Var::make(Type::index(), ch), vr = Var::make(Type::index(), r), vj = Var::make(Type::index(), j);
  Expr ih = vr - ph;
  Expr lo = min(PW, max(Expr(0), pw)), hi = max(lo, min(PW, pw + W));
  auto zeros = [&](Expr from, Expr to) {
    return For::make(j, from, to - from, ForKind::Serial, Store::make(plane, make_zero(f), vr * PW + vj));
  };
  Stmt row_copy = Block::make({zeros(Expr(0), lo),
                               copy_run(c, plane, x.buf, vr * PW + lo, (vb * C + vc) * H * W + ih * W + lo - pw, hi - lo, 1),
                               zeros(hi, PW)});
  Stmt fill = For::make(r, Expr(0), PH, ForKind::Serial,
                        IfThenElse::make(ih >= Expr(0) && ih < H, row_copy, zeros(Expr(0), PW)));
  std::string th = c.fresh("th"), tv = c.fresh("tv");
  Expr vth = Var::make(Type::index(), th), vtv = Var::make(Type::index(), tv);
  std::vector<Expr> loads;
  for (int rr = 0; rr < al; ++rr) {
    // Patch columns 0 .. m-1 of L tiles from one load, m .. m+1 from one starting m later.
    Expr base = (vth * Expr(m) + Expr(rr)) * PW + vtv * Expr(m * L);
    loads.push_back(Load::make(wide, plane, Ramp::make(base, Expr(1), m * L)));
    loads.push_back(Load::make(wide, plane, Ramp::make(base + Expr(m), Expr(1), m * L)));
  }
  Stmt tile_in = let_all(c, loads, [&](const std::vector<Expr> &w) {
    std::vector<Expr> d;  // d[r * al + s]: lanes = tiles
    for (int rr = 0; rr < al; ++rr) {
      for (int s = 0; s < al; ++s) {
        d.push_back(Call::make(vt, "stride_lanes", {w[rr * 2 + (s < m ? 0 : 1)], Expr(s % m), Expr(m)}));
      }
    }
    return sandwich(c, d, al, al, bt, [&](const std::vector<Expr> &v) {
      std::vector<Stmt> st;
      Expr t0 = vth * TW + vtv * Expr(L);
      for (int k = 0; k < P; ++k) {
        Expr idx = ((Expr(k) * C + vc) * TS) + t0;
        st.push_back(Store::make(V, v[k], Ramp::make(idx, Expr(1), L)));
      }
      return Block::make(st);
    });
  });
  Stmt tiles_in = For::make(th, Expr(0), TH, ForKind::Serial, For::make(tv, Expr(0), NV, ForKind::Serial, tile_in));
  Stmt input = For::make(ch, Expr(0), C, ForKind::Parallel,
                         Allocate::make(plane, f, PH * PW, Block::make({fill, tiles_in})));

  // 2. The a^2 GEMMs.
  std::string en = c.fresh("e");
  Expr ve = Var::make(Type::index(), en);
  GemmSpec g;
  g.a = u.buf;
  g.a_base = ve * M * C;
  g.a_sm = C;
  g.a_sk = Expr(1);
  g.b = V;
  g.b_base = ve * C * TS;
  g.b_sk = TS;
  g.M = M;
  g.N = (T + Expr(L - 1)) / Expr(L) * Expr(L);  // whole vectors: the extra columns are slack
  g.K = C;
  g.c = Mb;
  g.c_index = [&](Expr m, Expr n) { return (ve * M + m) * TS + n; };
  g.epilogue = [&](Expr m, Expr n, Expr v, int lanes) {
    Expr i = (ve * M + m) * TS + n;
    return Store::make(Mb, v, lanes == 1 ? i : Ramp::make(i, Expr(1), lanes));
  };
  if (int nw = static_cast<int>(c.node.attr_i("packed_nr", 0)); nw > 0) {
    // Few tiles (14x14 maps: 16; 28x28: 49): the GEMMs transposed, Mb[e]^T = V[e]^T U[e]^T, so the
    // vectors run along output channels (U in column panels, passes/pack_weights.cpp) and
    // a tile row is 8 image tiles instead of a mostly empty vector of them; each result
    // vector scatters to its channels' rows of Mb. The reduction runs unblocked.
    auto *t_c = T.as<IntImm>();
    internal_assert(t_c && nw == gemm_tile_for(c.opts).nv * gemm_tile_for(c.opts).vl)
        << c.node.describe() << ": Winograd weights packed for " << nw << "-column panels";
    g = GemmSpec();
    g.a = V;
    g.a_base = ve * C * TS;
    g.a_sm = Expr(1);
    g.a_sk = TS;
    g.b = u.buf;
    g.b_base = ve * M * C;
    g.b_sk = Expr(0);
    g.b_packed_nw = nw;
    g.M = T;
    g.N = M;
    g.K = C;
    g.overlap_last_tile = true;  // the last row tile (of image tiles) ends at T
    g.prefetch_next_panel = true;  // as in winograd_channels_last
    g.epilogue = [&](Expr t, Expr m, Expr v, int lanes) {
      Expr i = (ve * M + m) * TS + t;
      return Store::make(Mb, v, lanes == 1 ? i : Ramp::make(i, TS, lanes));
    };
  }
  // One parallel loop over the a^2 GEMMs (their own parallel loops then run inline).
  auto *rows = g.M.as<IntImm>();
  GemmTile tl = rows ? gemm_tile(c.opts, rows->value) : gemm_tile_for(c.opts);
  Stmt gemms = For::make(en, Expr(0), Expr(P), ForKind::Parallel, gemm_tiles(c, g, tl));

  // 3. Output transform and epilogue.
  std::string mn = c.fresh("m"), th2 = c.fresh("th"), tv2 = c.fresh("tv");
  Expr vm = Var::make(Type::index(), mn), vth2 = Var::make(Type::index(), th2), vtv2 = Var::make(Type::index(), tv2);
  Expr t0 = vth2 * TW + vtv2 * Expr(L);
  std::vector<Expr> mloads;
  for (int k = 0; k < P; ++k) mloads.push_back(Load::make(vt, Mb, Ramp::make((Expr(k) * M + vm) * TS + t0, Expr(1), L)));
  auto finish = [&](Expr v, Expr yidx, int lanes, Expr stride) {
    auto bc = [&](Expr s) { return lanes == 1 ? s : Broadcast::make(s, lanes); };
    Expr idx = lanes == 1 ? yidx : Ramp::make(yidx, stride, lanes);
    if (e.bias) v = v + bc(load(*e.bias, {vm}));
    if (e.residual) v = v + Load::make(lanes == 1 ? f : vt, e.residual->buf, idx);
    v = e.act.apply(v);
    if (e.post_scale) v = v * bc(load(*e.post_scale, {vm}));
    if (e.post_shift) v = v + bc(load(*e.post_shift, {vm}));
    return Store::make(y.buf, v, idx);
  };
  Stmt tile_out = sandwich(c, mloads, al, m, at, [&](const std::vector<Expr> &yv) {
    return let_all(c, yv, [&](const std::vector<Expr> &Y) {
      Expr ybase = (vb * M + vm) * OH * OW;
      Expr tw0 = vtv2 * Expr(L);
      std::vector<Stmt> full, part;
      std::string sp = c.fresh("spill"), ln = c.fresh("lane");
      Expr vln = Var::make(Type::index(), ln);
      for (int i = 0; i < m; ++i) {
        for (int jj = 0; jj < m; ++jj) {
          Expr oh = vth2 * Expr(m) + Expr(i);
          full.push_back(finish(Y[i * m + jj], ybase + oh * OW + tw0 * Expr(m) + Expr(jj), L, Expr(m)));
          part.push_back(Store::make(sp, Y[i * m + jj], Ramp::make(Expr((i * m + jj) * L), Expr(1), L)));
        }
      }
      // Edge tiles: element by element, inside the output only.
      std::vector<Stmt> edge;
      for (int i = 0; i < m; ++i) {
        for (int jj = 0; jj < m; ++jj) {
          Expr oh = vth2 * Expr(m) + Expr(i), ow = (tw0 + vln) * Expr(m) + Expr(jj);
          Stmt one = finish(Load::make(f, sp, Expr((i * m + jj) * L) + vln), ybase + oh * OW + ow, 1, Expr(1));
          edge.push_back(IfThenElse::make(oh < OH && ow < OW, one));
        }
      }
      part.push_back(For::make(ln, Expr(0), min(Expr(L), TW - tw0), ForKind::Serial, Block::make(edge)));
      Expr inside = (tw0 + Expr(L)) * Expr(m) <= OW && vth2 * Expr(m) + Expr(m) <= OH;
      return IfThenElse::make(inside, Block::make(full), Allocate::make(sp, f, Expr(m * m * L), Block::make(part)));
    });
  });
  Stmt output = For::make(mn, Expr(0), M, ForKind::Parallel,
                          For::make(th2, Expr(0), TH, ForKind::Serial, For::make(tv2, Expr(0), NV, ForKind::Serial, tile_out)));

  Stmt per_image = Allocate::make(V, f, Expr(P) * C * TS,
                                  Allocate::make(Mb, f, Expr(P) * M * TS, Block::make({input, gemms, output})));
  return For::make(bn, Expr(0), x.shape[0], ForKind::Serial, per_image);
}

}  // namespace kiln
