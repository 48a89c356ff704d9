// Optimized f32 MatMul schedule (register-blocked GEMM tiles, gemm.h) with a fused
// epilogue y = act(a @ b + bias[n] + residual) * post_scale[n] + post_shift[n]; the -O0 reference stays in linalg.cpp.
#pragma once
#include "lower/gemm.h"
#include "lower/lower.h"

namespace kiln {

struct MatMulEpilogue {
  const Operand *bias = nullptr;      // 1-D, length N (broadcast along rows)
  const Operand *residual = nullptr;  // same shape as the output
  Activation act;
  const Operand *post_scale = nullptr, *post_shift = nullptr;  // 1-D, length N: after act
};

// Whether matmul_schedule applies to in[0] @ in[1] (opt level >= 1, f32, both rank >= 2).
bool matmul_schedulable(const LowerContext &c);
Stmt matmul_schedule(LowerContext &c, const MatMulEpilogue &e);

}  // namespace kiln
