// Building blocks of the NCHWc blocked-layout conv kernels (a tensor [N, CB, H, W, b]
// keeps the b channels of a block contiguous per pixel), shared by the single-conv kernels
// (conv_blocked.cpp) and the fused depthwise-separable chain (separable_conv.cpp). Each
// block builds the code for one tile or one row; the caller places it in its own loops and
// says where the data lives through address functions.
#pragma once
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "graph/conv_attrs.h"
#include "lower/gemm.h"
#include "lower/lower.h"

namespace kiln {

// Accumulators acc[0 .. n) of b lanes in a scratch that SROA keeps in registers.
struct Accs {
  std::string buf;
  int b;
  Expr at(int i) const { return Ramp::make(Expr(int64_t(i) * b), Expr(1), b); }
  Expr get(int i) const { return Load::make(Type::f(32, b), buf, at(i)); }
  Stmt fma(int i, Expr w, Expr x) const { return Store::make(buf, call("fma", {w, x, get(i)}), at(i)); }
  Stmt zero(int n) const;
};

// acc[r * nb + j] += w[j] * x[r] for the R broadcasts x and nb weight vectors w, inside
// the lets that bind them (each loaded once).
Stmt outer_product(const Accs &acc, const std::vector<std::pair<std::string, Expr>> &lets, const std::vector<Expr> &wv,
                   const std::vector<Expr> &xv);

// What a blocked conv does with a result vector of channels ch0 .. ch0 + b - 1:
// y[at ..] = act(v + bias[ch0 ..] + z[at ..]) * scale[ch0 ..] + shift[ch0 ..], each part optional.
struct BlockedEpilogue {
  const Operand *bias = nullptr, *residual = nullptr, *scale = nullptr, *shift = nullptr;
  Activation act;
  Stmt store(const std::string &y, Expr at, Expr ch0, Expr v, int b) const;
};

// Pixels of a blocked tensor (or of a scratch laid out like one): `at(icb, p)` is the
// element offset of lane 0 of pixel p in channel block icb.
struct BlockedPixels {
  std::string buf;
  std::function<Expr(Expr icb, Expr p)> at;
};

// A 1x1 conv's tile: R pixels p0 .. p0 + R - 1 times nb output blocks ocb0 .. ocb0 + nb - 1,
// reducing over the k real input channels of x (weights W'[ocb][ic][j], icp channels per
// output block); results stored through `ep` at y.at(ocb, p).
struct PointwiseTile {
  int b, nb;
  int64_t R, k, icp;
  std::string w;
  // When > 0 (the weights' output block count): per input channel, also prefetch the
  // weight lines of the next nb output blocks, which the thread's next tiles read (the
  // weights stream from memory every run).
  int64_t prefetch_ocbs = 0;
};
Stmt pointwise_tile(LowerContext &c, const PointwiseTile &t, const BlockedPixels &x, const BlockedPixels &y,
                    const BlockedEpilogue &ep, Expr ocb0, Expr p0);

// Pixel tiles for a 1x1 conv over P pixels with nb output blocks per tile: R pixels per tile
// (R x nb accumulators within the target's registers), T tiles as even as P allows, the
// last one ending at P (overlapping the one before: the same values again). `exact` (short
// rows) trades a few pixels per tile for less overlap.
struct PixelTiling {
  int64_t R, T;
  Expr first(Expr t, int64_t P) const { return min(t * Expr(R), Expr(P - R)); }
};
PixelTiling pixel_tiling(const LowerContext &c, int64_t P, int nb, bool exact = false);

// One output row `oh` of a depthwise conv over one channel block (weights W'[cb][tap][j] at
// `wcb`, the block's first tap): x.at(ih, iw) is the element offset of lane 0 of input pixel
// (ih, iw) in [0, H) x [0, W); results stored through `ep` at y_at(ow). Columns whose
// windows lie inside the input run U at a time; border columns test their taps.
struct DepthwiseRow {
  int b;
  int64_t H, W, OW, pad_h, pad_w;
  const ConvAttrs &a;
  std::string w;
};
Stmt depthwise_row(LowerContext &c, const DepthwiseRow &d, const std::string &xbuf,
                   const std::function<Expr(Expr ih, Expr iw)> &x_at, Expr wcb, Expr oh, const std::string &ybuf,
                   const std::function<Expr(Expr ow)> &y_at, const BlockedEpilogue &ep, Expr ch0);

}  // namespace kiln
