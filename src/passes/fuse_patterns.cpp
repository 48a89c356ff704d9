// Decomposed normalizations and activations, as PyTorch exports them, become one op:
//
//   LayerNorm   m = ReduceMean(x, [-1]); d = x - m; v = ReduceMean(Pow(d, 2) or d * d, [-1]);
//               y = d / Sqrt(v + eps) [* scale] [+ bias]
//               -> LayerNormalization(x, scale, bias) {axis = -1, epsilon = eps}
//   GELU        x * 0.5 * (1 + Erf(x / sqrt 2)) in the orders torch writes it
//               (x / sqrt 2 also as x * (1 / sqrt 2))
//               -> Gelu(x)
//
// eps, scale, bias, 2, 0.5, 1 and sqrt 2 must be f32 constants; scale and bias hold one
// value or one per element of the last dim. Every intermediate must have no reader
// outside the pattern. The new node takes the place of the pattern's last node.
#include <cmath>

#include "passes/passes.h"
#include "passes/rewrite.h"

namespace kiln {

namespace {

// The single value of an f32 constant with one element.
bool scalar_value(const Value *v, double &out) {
  const Tensor *t = f32_constant(v);
  if (!t || t->numel() != 1) return false;
  out = t->as<float>()[0];
  return true;
}

bool is_scalar(const Value *v, double want, double tol = 0) {
  double x;
  return scalar_value(v, x) && std::fabs(x - want) <= tol;
}

// The other operand of a binary node that reads v (v itself for v op v); null when the
// node does not read v.
Value *other_operand(const Node *n, const Value *v) {
  if (n->inputs.size() != 2) return nullptr;
  if (n->input(0) == v) return n->input(1);
  if (n->input(1) == v) return n->input(0);
  return nullptr;
}

// The pattern's result has x's shape (its constants did not broadcast it to a higher rank).
bool same_rank(const Value *y, const Value *x) {
  return y->has_shape && x->has_shape && y->shape.size() == x->shape.size();
}

class PatternFuser {
 public:
  explicit PatternFuser(Graph &g) : g_(g), uses_(use_counts(g)) {}

  void run() {
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      Node *n = g_.nodes[i].get();
      if (!n) continue;
      if (n->kind == OpKind::ReduceMean) layer_norm(*n);
      else if (n->kind == OpKind::Erf) gelu(*n);
    }
    std::erase_if(g_.nodes, [](const std::unique_ptr<Node> &n) { return n == nullptr; });
  }

 private:
  // The sole reader of v when it is a `kind` node; null otherwise.
  Node *next(const Value *v, OpKind kind) {
    Node *c = v ? sole_consumer(g_, uses_, v) : nullptr;
    return c && c->kind == kind && c->output(0) ? c : nullptr;
  }

  // A ReduceMean over x's last axis only, keeping dims.
  bool mean_over_last(const Node &n, const Value *x) const {
    if (n.input(0) != x || !x->has_shape || x->shape.empty() || n.attr_i("keepdims", 1) != 1) return false;
    std::vector<int64_t> axes = n.attr_ints("axes", {});
    if (n.input(1)) {
      if (!n.input(1)->constant) return false;
      axes = n.input(1)->constant->to_i64_vector();
    }
    int r = static_cast<int>(x->shape.size());
    return axes.size() == 1 && (axes[0] == -1 || axes[0] == r - 1);
  }

  // A constant usable as LayerNormalization's scale or bias for a last dim of `dim`
  // elements: one value, or `dim` values along the last axis (leading dims 1), of rank at
  // most x's. Returned reshaped to 1-D.
  Value *row_param(Value *p, const Value *x) {
    const Tensor *t = f32_constant(p);
    if (!t || t->rank() > static_cast<int64_t>(x->shape.size())) return nullptr;
    const Dim &d = x->shape.back();
    int64_t last = t->rank() == 0 ? 1 : t->shape().back();
    if (t->numel() != last || (last != 1 && !(d.is_const() && d.value() == last))) return nullptr;
    if (t->rank() == 1) return p;
    Tensor flat(DType::F32, {last});
    for (int64_t i = 0; i < last; ++i) flat.as<float>()[i] = t->as<float>()[i];
    return add_constant(g_, p->name + "_row", std::move(flat));
  }

  void layer_norm(Node &mean) {
    Value *x = mean.input(0);
    if (!x || x->dtype != DType::F32 || !mean_over_last(mean, x)) return;
    Node *sub = next(mean.output(0), OpKind::Sub);
    if (!sub || sub->input(0) != x || sub->input(1) != mean.output(0)) return;
    Value *d = sub->output(0);
    // d is read twice: by the square (Pow(d, 2), or Mul(d, d) reading it twice) and the Div.
    Node *sq = nullptr, *div = nullptr;
    int reads = 0;
    for (auto &n : g_.nodes) {
      if (!n) continue;
      for (Value *v : n->inputs) reads += v == d;
      if (n->kind == OpKind::Pow && n->input(0) == d && is_scalar(n->input(1), 2.0)) sq = n.get();
      if (n->kind == OpKind::Mul && n->input(0) == d && n->input(1) == d) sq = n.get();
      if (n->kind == OpKind::Div && n->input(0) == d && n->input(1) != d) div = n.get();
    }
    if (!sq || !div || reads != (sq->kind == OpKind::Mul ? 3 : 2) || uses_[d] != reads) return;
    Node *var = next(sq->output(0), OpKind::ReduceMean);
    if (!var || !mean_over_last(*var, sq->output(0))) return;
    Node *add_eps = next(var->output(0), OpKind::Add);
    double eps;
    if (!add_eps || !scalar_value(other_operand(add_eps, var->output(0)), eps)) return;
    Node *sqrt = next(add_eps->output(0), OpKind::Sqrt);
    if (!sqrt || sole_consumer(g_, uses_, sqrt->output(0)) != div || div->input(1) != sqrt->output(0)) return;
    std::vector<Node *> absorbed = {&mean, sub, sq, var, add_eps, sqrt, div};
    Value *scale = nullptr, *bias = nullptr;
    Node *last = div;
    if (Node *mul = next(last->output(0), OpKind::Mul)) {
      if ((scale = row_param(other_operand(mul, last->output(0)), x))) {
        absorbed.push_back(mul);
        last = mul;
      }
    }
    if (Node *add = next(last->output(0), OpKind::Add)) {
      if ((bias = row_param(other_operand(add, last->output(0)), x))) {
        absorbed.push_back(add);
        last = add;
      }
    }
    if (!same_rank(last->output(0), x)) return;
    if (!scale) {
      Tensor one(DType::F32, {1});
      one.as<float>()[0] = 1.0f;
      scale = add_constant(g_, x->name + "_ln_scale", std::move(one));
    }
    Node *ln = replace(absorbed, OpKind::LayerNormalization, {x, scale, bias});
    ln->attrs["axis"].kind = Attribute::Kind::Int;
    ln->attrs["axis"].i = -1;
    ln->attrs["epsilon"].kind = Attribute::Kind::Float;
    ln->attrs["epsilon"].f = eps;
  }

  void gelu(Node &erf) {
    // u = x / sqrt 2 or x * (1 / sqrt 2)
    Node *scaled = erf.input(0) ? erf.input(0)->producer : nullptr;
    if (!scaled || scaled->inputs.size() != 2 || sole_consumer(g_, uses_, scaled->output(0)) != &erf) return;
    Value *x = scaled->input(0);
    bool div = scaled->kind == OpKind::Div && is_scalar(scaled->input(1), M_SQRT2, 1e-6);
    bool mul = scaled->kind == OpKind::Mul && is_scalar(scaled->input(1), M_SQRT1_2, 1e-6);
    if (scaled->kind == OpKind::Mul && !mul && is_scalar(scaled->input(0), M_SQRT1_2, 1e-6)) {
      x = scaled->input(1);
      mul = true;
    }
    if ((!div && !mul) || !x || x->dtype != DType::F32) return;
    // 1 + erf
    Node *plus = next(erf.output(0), OpKind::Add);
    if (!plus || !is_scalar(other_operand(plus, erf.output(0)), 1.0)) return;
    // Two Muls with x and 0.5 in either order, or one Mul with Mul(x, 0.5).
    Node *m1 = next(plus->output(0), OpKind::Mul);
    if (!m1) return;
    Value *o1 = other_operand(m1, plus->output(0));
    std::vector<Node *> absorbed = {scaled, &erf, plus, m1};
    if (o1 == x || is_scalar(o1, 0.5)) {
      Node *m2 = next(m1->output(0), OpKind::Mul);
      if (!m2) return;
      Value *o2 = other_operand(m2, m1->output(0));
      if (!(o1 == x ? is_scalar(o2, 0.5) : o2 == x)) return;
      absorbed.push_back(m2);
    } else {
      Node *half = o1 ? o1->producer : nullptr;
      if (!half || half->kind != OpKind::Mul || sole_consumer(g_, uses_, o1) != m1 ||
          !is_scalar(other_operand(half, x), 0.5)) {
        return;
      }
      absorbed.insert(absorbed.begin(), half);
    }
    if (!same_rank(absorbed.back()->output(0), x)) return;
    replace(absorbed, OpKind::Gelu, {x});
  }

  Node *replace(const std::vector<Node *> &absorbed, OpKind kind, std::vector<Value *> inputs) {
    return replace_with_fused(g_, uses_, absorbed, kind, std::move(inputs));
  }

  Graph &g_;
  std::map<const Value *, int> uses_;
};

}  // namespace

void fuse_normalizations(Graph &g) { PatternFuser(g).run(); }

}  // namespace kiln
