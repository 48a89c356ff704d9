// Compute definitions of NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.
//   loss(n, d..) = -logp(n, t, d..) * w(t)   (0 where t == ignore_index)
//   reduction: none -> loss; sum -> sum(loss); mean -> sum(loss) / sum(w(t) of kept items)
// For SoftmaxCrossEntropyLoss, logp = log_softmax(scores, axis 1), optionally an output.
#include <cmath>

#include "lower/lower.h"
#include "support/error.h"

namespace kiln {

namespace {

Stmt lower_loss(LowerContext &c, bool softmax) {
  const Operand &x = c.in[0], &tgt = c.in[1], &y = c.out[0];
  bool has_w = c.has(2);
  Type t = x.compute();
  std::string red = c.node.attr_s("reduction", "mean");
  bool ignore = c.node.has_attr("ignore_index");
  int64_t ignore_index = c.node.attr_i("ignore_index", 0);
  Expr C = x.shape[1];
  std::vector<Expr> pos_ext = {x.shape[0]};
  pos_ext.insert(pos_ext.end(), x.shape.begin() + 2, x.shape.end());
  bool logp_out = softmax && c.out.size() > 1 && c.out[1].present();

  // Per position p = (n, d..): returns a statement given the item's loss and weight.
  auto per_position = [&](const std::vector<Expr> &p, const std::function<Stmt(Expr loss, Expr w)> &use) {
    auto xi = [&](Expr ch) {
      std::vector<Expr> i = {p[0], ch};
      i.insert(i.end(), p.begin() + 1, p.end());
      return i;
    };
    Expr target = cast(Type::index(), load(tgt, p));
    Expr keep = ignore ? target != Expr(ignore_index) : make_const(Type::boolean(), 1);
    Expr tc = max(min(target, C - Expr(1)), Expr(0));  // in bounds even when ignored
    Expr w = has_w ? load(c.in[2], {tc}) : make_const(t, 1.0);
    w = select(keep, w, make_const(t, 0.0));
    if (!softmax) return use(-load(x, xi(tc)) * w, w);
    return reduce(c, t, make_const(t, -INFINITY), {C},
                  [&](Expr m, const std::vector<Expr> &r) { return max(m, load(x, xi(r[0]))); },
                  [&](Expr mx) {
                    return reduce(c, t, make_const(t, 0.0), {C},
                                  [&](Expr s, const std::vector<Expr> &r) {
                                    return s + call("exp", {load(x, xi(r[0])) - mx});
                                  },
                                  [&](Expr s) {
                                    Expr lse = mx + call("log", {s});
                                    Stmt lp;
                                    if (logp_out) {
                                      lp = loop_nest(c, {C}, [&](const std::vector<Expr> &r) {
                                        return store(c.out[1], xi(r[0]), load(x, xi(r[0])) - lse);
                                      });
                                    }
                                    return Block::make({lp, use(-(load(x, xi(tc)) - lse) * w, w)});
                                  });
                  });
  };

  if (red == "none") {
    return loop_nest(c, pos_ext, [&](const std::vector<Expr> &p) {
      return per_position(p, [&](Expr loss, Expr) { return store(y, p, loss); });
    });
  }
  // sum / mean: two accumulators (loss, weight) in one scratch buffer.
  std::string acc = c.fresh("acc");
  Expr a0 = Load::make(t, acc, Expr(0)), a1 = Load::make(t, acc, Expr(1));
  Stmt loop = loop_nest(c, pos_ext, [&](const std::vector<Expr> &p) {
    return per_position(p, [&](Expr loss, Expr w) {
      return Block::make({Store::make(acc, a0 + loss, Expr(0)), Store::make(acc, a1 + w, Expr(1))});
    });
  });
  Expr result = red == "sum" ? a0 : a0 / a1;
  Stmt body = Block::make({Store::make(acc, make_const(t, 0.0), Expr(0)), Store::make(acc, make_const(t, 0.0), Expr(1)),
                           loop, store(y, {}, result)});
  return Allocate::make(acc, t, Expr(2), body);
}

}  // namespace

Stmt lower_nll_loss(LowerContext &c) { return lower_loss(c, false); }
Stmt lower_softmax_cross_entropy(LowerContext &c) { return lower_loss(c, true); }

}  // namespace kiln
