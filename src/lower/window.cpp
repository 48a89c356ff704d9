// Compute definitions of the window functions (opset 17): HannWindow, HammingWindow and
// BlackmanWindow, generalized cosine windows w[n] = sum_k (-1)^k a_k cos(2 pi k n / N),
// N = size (periodic) or size - 1 (symmetric). The output extent is the size, so the
// definition never needs the input's value.
#include <cmath>

#include "lower/lower.h"
#include "support/error.h"

namespace kiln {

Stmt lower_window(LowerContext &c) {
  const Operand &y = c.out[0];
  Type t = Type::f(64);
  bool periodic = c.node.attr_i("periodic", 1) != 0;
  std::vector<double> a;
  switch (c.node.kind) {
    case OpKind::HannWindow: a = {0.5, 0.5}; break;
    case OpKind::HammingWindow: a = {25.0 / 46.0, 21.0 / 46.0}; break;
    default: a = {0.42, 0.5, 0.08}; break;
  }
  Expr n = cast(t, periodic ? y.shape[0] : y.shape[0] - Expr(1));
  return compute(c, y, [&](const std::vector<Expr> &i) {
    Expr phase = cast(t, i[0]) * make_const(t, 2 * M_PI) / n;
    Expr w = make_const(t, a[0]);
    for (size_t k = 1; k < a.size(); ++k) {
      Expr term = make_const(t, a[k]) * call("cos", {phase * make_const(t, static_cast<double>(k))});
      w = k % 2 ? w - term : w + term;
    }
    return cast(y.compute(), w);
  });
}

}  // namespace kiln
