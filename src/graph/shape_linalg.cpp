// Shape functions of MatMul, Gemm and Conv.
#include "graph/conv_attrs.h"
#include "graph/shape_fn.h"
#include "support/error.h"

namespace kiln {

namespace {
void check_same(const Dim &a, const Dim &b, const Node &n, const char *what) {
  if (a.is_const() && b.is_const()) {
    user_assert(a.value() == b.value())
        << n.describe() << ": " << what << " mismatch (" << a.value() << " vs " << b.value() << ")";
  }
}
}  // namespace

void shape_matmul(ShapeContext &c) {
  Shape a = c.shape_of(0), b = c.shape_of(1);
  user_assert(!a.empty() && !b.empty()) << c.node.describe() << ": inputs must not be scalars";
  user_assert(c.input(0).dtype == c.input(1).dtype) << c.node.describe() << ": input types differ";
  bool a1 = a.size() == 1, b1 = b.size() == 1;
  if (a1) a.insert(a.begin(), Dim(1));
  if (b1) b.push_back(Dim(1));
  check_same(a.back(), b[b.size() - 2], c.node, "inner dimension");
  Shape batch = broadcast_shapes(Shape(a.begin(), a.end() - 2), Shape(b.begin(), b.end() - 2), c.node);
  Shape out = batch;
  if (!a1) out.push_back(a[a.size() - 2]);
  if (!b1) out.push_back(b.back());
  c.set_output(0, c.input(0).dtype, out);
}

namespace {
// FusedAttention: operand `i` seen through the transpose named by attribute `attr`
// (identity when absent).
Shape attention_view(const ShapeContext &c, size_t i, const char *attr) {
  const Shape &s = c.shape_of(i);
  std::vector<int64_t> perm = c.node.attr_ints(attr);
  if (perm.empty()) return s;
  user_assert(perm.size() == s.size())
      << c.node.describe() << ": " << attr << " does not match the rank of input " << i;
  Shape v;
  for (int64_t p : perm) v.push_back(s.at(normalize_axis(p, static_cast<int>(s.size()), c.node)));
  return v;
}
}  // namespace

void shape_fused_attention(ShapeContext &c) {
  Shape q = attention_view(c, 0, "q_perm"), k = attention_view(c, 1, "k_perm"), v = attention_view(c, 2, "v_perm");
  user_assert(q.size() >= 2 && k.size() == q.size() && v.size() == q.size())
      << c.node.describe() << ": Q, K and V must have one rank of at least 2";
  size_t r = q.size();
  check_same(q[r - 1], k[r - 1], c.node, "head size of Q and K");
  check_same(k[r - 2], v[r - 2], c.node, "key count of K and V");
  if (c.has(3)) {
    Shape scores(q.begin(), q.end() - 1);
    scores.push_back(k[r - 2]);
    broadcast_shapes(scores, c.shape_of(3), c.node);
  }
  Shape out(q.begin(), q.end() - 1);
  out.push_back(v[r - 1]);
  std::vector<int64_t> perm = c.node.attr_ints("out_perm");
  if (!perm.empty()) {
    user_assert(perm.size() == r) << c.node.describe() << ": out_perm does not match the output rank";
    Shape t;
    for (int64_t p : perm) t.push_back(out.at(normalize_axis(p, static_cast<int>(r), c.node)));
    out = t;
  }
  c.set_output(0, c.input(0).dtype, out);
}

void shape_gemm(ShapeContext &c) {
  const Shape &a = c.shape_of(0), &b = c.shape_of(1);
  user_assert(a.size() == 2 && b.size() == 2) << c.node.describe() << ": A and B must be 2-D";
  bool ta = c.node.attr_i("transA", 0), tb = c.node.attr_i("transB", 0);
  Dim m = ta ? a[1] : a[0], k = ta ? a[0] : a[1];
  Dim k2 = tb ? b[1] : b[0], n = tb ? b[0] : b[1];
  check_same(k, k2, c.node, "inner dimension");
  if (c.has(2)) broadcast_shapes({m, n}, c.shape_of(2), c.node);
  c.set_output(0, c.input(0).dtype, {m, n});
}

void shape_conv(ShapeContext &c) {
  const Shape &x = c.shape_of(0), &w = c.shape_of(1);
  user_assert(x.size() >= 3 && w.size() == x.size())
      << c.node.describe() << ": input rank " << x.size() << " and weight rank " << w.size()
      << " are not a valid convolution";
  int sp = static_cast<int>(x.size()) - 2;
  std::vector<int64_t> wk;
  for (int i = 0; i < sp; ++i) {
    user_assert(w[i + 2].is_const()) << c.node.describe() << ": weight kernel dims must be static";
    wk.push_back(w[i + 2].value());
  }
  ConvAttrs a = ConvAttrs::read(c.node, sp, wk);
  if (w[1].is_const() && x[1].is_const()) {
    user_assert(w[1].value() * a.group == x[1].value())
        << c.node.describe() << ": weight expects " << w[1].value() * a.group << " input channels, input has "
        << x[1].value();
  }
  Shape out = {x[0], w[0]};
  for (int i = 0; i < sp; ++i) {
    Dim o, pb;
    a.geometry(i, x[i + 2], o, pb);
    if (o.is_const()) user_assert(o.value() > 0) << c.node.describe() << ": output size would be " << o.value();
    out.push_back(o);
  }
  c.set_output(0, c.input(0).dtype, out);
}

void shape_winograd_conv(ShapeContext &c) {
  const Shape &x = c.shape_of(0), &u = c.shape_of(1);
  user_assert(x.size() == 4 && u.size() == 3) << c.node.describe() << ": expects a 4-D input and f32[36 or 16, M, C] weights";
  ConvAttrs a = ConvAttrs::read(c.node, 2, {3, 3});
  Shape out = {x[0], u[1]};
  for (int i = 0; i < 2; ++i) {
    Dim o, pb;
    a.geometry(i, x[i + 2], o, pb);
    out.push_back(o);
  }
  c.set_output(0, c.input(0).dtype, out);
}

}  // namespace kiln
