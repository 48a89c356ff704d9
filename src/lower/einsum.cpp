// Compute definition of Einsum: a loop nest over the output labels with a reduction over
// the summed ones of the product of the operands (one general definition: no rewriting
// into MatMul/Transpose, and nothing depends on input values).
#include <map>

#include "graph/einsum_equation.h"
#include "lower/lower.h"
#include "support/error.h"

namespace kiln {

Stmt lower_einsum(LowerContext &c) {
  const Operand &y = c.out[0];
  std::vector<int> ranks;
  for (auto &o : c.in) ranks.push_back(o.rank());
  EinsumEquation e = EinsumEquation::parse(c.node.attr_s("equation", ""), ranks, c.node);
  // Extent of each label; a broadcast ellipsis dim takes the operand extent that is not 1.
  std::map<int, Expr> extent;
  for (size_t i = 0; i < c.in.size(); ++i) {
    for (int a = 0; a < c.in[i].rank(); ++a) {
      int l = e.inputs[i][a];
      const Expr &d = c.in[i].shape[a];
      auto it = extent.find(l);
      if (it == extent.end()) {
        extent[l] = d;
      } else if (l >= EinsumEquation::kEllipsis && !is_const(d, 1)) {
        if (is_const(it->second, 1) || is_const(d)) {
          it->second = d;
        } else if (!is_const(it->second)) {
          it->second = max(it->second, d);
        }
      }
    }
  }
  Type ct = y.compute();
  Type acc = ct.is_float() ? ct : Type::i(std::max<int>(32, ct.bits));
  std::vector<Expr> rext;
  for (int l : e.summed) rext.push_back(extent.at(l));
  return loop_nest(c, y.shape, [&](const std::vector<Expr> &o) {
    auto product = [&](const std::vector<Expr> &r) {
      std::map<int, Expr> var;
      for (size_t k = 0; k < e.output.size(); ++k) var[e.output[k]] = o[k];
      for (size_t k = 0; k < e.summed.size(); ++k) var[e.summed[k]] = r[k];
      Expr p;
      for (size_t i = 0; i < c.in.size(); ++i) {
        const Operand &in = c.in[i];
        std::vector<Expr> idx;
        for (int a = 0; a < in.rank(); ++a) {
          int l = e.inputs[i][a];
          const Expr &d = in.shape[a];
          Expr v = var.at(l);
          if (l >= EinsumEquation::kEllipsis && !extent.at(l).same_as(d)) {
            v = is_const(d, 1) ? Expr(0) : is_const(d) ? v : select(d == Expr(1), Expr(0), v);
          }
          idx.push_back(v);
        }
        Expr v = cast(acc, load(in, idx));
        p = p.defined() ? p * v : v;
      }
      return p;
    };
    if (e.summed.empty()) return store(y, o, cast(ct, product({})));
    return reduce(c, acc, make_zero(acc), rext, [&](Expr s, const std::vector<Expr> &r) { return s + product(r); },
                  [&](Expr s) { return store(y, o, cast(ct, s)); });
  }, ForKind::Parallel);
}

}  // namespace kiln
