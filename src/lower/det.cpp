// Compute definition of Det: per matrix, LU decomposition with partial pivoting in an f64
// scratch copy; the determinant is the product of the pivots, negated per row swap.
#include "lower/lower.h"
#include "support/error.h"

namespace kiln {

Stmt lower_det(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  int rank = x.rank();
  Expr m = x.shape[rank - 1];
  Type t = Type::f(64), idx = Type::index();
  return loop_nest(c, y.shape, [&](const std::vector<Expr> &b) {
    std::string lu = c.fresh("lu"), det = c.fresh("det"), piv = c.fresh("piv"), best = c.fresh("best");
    std::string kn = c.fresh("k"), in = c.fresh("i"), jn = c.fresh("j"), tn = c.fresh("tmp"), fn = c.fresh("f");
    Expr k = Var::make(idx, kn), i = Var::make(idx, in), j = Var::make(idx, jn);
    auto at = [&](const Expr &r, const Expr &col) { return Load::make(t, lu, r * m + col); };
    auto set = [&](const Expr &r, const Expr &col, const Expr &v) { return Store::make(lu, v, r * m + col); };
    Expr d = Load::make(t, det, Expr(0)), p = Load::make(idx, piv, Expr(0)), bst = Load::make(t, best, Expr(0));

    Stmt copy = loop_nest(c, {m, m}, [&](const std::vector<Expr> &rc) {
      std::vector<Expr> xi = b;
      xi.push_back(rc[0]);
      xi.push_back(rc[1]);
      return set(rc[0], rc[1], cast(t, load(x, xi)));
    });
    Expr mag = call("abs", {at(i, k)});
    Stmt search = Block::make(
        {Store::make(best, make_const(t, -1), Expr(0)), Store::make(piv, k, Expr(0)),
         For::make(in, k, m - k, ForKind::Serial,
                   IfThenElse::make(mag > bst, Block::make({Store::make(best, mag, Expr(0)),
                                                            Store::make(piv, i, Expr(0))})))});
    Expr tmp = Var::make(t, tn);
    Stmt swap = IfThenElse::make(
        p != k, Block::make({For::make(jn, Expr(0), m, ForKind::Serial,
                                       LetStmt::make(tn, at(k, j), Block::make({set(k, j, at(p, j)), set(p, j, tmp)}))),
                             Store::make(det, -d, Expr(0))}));
    Expr f = Var::make(t, fn);
    Stmt eliminate = IfThenElse::make(
        at(k, k) != make_zero(t),
        For::make(in, k + Expr(1), m - k - Expr(1), ForKind::Serial,
                  LetStmt::make(fn, at(i, k) / at(k, k),
                                For::make(jn, k + Expr(1), m - k - Expr(1), ForKind::Serial,
                                          set(i, j, at(i, j) - f * at(k, j))))));
    Stmt step = Block::make({search, swap, Store::make(det, d * at(k, k), Expr(0)), eliminate});
    Stmt body = Block::make({copy, Store::make(det, make_const(t, 1), Expr(0)),
                             For::make(kn, Expr(0), m, ForKind::Serial, step), store(y, b, cast(y.compute(), d))});
    body = Allocate::make(best, t, Expr(1), body);
    body = Allocate::make(piv, idx, Expr(1), body);
    body = Allocate::make(det, t, Expr(1), body);
    return Allocate::make(lu, t, m * m, body);
  }, ForKind::Parallel);
}

}  // namespace kiln
