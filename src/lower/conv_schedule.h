// Optimized f32 convolution schedules (im2col + register-blocked GEMM tiles, depthwise)
// with a fused epilogue; the -O0 reference stays in linalg.cpp.
#pragma once
#include <optional>
#include <set>
#include <vector>

#include "graph/conv_attrs.h"
#include "lower/gemm.h"
#include "lower/lower.h"

namespace kiln {

// y = act(conv(x, w) + bias[c] + residual) * post_scale[c] + post_shift[c]; any of the
// operands may be null.
struct ConvEpilogue {
  const Operand *bias = nullptr;
  const Operand *residual = nullptr;  // same shape as the output
  Activation act;
  const Operand *post_scale = nullptr, *post_shift = nullptr;
};

// The fused epilogue for output elements (flat index yflat .. yflat+lanes-1) of channel m.
Stmt conv_epilogue(const ConvEpilogue &e, const Operand &y, Expr yflat, Expr m, Expr v, int lanes);

// Scratch rows of a zero-padded input plane split by column phase (padded column col in
// phase col % sw at position col / sw, only the phases some tap reads), so that tap kx of
// consecutive output columns ow reads consecutive positions: one contiguous vector load
// per tap even for strided convs (conv_direct.cpp).
struct PhaseRows {
  PhaseRows(Expr OW, int64_t sw, int64_t kw, int64_t dw);
  // Where tap kx of output column ow sits within a scratch row.
  Expr tap(int64_t kx, Expr ow) const;
  // Fills the scratch row at `at` from input row `src_row` (flat index of its column 0;
  // `row_valid` false: a padding row, all zeros) of width W with `pad_w` columns of left
  // padding.
  Stmt fill(LowerContext &c, const std::string &scratch, Expr at, const std::string &x, Expr src_row,
            Expr row_valid, Expr W, Expr pad_w) const;
  int64_t sw, kw, dw;
  std::set<int64_t> phases;
  Expr Wq, Wrow;  // positions per phase; floats per scratch row
};

// Direct convolution over output rows (conv_direct.cpp) for stems (<= 4 input channels)
// and strided convs: the vector width it runs with, or 0 when it does not apply.
int conv_direct_lanes(const LowerContext &c, const ConvAttrs &a, int packed_mr);
Stmt conv_direct_rows(LowerContext &c, const ConvAttrs &a, const std::vector<Expr> &pad, const ConvEpilogue &e,
                      int vl, int packed_mr);

// dst[d + i] = src[s + i * stride] for i < len: whole vectors, then single elements (a
// contiguous source loads vectors; a strided one gathers them).
Stmt copy_run(LowerContext &c, const std::string &dst, const std::string &src, Expr d, Expr s, Expr len,
              int64_t stride);

// Whether conv_schedule applies (opt level >= 1, f32 operands).
bool conv_schedulable(const LowerContext &c);
Stmt conv_schedule(LowerContext &c, const ConvAttrs &a, const std::vector<Expr> &pad, const ConvEpilogue &e);

// ConvTranspose whose windows do not overlap (stride == kernel, no padding, dilation 1,
// one group, f32, 2-D): a GEMM C[(co, ky, kx), (ih, iw)] = W^T x, each element stored to
// its one output position y[co, ih*s + ky, iw*s + kx] (plus the bias). nullopt when the
// op does not have that form.
std::optional<Stmt> conv_transpose_schedule(LowerContext &c, const ConvAttrs &a, const std::vector<Expr> &pad);

}  // namespace kiln
