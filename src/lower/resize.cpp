// Compute definition of Resize (opsets 10-17) and Upsample: every output element maps
// back to a coordinate in the input along each dim (coordinate_transformation_mode), and
// is the separable interpolation (nearest, n-linear, n-cubic) of the input around it.
// Coordinates and weights are computed in f64 like the ONNX reference.
#include <array>
#include <functional>
#include <tuple>

#include "lower/lower.h"
#include "support/error.h"

namespace kiln {

namespace {

const Type kF64 = Type::f(64);

Expr f64(double v) { return make_const(kF64, v); }

struct ResizeAttrs {
  std::string mode, coord, nearest;
  double cubic_a = -0.75, extrapolation = 0;
  bool exclude_outside = false;
  int roi_in = -1, scales_in = -1, sizes_in = -1;
};

ResizeAttrs read_attrs(const Node &n) {
  ResizeAttrs r;
  r.mode = n.attr_s("mode", "nearest");
  if (r.mode == "bilinear" || r.mode == "trilinear") r.mode = "linear";
  bool modern = n.kind == OpKind::Resize && n.opset >= 11;
  // Upsample and Resize-10 sample at x / scale and round nearest down when upsampling.
  r.coord = modern ? n.attr_s("coordinate_transformation_mode", "half_pixel") : "asymmetric";
  r.nearest = modern ? n.attr_s("nearest_mode", "round_prefer_floor") : "simple";
  r.cubic_a = n.attr_f("cubic_coeff_a", -0.75);
  r.exclude_outside = n.attr_i("exclude_outside", 0) != 0;
  r.extrapolation = n.attr_f("extrapolation_value", 0.0);
  if (n.kind == OpKind::Upsample) {
    r.scales_in = n.opset >= 9 ? 1 : -1;
  } else if (n.opset < 11) {
    r.scales_in = 1;
  } else {
    r.roi_in = 1;
    r.scales_in = 2;
    r.sizes_in = 3;
  }
  user_assert(r.mode == "nearest" || r.mode == "linear" || r.mode == "cubic")
      << n.describe() << ": unknown mode '" << r.mode << "'";
  static const char *kCoords[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                                  "tf_half_pixel_for_nn", "tf_crop_and_resize"};
  bool known = false;
  for (const char *k : kCoords) known = known || r.coord == k;
  user_assert(known) << n.describe() << ": unknown coordinate_transformation_mode '" << r.coord << "'";
  user_assert(r.nearest == "round_prefer_floor" || r.nearest == "round_prefer_ceil" || r.nearest == "floor" ||
              r.nearest == "ceil" || r.nearest == "simple")
      << n.describe() << ": unknown nearest_mode '" << r.nearest << "'";
  return r;
}

bool is_empty(const Operand &o) {
  for (auto &d : o.shape) {
    if (is_const(d, 0)) return true;
  }
  return false;
}

// Where output index `o` of a dim samples the input. `scale` and `length` are f64;
// `length` is scale times the input extent, the float output length the ONNX reference
// uses (also in its length == 1 cases), so align_corners with scales whose product with
// the input extent is fractional follows the reference, not ONNX Runtime. With a single
// output, pytorch_half_pixel samples 0 as the spec and ONNX Runtime do.
Expr source_coordinate(const ResizeAttrs &ra, const Expr &o, const Expr &in, const Expr &out, const Expr &scale,
                       const Expr &length, double roi_lo, double roi_hi) {
  Expr xo = cast(kF64, o), li = cast(kF64, in);
  const std::string &m = ra.coord;
  if (m == "half_pixel") return (xo + f64(0.5)) / scale - f64(0.5);
  if (m == "pytorch_half_pixel") return select(out > Expr(1), (xo + f64(0.5)) / scale - f64(0.5), f64(0));
  if (m == "align_corners") return select(length == f64(1), f64(0), xo * (li - f64(1)) / (length - f64(1)));
  if (m == "tf_half_pixel_for_nn") return (xo + f64(0.5)) / scale;
  if (m == "tf_crop_and_resize") {
    Expr span = f64(roi_hi - roi_lo) * (li - f64(1));
    return select(length == f64(1), f64(0.5 * (roi_lo + roi_hi)) * (li - f64(1)),
                  f64(roi_lo) * (li - f64(1)) + xo * span / (length - f64(1)));
  }
  return xo / scale;  // asymmetric
}

Expr nearest_round(const ResizeAttrs &ra, const Expr &x, const Expr &scale) {
  const std::string &m = ra.nearest;
  if (m == "round_prefer_floor") return call("ceil", {x - f64(0.5)});
  if (m == "round_prefer_ceil") return call("floor", {x + f64(0.5)});
  if (m == "floor") return call("floor", {x});
  if (m == "ceil") return call("ceil", {x});
  return select(scale < f64(1), call("ceil", {x}), call("floor", {x}));  // simple
}

std::array<Expr, 4> cubic_coeffs(const Expr &r, double a) {
  Expr r1 = r + f64(1), s = f64(1) - r, s1 = s + f64(1);
  auto outer = [&](const Expr &t) { return ((f64(a) * t - f64(5 * a)) * t + f64(8 * a)) * t - f64(4 * a); };
  auto inner = [&](const Expr &t) { return (f64(a + 2) * t - f64(a + 3)) * t * t + f64(1); };
  return {outer(r1), inner(r), inner(s), outer(s1)};
}

// The taps of one output index `o` along a resized dim: clamped input indices, their
// weights (none for nearest) and, for tf_crop_and_resize, whether the coordinate is
// outside the input. `lets` binds the shared subexpressions, outermost first.
struct DimTaps {
  std::vector<Expr> index, weight;
  Expr outside;
  std::vector<std::pair<std::string, Expr>> lets;
};

DimTaps dim_taps(LowerContext &c, const ResizeAttrs &ra, const Expr &o, const Expr &in, const Expr &out,
                 const Expr &scale, const Expr &length, double roi_lo, double roi_hi) {
  DimTaps t;
  auto bind = [&](const Expr &e) {
    t.lets.emplace_back(c.fresh("rs"), e);
    return Var::make(e.type(), t.lets.back().first);
  };
  Expr xs = bind(source_coordinate(ra, o, in, out, scale, length, roi_lo, roi_hi));
  Expr last = in - Expr(1);
  auto clamp = [&](const Expr &i) { return max(min(i, last), Expr(0)); };
  t.outside = xs < f64(0) || xs > cast(kF64, last);
  if (ra.mode == "nearest") {
    t.index = {clamp(cast(Type::index(), nearest_round(ra, xs, scale)))};
    return t;
  }
  Expr fl = bind(call("floor", {xs}));
  Expr ratio = bind(xs - fl);
  Expr i0 = bind(cast(Type::index(), fl));
  if (ra.mode == "linear") {
    t.index = {clamp(i0), clamp(i0 + Expr(1))};
    t.weight = {f64(1) - ratio, ratio};
    return t;
  }
  std::array<Expr, 4> k = cubic_coeffs(ratio, ra.cubic_a);
  for (int j = 0; j < 4; ++j) {
    Expr i = i0 + Expr(j - 1);
    t.index.push_back(clamp(i));
    t.weight.push_back(ra.exclude_outside ? bind(select(i >= Expr(0) && i <= last, k[j], f64(0))) : k[j]);
  }
  if (ra.exclude_outside) {
    Expr sum = bind(t.weight[0] + t.weight[1] + t.weight[2] + t.weight[3]);
    for (auto &w : t.weight) w = w / sum;
  }
  return t;
}

}  // namespace

Stmt lower_resize(LowerContext &c) {
  const Node &n = c.node;
  const Operand &x = c.in[0], &y = c.out[0];
  int rank = x.rank();
  ResizeAttrs ra = read_attrs(n);
  bool crop = ra.coord == "tf_crop_and_resize";
  std::vector<double> roi(2 * rank, 0.0);
  for (int d = 0; d < rank; ++d) roi[d + rank] = 1.0;
  if (crop) {
    user_assert(ra.roi_in >= 0 && c.has(ra.roi_in)) << n.describe() << ": tf_crop_and_resize needs roi";
    const Tensor &t = c.value(ra.roi_in);
    user_assert(t.numel() == 2 * rank) << n.describe() << ": roi must have " << 2 * rank << " elements";
    for (int i = 0; i < 2 * rank; ++i) roi[i] = t.get_f64(i);
  }
  std::vector<Expr> scale(rank), length(rank);
  std::vector<bool> identity(rank);
  if (ra.sizes_in >= 0 && c.has(ra.sizes_in) && !is_empty(c.in[ra.sizes_in])) {
    for (int d = 0; d < rank; ++d) {
      length[d] = cast(kF64, y.shape[d]);
      scale[d] = length[d] / cast(kF64, x.shape[d]);
      auto *i = x.shape[d].as<IntImm>(), *o = y.shape[d].as<IntImm>();
      identity[d] = i && o && i->value == o->value;
    }
  } else {
    std::vector<double> s;
    if (ra.scales_in < 0) {
      s = n.attr_floats("scales");
    } else {
      user_assert(c.has(ra.scales_in)) << n.describe() << ": needs scales or sizes";
      const Tensor &t = c.value(ra.scales_in);
      for (int64_t i = 0; i < t.numel(); ++i) s.push_back(t.get_f64(i));
    }
    user_assert(static_cast<int>(s.size()) == rank) << n.describe() << ": scales must have " << rank << " elements";
    for (int d = 0; d < rank; ++d) {
      scale[d] = f64(s[d]);
      length[d] = scale[d] * cast(kF64, x.shape[d]);
      identity[d] = s[d] == 1.0;
    }
  }
  for (int d = 0; d < rank; ++d) identity[d] = identity[d] && roi[d] == 0.0 && roi[d + rank] == 1.0;

  // Each resized dim's taps (input indices, weights, and for tf_crop_and_resize whether
  // the coordinate falls outside) depend on that dim's output index only: tabulate them
  // per dim before the main loop nest, which then only gathers.
  struct Tables {
    std::vector<std::string> index, weight;
    std::string outside;
  };
  std::vector<Tables> tab(rank);
  std::vector<Stmt> fill;
  std::vector<std::tuple<std::string, Type, Expr>> scratch;
  int ntaps = ra.mode == "nearest" ? 1 : ra.mode == "linear" ? 2 : 4;
  for (int d = 0; d < rank; ++d) {
    if (identity[d]) continue;
    for (int j = 0; j < ntaps; ++j) {
      tab[d].index.push_back(c.fresh("taps"));
      scratch.emplace_back(tab[d].index.back(), Type::index(), y.shape[d]);
      if (ntaps > 1) {
        tab[d].weight.push_back(c.fresh("weights"));
        scratch.emplace_back(tab[d].weight.back(), kF64, y.shape[d]);
      }
    }
    if (crop) {
      tab[d].outside = c.fresh("outside");
      scratch.emplace_back(tab[d].outside, Type::u(8), y.shape[d]);
    }
    fill.push_back(loop_nest(c, {y.shape[d]}, [&](const std::vector<Expr> &o) {
      DimTaps t = dim_taps(c, ra, o[0], x.shape[d], y.shape[d], scale[d], length[d], roi[d], roi[d + rank]);
      std::vector<Stmt> st;
      for (int j = 0; j < ntaps; ++j) {
        st.push_back(Store::make(tab[d].index[j], t.index[j], o[0]));
        if (ntaps > 1) st.push_back(Store::make(tab[d].weight[j], t.weight[j], o[0]));
      }
      if (crop) st.push_back(Store::make(tab[d].outside, cast(Type::u(8), t.outside), o[0]));
      Stmt body = Block::make(st);
      for (size_t i = t.lets.size(); i-- > 0;) body = LetStmt::make(t.lets[i].first, t.lets[i].second, body);
      return body;
    }));
  }

  fill.push_back(parallel_loop_nest(c, y.shape, [&](const std::vector<Expr> &o) {
    Expr outside = make_const(Type::boolean(), 0);
    std::vector<std::vector<Expr>> taps(rank), weights(rank);
    for (int d = 0; d < rank; ++d) {
      if (identity[d]) {
        taps[d] = {o[d]};
        continue;
      }
      for (int j = 0; j < ntaps; ++j) {
        taps[d].push_back(Load::make(Type::index(), tab[d].index[j], o[d]));
        if (ntaps > 1) weights[d].push_back(Load::make(kF64, tab[d].weight[j], o[d]));
      }
      if (crop) outside = outside || Load::make(Type::u(8), tab[d].outside, o[d]) != make_const(Type::u(8), 0);
    }
    // Sum over every combination of taps of the weighted input values.
    Expr value;
    std::vector<Expr> idx(rank);
    std::function<void(int, Expr)> combine = [&](int d, Expr w) {
      if (d == rank) {
        Expr v = load(x, idx);
        if (ra.mode != "nearest") v = w.defined() ? w * cast(kF64, v) : cast(kF64, v);
        value = value.defined() ? value + v : v;
        return;
      }
      for (size_t j = 0; j < taps[d].size(); ++j) {
        idx[d] = taps[d][j];
        combine(d + 1, weights[d].empty() ? w : (w.defined() ? w * weights[d][j] : weights[d][j]));
      }
    };
    combine(0, Expr());
    Type ct = y.compute();
    if (ra.mode != "nearest") value = ct.is_float() ? cast(ct, value) : cast(ct, call("round", {value}));
    if (crop) value = select(outside, make_const(ct, ra.extrapolation), value);
    return store(y, o, value);
  }));
  Stmt s = Block::make(fill);
  for (auto &[name, type, size] : scratch) s = Allocate::make(name, type, size, s);
  return s;
}

}  // namespace kiln
