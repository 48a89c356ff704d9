// Shape functions of the runtime-kernel ops (compiler/kernels_*.cpp). Dims that depend
// on the data (NonZero's count, Unique's size, NMS selections) are fresh symbols at
// compile time; at run time the kernels size their outputs themselves.
#include "graph/shape_fn.h"
#include "support/error.h"

namespace kiln {

namespace {

DType dtype_attr(const Node &n, const char *name, DType def) {
  if (!n.has_attr(name)) return def;
  int64_t v = n.attr_i(name, 0);
  user_assert(dtype_valid(static_cast<int>(v))) << n.describe() << ": unsupported " << name << " " << v;
  return static_cast<DType>(v);
}

void require_float(const ShapeContext &c, size_t i, const char *what) {
  DType t = c.input(i).dtype;
  user_assert(dtype_is_float(t)) << c.node.describe() << ": " << what << " must be a floating-point tensor, got "
                                 << dtype_name(t);
}

}  // namespace

void shape_topk(ShapeContext &c) {
  Shape s = c.shape_of(0);
  int axis = normalize_axis(c.node.attr_i("axis", -1), static_cast<int>(s.size()), c.node);
  Dim k;
  if (c.node.opset < 10) {
    user_assert(c.node.has_attr("k")) << c.node.describe() << ": needs attribute k";
    k = Dim(c.node.attr_i("k", 0));
  } else {
    auto v = c.dim_values(1);
    if (v) {
      user_assert(v->size() == 1) << c.node.describe() << ": K must have exactly one element";
      k = (*v)[0];
    } else {
      k = c.fresh();
    }
  }
  if (k.is_const()) {
    user_assert(k.value() >= 0) << c.node.describe() << ": K must not be negative, got " << k.value();
    if (s[axis].is_const()) {
      user_assert(k.value() <= s[axis].value())
          << c.node.describe() << ": K = " << k.value() << " exceeds the axis size " << s[axis].value();
    }
  }
  s[axis] = k;
  c.set_output(0, c.input(0).dtype, s);
  c.set_output(1, DType::I64, s);
}

void shape_nonzero(ShapeContext &c) {
  Shape s = c.shape_of(0);
  // A scalar counts as a 1-D tensor of one element (numpy's nonzero does the same).
  c.set_output(0, DType::I64, {Dim(std::max<int64_t>(1, static_cast<int64_t>(s.size()))), c.fresh()});
}

void shape_unique(ShapeContext &c) {
  const Shape &s = c.shape_of(0);
  Dim u = c.fresh();
  Dim total(1);
  for (auto &d : s) total = total * d;
  if (!c.node.has_attr("axis")) {
    c.set_output(0, c.input(0).dtype, {u});
    c.set_output(2, DType::I64, {total});
  } else {
    int axis = normalize_axis(c.node.attr_i("axis", 0), static_cast<int>(s.size()), c.node);
    Shape y = s;
    y[axis] = u;
    c.set_output(0, c.input(0).dtype, y);
    c.set_output(2, DType::I64, {s[axis]});
  }
  c.set_output(1, DType::I64, {u});
  c.set_output(3, DType::I64, {u});
}

void shape_nms(ShapeContext &c) {
  const Shape &b = c.shape_of(0), &s = c.shape_of(1);
  user_assert(b.size() == 3 && s.size() == 3) << c.node.describe() << ": boxes and scores must be 3-D";
  if (b[2].is_const()) {
    user_assert(b[2].value() == 4) << c.node.describe() << ": boxes must have 4 coordinates";
  }
  require_float(c, 0, "boxes");
  c.set_output(0, DType::I64, {c.fresh(), Dim(3)});
}

void shape_roi_align(ShapeContext &c) {
  const Shape &x = c.shape_of(0), &r = c.shape_of(1);
  require_float(c, 0, "X");
  user_assert(x.size() == 4) << c.node.describe() << ": X must be 4-D";
  user_assert(r.size() == 2) << c.node.describe() << ": rois must be 2-D";
  if (r[1].is_const()) {
    user_assert(r[1].value() == 4) << c.node.describe() << ": rois must have 4 coordinates";
  }
  std::string mode = c.node.attr_s("mode", "avg");
  user_assert(mode == "avg" || mode == "max") << c.node.describe() << ": mode must be avg or max, got '" << mode << "'";
  int64_t oh = c.node.attr_i("output_height", 1), ow = c.node.attr_i("output_width", 1);
  user_assert(oh > 0 && ow > 0) << c.node.describe() << ": output size must be positive";
  c.set_output(0, c.input(0).dtype, {r[0], x[1], Dim(oh), Dim(ow)});
}

void shape_grid_sample(ShapeContext &c) {
  const Shape &x = c.shape_of(0), &g = c.shape_of(1);
  require_float(c, 0, "X");
  user_assert(x.size() == 4 && g.size() == 4) << c.node.describe() << ": X and grid must be 4-D";
  if (g[3].is_const()) {
    user_assert(g[3].value() == 2) << c.node.describe() << ": grid's last dim must be 2";
  }
  c.set_output(0, c.input(0).dtype, {x[0], x[1], g[1], g[2]});
}

// RandomNormal, RandomUniform: shape and dtype from attributes.
void shape_random(ShapeContext &c) {
  user_assert(c.node.has_attr("shape")) << c.node.describe() << ": needs attribute shape";
  Shape s;
  for (int64_t d : c.node.attr_ints("shape")) {
    user_assert(d >= 0) << c.node.describe() << ": negative dim " << d << " in shape";
    s.emplace_back(d);
  }
  DType t = dtype_attr(c.node, "dtype", DType::F32);
  user_assert(dtype_is_float(t)) << c.node.describe() << ": dtype must be a floating-point type";
  c.set_output(0, t, s);
}

// RandomNormalLike, RandomUniformLike, Bernoulli: the input's shape.
void shape_random_like(ShapeContext &c) {
  DType t = dtype_attr(c.node, "dtype", c.input(0).dtype);
  if (c.node.kind != OpKind::Bernoulli) {
    user_assert(dtype_is_float(t)) << c.node.describe() << ": dtype must be a floating-point type";
  } else {
    require_float(c, 0, "input");
  }
  c.set_output(0, t, c.shape_of(0));
}

void shape_multinomial(ShapeContext &c) {
  const Shape &s = c.shape_of(0);
  require_float(c, 0, "input");
  user_assert(s.size() == 2) << c.node.describe() << ": input must be [batch, classes]";
  DType t = dtype_attr(c.node, "dtype", DType::I32);
  user_assert(t == DType::I32 || t == DType::I64) << c.node.describe() << ": dtype must be int32 or int64";
  int64_t n = c.node.attr_i("sample_size", 1);
  user_assert(n >= 1) << c.node.describe() << ": sample_size must be positive";
  c.set_output(0, t, {s[0], Dim(n)});
}

void shape_string_normalizer(ShapeContext &c) {
  const Shape &s = c.shape_of(0);
  user_assert(c.input(0).dtype == DType::String) << c.node.describe() << ": input must be a string tensor";
  user_assert(s.size() == 1 || (s.size() == 2 && (!s[0].is_const() || s[0].value() == 1)))
      << c.node.describe() << ": input must be [C] or [1, C]";
  std::string action = c.node.attr_s("case_change_action", "NONE");
  user_assert(action == "NONE" || action == "LOWER" || action == "UPPER")
      << c.node.describe() << ": case_change_action must be NONE, LOWER or UPPER, got '" << action << "'";
  Shape o = s;
  bool stopwords = c.node.has_attr("stopwords") && !c.node.attrs.at("stopwords").strings.empty();
  o.back() = stopwords ? c.fresh() : s.back();
  c.set_output(0, DType::String, o);
}

void shape_tfidf(ShapeContext &c) {
  const Shape &s = c.shape_of(0);
  DType t = c.input(0).dtype;
  user_assert(t == DType::String || t == DType::I32 || t == DType::I64)
      << c.node.describe() << ": input must be string, int32 or int64, got " << dtype_name(t);
  user_assert(s.size() == 1 || s.size() == 2) << c.node.describe() << ": input must be 1-D or 2-D";
  int64_t width = 0;
  for (int64_t i : c.node.attr_ints("ngram_indexes")) {
    user_assert(i >= 0) << c.node.describe() << ": negative ngram index " << i;
    width = std::max(width, i + 1);
  }
  std::string mode = c.node.attr_s("mode", "");
  user_assert(mode == "TF" || mode == "IDF" || mode == "TFIDF")
      << c.node.describe() << ": mode must be TF, IDF or TFIDF, got '" << mode << "'";
  if (s.size() == 1) {
    c.set_output(0, DType::F32, {Dim(width)});
  } else {
    c.set_output(0, DType::F32, {s[0], Dim(width)});
  }
}

void shape_sample_gather(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  int64_t n = c.node.attr_i("samples", 0);
  user_assert(n > 0 && !x.empty()) << c.node.describe() << ": needs a positive `samples` and an input of rank >= 1";
  Shape out = x;
  out[0] = Dim(n);
  c.set_output(0, c.input(0).dtype, out);
}

}  // namespace kiln
