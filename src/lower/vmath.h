// Vectorizable f32 math in the Loop IR. Each function builds an expression of x's type
// (f32 scalar or f32 vector of any width) from arithmetic, fma, floor/round, min/max,
// selects, compares and integer bit operations only, so it vectorizes wherever the
// caller's loop does -- unlike exp/erf/tanh Calls, which become scalar libm calls.
//
// Largest errors over the whole f32 range against libm in double precision (measured by
// tests/unit/vmath_test.cpp, which bounds them a little above):
//   exp      9e-8 relative (0.75 ulp); overflows to +inf above ~88.72 and underflows
//            through the subnormals (within one subnormal step) to +0 below ~-103.97
//   erf      1.0e-7 absolute, 1.7e-7 relative; +-1 beyond |x| ~3.9
//   tanh     1.3e-7 relative; +-1 for large |x|
//   sigmoid  1 / (1 + exp(-x)): 1.5e-7 relative; 0 below ~-88.7, as 1 / (1 + expf(-x))
// NaN inputs give NaN. Intermediates are bound with Let, so x is evaluated once.
#pragma once

#include "loop/ir.h"

namespace kiln::vmath {

Expr exp(Expr x);
Expr erf(Expr x);
Expr tanh(Expr x);
Expr sigmoid(Expr x);

}  // namespace kiln::vmath
