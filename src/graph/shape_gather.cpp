// Shape functions of indexing ops (Gather*, Scatter*, OneHot, Compress) and of ops whose
// values come from shapes or scalars (Shape, Size, ConstantOfShape, Range).
//
// Shape and Size give their outputs symbolic contents, and Gather passes them on, so
// shape arithmetic on dynamic dims stays symbolic through Reshape/Expand targets.
#include <algorithm>
#include <cmath>

#include "graph/shape_fn.h"
#include "support/error.h"

namespace kiln {

namespace {

bool is_index_type(DType t) { return t == DType::I32 || t == DType::I64; }

void check_indices(const ShapeContext &c, size_t i) {
  user_assert(is_index_type(c.input(i).dtype))
      << c.node.describe() << ": indices must be int32 or int64, got " << dtype_name(c.input(i).dtype);
}

// Out-of-range indices are an error in ONNX. Indices are known at run time (and for
// constants at compile time); `extent(k)` is the size indexed by element k.
template <typename F>
void check_index_range(const ShapeContext &c, size_t i, F &&extent) {
  const Tensor *t = c.in[i].value;
  if (!t) return;
  for (int64_t k = 0; k < t->numel(); ++k) {
    const Dim &d = extent(k);
    if (!d.is_const()) return;
    int64_t v = t->get_i64(k), n = d.value();
    user_assert(v >= -n && v < n) << c.node.describe() << ": index " << v << " is out of range for an axis of size "
                                  << n;
  }
}

// Small integer tensors get symbolic contents when their element count is known and small.
constexpr int64_t kMaxSymValues = 64;

}  // namespace

// ---- gathers ---------------------------------------------------------------------------

void shape_gather(ShapeContext &c) {
  const Shape &x = c.shape_of(0), &ind = c.shape_of(1);
  check_indices(c, 1);
  int r = static_cast<int>(x.size());
  user_assert(r >= 1) << c.node.describe() << ": data must not be a scalar";
  int axis = normalize_axis(c.node.attr_i("axis", 0), r, c.node);
  Shape out(x.begin(), x.begin() + axis);
  out.insert(out.end(), ind.begin(), ind.end());
  out.insert(out.end(), x.begin() + axis + 1, x.end());
  c.set_output(0, c.input(0).dtype, out);
  check_index_range(c, 1, [&](int64_t) { return x[axis]; });
  // Gathering from a shape vector with constant indices: Shape(x)[1] is seq.
  if (r != 1 || !dtype_is_int(c.input(0).dtype)) return;
  auto data = c.dim_values(0);
  auto idx = c.int_values(1);
  if (!data || !idx) return;
  std::vector<Dim> v;
  int64_t n = static_cast<int64_t>(data->size());
  for (int64_t k : *idx) {
    int64_t j = k < 0 ? k + n : k;
    user_assert(j >= 0 && j < n) << c.node.describe() << ": index " << k << " is out of range for size " << n;
    v.push_back((*data)[j]);
  }
  c.out[0].sym_values = v;
}

void shape_gather_elements(ShapeContext &c) {
  const Shape &x = c.shape_of(0), &ind = c.shape_of(1);
  check_indices(c, 1);
  user_assert(x.size() == ind.size() && !x.empty())
      << c.node.describe() << ": data and indices must have the same rank >= 1";
  int axis = normalize_axis(c.node.attr_i("axis", 0), static_cast<int>(x.size()), c.node);
  check_index_range(c, 1, [&](int64_t) { return x[axis]; });
  c.set_output(0, c.input(0).dtype, ind);
}

void shape_gather_nd(ShapeContext &c) {
  const Shape &x = c.shape_of(0), &ind = c.shape_of(1);
  check_indices(c, 1);
  int64_t b = c.node.attr_i("batch_dims", 0);
  int64_t r = static_cast<int64_t>(x.size()), q = static_cast<int64_t>(ind.size());
  user_assert(r >= 1 && q >= 1 && b >= 0 && b < std::min(r, q))
      << c.node.describe() << ": invalid ranks (data " << r << ", indices " << q << ", batch_dims " << b << ")";
  user_assert(ind.back().is_const()) << c.node.describe() << ": the last dim of indices must be static";
  int64_t k = ind.back().value();
  user_assert(k >= 1 && k <= r - b) << c.node.describe() << ": index tuples of length " << k
                                    << " do not fit data of rank " << r << " with batch_dims " << b;
  check_index_range(c, 1, [&](int64_t e) { return x[b + e % k]; });
  Shape out(ind.begin(), ind.end() - 1);
  out.insert(out.end(), x.begin() + b + k, x.end());
  c.set_output(0, c.input(0).dtype, out);
}

// ---- scatters --------------------------------------------------------------------------

void shape_scatter_elements(ShapeContext &c) {
  const Shape &x = c.shape_of(0), &ind = c.shape_of(1), &upd = c.shape_of(2);
  check_indices(c, 1);
  user_assert(x.size() == ind.size() && !x.empty())
      << c.node.describe() << ": data and indices must have the same rank >= 1";
  user_assert(shapes_same(ind, upd) || !shape_is_const(ind) || !shape_is_const(upd))
      << c.node.describe() << ": indices " << shape_str(ind) << " and updates " << shape_str(upd) << " differ";
  user_assert(c.input(2).dtype == c.input(0).dtype) << c.node.describe() << ": updates type differs from data";
  int axis = normalize_axis(c.node.attr_i("axis", 0), static_cast<int>(x.size()), c.node);
  check_index_range(c, 1, [&](int64_t) { return x[axis]; });
  std::string red = c.node.attr_s("reduction", "none");
  user_assert(red == "none" || red == "add" || red == "mul" || red == "max" || red == "min")
      << c.node.describe() << ": unsupported reduction '" << red << "'";
  c.set_output(0, c.input(0).dtype, x);
}

void shape_scatter_nd(ShapeContext &c) {
  const Shape &x = c.shape_of(0), &ind = c.shape_of(1), &upd = c.shape_of(2);
  user_assert(c.input(1).dtype == DType::I64) << c.node.describe() << ": indices must be int64";
  user_assert(c.input(2).dtype == c.input(0).dtype) << c.node.describe() << ": updates type differs from data";
  user_assert(!ind.empty() && ind.back().is_const())
      << c.node.describe() << ": indices must have rank >= 1 with a static last dim";
  int64_t k = ind.back().value();
  user_assert(k >= 1 && k <= static_cast<int64_t>(x.size()))
      << c.node.describe() << ": index tuples of length " << k << " do not fit data of rank " << x.size();
  check_index_range(c, 1, [&](int64_t e) { return x[e % k]; });
  size_t want = ind.size() - 1 + x.size() - static_cast<size_t>(k);
  user_assert(upd.size() == want) << c.node.describe() << ": updates must have rank " << want;
  std::string red = c.node.attr_s("reduction", "none");
  user_assert(red == "none" || red == "add" || red == "mul" || red == "max" || red == "min")
      << c.node.describe() << ": unsupported reduction '" << red << "'";
  c.set_output(0, c.input(0).dtype, x);
}

// ---- OneHot and Compress ---------------------------------------------------------------

void shape_one_hot(ShapeContext &c) {
  const Shape &ind = c.shape_of(0);
  const Shape &vals = c.shape_of(2);
  user_assert(vals.size() == 1 && (!vals[0].is_const() || vals[0].value() == 2))
      << c.node.describe() << ": values must hold two elements [off, on]";
  int r = static_cast<int>(ind.size()) + 1;
  int64_t axis = c.node.attr_i("axis", -1);
  user_assert(axis >= -r && axis < r) << c.node.describe() << ": axis " << axis << " is out of range";
  if (axis < 0) axis += r;
  Dim depth;
  if (c.input(1).value) {
    const Tensor &t = *c.input(1).value;
    user_assert(t.numel() == 1 && t.get_f64(0) >= 1) << c.node.describe() << ": depth must be a positive scalar";
    depth = static_cast<int64_t>(t.get_f64(0));
  } else if (auto d = c.dim_values(1); d && d->size() == 1 && dtype_is_int(c.input(1).dtype)) {
    depth = (*d)[0];
  } else {
    depth = c.fresh();
  }
  Shape out = ind;
  out.insert(out.begin() + axis, depth);
  c.set_output(0, c.input(2).dtype, out);
}

void shape_compress(ShapeContext &c) {
  const Shape &x = c.shape_of(0), &cond = c.shape_of(1);
  user_assert(cond.size() == 1) << c.node.describe() << ": condition must be 1-D";
  user_assert(c.input(1).dtype == DType::Bool) << c.node.describe() << ": condition must be bool";
  bool has_axis = c.node.has_attr("axis");
  int axis = 0;
  Dim extent;
  if (has_axis) {
    user_assert(!x.empty()) << c.node.describe() << ": input must not be a scalar when axis is given";
    axis = normalize_axis(c.node.attr_i("axis", 0), static_cast<int>(x.size()), c.node);
    extent = x[axis];
  } else {
    Dim n = 1;
    for (const Dim &d : x) n = n * d;
    extent = n;
  }
  Dim kept;
  if (const Tensor *t = c.input(1).value; t && extent.is_const()) {
    int64_t n = 0;
    for (int64_t i = 0; i < std::min(t->numel(), extent.value()); ++i) n += t->get_i64(i) != 0;
    kept = n;
  } else {
    kept = c.fresh();
  }
  Shape out = {kept};
  if (has_axis) {
    out = x;
    out[axis] = kept;
  }
  c.set_output(0, c.input(0).dtype, out);
}

// ---- values from shapes ----------------------------------------------------------------

void shape_shape(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  int64_t r = static_cast<int64_t>(x.size());
  int64_t start = c.node.attr_i("start", 0), end = c.node.attr_i("end", r);
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<int64_t>(start, 0, r);
  end = std::clamp<int64_t>(end, 0, r);
  std::vector<Dim> v(x.begin() + start, x.begin() + std::max(start, end));
  c.set_output(0, DType::I64, {static_cast<int64_t>(v.size())});
  c.out[0].sym_values = v;
}

void shape_size(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  Dim n = 1;
  for (const Dim &d : x) n = n * d;
  c.set_output(0, DType::I64, {});
  c.out[0].sym_values = std::vector<Dim>{n};
}

void shape_constant_of_shape(ShapeContext &c) {
  DType t = DType::F32;
  auto it = c.node.attrs.find("value");
  if (it != c.node.attrs.end()) {
    user_assert(it->second.kind == Attribute::Kind::Tensor && it->second.t.numel() == 1)
        << c.node.describe() << ": value must be a one-element tensor";
    t = it->second.t.dtype();
  }
  user_assert(dtype_is_int(c.input(0).dtype)) << c.node.describe() << ": input must be an integer tensor";
  auto dims = c.dim_values(0);
  Shape out;
  if (dims) {
    for (const Dim &d : *dims) {
      user_assert(!d.is_const() || d.value() >= 0) << c.node.describe() << ": negative dim " << d.value();
      out.push_back(d);
    }
  } else {
    const Shape &s = c.shape_of(0);
    user_assert(s.size() == 1) << c.node.describe() << ": input must be 1-D";
    if (!s[0].is_const()) {
      c.out[0].dtype = t;
      return;
    }
    for (int64_t i = 0; i < s[0].value(); ++i) out.push_back(c.fresh());
  }
  c.set_output(0, t, out);
  // A 1-D integer fill (e.g. ones like a shape vector) keeps symbolic contents.
  if (dtype_is_int(t) && out.size() == 1 && out[0].is_const() && out[0].value() <= kMaxSymValues) {
    int64_t v = it == c.node.attrs.end() ? 0 : it->second.t.get_i64(0);
    c.out[0].sym_values = std::vector<Dim>(static_cast<size_t>(out[0].value()), Dim(v));
  }
}

void shape_range(ShapeContext &c) {
  DType t = c.input(0).dtype;
  for (size_t i = 0; i < 3; ++i) {
    user_assert(c.input(i).dtype == t) << c.node.describe() << ": start, limit and delta must have the same type";
    user_assert(c.shape_of(i).empty() || (c.shape_of(i).size() == 1 && c.shape_of(i)[0].is_const() &&
                                          c.shape_of(i)[0].value() == 1))
        << c.node.describe() << ": start, limit and delta must be scalars";
  }
  Dim n;
  if (dtype_is_int(t)) {
    auto s = c.dim_values(0), l = c.dim_values(1);
    auto d = c.int_values(2);
    if (s && l && d) {
      int64_t step = (*d)[0];
      user_assert(step != 0) << c.node.describe() << ": delta must not be 0";
      Dim span = (*l)[0] - (*s)[0];
      Dim q = step > 0 ? (span + Dim(step - 1)) / Dim(step) : (span + Dim(step + 1)) / Dim(step);
      // Range(0, n, 1) over a symbolic (non-negative) n is n.
      bool nonneg = (*s)[0].is_const() && (*s)[0].value() == 0 && step > 0 && !(*l)[0].is_const();
      n = nonneg ? q : dim_max(q, 0);
      if (n.is_const() && n.value() <= kMaxSymValues) {
        std::vector<Dim> v;
        for (int64_t i = 0; i < n.value(); ++i) v.push_back((*s)[0] + Dim(i * step));
        c.set_output(0, t, {n});
        c.out[0].sym_values = v;
        return;
      }
    } else {
      n = c.fresh();
    }
  } else {
    auto s = c.float_values(0), l = c.float_values(1), d = c.float_values(2);
    if (s && l && d) {
      user_assert((*d)[0] != 0) << c.node.describe() << ": delta must not be 0";
      n = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(((*l)[0] - (*s)[0]) / (*d)[0])));
    } else {
      n = c.fresh();
    }
  }
  c.set_output(0, t, {n});
}

}  // namespace kiln
