#include "passes/rewrite.h"

#include <functional>
#include <set>

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

Node *replace_with_fused(Graph &g, std::map<const Value *, int> &uses, const std::vector<Node *> &absorbed,
                         OpKind kind, std::vector<Value *> inputs) {
  std::set<const Node *> group(absorbed.begin(), absorbed.end());
  Node *n = g.new_node(kind, "");
  std::unique_ptr<Node> owned = std::move(g.nodes.back());
  g.nodes.pop_back();
  Attribute &ops = n->attrs["fused_ops"];
  ops.kind = Attribute::Kind::Strings;
  size_t at = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node *a = g.nodes[i].get();
    if (!a || !group.count(a)) continue;
    ops.strings.push_back(a->op_type);
    for (Value *v : a->inputs) {
      if (v) --uses[v];
    }
    at = i;
  }
  Node *tail = g.nodes[at].get();
  n->name = tail->name;
  n->opset = tail->opset;
  n->inputs = std::move(inputs);
  while (!n->inputs.empty() && !n->inputs.back()) n->inputs.pop_back();
  for (Value *v : n->inputs) {
    if (v) ++uses[v];
  }
  n->outputs = {tail->output(0)};
  n->outputs[0]->producer = n;
  for (auto &slot : g.nodes) {
    if (slot && group.count(slot.get())) slot.reset();
  }
  g.nodes[at] = std::move(owned);
  return n;
}

}  // namespace kiln
