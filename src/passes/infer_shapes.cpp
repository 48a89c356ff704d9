#include "graph/shape_fn.h"
#include "passes/passes.h"
#include "support/error.h"

namespace kiln {

namespace {

ValueInfo info_of(const Value *v) {
  ValueInfo i;
  if (!v) return i;
  i.dtype = v->dtype;
  i.shape = v->shape;
  i.has_shape = v->has_shape;
  i.value = v->constant ? &*v->constant : nullptr;
  i.sym_values = v->sym_values;
  return i;
}

struct Inferrer {
  int counter = 0;
  Dim fresh() { return Dim::sym("_d" + std::to_string(counter++)); }

  void infer_control(Node &n) {
    // Outputs of If/Loop/Scan take dtypes from the body outputs; shapes are left to run
    // time unless trivially known.
    const Graph *body = n.attr_graph(n.kind == OpKind::If ? "then_branch" : "body");
    if (!body) return;
    size_t skip = n.kind == OpKind::Loop ? 1 : 0;  // Loop body output 0 is the condition
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      Value *o = n.outputs[i];
      if (!o) continue;
      size_t bi = i + skip;
      if (bi < body->outputs.size() && body->outputs[bi]->dtype != DType::Undefined) {
        o->dtype = body->outputs[bi]->dtype;
      }
    }
  }

  void run(Graph &g) {
    for (auto &np : g.nodes) {
      Node &n = *np;
      for (auto &[name, a] : n.attrs) {
        for (auto &sub : a.graphs) run(*sub);
      }
      if (op_path(n.kind) == ExecPath::Control) {
        infer_control(n);
        continue;
      }
      ShapeFn fn = shape_fn_of(n.kind);
      internal_assert(fn) << "no shape function for " << n.describe();
      std::vector<ValueInfo> ins;
      bool ranks_known = true;
      for (Value *v : n.inputs) {
        ins.push_back(info_of(v));
        if (v && !v->has_shape) ranks_known = false;
      }
      ShapeContext c(n, std::move(ins), [this] { return fresh(); });
      try {
        fn(c);
      } catch (const Error &e) {
        // Unknown ranks make some shape functions unable to decide; leave to run time.
        if (ranks_known || e.kind() != ErrorKind::User) throw;
        continue;
      }
      for (size_t i = 0; i < n.outputs.size(); ++i) {
        Value *o = n.outputs[i];
        if (!o) continue;
        const ValueInfo &oi = c.out[i];
        if (oi.dtype != DType::Undefined) o->dtype = oi.dtype;
        o->has_shape = oi.has_shape;
        o->shape = oi.shape;
        o->sym_values = oi.sym_values;
      }
    }
  }
};

}  // namespace

void infer_shapes(Graph &g) { Inferrer().run(g); }

}  // namespace kiln
