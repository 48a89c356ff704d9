#include "graph/shape_fn.h"

#include "support/error.h"

namespace kiln {

ShapeContext::ShapeContext(const Node &n, std::vector<ValueInfo> inputs, std::function<Dim()> fresh_dim)
    : node(n), in(std::move(inputs)), out(n.outputs.size()), fresh(std::move(fresh_dim)) {}

const ValueInfo &ShapeContext::input(size_t i) const {
  user_assert(has(i)) << node.describe() << ": missing required input " << i;
  return in[i];
}

const Shape &ShapeContext::shape_of(size_t i) const {
  const ValueInfo &v = input(i);
  user_assert(v.has_shape) << node.describe() << ": the rank of input " << i
                           << " is unknown; pass --shape to fix the model's input shapes";
  return v.shape;
}

std::optional<std::vector<Dim>> ShapeContext::dim_values(size_t i) const {
  if (!has(i)) return std::nullopt;
  const ValueInfo &v = in[i];
  if (v.value) {
    user_assert(dtype_is_int(v.value->dtype()))
        << node.describe() << ": input " << i << " must be an integer tensor";
    std::vector<Dim> d;
    for (int64_t x : v.value->to_i64_vector()) d.emplace_back(x);
    return d;
  }
  return v.sym_values;
}

std::optional<std::vector<int64_t>> ShapeContext::int_values(size_t i) const {
  auto d = dim_values(i);
  if (!d) return std::nullopt;
  std::vector<int64_t> r;
  for (auto &x : *d) {
    if (!x.is_const()) return std::nullopt;
    r.push_back(x.value());
  }
  return r;
}

std::optional<std::vector<double>> ShapeContext::float_values(size_t i) const {
  if (!has(i) || !in[i].value) return std::nullopt;
  std::vector<double> r;
  for (int64_t k = 0; k < in[i].value->numel(); ++k) r.push_back(in[i].value->get_f64(k));
  return r;
}

void ShapeContext::set_output(size_t i, DType t, Shape s) {
  if (i >= out.size()) return;
  out[i].dtype = t;
  out[i].shape = std::move(s);
  out[i].has_shape = true;
}

Shape broadcast_shapes(const Shape &a, const Shape &b, const Node &n) {
  size_t r = std::max(a.size(), b.size());
  Shape s(r);
  for (size_t i = 0; i < r; ++i) {
    Dim x = i < r - a.size() ? Dim(1) : a[i - (r - a.size())];
    Dim y = i < r - b.size() ? Dim(1) : b[i - (r - b.size())];
    if (x.is_const() && x.value() == 1) {
      s[i] = y;
    } else if (y.is_const() && y.value() == 1) {
      s[i] = x;
    } else if (x.same_as(y)) {
      s[i] = x;
    } else if (x.is_const() && y.is_const()) {
      user_error << n.describe() << ": shapes " << shape_str(a) << " and " << shape_str(b)
                 << " cannot be broadcast";
    } else if (x.is_const()) {
      s[i] = x;
    } else if (y.is_const()) {
      s[i] = y;
    } else {
      s[i] = dim_max(x, y);
    }
  }
  return s;
}

int normalize_axis(int64_t axis, int rank, const Node &n) {
  user_assert(axis >= -rank && axis < std::max(rank, 1))
      << n.describe() << ": axis " << axis << " is out of range for rank " << rank;
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

ShapeFn shape_fn_of(OpKind k) {
  static const ShapeFn table[] = {
      nullptr,
#define KILN_OP(name, pattern, shape_fn, lower_fn) &shape_fn,
#define KILN_RUNTIME_OP(name, shape_fn, run_fn) &shape_fn,
#define KILN_CONTROL_OP(name) nullptr,
#include "graph/ops.def"
#undef KILN_OP
#undef KILN_RUNTIME_OP
#undef KILN_CONTROL_OP
  };
  return table[static_cast<int>(k)];
}

}  // namespace kiln
