#include <set>

#include "passes/passes.h"

namespace kiln {

namespace {
void replace_uses(Graph &g, Value *from, Value *to) {
  for (auto &n : g.nodes) {
    for (auto &in : n->inputs) {
      if (in == from) in = to;
    }
    for (auto &[k, a] : n->attrs) {
      for (auto &sub : a.graphs) replace_uses(*sub, from, to);
    }
  }
}
}  // namespace

void remove_identities(Graph &g) {
  std::set<const Value *> outputs(g.outputs.begin(), g.outputs.end());
  std::vector<std::unique_ptr<Node>> kept;
  for (auto &n : g.nodes) {
    bool identity = n->kind == OpKind::Identity ||
                    (n->kind == OpKind::Dropout && (!n->output(1) || n->output(1) == nullptr) &&
                     !n->input(2));
    if (identity && n->input(0) && n->output(0) && !outputs.count(n->output(0)) &&
        n->output(0)->dtype == n->input(0)->dtype) {
      replace_uses(g, n->output(0), n->input(0));
      continue;
    }
    kept.push_back(std::move(n));
  }
  g.nodes = std::move(kept);
  for (auto &n : g.nodes) {
    for (auto &[k, a] : n->attrs) {
      for (auto &sub : a.graphs) remove_identities(*sub);
    }
  }
}

void eliminate_dead_code(Graph &g) {
  std::set<const Value *> live(g.outputs.begin(), g.outputs.end());
  // Values used by subgraphs (outer-scope references) are live too.
  std::function<void(const Graph &)> mark_sub = [&](const Graph &sg) {
    for (auto &n : sg.nodes) {
      for (Value *v : n->inputs) {
        if (v) live.insert(v);
      }
      for (auto &[k, a] : n->attrs) {
        for (auto &s : a.graphs) mark_sub(*s);
      }
    }
  };
  std::vector<std::unique_ptr<Node>> kept;
  for (size_t i = g.nodes.size(); i-- > 0;) {
    Node &n = *g.nodes[i];
    bool used = false;
    for (Value *o : n.outputs) used |= o && live.count(o);
    if (!used) continue;
    for (Value *v : n.inputs) {
      if (v) live.insert(v);
    }
    for (auto &[k, a] : n.attrs) {
      for (auto &s : a.graphs) mark_sub(*s);
    }
    kept.push_back(std::move(g.nodes[i]));
  }
  g.nodes.assign(std::make_move_iterator(kept.rbegin()), std::make_move_iterator(kept.rend()));
  std::vector<Value *> inits;
  for (Value *v : g.initializers) {
    if (live.count(v)) {
      inits.push_back(v);
    } else {
      v->constant.reset();  // nothing reads it any more: free the data (e.g. weights before packing)
    }
  }
  g.initializers = inits;
}

}  // namespace kiln
