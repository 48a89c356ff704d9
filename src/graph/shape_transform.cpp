// Shape functions of data-movement ops: reshapes, Transpose, Concat/Split, Slice, Pad,
// Tile, Expand, DepthToSpace/SpaceToDepth, Trilu, EyeLike, ReverseSequence.
//
// Ops that carry a small integer tensor through unchanged (Reshape, Squeeze, Unsqueeze,
// Concat, Split, Slice) also carry its symbolic contents (`sym_values`), so a shape
// computed as Shape -> Gather -> Unsqueeze -> Concat stays symbolic up to its Reshape.
// Symbolic start/end values of Slice are assumed non-negative (they come from shapes).
#include <algorithm>
#include <limits>

#include "graph/shape_fn.h"
#include "support/error.h"

namespace kiln {

namespace {

// Contents of an integer input as dims; nullopt for non-integer or unknown contents.
std::optional<std::vector<Dim>> int_contents(const ShapeContext &c, size_t i) {
  if (!c.has(i) || !dtype_is_int(c.in[i].dtype)) return std::nullopt;
  return c.dim_values(i);
}

// Passes the symbolic contents of input 0 to output 0 for ops that keep the element order.
void keep_contents(ShapeContext &c) {
  if (auto v = int_contents(c, 0)) c.out[0].sym_values = *v;
}

Dim product(const Shape &s, size_t begin, size_t end) {
  Dim p = 1;
  for (size_t i = begin; i < end; ++i) p = p * s[i];
  return p;
}

// Factors of a product: a constant and the non-constant operands of a Mul tree.
void factorize(const Dim &d, int64_t &k, std::vector<Dim> &syms) {
  if (d.is_const()) {
    k *= d.value();
  } else if (d.kind() == Dim::Kind::Mul) {
    factorize(d.a(), k, syms);
    factorize(d.b(), k, syms);
  } else {
    syms.push_back(d);
  }
}

// num / den for a den known to divide num, cancelling common symbolic factors so that
// (batch * seq * 768) / (batch * 12) is seq * 64 rather than an opaque quotient.
Dim exact_div(const Dim &num, const Dim &den) {
  int64_t kn = 1, kd = 1;
  std::vector<Dim> fn, fd;
  factorize(num, kn, fn);
  factorize(den, kd, fd);
  for (const Dim &f : fd) {
    auto it = std::find_if(fn.begin(), fn.end(), [&](const Dim &g) { return g.same_as(f); });
    if (it == fn.end()) return num / den;
    fn.erase(it);
  }
  if (kd == 0 || kn % kd != 0) return num / den;
  Dim r = kn / kd;
  for (const Dim &f : fn) r = r * f;
  return r;
}

// Axes from input `input` (opset >= since) or the `axes` attribute. `known` is false when
// the input's contents are only known at run time.
std::vector<int64_t> axes_of(const ShapeContext &c, int since, size_t input, bool &known) {
  known = true;
  if (c.node.opset < since) return c.node.attr_ints("axes");
  if (!c.has(input)) return {};
  auto v = c.int_values(input);
  known = v.has_value();
  return v ? *v : std::vector<int64_t>{};
}

std::vector<int> normalize_axes(const std::vector<int64_t> &axes, int rank, const Node &n) {
  std::vector<int> r;
  for (int64_t a : axes) {
    int x = normalize_axis(a, rank, n);
    user_assert(std::find(r.begin(), r.end(), x) == r.end()) << n.describe() << ": axis " << a << " is repeated";
    r.push_back(x);
  }
  return r;
}

}  // namespace

// ---- reshapes -------------------------------------------------------------------------

void shape_reshape(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  DType t = c.input(0).dtype;
  std::optional<std::vector<Dim>> target;
  if (c.node.opset < 5) {
    std::vector<int64_t> s = c.node.attr_ints("shape");
    target = std::vector<Dim>(s.begin(), s.end());
  } else {
    user_assert(dtype_is_int(c.input(1).dtype)) << c.node.describe() << ": shape must be an integer tensor";
    target = c.dim_values(1);
  }
  if (!target) {
    const Shape &ts = c.shape_of(1);
    user_assert(ts.size() == 1) << c.node.describe() << ": shape must be 1-D";
    if (!ts[0].is_const()) {
      c.out[0].dtype = t;  // rank unknown until run time
      return;
    }
    Shape s;
    for (int64_t i = 0; i < ts[0].value(); ++i) s.push_back(c.fresh());
    c.set_output(0, t, s);
    return;
  }
  bool allowzero = c.node.attr_i("allowzero", 0) != 0;
  Shape out;
  int infer = -1;
  for (size_t i = 0; i < target->size(); ++i) {
    const Dim &d = (*target)[i];
    if (d.is_const() && d.value() == -1) {
      user_assert(infer < 0) << c.node.describe() << ": shape has more than one -1";
      infer = static_cast<int>(i);
      out.push_back(1);
    } else if (d.is_const() && d.value() == 0 && !allowzero) {
      user_assert(i < x.size()) << c.node.describe() << ": shape entry " << i << " is 0 (copy) but the input has rank "
                                << x.size();
      out.push_back(x[i]);
    } else {
      user_assert(!d.is_const() || d.value() >= 0)
          << c.node.describe() << ": invalid shape entry " << d.value();
      out.push_back(d);
    }
  }
  Dim total = product(x, 0, x.size()), known = product(out, 0, out.size());
  if (infer >= 0) {
    if (total.is_const() && known.is_const()) {
      user_assert(known.value() != 0 && total.value() % known.value() == 0)
          << c.node.describe() << ": cannot reshape " << shape_str(x) << " to " << shape_str(*target);
      out[infer] = total.value() / known.value();
    } else {
      out[infer] = exact_div(total, known);
    }
  } else if (total.is_const() && known.is_const()) {
    user_assert(total.value() == known.value())
        << c.node.describe() << ": cannot reshape " << shape_str(x) << " (" << total.value() << " elements) to "
        << shape_str(out) << " (" << known.value() << " elements)";
  }
  c.set_output(0, t, out);
  keep_contents(c);
}

void shape_flatten(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  int r = static_cast<int>(x.size());
  int64_t axis = c.node.attr_i("axis", 1);
  user_assert(axis >= -r && axis <= r) << c.node.describe() << ": axis " << axis << " is out of range for rank " << r;
  size_t a = static_cast<size_t>(axis < 0 ? axis + r : axis);
  c.set_output(0, c.input(0).dtype, {product(x, 0, a), product(x, a, x.size())});
  keep_contents(c);
}

void shape_squeeze(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  int r = static_cast<int>(x.size());
  bool known = true;
  std::vector<int64_t> axes = axes_of(c, 13, 1, known);
  Shape out;
  if (!known) {
    // Which axes go is decided at run time; the rank follows from the axes' count.
    const Shape &as = c.shape_of(1);
    if (as.size() != 1 || !as[0].is_const()) {
      c.out[0].dtype = c.input(0).dtype;
      return;
    }
    for (int64_t i = 0; i < r - as[0].value(); ++i) out.push_back(c.fresh());
  } else if (axes.empty()) {
    // A symbolic dim may be 1 or not: then even the rank is known only at run time.
    for (const Dim &d : x) {
      if (!d.is_const()) {
        c.out[0].dtype = c.input(0).dtype;
        return;
      }
      if (d.value() != 1) out.push_back(d);
    }
  } else {
    std::vector<int> ax = normalize_axes(axes, r, c.node);
    for (int i = 0; i < r; ++i) {
      if (std::find(ax.begin(), ax.end(), i) == ax.end()) {
        out.push_back(x[i]);
      } else {
        user_assert(!x[i].is_const() || x[i].value() == 1)
            << c.node.describe() << ": cannot squeeze axis " << i << " of size " << x[i].value();
      }
    }
  }
  c.set_output(0, c.input(0).dtype, out);
  keep_contents(c);
}

void shape_unsqueeze(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  bool known = true;
  std::vector<int64_t> axes = axes_of(c, 13, 1, known);
  if (!known) {
    // Where the new axes go is decided at run time; the rank follows from their count.
    const Shape &as = c.shape_of(1);
    if (as.size() != 1 || !as[0].is_const()) {
      c.out[0].dtype = c.input(0).dtype;
      return;
    }
    Shape out;
    for (size_t i = 0; i < x.size() + static_cast<size_t>(as[0].value()); ++i) out.push_back(c.fresh());
    c.set_output(0, c.input(0).dtype, out);
    return;
  }
  user_assert(!axes.empty()) << c.node.describe() << ": axes are required";
  int r = static_cast<int>(x.size() + axes.size());
  std::vector<int> ax = normalize_axes(axes, r, c.node);
  Shape out;
  size_t k = 0;
  for (int i = 0; i < r; ++i) {
    if (std::find(ax.begin(), ax.end(), i) != ax.end()) {
      out.push_back(1);
    } else {
      out.push_back(x[k++]);
    }
  }
  c.set_output(0, c.input(0).dtype, out);
  keep_contents(c);
}

void shape_transpose(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  int r = static_cast<int>(x.size());
  std::vector<int64_t> perm = c.node.attr_ints("perm");
  if (perm.empty()) {
    for (int i = r - 1; i >= 0; --i) perm.push_back(i);
  }
  user_assert(static_cast<int>(perm.size()) == r)
      << c.node.describe() << ": perm has " << perm.size() << " entries for an input of rank " << r;
  std::vector<int> p = normalize_axes(perm, r, c.node);
  Shape out;
  for (int i : p) out.push_back(x[i]);
  c.set_output(0, c.input(0).dtype, out);
}

// ---- concatenation and splitting ------------------------------------------------------

void shape_concat(ShapeContext &c) {
  user_assert(!c.in.empty()) << c.node.describe() << ": needs at least one input";
  user_assert(c.node.has_attr("axis")) << c.node.describe() << ": attribute 'axis' is required";
  Shape out = c.shape_of(0);
  DType t = c.input(0).dtype;
  int r = static_cast<int>(out.size());
  int axis = normalize_axis(c.node.attr_i("axis", 0), r, c.node);
  std::optional<std::vector<Dim>> contents = std::vector<Dim>{};
  for (size_t i = 0; i < c.in.size(); ++i) {
    const Shape &s = c.shape_of(i);
    user_assert(c.input(i).dtype == t) << c.node.describe() << ": input types differ";
    user_assert(static_cast<int>(s.size()) == r)
        << c.node.describe() << ": input " << i << " has rank " << s.size() << ", input 0 has rank " << r;
    for (int d = 0; d < r; ++d) {
      if (d == axis) {
        if (i > 0) out[d] = out[d] + s[d];
      } else if (s[d].is_const() && out[d].is_const()) {
        user_assert(s[d].value() == out[d].value())
            << c.node.describe() << ": input " << i << " has shape " << shape_str(s) << ", input 0 has "
            << shape_str(c.shape_of(0));
      } else if (s[d].is_const()) {
        out[d] = s[d];
      }
    }
    auto v = r == 1 ? int_contents(c, i) : std::nullopt;
    if (v && contents) {
      contents->insert(contents->end(), v->begin(), v->end());
    } else {
      contents.reset();
    }
  }
  c.set_output(0, t, out);
  c.out[0].sym_values = contents;
}

void shape_split(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  int r = static_cast<int>(x.size());
  int axis = normalize_axis(c.node.attr_i("axis", 0), r, c.node);
  size_t n = c.out.size();
  std::optional<std::vector<Dim>> sizes;
  if (c.node.opset >= 13 ? c.has(1) : c.node.has_attr("split")) {
    if (c.node.opset >= 13) {
      sizes = c.dim_values(1);
    } else {
      std::vector<int64_t> s = c.node.attr_ints("split");
      sizes = std::vector<Dim>(s.begin(), s.end());
    }
    if (sizes) {
      user_assert(sizes->size() == n) << c.node.describe() << ": split has " << sizes->size() << " entries for " << n
                                      << " outputs";
      Dim total = 0;
      for (const Dim &d : *sizes) {
        user_assert(!d.is_const() || d.value() >= 0) << c.node.describe() << ": negative split size " << d.value();
        total = total + d;
      }
      if (total.is_const() && x[axis].is_const()) {
        user_assert(total.value() == x[axis].value()) << c.node.describe() << ": split sizes sum to " << total.value()
                                                      << " but the axis has size " << x[axis].value();
      }
    }
  } else {
    // Even split (opset 18: num_outputs, the last chunk may be smaller).
    int64_t parts = c.node.attr_i("num_outputs", static_cast<int64_t>(n));
    user_assert(parts == static_cast<int64_t>(n) && n > 0)
        << c.node.describe() << ": num_outputs is " << parts << " but the node has " << n << " outputs";
    const Dim &d = x[axis];
    sizes = std::vector<Dim>{};
    if (d.is_const()) {
      int64_t k = parts, v = d.value();
      user_assert(c.node.has_attr("num_outputs") || v % k == 0)
          << c.node.describe() << ": axis size " << v << " does not split evenly into " << k << " outputs";
      int64_t chunk = (v + k - 1) / k;
      for (int64_t i = 0; i < k; ++i) sizes->push_back(std::max<int64_t>(0, std::min(chunk, v - i * chunk)));
    } else if (!c.node.has_attr("num_outputs")) {
      sizes->assign(n, d / Dim(parts));  // the model promises an even split
    } else {
      Dim chunk = (d + Dim(parts - 1)) / Dim(parts);
      for (size_t i = 0; i < n; ++i) {
        sizes->push_back(i + 1 < n ? chunk : d - chunk * Dim(static_cast<int64_t>(n - 1)));
      }
    }
  }
  auto contents = r == 1 ? int_contents(c, 0) : std::nullopt;
  int64_t offset = 0;
  for (size_t i = 0; i < n; ++i) {
    Shape s = x;
    s[axis] = sizes ? (*sizes)[i] : c.fresh();
    c.set_output(i, c.input(0).dtype, s);
    if (contents && s[axis].is_const() && offset >= 0) {
      int64_t len = s[axis].value();
      if (offset + len <= static_cast<int64_t>(contents->size())) {
        c.out[i].sym_values = std::vector<Dim>(contents->begin() + offset, contents->begin() + offset + len);
      }
      offset += len;
    } else {
      offset = -1;
    }
  }
}

// ---- Slice -----------------------------------------------------------------------------

namespace {

struct SliceSpec {
  bool axes_known = false;
  std::vector<int> axes;
  std::vector<Dim> starts, ends;  // empty when unknown
  std::vector<int64_t> steps;
};

SliceSpec slice_spec(const ShapeContext &c, int rank) {
  SliceSpec s;
  std::optional<std::vector<Dim>> starts, ends;
  std::vector<int64_t> axes, steps;
  if (c.node.opset < 10) {
    std::vector<int64_t> a = c.node.attr_ints("starts"), b = c.node.attr_ints("ends");
    starts = std::vector<Dim>(a.begin(), a.end());
    ends = std::vector<Dim>(b.begin(), b.end());
    axes = c.node.attr_ints("axes");
  } else {
    starts = c.dim_values(1);
    ends = c.dim_values(2);
    if (c.has(3)) {
      auto v = c.int_values(3);
      if (!v) return s;  // axes unknown: nothing is known
      axes = *v;
    }
    if (c.has(4)) {
      auto v = c.int_values(4);
      if (!v) return s;
      steps = *v;
    }
  }
  size_t n = starts ? starts->size() : ends ? ends->size() : axes.size();
  if (axes.empty() && !starts && !ends) {
    // Neither contents known: the sliced axes are the first len(starts).
    const Shape &ss = c.shape_of(1);
    if (ss.size() != 1 || !ss[0].is_const()) return s;
    n = static_cast<size_t>(ss[0].value());
  }
  s.axes_known = true;
  if (axes.empty()) {
    for (size_t i = 0; i < n; ++i) axes.push_back(static_cast<int64_t>(i));
  }
  n = axes.size();
  if (steps.empty()) steps.assign(n, 1);
  user_assert((!starts || starts->size() == n) && (!ends || ends->size() == n) && steps.size() == n)
      << c.node.describe() << ": starts, ends, axes and steps must have the same length";
  s.axes = normalize_axes(axes, rank, c.node);
  for (size_t i = 0; i < n; ++i) {
    user_assert(steps[i] != 0) << c.node.describe() << ": step must not be 0";
    s.steps.push_back(steps[i]);
  }
  if (starts) s.starts = *starts;
  if (ends) s.ends = *ends;
  return s;
}

// ONNX clamping of a slice along a dim of concrete size.
void slice_range(int64_t dim, int64_t step, int64_t &start, int64_t &end, int64_t &len) {
  auto clamp = [](int64_t v, int64_t lo, int64_t hi) { return std::min(std::max(v, lo), hi); };
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  if (step > 0) {
    start = clamp(start, 0, dim);
    end = clamp(end, 0, dim);
    len = std::max<int64_t>(0, (end - start + step - 1) / step);
  } else {
    start = clamp(start, 0, dim - 1);
    end = clamp(end, -1, dim - 1);
    len = std::max<int64_t>(0, (start - end + (-step) - 1) / (-step));
  }
}

constexpr int64_t kToEnd = std::numeric_limits<int32_t>::max();

// Length of a slice along a dim where something is symbolic.
Dim slice_len_symbolic(const Dim &d, const Dim &s, const Dim &e, int64_t step) {
  if (step < 0) {
    Dim sa = s.is_const() && s.value() < 0 ? d + s : s;
    Dim ea = e.is_const() && e.value() < 0 ? (e.value() <= -kToEnd ? Dim(-1) : d + e) : e;
    Dim s1 = dim_min(dim_max(sa, 0), d - 1), e1 = dim_min(dim_max(ea, -1), d - 1);
    return dim_max((s1 - e1 + Dim(-step - 1)) / Dim(-step), 0);
  }
  bool to_end = (e.is_const() && e.value() >= kToEnd) || e.same_as(d);
  if (to_end && s.is_const()) {
    if (s.value() < 0) return dim_min(Dim(-s.value()), d);     // d - max(d + s, 0)
    if (step == 1) return s.value() == 0 ? d : dim_max(d - s, 0);
  }
  Dim s1 = s.is_const() ? (s.value() < 0 ? dim_max(d + s, 0) : s.value() == 0 ? Dim(0) : dim_min(s, d))
                        : dim_min(s, d);
  Dim e1 = to_end ? d : e.is_const() && e.value() < 0 ? dim_max(d + e, 0) : dim_min(e, d);
  Dim len = (e1 - s1 + Dim(step - 1)) / Dim(step);
  return s1.is_const() && s1.value() == 0 ? len : dim_max(len, 0);
}

}  // namespace

void shape_slice(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  int r = static_cast<int>(x.size());
  SliceSpec s = slice_spec(c, r);
  Shape out = x;
  if (!s.axes_known) {
    for (auto &d : out) d = c.fresh();
    c.set_output(0, c.input(0).dtype, out);
    return;
  }
  bool all_const = true;
  std::vector<int64_t> cstart(r, 0), cstep(r, 1);
  for (size_t i = 0; i < s.axes.size(); ++i) {
    int a = s.axes[i];
    if (s.starts.empty() || s.ends.empty()) {
      out[a] = c.fresh();
      all_const = false;
      continue;
    }
    const Dim &st = s.starts[i], &en = s.ends[i];
    if (x[a].is_const() && st.is_const() && en.is_const()) {
      int64_t b = st.value(), e = en.value(), len;
      slice_range(x[a].value(), s.steps[i], b, e, len);
      out[a] = len;
      cstart[a] = b;
      cstep[a] = s.steps[i];
    } else {
      out[a] = slice_len_symbolic(x[a], st, en, s.steps[i]);
      all_const = false;
    }
  }
  c.set_output(0, c.input(0).dtype, out);
  auto v = r == 1 ? int_contents(c, 0) : std::nullopt;
  if (v && all_const && out[0].is_const()) {
    std::vector<Dim> r1;
    for (int64_t i = 0; i < out[0].value(); ++i) r1.push_back((*v)[cstart[0] + i * cstep[0]]);
    c.out[0].sym_values = r1;
  }
}

// ---- padding, tiling, broadcasting ----------------------------------------------------

namespace {

std::optional<std::vector<Dim>> pad_amounts(const ShapeContext &c, int rank) {
  if (c.node.opset < 11) {
    std::vector<int64_t> p = c.node.attr_ints(c.node.opset < 2 ? "paddings" : "pads");
    user_assert(static_cast<int>(p.size()) == 2 * rank)
        << c.node.describe() << ": pads has " << p.size() << " entries for rank " << rank;
    return std::vector<Dim>(p.begin(), p.end());
  }
  auto p = c.dim_values(1);
  if (!p) return std::nullopt;
  if (c.has(3)) {
    // opset 18: pads for the listed axes only.
    auto axes = c.int_values(3);
    if (!axes) return std::nullopt;
    std::vector<int> ax = normalize_axes(*axes, rank, c.node);
    user_assert(p->size() == 2 * ax.size()) << c.node.describe() << ": pads has " << p->size() << " entries for "
                                            << ax.size() << " axes";
    std::vector<Dim> full(2 * rank, Dim(0));
    for (size_t i = 0; i < ax.size(); ++i) {
      full[ax[i]] = (*p)[i];
      full[ax[i] + rank] = (*p)[i + ax.size()];
    }
    return full;
  }
  user_assert(static_cast<int>(p->size()) == 2 * rank)
      << c.node.describe() << ": pads has " << p->size() << " entries for rank " << rank;
  return p;
}

}  // namespace

void shape_pad(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  int r = static_cast<int>(x.size());
  std::string mode = c.node.attr_s("mode", "constant");
  user_assert(mode == "constant" || mode == "reflect" || mode == "edge" || mode == "wrap")
      << c.node.describe() << ": unsupported mode '" << mode << "'";
  auto p = pad_amounts(c, r);
  Shape out;
  for (int i = 0; i < r; ++i) {
    if (!p) {
      out.push_back(c.fresh());
      continue;
    }
    bool padded = !(*p)[i].is_const() || (*p)[i].value() != 0 || !(*p)[i + r].is_const() || (*p)[i + r].value() != 0;
    user_assert(mode == "constant" || !padded || !x[i].is_const() || x[i].value() > 0)
        << c.node.describe() << ": cannot pad an empty axis in " << mode << " mode";
    Dim d = x[i] + (*p)[i] + (*p)[i + r];
    user_assert(!d.is_const() || d.value() >= 0) << c.node.describe() << ": pads make axis " << i << " negative";
    out.push_back(d);
  }
  c.set_output(0, c.input(0).dtype, out);
}

void shape_tile(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  auto reps = c.dim_values(1);
  Shape out;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!reps) {
      out.push_back(c.fresh());
      continue;
    }
    user_assert(reps->size() == x.size())
        << c.node.describe() << ": repeats has " << reps->size() << " entries for rank " << x.size();
    const Dim &k = (*reps)[i];
    user_assert(!k.is_const() || k.value() >= 0) << c.node.describe() << ": negative repeat " << k.value();
    out.push_back(x[i] * k);
  }
  c.set_output(0, c.input(0).dtype, out);
}

void shape_expand(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  user_assert(dtype_is_int(c.input(1).dtype)) << c.node.describe() << ": shape must be an integer tensor";
  auto target = c.dim_values(1);
  Shape t;
  if (target) {
    t = *target;
  } else {
    const Shape &ts = c.shape_of(1);
    user_assert(ts.size() == 1) << c.node.describe() << ": shape must be 1-D";
    if (!ts[0].is_const()) {
      c.out[0].dtype = c.input(0).dtype;
      return;
    }
    // Unknown target: the output rank is known, its dims are not.
    size_t r = std::max<size_t>(x.size(), static_cast<size_t>(ts[0].value()));
    Shape out;
    for (size_t i = 0; i < r; ++i) out.push_back(c.fresh());
    c.set_output(0, c.input(0).dtype, out);
    return;
  }
  c.set_output(0, c.input(0).dtype, broadcast_shapes(x, t, c.node));
}

// ---- block rearrangements and masks ---------------------------------------------------

void shape_depth_to_space(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  user_assert(x.size() == 4) << c.node.describe() << ": input must be 4-D";
  int64_t b = c.node.attr_i("blocksize", 0);
  user_assert(b > 0) << c.node.describe() << ": blocksize must be positive";
  std::string mode = c.node.attr_s("mode", "DCR");
  user_assert(mode == "DCR" || mode == "CRD") << c.node.describe() << ": mode must be DCR or CRD";
  if (x[1].is_const()) {
    user_assert(x[1].value() % (b * b) == 0)
        << c.node.describe() << ": channels " << x[1].value() << " not divisible by blocksize^2";
  }
  c.set_output(0, c.input(0).dtype, {x[0], x[1] / Dim(b * b), x[2] * Dim(b), x[3] * Dim(b)});
}

void shape_space_to_depth(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  user_assert(x.size() == 4) << c.node.describe() << ": input must be 4-D";
  int64_t b = c.node.attr_i("blocksize", 0);
  user_assert(b > 0) << c.node.describe() << ": blocksize must be positive";
  for (int i = 2; i < 4; ++i) {
    if (x[i].is_const()) {
      user_assert(x[i].value() % b == 0)
          << c.node.describe() << ": spatial dim " << x[i].value() << " not divisible by blocksize";
    }
  }
  c.set_output(0, c.input(0).dtype, {x[0], x[1] * Dim(b * b), x[2] / Dim(b), x[3] / Dim(b)});
}

void shape_trilu(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  user_assert(x.size() >= 2) << c.node.describe() << ": input must have rank >= 2";
  c.set_output(0, c.input(0).dtype, x);
}

void shape_eye_like(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  user_assert(x.size() == 2) << c.node.describe() << ": input must be 2-D";
  DType t = c.input(0).dtype;
  if (c.node.has_attr("dtype")) {
    int64_t d = c.node.attr_i("dtype", 0);
    user_assert(dtype_valid(static_cast<int>(d))) << c.node.describe() << ": unsupported dtype " << d;
    t = static_cast<DType>(d);
  }
  c.set_output(0, t, x);
}

void shape_reverse_sequence(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  user_assert(x.size() >= 2) << c.node.describe() << ": input must have rank >= 2";
  int64_t ba = c.node.attr_i("batch_axis", 1), ta = c.node.attr_i("time_axis", 0);
  user_assert((ba == 0 && ta == 1) || (ba == 1 && ta == 0))
      << c.node.describe() << ": batch_axis and time_axis must be 0 and 1 in some order";
  const Shape &l = c.shape_of(1);
  user_assert(l.size() == 1) << c.node.describe() << ": sequence_lens must be 1-D";
  c.set_output(0, c.input(0).dtype, x);
}

}  // namespace kiln
