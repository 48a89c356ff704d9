#include "lower/vector_loop.h"

#include "support/error.h"

namespace kiln {

Expr splat(Expr v, int lanes) { return lanes == 1 ? v : Broadcast::make(v, lanes); }

Expr run_load(Type t, const std::string &buf, Expr base, Expr j, int lanes) {
  Expr i = base + j;
  return Load::make(t, buf, lanes == 1 ? i : Ramp::make(i, Expr(1), lanes));
}

Stmt run_store(const std::string &buf, Expr base, Expr j, Expr v) {
  Expr i = base + j;
  int lanes = v.type().lanes;
  return Store::make(buf, v, lanes == 1 ? i : Ramp::make(i, Expr(1), lanes));
}

Stmt vector_loop(LowerContext &c, Expr n, int lanes, const RunBody &body) {
  std::string v = c.fresh("v"), s = c.fresh("s");
  Expr vv = Var::make(Type::index(), v), sv = Var::make(Type::index(), s);
  if (lanes == 1) return For::make(s, Expr(0), n, ForKind::Serial, body(sv, 1));
  Expr full = n / Expr(lanes), split = full * Expr(lanes), rest = n - split;
  Stmt vec, tail;
  if (!is_const(full, 0)) vec = For::make(v, Expr(0), full, ForKind::Serial, body(vv * Expr(lanes), lanes));
  if (!is_const(rest, 0)) tail = For::make(s, split, rest, ForKind::Serial, body(sv, 1));
  return Block::make({vec, tail});
}

Stmt vector_reduce(LowerContext &c, Expr n, int lanes, Expr init,
                   const std::function<Expr(Expr j, int lanes)> &value,
                   const std::function<Expr(Expr a, Expr b)> &combine, const std::function<Stmt(Expr)> &use) {
  Type t = init.type();
  std::string acc = c.fresh("acc"), res = c.fresh("red");
  Expr all = lanes == 1 ? Expr(0) : Ramp::make(Expr(0), Expr(1), lanes);
  Expr res_v = Load::make(t, res, Expr(0));
  std::vector<Stmt> s;
  if (lanes > 1) s.push_back(Store::make(acc, splat(init, lanes), all));
  s.push_back(Store::make(res, init, Expr(0)));
  s.push_back(vector_loop(c, n, lanes, [&](Expr j, int w) {
    if (w == 1) return Store::make(res, combine(res_v, value(j, 1)), Expr(0));
    return Store::make(acc, combine(Load::make(t, acc, all), value(j, w)), all);
  }));
  if (lanes > 1) {
    // The lanes, in a loop the code generator unrolls (constant indices: registers).
    std::string l = c.fresh("l");
    Expr lane = Load::make(t, acc, Var::make(Type::index(), l));
    s.push_back(For::make(l, Expr(0), Expr(lanes), ForKind::Unrolled, Store::make(res, combine(res_v, lane), Expr(0))));
  }
  s.push_back(use(res_v));
  Stmt body = Allocate::make(res, t, Expr(1), Block::make(s));
  return lanes > 1 ? Allocate::make(acc, t, Expr(lanes), body) : body;
}

Stmt parallel_blocks(LowerContext &c, Expr n, Expr block, const std::function<Stmt(Expr, Expr)> &body) {
  std::string b = c.fresh("blk");
  Expr bv = Var::make(Type::index(), b);
  Expr begin = bv * block;
  Expr nb = max((n + block - Expr(1)) / block, Expr(1));
  return For::make(b, Expr(0), nb, ForKind::Parallel, body(begin, max(min(block, n - begin), Expr(0))));
}

Expr rows_per_block(Expr row_size, int64_t elements) {
  return max(Expr(elements) / max(row_size, Expr(1)), Expr(1));
}

Stmt let_stmt(LowerContext &c, const std::string &prefix, Expr value, const std::function<Stmt(Expr)> &body) {
  std::string name = c.fresh(prefix);
  Expr v = Var::make(value.type(), name);
  return LetStmt::make(name, std::move(value), body(v));
}

}  // namespace kiln
