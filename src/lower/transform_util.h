// Building blocks shared by the data-movement lowerings (transform.cpp,
// gather_scatter.cpp): bit-exact copies in storage type and index normalization.
#pragma once
#include <functional>
#include <vector>

#include "graph/shape_fn.h"
#include "lower/lower.h"

namespace kiln::xform {

// Element `idx` of `o` in its storage type (no conversion).
Expr load_raw(const Operand &o, const std::vector<Expr> &idx);
Stmt store_raw(const Operand &o, const std::vector<Expr> &idx, Expr v);

// parallel_loop_nest, except that small static nests stay serial.
using NestBody = std::function<Stmt(const std::vector<Expr> &)>;
Stmt nest(LowerContext &c, const std::vector<Expr> &extents, const NestBody &body);
// out(i) = f(i) over the whole output, as nest() schedules it.
Stmt fill(LowerContext &c, const Operand &out, const std::function<Expr(const std::vector<Expr> &)> &f);

using IndexMap = std::function<std::vector<Expr>(const std::vector<Expr> &)>;
// for i in extents: dst[dst_index(i)] = src[src_index(i)]
Stmt copy_nest(LowerContext &c, const Operand &dst, const std::vector<Expr> &extents, const IndexMap &dst_index,
               const Operand &src, const IndexMap &src_index);
IndexMap identity_map();

// An integer element as an i64 index.
Expr index_value(Expr v);
// An index that may be negative (counted from the end), clamped into [0, extent) so that
// an out-of-range index in a bad model never reads or writes out of bounds.
Expr wrap_index(Expr v, Expr extent);

}  // namespace kiln::xform
