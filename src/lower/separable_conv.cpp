// BlockedSeparableConv (ops.def; passes/fuse_separable.cpp): [1x1 expansion ->] depthwise ->
// 1x1 projection on blocked tensors in one kernel. Unfused, the expanded tensor (6x the
// block's input in a MobileNet, 4.8 MB at 112x112) goes out to memory and back twice and each
// of the three convs is a parallel loop whose threads read what the other thread wrote.
// Here a work item is (image, band of output rows); per output row the item
//  1. expands the input rows the depthwise window newly reaches into a ring of
//     (kernel height - 1) * dilation + 1 rows (rows above the band are recomputed: the halo),
//  2. runs the depthwise row for every channel block into one row of scratch,
//  3. projects that row to the output row (bias, residual, activation),
// so the intermediates are a few rows in the thread's cache.
#include "lower/conv_blocked.h"
#include "support/error.h"

namespace kiln {

namespace {

int64_t static_of(const LowerContext &c, const Expr &e, const char *what) {
  auto *v = e.as<IntImm>();
  internal_assert(v) << c.node.describe() << ": the " << what << " must be static";
  return v->value;
}

// Rows per band: enough that the halo rows an expansion recomputes stay under 1/10 of the
// rows it computes anyway ((kernel span - stride) / (rows x stride)), at least two bands
// (even, up to 8, for two threads); without an expansion the halo costs nothing and bands of
// 4 rows spread the work. (1/6 ran its 56x56 blocks ~5% slower in an A/B.)
int64_t band_rows(int64_t OH, int64_t span, int64_t stride, bool expand) {
  int64_t min_rows = expand ? std::max<int64_t>(1, (10 * (span - stride) + stride - 1) / stride) : 4;
  int64_t bands = std::min(OH, std::max<int64_t>(2, OH / min_rows));
  if (bands > 1 && bands < 8 && bands % 2) --bands;  // even, for two threads
  return (OH + bands - 1) / bands;
}

}  // namespace

Stmt lower_blocked_separable_conv(LowerContext &c) {
  const Operand &x = c.in[0], &wd = c.in[3], &wp = c.in[5], &y = c.out[0];
  internal_assert(x.rank() == 5 && y.rank() == 5 && wd.rank() == 4 && wp.rank() == 4)
      << c.node.describe() << ": expects blocked input and output";
  const bool expand = c.has(1);
  const int b = static_cast<int>(static_of(c, x.shape[4], "block"));
  int64_t ICB = static_of(c, x.shape[1], "input block count"), H = static_of(c, x.shape[2], "input height");
  int64_t W = static_of(c, x.shape[3], "input width"), OCB = static_of(c, y.shape[1], "output block count");
  int64_t OH = static_of(c, y.shape[2], "output height"), OW = static_of(c, y.shape[3], "output width");
  int64_t CB = static_of(c, wd.shape[0], "middle channels") / b;
  int64_t K = c.node.attr_i("in_channels", ICB * b), M = c.node.attr_i("mid_channels", CB * b);
  internal_assert(K > (ICB - 1) * b && K <= ICB * b && M > (CB - 1) * b && M <= CB * b && (expand || CB == ICB))
      << c.node.describe() << ": channel counts " << K << " / " << M << " do not fit the blocks";
  ConvAttrs a = ConvAttrs::read(c.node, 2, {static_of(c, wd.shape[2], "kernel height"), static_of(c, wd.shape[3], "kernel width")});
  std::vector<int64_t> pad(2);
  for (int d = 0; d < 2; ++d) {
    Expr o, p;
    a.geometry(d, x.shape[2 + d], o, p);
    pad[d] = static_of(c, p, "padding");
  }
  const int64_t kh = a.kernel[0], sh = a.strides[0], span = (kh - 1) * a.dilations[0] + 1, taps = kh * a.kernel[1];
  const int64_t RB = band_rows(OH, span, sh, expand), bands = (OH + RB - 1) / RB;
  Type f = Type::f(32);
  auto opt = [&](size_t i) { return c.has(i) ? &c.in[i] : nullptr; };

  std::string item = c.fresh("band"), j = c.fresh("j"), ring = c.fresh("ring"), mid = c.fresh("mid");
  Expr vi = Var::make(Type::index(), item), vj = Var::make(Type::index(), j);
  Expr n = vi / Expr(bands), oh0 = vi % Expr(bands) * Expr(RB), oh = oh0 + vj;
  Expr x_plane = n * Expr(ICB * H * W);

  // 1x1 convs over one row of P pixels, every output block: pairs, then an odd last block.
  auto pointwise_row = [&](const Operand &w, int64_t k, int64_t icp, int64_t ocb_count, int64_t P, const BlockedPixels &in,
                           const BlockedPixels &out, const BlockedEpilogue &ep) {
    std::vector<Stmt> loops;
    for (int nb : {2, 1}) {
      int64_t groups = nb == 2 ? ocb_count / 2 : ocb_count % 2;
      if (!groups) continue;
      PixelTiling tiles = pixel_tiling(c, P, nb, true);
      std::string g = c.fresh("g"), t = c.fresh("t");
      Expr ocb0 = Expr(nb == 2 ? 0 : ocb_count - 1) + Var::make(Type::index(), g) * Expr(int64_t(nb));
      Stmt tile = pointwise_tile(c, PointwiseTile{b, nb, tiles.R, k, icp, w.buf}, in, out, ep, ocb0,
                                 tiles.first(Var::make(Type::index(), t), P));
      loops.push_back(For::make(g, Expr(0), Expr(groups), ForKind::Serial, For::make(t, Expr(0), Expr(tiles.T), ForKind::Serial, tile)));
    }
    return Block::make(loops);
  };

  std::vector<Stmt> row;
  // 1. The input rows [lo, hi) the window of row oh reaches and row oh - 1's did not.
  if (expand) {
    BlockedEpilogue ep{opt(2), nullptr, nullptr, nullptr, Activation::of(c.node, "expand_")};
    std::string ih = c.fresh("ih");
    Expr vih = Var::make(Type::index(), ih);
    Expr first = oh * Expr(sh) - Expr(pad[0]), end = first + Expr(span);
    Expr lo = max(select(vj == Expr(0), first, max(end - Expr(sh), first)), Expr(0)), hi = min(end, Expr(H));
    BlockedPixels in{x.buf, [&](Expr icb, Expr p) { return (x_plane + icb * Expr(H * W) + vih * Expr(W) + p) * Expr(int64_t(b)); }};
    BlockedPixels out{ring, [&](Expr ocb, Expr p) { return ((vih % Expr(span) * Expr(CB) + ocb) * Expr(W) + p) * Expr(int64_t(b)); }};
    row.push_back(For::make(ih, lo, hi - lo, ForKind::Serial, pointwise_row(c.in[1], K, ICB * b, CB, W, in, out, ep)));
  }
  // 2. The depthwise row of every middle block into `mid` [CB, OW, b].
  {
    BlockedEpilogue ep{opt(4), nullptr, nullptr, nullptr, Activation::of(c.node, "depthwise_")};
    std::string cb = c.fresh("cb");
    Expr vcb = Var::make(Type::index(), cb);
    DepthwiseRow d{b, H, W, OW, pad[0], pad[1], a, wd.buf};
    auto x_at = [&](Expr ih, Expr iw) {
      Expr px = expand ? (ih % Expr(span) * Expr(CB) + vcb) * Expr(W) + iw : x_plane + vcb * Expr(H * W) + ih * Expr(W) + iw;
      return px * Expr(int64_t(b));
    };
    Stmt dw = depthwise_row(c, d, expand ? ring : x.buf, x_at, vcb * Expr(taps * b), oh, mid,
                            [&](Expr ow) { return (vcb * Expr(OW) + ow) * Expr(int64_t(b)); }, ep, vcb * Expr(int64_t(b)));
    row.push_back(For::make(cb, Expr(0), Expr(CB), ForKind::Serial, dw));
  }
  // 3. The projection of that row into output row oh.
  {
    BlockedEpilogue ep{opt(6), opt(7), nullptr, nullptr, Activation::of(c.node)};
    BlockedPixels in{mid, [&](Expr icb, Expr p) { return (icb * Expr(OW) + p) * Expr(int64_t(b)); }};
    BlockedPixels out{y.buf, [&](Expr ocb, Expr p) { return (((n * Expr(OCB) + ocb) * Expr(OH) + oh) * Expr(OW) + p) * Expr(int64_t(b)); }};
    row.push_back(pointwise_row(wp, M, CB * b, OCB, OW, in, out, ep));
  }
  Stmt band = For::make(j, Expr(0), min(Expr(RB), Expr(OH) - oh0), ForKind::Serial, Block::make(row));
  band = Allocate::make(mid, f, Expr(CB * OW * b), band);
  if (expand) band = Allocate::make(ring, f, Expr(span * CB * W * b), band);
  return For::make(item, Expr(0), x.shape[0] * Expr(bands), ForKind::Parallel, band);
}

}  // namespace kiln
