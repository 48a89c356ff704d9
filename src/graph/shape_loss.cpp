// Shape functions of the loss ops (NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss).
#include "graph/shape_fn.h"
#include "support/error.h"

namespace kiln {

void shape_loss(ShapeContext &c) {
  const Shape &x = c.shape_of(0), &t = c.shape_of(1);
  user_assert(x.size() >= 2) << c.node.describe() << ": input must have rank >= 2 (N, C, ...)";
  user_assert(t.size() + 1 == x.size()) << c.node.describe() << ": target rank " << t.size()
                                        << " does not match input rank " << x.size();
  user_assert(dtype_is_int(c.input(1).dtype)) << c.node.describe() << ": target must be an integer tensor";
  std::string red = c.node.attr_s("reduction", "mean");
  user_assert(red == "none" || red == "sum" || red == "mean")
      << c.node.describe() << ": reduction must be none, sum or mean, got '" << red << "'";
  Shape pos = {x[0]};
  pos.insert(pos.end(), x.begin() + 2, x.end());
  c.set_output(0, c.input(0).dtype, red == "none" ? pos : Shape{});
  if (c.out.size() > 1) c.set_output(1, c.input(0).dtype, x);  // log_prob (SoftmaxCrossEntropyLoss)
}

}  // namespace kiln
