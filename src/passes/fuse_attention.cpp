// Scaled dot-product attention, as exporters write it, becomes one FusedAttention
// (ops.def, lower/attention.cpp):
//
//   s = MatMul(Q', Kt') [* c or / c] [+ M]        c a scalar constant, M an f32 mask
//   y = MatMul(Softmax(s, last axis), V')  [-> Transpose ...]
//
// where Q' and Kt' are Q and K^T behind any chain of Transposes and scalar Mul / Div
// (the scales multiply into the node's `scale`), and V' is V behind Transposes. The
// transposes become the node's q_perm / k_perm / v_perm / out_perm, so the kernel reads
// and writes the original layouts (V and the output only while their last axis stays
// last, which the kernel's vector loads need). Q, K, V share their batch dims; M
// broadcasts to the scores without changing their shape. Every absorbed intermediate must
// have no reader outside the pattern. Only f32.
#include "graph/shape_fn.h"
#include "passes/passes.h"
#include "passes/rewrite.h"

namespace kiln {

namespace {

using Perm = std::vector<int64_t>;

Perm identity(size_t r) {
  Perm p(r);
  for (size_t i = 0; i < r; ++i) p[i] = static_cast<int64_t>(i);
  return p;
}

bool same_dims(const Shape &a, const Shape &b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].same_as(b[i])) return false;
  }
  return true;
}

bool f32_shaped(const Value *v) { return v && v->dtype == DType::F32 && v->has_shape; }

// The single value of a one-element f32 constant.
bool scalar_of(const Value *v, double &out) {
  const Tensor *t = f32_constant(v);
  if (!t || t->numel() != 1) return false;
  out = t->as<float>()[0];
  return true;
}

// A Transpose's permutation, normalized (reversal when the attribute is absent).
Perm transpose_perm(const Node &t, size_t rank) {
  Perm p = t.attr_ints("perm");
  if (p.empty()) {
    for (size_t i = rank; i-- > 0;) p.push_back(static_cast<int64_t>(i));
  }
  for (int64_t &a : p) a = normalize_axis(a, static_cast<int>(rank), t);
  return p;
}

// The batch dims (all but the last two) of v seen through perm.
Shape batch_of(const Value *v, const Perm &perm) {
  Shape s;
  for (size_t i = 0; i + 2 < perm.size(); ++i) s.push_back(v->shape[perm[i]]);
  return s;
}

class AttentionFuser {
 public:
  explicit AttentionFuser(Graph &g) : g_(g), uses_(use_counts(g)) {}

  void run() {
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      Node *n = g_.nodes[i].get();
      if (n && n->kind == OpKind::Softmax) fuse(*n);
    }
    std::erase_if(g_.nodes, [](const std::unique_ptr<Node> &n) { return n == nullptr; });
  }

 private:
  // One of Q, K, V: the value the fused node will read and the transpose it is read
  // through.
  struct Side {
    Value *v;
    Perm perm;
  };

  // The producer of v when it is a `kind` node read only by `reader`.
  Node *sole_producer(Value *v, const Node *reader, OpKind kind) {
    Node *p = v ? v->producer : nullptr;
    return p && p->kind == kind && sole_consumer(g_, uses_, v) == reader ? p : nullptr;
  }

  // v = Mul(x, c), Mul(c, x) or Div(x, c) for a scalar constant c, read only by reader,
  // with x's shape: returns x (null otherwise) and multiplies scale by c or 1 / c.
  Value *unscaled(Value *v, const Node *reader, double &scale) {
    Node *p = v ? v->producer : nullptr;
    if (!p || (p->kind != OpKind::Mul && p->kind != OpKind::Div) || sole_consumer(g_, uses_, v) != reader) {
      return nullptr;
    }
    double c;
    int x = -1;
    if (scalar_of(p->input(1), c)) {
      x = 0;
    } else if (p->kind == OpKind::Mul && scalar_of(p->input(0), c)) {
      x = 1;
    }
    if (x < 0 || (p->kind == OpKind::Div && c == 0) || !f32_shaped(p->input(x)) ||
        !same_dims(p->input(x)->shape, v->shape)) {
      return nullptr;
    }
    scale *= p->kind == OpKind::Mul ? c : 1.0 / c;
    absorbed_.push_back(p);
    return p->input(x);
  }

  // Walks up from o (read by `reader`) through Transposes and, when `scales`, scalar
  // Mul / Div, composing the transposes into o.perm. `keep_last`: only transposes that
  // leave the last logical axis last.
  void peel(Side &o, const Node *reader, bool scales, bool keep_last) {
    for (;;) {
      if (Node *t = sole_producer(o.v, reader, OpKind::Transpose)) {
        Perm tp = transpose_perm(*t, o.perm.size()), c(o.perm.size());
        for (size_t i = 0; i < c.size(); ++i) c[i] = tp[o.perm[i]];
        if (!f32_shaped(t->input(0)) || (keep_last && c.back() != static_cast<int64_t>(c.size()) - 1)) return;
        absorbed_.push_back(t);
        o = {t->input(0), c};
        reader = t;
        continue;
      }
      Node *p = o.v->producer;
      Value *x = scales ? unscaled(o.v, reader, scale_) : nullptr;
      if (!x) return;
      o.v = x;
      reader = p;
    }
  }

  // An f32 mask that broadcasts to the scores s without changing their shape.
  static bool mask_fits(const Value *m, const Value *s) {
    if (!f32_shaped(m) || m->shape.size() > s->shape.size()) return false;
    size_t off = s->shape.size() - m->shape.size();
    for (size_t i = 0; i < m->shape.size(); ++i) {
      const Dim &d = m->shape[i];
      if (!(d.is_const() && d.value() == 1) && !d.same_as(s->shape[i + off])) return false;
    }
    return true;
  }

  // The scores before the optional mask Add: the operand of `add` that leads to a MatMul
  // (itself, or through a scalar scale); the other one is the mask.
  bool split_mask(Node &add, Value *&scores, Value *&mask) {
    for (int i : {0, 1}) {
      Value *s = add.input(i), *m = add.input(1 - i);
      Node *p = s ? s->producer : nullptr;
      if (p && (p->kind == OpKind::Mul || p->kind == OpKind::Div)) {
        Node *q = p->input(0) ? p->input(0)->producer : nullptr;
        Node *q1 = p->input(1) ? p->input(1)->producer : nullptr;
        if (!(q && q->kind == OpKind::MatMul) && !(q1 && q1->kind == OpKind::MatMul)) p = nullptr;
      }
      if (p && (p->kind == OpKind::MatMul || p->kind == OpKind::Mul || p->kind == OpKind::Div) &&
          f32_shaped(s) && same_dims(s->shape, add.output(0)->shape) && mask_fits(m, s)) {
        scores = s;
        mask = m;
        return true;
      }
    }
    return false;
  }

  void fuse(Node &sm) {
    absorbed_ = {&sm};
    scale_ = 1.0;
    Value *x = sm.input(0), *y = sm.output(0);
    if (!f32_shaped(x) || !y || x->shape.size() < 2) return;
    int r = static_cast<int>(x->shape.size());
    if (normalize_axis(sm.attr_i("axis", sm.opset >= 13 ? -1 : 1), r, sm) != r - 1) return;
    // Backwards from the Softmax: [Add mask] [scale] MatMul.
    Value *s = x, *mask = nullptr;
    const Node *reader = &sm;
    if (Node *add = sole_producer(s, reader, OpKind::Add)) {
      if (!split_mask(*add, s, mask)) return;
      absorbed_.push_back(add);
      reader = add;
    }
    Node *scale_node = s->producer;
    if (Value *u = unscaled(s, reader, scale_)) {
      s = u;
      reader = scale_node;
    }
    Node *mm1 = sole_producer(s, reader, OpKind::MatMul);
    if (!mm1) return;
    absorbed_.push_back(mm1);
    // Forwards: MatMul(probabilities, V) [Transpose ...].
    Node *mm2 = sole_consumer(g_, uses_, y);
    if (!mm2 || mm2->kind != OpKind::MatMul || mm2->input(0) != y) return;
    absorbed_.push_back(mm2);
    Value *qv = mm1->input(0), *ktv = mm1->input(1), *vv = mm2->input(1);
    if (!f32_shaped(qv) || !f32_shaped(ktv) || !f32_shaped(vv) || !f32_shaped(mm2->output(0))) return;
    if (qv->shape.size() != static_cast<size_t>(r) || ktv->shape.size() != qv->shape.size() ||
        vv->shape.size() != qv->shape.size()) {
      return;
    }
    Perm swap = identity(r);
    std::swap(swap[r - 1], swap[r - 2]);
    Side q{qv, identity(r)}, k{ktv, swap}, v{vv, identity(r)};
    Shape batch = batch_of(x, identity(r));
    if (!same_dims(batch_of(qv, q.perm), batch) || !same_dims(batch_of(ktv, k.perm), batch) ||
        !same_dims(batch_of(vv, v.perm), batch)) {
      return;
    }
    peel(q, mm1, true, false);
    peel(k, mm1, true, false);
    peel(v, mm2, false, true);
    Perm out = identity(r);
    Value *result = mm2->output(0);
    while (Node *t = sole_consumer(g_, uses_, result)) {
      if (t->kind != OpKind::Transpose || !f32_shaped(t->output(0))) break;
      Perm tp = transpose_perm(*t, r), c(r);
      for (int i = 0; i < r; ++i) c[i] = out[tp[i]];
      if (c.back() != r - 1) break;
      absorbed_.push_back(t);
      out = c;
      result = t->output(0);
    }
    Node *n = replace_with_fused(g_, uses_, absorbed_, OpKind::FusedAttention, {q.v, k.v, v.v, mask});
    auto set_perm = [&](const char *name, const Perm &p) {
      if (p == identity(r)) return;
      n->attrs[name].kind = Attribute::Kind::Ints;
      n->attrs[name].ints = p;
    };
    set_perm("q_perm", q.perm);
    set_perm("k_perm", k.perm);
    set_perm("v_perm", v.perm);
    set_perm("out_perm", out);
    n->attrs["scale"].kind = Attribute::Kind::Float;
    n->attrs["scale"].f = scale_;
  }

  Graph &g_;
  std::map<const Value *, int> uses_;
  std::vector<Node *> absorbed_;  // the pattern matched so far
  double scale_ = 1.0;
};

}  // namespace

void fuse_attention(Graph &g) { AttentionFuser(g).run(); }

}  // namespace kiln
