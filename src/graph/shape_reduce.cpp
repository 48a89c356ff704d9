// Shape functions of reductions (Reduce*, ArgMax/ArgMin), softmax-like ops, CumSum and
// the normalizations.
#include "graph/shape_fn.h"
#include "support/error.h"

namespace kiln {

namespace {

bool is_one(const Dim &d) { return d.is_const() && d.value() == 1; }

// The axes a Reduce* node lists: an optional input since opset 13 (ReduceSum) / 18 (the
// others), an attribute before. Empty means "none listed"; nullopt means they come from an
// input whose contents are not known yet.
std::optional<std::vector<int64_t>> listed_axes(const ShapeContext &c) {
  if (!c.has(1)) return c.node.attr_ints("axes", {});
  user_assert(dtype_is_int(c.input(1).dtype)) << c.node.describe() << ": axes must be an integer tensor";
  if (auto v = c.int_values(1)) return v;
  const ValueInfo &a = c.input(1);
  if (a.has_shape && a.rank() == 1 && a.shape[0].is_const() && a.shape[0].value() == 0) {
    return std::vector<int64_t>{};
  }
  return std::nullopt;
}

// Checks that a per-channel parameter (BatchNorm, InstanceNorm scale/bias) has C elements.
void check_channels(const ShapeContext &c, size_t i, const Dim &channels) {
  if (!c.has(i) || !c.in[i].has_shape) return;
  const Shape &p = c.in[i].shape;
  user_assert(!p.empty()) << c.node.describe() << ": input " << i << " must not be a scalar";
  if (p[0].is_const() && channels.is_const()) {
    user_assert(p[0].value() == channels.value())
        << c.node.describe() << ": input " << i << " has " << p[0].value() << " channels, expected "
        << channels.value();
  }
}

}  // namespace

void shape_reduce(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  int r = static_cast<int>(x.size());
  DType t = c.input(0).dtype;
  bool keep = c.node.attr_i("keepdims", 1) != 0;
  auto axes = listed_axes(c);
  if (!axes) {
    // The axes arrive at run time: the rank is known when dims are kept or when the
    // number of axes is; every dim that might be reduced becomes a fresh symbol.
    Shape out;
    if (keep) {
      for (const Dim &d : x) out.push_back(is_one(d) ? Dim(1) : c.fresh());
      c.set_output(0, t, out);
      return;
    }
    const ValueInfo &a = c.input(1);
    if (a.has_shape && a.rank() == 1 && a.shape[0].is_const() && a.shape[0].value() <= r) {
      for (int64_t i = a.shape[0].value(); i < r; ++i) out.push_back(c.fresh());
      c.set_output(0, t, out);
      return;
    }
    c.set_output(0, t, {});
    c.out[0].has_shape = false;
    return;
  }
  if (axes->empty() && c.node.attr_i("noop_with_empty_axes", 0)) {
    c.set_output(0, t, x);
    return;
  }
  std::vector<bool> reduced(r, axes->empty());
  for (int64_t a : *axes) reduced[normalize_axis(a, r, c.node)] = true;
  Shape out;
  for (int i = 0; i < r; ++i) {
    if (!reduced[i]) {
      out.push_back(x[i]);
    } else if (keep) {
      out.push_back(Dim(1));
    }
  }
  c.set_output(0, t, out);
}

void shape_arg_reduce(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  int r = static_cast<int>(x.size());
  user_assert(r > 0) << c.node.describe() << ": input must not be a scalar";
  int axis = normalize_axis(c.node.attr_i("axis", 0), r, c.node);
  if (x[axis].is_const()) {
    user_assert(x[axis].value() > 0) << c.node.describe() << ": cannot take the arg of an empty axis";
  }
  Shape out = x;
  if (c.node.attr_i("keepdims", 1)) {
    out[axis] = Dim(1);
  } else {
    out.erase(out.begin() + axis);
  }
  c.set_output(0, DType::I64, out);
}

// Softmax, LogSoftmax, Hardmax, CumSum, InstanceNormalization, LpNormalization,
// MeanVarianceNormalization, LRN: the output has the input's dtype and shape.
void shape_same_as_input(ShapeContext &c) {
  const ValueInfo &x = c.input(0);
  c.set_output(0, x.dtype, x.shape);
  c.out[0].has_shape = x.has_shape;
  if (!x.has_shape) return;
  int r = x.rank();
  switch (c.node.kind) {
    case OpKind::Softmax:
    case OpKind::LogSoftmax:
    case OpKind::Hardmax:
      normalize_axis(c.node.attr_i("axis", c.node.opset >= 13 ? -1 : 1), r, c.node);
      break;
    case OpKind::LpNormalization: {
      normalize_axis(c.node.attr_i("axis", -1), r, c.node);
      int64_t p = c.node.attr_i("p", 2);
      user_assert(p == 1 || p == 2) << c.node.describe() << ": p must be 1 or 2, got " << p;
      break;
    }
    case OpKind::CumSum:
      user_assert(r > 0) << c.node.describe() << ": input must not be a scalar";
      user_assert(dtype_is_int(c.input(1).dtype)) << c.node.describe() << ": axis must be an integer tensor";
      if (auto a = c.int_values(1)) {
        user_assert(a->size() == 1) << c.node.describe() << ": axis must have one element";
        normalize_axis((*a)[0], r, c.node);
      }
      break;
    case OpKind::InstanceNormalization:
      user_assert(r >= 2) << c.node.describe() << ": input must have rank >= 2";
      check_channels(c, 1, x.shape[1]);
      check_channels(c, 2, x.shape[1]);
      break;
    case OpKind::LRN: {
      user_assert(r >= 3) << c.node.describe() << ": input must have rank >= 3";
      user_assert(c.node.attr_i("size", 0) > 0) << c.node.describe() << ": size must be a positive int";
      break;
    }
    case OpKind::MeanVarianceNormalization:
      for (int64_t a : c.node.attr_ints("axes", {0, 2, 3})) normalize_axis(a, r, c.node);
      break;
    default: break;
  }
}

void shape_batch_norm(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  user_assert(x.size() >= 2) << c.node.describe() << ": input must have rank >= 2 (N x C x ...)";
  for (size_t i = 1; i <= 4; ++i) check_channels(c, i, x[1]);
  c.set_output(0, c.input(0).dtype, x);
  for (size_t i = 1; i < c.out.size(); ++i) c.set_output(i, c.input(3).dtype, {x[1]});
}

void shape_layer_norm(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  int r = static_cast<int>(x.size());
  user_assert(r > 0) << c.node.describe() << ": input must not be a scalar";
  int axis = normalize_axis(c.node.attr_i("axis", -1), r, c.node);
  int64_t stash = c.node.attr_i("stash_type", 1);
  user_assert(dtype_valid(static_cast<int>(stash)) && dtype_is_float(static_cast<DType>(stash)))
      << c.node.describe() << ": stash_type " << stash << " is not a floating-point type";
  Shape norm(x.begin() + axis, x.end());
  for (size_t i : {1, 2}) {
    if (c.has(i)) broadcast_shapes(norm, c.shape_of(i), c.node);
  }
  c.set_output(0, c.input(0).dtype, x);
  Shape stat = x;
  for (int i = axis; i < r; ++i) stat[i] = Dim(1);
  c.set_output(1, static_cast<DType>(stash), stat);
  c.set_output(2, static_cast<DType>(stash), stat);
}

}  // namespace kiln
