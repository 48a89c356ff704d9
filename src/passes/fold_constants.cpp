#include <set>

#include "passes/passes.h"
#include "support/error.h"

namespace kiln {

namespace {

bool foldable(const Node &n, size_t max_bytes) {
  if (op_path(n.kind) != ExecPath::Codegen || n.inputs.empty()) return false;
  for (Value *v : n.inputs) {
    if (v && !v->constant) return false;
  }
  for (Value *o : n.outputs) {
    if (!o) continue;
    if (!o->has_shape || !shape_is_const(o->shape) || o->dtype == DType::Undefined || o->dtype == DType::String) {
      return false;
    }
    if (static_cast<size_t>(shape_numel(shape_values(o->shape))) * dtype_size(o->dtype) > max_bytes) return false;
  }
  return true;
}
// Outputs whose contents shape inference already knows (e.g. Shape of a static tensor and
// arithmetic on it) become constants without running anything.
bool materialize_known_contents(Node &n, Graph &g) {
  if (op_path(n.kind) != ExecPath::Codegen || n.outputs.empty()) return false;
  for (Value *o : n.outputs) {
    if (!o || !o->sym_values || !o->has_shape || !shape_is_const(o->shape) || !dtype_is_int(o->dtype)) return false;
    if (shape_numel(shape_values(o->shape)) != static_cast<int64_t>(o->sym_values->size())) return false;
    for (const Dim &d : *o->sym_values) {
      if (!d.is_const()) return false;
    }
  }
  for (Value *o : n.outputs) {
    Tensor t(o->dtype, shape_values(o->shape));
    for (size_t i = 0; i < o->sym_values->size(); ++i) t.set_f64(static_cast<int64_t>(i), static_cast<double>((*o->sym_values)[i].value()));
    o->constant = t;
    o->producer = nullptr;
    g.initializers.push_back(o);
  }
  return true;
}

}  // namespace

void fold_constants(Graph &g, const NodeEvaluator &eval, size_t max_bytes) {
  std::set<const Node *> folded;
  for (auto &n : g.nodes) {
    if (materialize_known_contents(*n, g)) folded.insert(n.get());
  }
  for (;;) {
    std::vector<const Node *> ready;
    std::vector<std::vector<Tensor>> inputs;
    for (auto &n : g.nodes) {
      if (folded.count(n.get()) || !foldable(*n, max_bytes)) continue;
      ready.push_back(n.get());
      std::vector<Tensor> ins;
      for (Value *v : n->inputs) ins.push_back(v ? *v->constant : Tensor());
      inputs.push_back(std::move(ins));
    }
    if (ready.empty()) break;
    std::vector<std::vector<Tensor>> outs = eval(ready, inputs);
    internal_assert(outs.size() == ready.size()) << "evaluator returned wrong node count";
    for (size_t k = 0; k < ready.size(); ++k) {
      const Node &n = *ready[k];
      internal_assert(outs[k].size() == n.outputs.size()) << "evaluator returned wrong output count";
      for (size_t i = 0; i < outs[k].size(); ++i) {
        Value *o = n.outputs[i];
        if (!o) continue;
        o->constant = outs[k][i];
        o->producer = nullptr;
        g.initializers.push_back(o);
      }
      folded.insert(&n);
    }
  }
  std::vector<std::unique_ptr<Node>> kept;
  for (auto &n : g.nodes) {
    if (!folded.count(n.get())) kept.push_back(std::move(n));
  }
  g.nodes = std::move(kept);
}

}  // namespace kiln
