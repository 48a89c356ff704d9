// The register-blocked GEMM schedule shared by Conv, MatMul and Gemm at -O1 and above:
//   C(m, n) = sum_k A(m, k) * B(k, n)
// computed in tiles of `mr` rows x `nv` vectors of `vl` f32 lanes. A tile's accumulators
// live in registers for the whole k loop (an outer product per k: `mr` broadcasts of A,
// `nv` vector loads of B, mr*nv FMAs); the finished tile goes through the caller's
// epilogue (bias, residual, activation, the store). Row and column remainders run as
// narrower tiles, so any M, N, K work without padding.
#pragma once
#include <functional>
#include <string>

#include "lower/lower.h"

namespace kiln {

struct GemmSpec {
  // A(m, k) = a[a_base + m * a_sm + k * a_sk]; or, when a_packed_mr > 0, rows packed in
  // blocks of a_packed_mr (passes/pack_weights.cpp; a_sm must be K, a_sk 1):
  // A(b * mr + i, k) = a[a_base + (b * mr) * K + k * mr + i] for whole blocks.
  std::string a;
  Expr a_base, a_sm, a_sk;
  int a_packed_mr = 0;
  // Optional, instead of m * a_sm: where row m of A starts, A(m, k) = a[a_base + a_row(m) +
  // k * a_sk] (evaluated once per row of a tile): rows of several images folded into one
  // GEMM.
  std::function<Expr(Expr m)> a_row;
  // B(k, n) = b[b_base + k * b_sk + n]: contiguous along n; or, when b_packed_nw > 0
  // (constant weights packed at compile time, passes/pack_weights.cpp), column panels of
  // b_packed_nw stored one after another: B(k, p * nw + j) = b[b_base + (p * K + k) * nw + j],
  // then the columns past the last whole panel row-major: B(k, Np + j) = b[b_base + Np * K +
  // k * (N - Np) + j] with Np = N / nw * nw.
  std::string b;
  Expr b_base, b_sk;
  int b_packed_nw = 0;
  Expr M, N, K;
  // Optional: where C(m, n) lives (buffer, flat index), for partial sums between blocks
  // of a long reduction. Without it the reduction runs in one block.
  std::string c;
  std::function<Expr(Expr m, Expr n)> c_index;
  // Finishes C(m, n .. n + lanes - 1) whose accumulated sum is `v` (f32 x lanes, or a
  // scalar when lanes == 1).
  std::function<Stmt(Expr m, Expr n, Expr v, int lanes)> epilogue;
  // Optional: the memory the epilogue of C(m, n .. n + lanes - 1) reads and writes, as
  // scalar Loads of its first element, each with `write` set for a store. A tile prefetches
  // them before its reduction, so the epilogue's residual reads and output stores (rows
  // far apart in NCHW) find their cache lines there.
  struct Touch {
    Expr load;
    bool write;
  };
  std::function<std::vector<Touch>(Expr m, Expr n)> epilogue_touches;
  // The columns (rows) past the last whole tile may be finished by one more whole tile
  // ending at N (M), which recomputes (and stores again) some of the columns (rows) before
  // it: only for an epilogue whose stores can repeat (the output shares no memory with its
  // inputs) and operands readable in whole tiles. The reduction then runs unblocked.
  bool overlap_last_tile = false;
  // Prefetch the packed operand (A with a_packed_mr, B in panels) a few dozen k ahead:
  // conv weights, which stream from memory (a model's weights do not stay in the caches
  // between runs). ResNet-50's 1x1 convs on 14x14 / 7x7 maps: -7%. (Not for MatMul
  // weights: a B panel is read once from memory for many row tiles, and every prefetch
  // after the first row tile only costs.)
  bool prefetch_packed = false;
  // B in packed panels, tiles walking each panel's row tiles in turn: the row tiles of
  // one panel prefetch the next panel (one line per k), so that its first row tile does not
  // wait on memory. Conv GEMMs over 7x7 / strided maps in a model: -10..15% each.
  bool prefetch_next_panel = false;
};

// Tile shape for a target: mr x (nv * vl).
struct GemmTile {
  int mr, nv, vl;
};
GemmTile gemm_tile_for(const LowerOptions &o);
// For A read in place (rows not packed for a fixed mr): row tiles of a size that divides
// `rows` where one close to the register tile does (7 for 7x7 and 14x14 maps: 49 = 7 x 7);
// otherwise the full tile, the last row tile overlapping the one before it. Either way no
// remainder row streams every panel of B again.
GemmTile gemm_tile_for_rows(const LowerOptions &o, int64_t rows);

// The tiled GEMM: every tile of the main phase in one parallel loop (row tiles fastest,
// so consecutive iterations on a thread reuse one column panel of B from cache). With
// `tiles` = Serial the same loops run on the calling thread: a small GEMM inside a
// kernel's own parallel work item (lower/attention.cpp).
Stmt gemm_tiles(LowerContext &c, const GemmSpec &g, const GemmTile &tile, ForKind tiles = ForKind::Parallel);

// The same GEMM with B packed per panel of nv*vl columns: `pack(buf, base, n0, nw, k0,
// klen)` fills rows k0 .. k0+klen-1 of the panel starting at column n0
// (buf[base + (k - k0) * nw + j] = B(k, n0 + j), columns beyond N zero) -- for a conv, the
// panel's slice of the im2col matrix. With many panels each parallel work item packs one
// (in K blocks) and runs its row tiles on it from cache; with few (small N) all panels are
// packed once into a shared buffer, then work items split the rows and sweep every panel,
// so each row of A (the weights) is read once.
using PackPanel = std::function<Stmt(const std::string &buf, Expr base, Expr n0, int nw, Expr k0, Expr klen)>;
Stmt gemm_packed_tiles(LowerContext &c, const GemmSpec &g, const GemmTile &tile, const PackPanel &pack);

// B in whole packed panels (b_packed_nw = nv * vl, N a multiple of it) and a long
// reduction (K > 384), A read in place (a conv's im2col matrix transposed, or its input):
// work items (panel, chunk of row tiles), each running K in blocks of 256 over all of its
// row tiles, partial sums in a per-item buffer. The panel's block stays in L1 / L2 for
// every row tile instead of streaming the whole panel (e.g. 590 KB for a 3x3 conv over 512
// channels) once per row tile beside A. `gemm_panel_items_fit` says whether it applies.
bool gemm_panel_items_fit(const GemmSpec &g, const GemmTile &tile);
Stmt gemm_panel_items(LowerContext &c, const GemmSpec &g, const GemmTile &tile);

// Activation applied in a fused epilogue; works on scalars and vectors.
struct Activation {
  // "", Relu, LeakyRelu, Clip, HardSigmoid, HardSwish, Sigmoid, SiLU (x * sigmoid(x)),
  // Gelu (erf form), GeluTanh (tanh approximation)
  std::string kind;
  float alpha = 0, beta = 0;  // LeakyRelu alpha; Clip min/max; HardSigmoid alpha/beta
  // Reads the `activation` attributes of a fused node (`<prefix>activation`, `<prefix>activation_params`).
  static Activation of(const Node &n, const std::string &prefix = "");
  Expr apply(Expr v) const;
};

}  // namespace kiln
