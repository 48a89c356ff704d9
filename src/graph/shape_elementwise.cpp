// Shape functions of elementwise, broadcasting and cast ops.
#include "graph/shape_fn.h"
#include "support/error.h"

namespace kiln {

void shape_unary(ShapeContext &c) {
  const ValueInfo &x = c.input(0);
  c.out[0] = x;
  c.out[0].value = nullptr;
  if (c.node.kind != OpKind::Identity) c.out[0].sym_values.reset();
}

void shape_unary_bool(ShapeContext &c) {
  const ValueInfo &x = c.input(0);
  c.set_output(0, DType::Bool, x.shape);
  c.out[0].has_shape = x.has_shape;
}

namespace {
// Symbolic contents of small integer elementwise results (e.g. Shape(x)[2] * 2) so that
// Reshape targets computed from shapes stay symbolic.
void propagate_sym_values(ShapeContext &c) {
  OpKind k = c.node.kind;
  if (k != OpKind::Add && k != OpKind::Sub && k != OpKind::Mul && k != OpKind::Div) return;
  if (!dtype_is_int(c.in[0].dtype) || !dtype_is_int(c.in[1].dtype)) return;
  auto a = c.dim_values(0), b = c.dim_values(1);
  if (!a || !b || !dtype_is_int(c.out[0].dtype)) return;
  if (a->size() != b->size() && a->size() != 1 && b->size() != 1) return;
  size_t n = std::max(a->size(), b->size());
  std::vector<Dim> r;
  for (size_t i = 0; i < n; ++i) {
    Dim x = (*a)[a->size() == 1 ? 0 : i], y = (*b)[b->size() == 1 ? 0 : i];
    if (k == OpKind::Div && y.is_const() && y.value() == 0) return;
    r.push_back(k == OpKind::Add ? x + y : k == OpKind::Sub ? x - y : k == OpKind::Mul ? x * y : x / y);
  }
  c.out[0].sym_values = r;
}
}  // namespace

void shape_binary(ShapeContext &c) {
  const ValueInfo &a = c.input(0), &b = c.input(1);
  if (c.node.kind != OpKind::BitShift && c.node.kind != OpKind::Pow) {
    user_assert(a.dtype == b.dtype) << c.node.describe() << ": input types differ ("
                                    << dtype_name(a.dtype) << " vs " << dtype_name(b.dtype) << ")";
  }
  c.set_output(0, a.dtype, broadcast_shapes(c.shape_of(0), c.shape_of(1), c.node));
  propagate_sym_values(c);
}

void shape_binary_bool(ShapeContext &c) {
  const ValueInfo &a = c.input(0), &b = c.input(1);
  user_assert(a.dtype == b.dtype) << c.node.describe() << ": input types differ ("
                                  << dtype_name(a.dtype) << " vs " << dtype_name(b.dtype) << ")";
  c.set_output(0, DType::Bool, broadcast_shapes(c.shape_of(0), c.shape_of(1), c.node));
}

void shape_variadic(ShapeContext &c) {
  user_assert(!c.in.empty()) << c.node.describe() << ": needs at least one input";
  Shape s = c.shape_of(0);
  DType t = c.input(0).dtype;
  for (size_t i = 1; i < c.in.size(); ++i) {
    user_assert(c.input(i).dtype == t) << c.node.describe() << ": input types differ";
    s = broadcast_shapes(s, c.shape_of(i), c.node);
  }
  c.set_output(0, t, s);
}

void shape_where(ShapeContext &c) {
  user_assert(c.input(0).dtype == DType::Bool) << c.node.describe() << ": condition must be bool";
  user_assert(c.input(1).dtype == c.input(2).dtype) << c.node.describe() << ": branch types differ";
  Shape s = broadcast_shapes(c.shape_of(0), c.shape_of(1), c.node);
  c.set_output(0, c.input(1).dtype, broadcast_shapes(s, c.shape_of(2), c.node));
}

void shape_cast(ShapeContext &c) {
  DType to;
  if (c.node.kind == OpKind::CastLike) {
    to = c.input(1).dtype;
  } else {
    int64_t t = c.node.attr_i("to", 0);
    user_assert(dtype_valid(static_cast<int>(t))) << c.node.describe() << ": unsupported target type " << t;
    to = static_cast<DType>(t);
  }
  const ValueInfo &x = c.input(0);
  c.out[0].dtype = to;
  c.out[0].shape = x.shape;
  c.out[0].has_shape = x.has_shape;
  if (dtype_is_int(to) && dtype_is_int(x.dtype)) c.out[0].sym_values = c.dim_values(0);
}

}  // namespace kiln

namespace kiln {

void shape_dropout(ShapeContext &c) {
  const ValueInfo &x = c.input(0);
  c.out[0] = x;
  c.out[0].value = nullptr;
  if (c.out.size() > 1) {
    c.set_output(1, DType::Bool, x.shape);
    c.out[1].has_shape = x.has_shape;
  }
}

}  // namespace kiln
