#include "compiler/control_flow.h"

#include "support/error.h"

namespace kiln {

namespace {

void run_if(ControlContext &c) {
  const Tensor *cond = c.in.at(0);
  user_assert(cond && cond->numel() == 1) << c.node.describe() << ": condition must be a single element";
  const GraphRunner &g = c.body(cond->get_i64(0) ? "then_branch" : "else_branch");
  std::vector<Tensor> outs = g.run({}, &c.env);
  user_assert(outs.size() == c.out.size()) << c.node.describe() << ": branch returned " << outs.size()
                                           << " outputs, expected " << c.out.size();
  c.out = std::move(outs);
}

}  // namespace

void run_control_op(ControlContext &c) {
  switch (c.node.kind) {
    case OpKind::If: run_if(c); return;
    default: user_error << c.node.describe() << ": control-flow op not supported yet";
  }
}

}  // namespace kiln
