#include "passes/rewrite.h"

#include <functional>

namespace kiln {

std::map<const Value *, int> use_counts(const Graph &g) {
  std::map<const Value *, int> uses;
  std::function<void(const Graph &)> count = [&](const Graph &sg) {
    for (auto &n : sg.nodes) {
      for (Value *v : n->inputs) {
        if (v) ++uses[v];
      }
      for (auto &[k, a] : n->attrs) {
        for (auto &sub : a.graphs) count(*sub);
      }
    }
  };
  count(g);
  for (Value *v : g.outputs) ++uses[v];
  return uses;
}

Node *sole_consumer(const Graph &g, const std::map<const Value *, int> &uses, const Value *v) {
  auto it = uses.find(v);
  if (it == uses.end() || it->second != 1) return nullptr;
  for (auto &n : g.nodes) {
    if (!n) continue;  // a slot emptied by a pass in progress
    for (Value *in : n->inputs) {
      if (in == v) return n.get();
    }
  }
  return nullptr;  // read by a subgraph or a graph output
}

Value *add_constant(Graph &g, const std::string &name, Tensor t) {
  Value *v = g.new_value(g.find(name) ? "" : name);
  v->dtype = t.dtype();
  v->shape = shape_from(t.shape());
  v->has_shape = true;
  v->constant = std::move(t);
  g.initializers.push_back(v);
  return v;
}

const Tensor *f32_constant(const Value *v) {
  if (!v || !v->constant || v->constant->dtype() != DType::F32) return nullptr;
  return &*v->constant;
}

void begin_fused(Node &n) {
  Attribute &a = n.attrs["fused_ops"];
  if (a.kind == Attribute::Kind::Strings) return;
  a.kind = Attribute::Kind::Strings;
  a.strings = {n.op_type};
}

void note_fused(Node &n, const std::string &absorbed_op) {
  begin_fused(n);
  n.attrs["fused_ops"].strings.push_back(absorbed_op);
}

}  // namespace kiln
