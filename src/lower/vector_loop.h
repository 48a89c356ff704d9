// Building blocks of the -O1 row schedules (Softmax, LayerNormalization, elementwise
// ops): a run of n contiguous elements processed `lanes` at a time, then a scalar tail,
// so any n works. Bodies receive the offset j of their first element in the run and
// their width (lanes in the vector part, 1 in the tail); `run_load` / `run_store` read and
// write a buffer at base + j with that width.
#pragma once
#include <functional>
#include <string>

#include "lower/lower.h"

namespace kiln {

using RunBody = std::function<Stmt(Expr j, int lanes)>;

// body(j, lanes) for j = 0, lanes, ... while a whole vector fits; body(j, 1) for the rest.
Stmt vector_loop(LowerContext &c, Expr n, int lanes, const RunBody &body);

// The reduction of value(j, w) over the run: `lanes` partial results (each started at
// `init`, a scalar) combined lane-wise by `combine`, folded into one, then the tail; then
// use(result). combine must be associative and commutative (sum, max); the order of
// accumulation differs from a serial loop.
Stmt vector_reduce(LowerContext &c, Expr n, int lanes, Expr init,
                   const std::function<Expr(Expr j, int lanes)> &value,
                   const std::function<Expr(Expr a, Expr b)> &combine, const std::function<Stmt(Expr)> &use);

// `v` as `lanes` wide (a Broadcast; v itself when lanes == 1).
Expr splat(Expr v, int lanes);
// Element `base + j` of `buf` (of storage type t), `lanes` wide.
Expr run_load(Type t, const std::string &buf, Expr base, Expr j, int lanes);
Stmt run_store(const std::string &buf, Expr base, Expr j, Expr v);

// Parallel blocks of `block` units over [0, n) (the last one shorter): body(begin, count)
// for each. Up to one block runs on the calling thread, without waking workers.
Stmt parallel_blocks(LowerContext &c, Expr n, Expr block, const std::function<Stmt(Expr, Expr)> &body);
// Rows of `row_size` elements per block so that a block holds about `elements` (at least
// one row).
Expr rows_per_block(Expr row_size, int64_t elements);

// body(v) with v a fresh variable bound to `value` (a LetStmt): computed once.
Stmt let_stmt(LowerContext &c, const std::string &prefix, Expr value, const std::function<Stmt(Expr)> &body);

}  // namespace kiln
