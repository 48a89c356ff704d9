#include "passes/passes.h"
#include "support/error.h"

namespace kiln {

void fold_constants(Graph &g, const NodeEvaluator &eval, size_t max_bytes) {
  std::vector<std::unique_ptr<Node>> kept;
  for (auto &n : g.nodes) {
    bool foldable = op_path(n->kind) == ExecPath::Codegen && !n->inputs.empty();
    for (Value *v : n->inputs) {
      if (v && !v->constant) foldable = false;
    }
    for (Value *o : n->outputs) {
      if (!o || !o->has_shape || !shape_is_const(o->shape) || o->dtype == DType::Undefined ||
          o->dtype == DType::String) {
        foldable = false;
      } else if (static_cast<size_t>(shape_numel(shape_values(o->shape))) * dtype_size(o->dtype) > max_bytes) {
        foldable = false;
      }
    }
    if (!foldable) {
      kept.push_back(std::move(n));
      continue;
    }
    std::vector<Tensor> ins;
    for (Value *v : n->inputs) ins.push_back(v ? *v->constant : Tensor());
    std::vector<Tensor> outs = eval(*n, ins);
    internal_assert(outs.size() == n->outputs.size()) << "evaluator returned wrong output count";
    for (size_t i = 0; i < outs.size(); ++i) {
      Value *o = n->outputs[i];
      o->constant = outs[i];
      o->producer = nullptr;
      g.initializers.push_back(o);
    }
  }
  g.nodes = std::move(kept);
}

}  // namespace kiln
