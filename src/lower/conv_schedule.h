// Optimized f32 convolution schedules (im2col + register-blocked GEMM tiles, depthwise)
// with a fused epilogue; the -O0 reference stays in linalg.cpp.
#pragma once
#include <optional>
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
