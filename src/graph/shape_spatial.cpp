// Shape functions of pooling, ConvTranspose, Resize/Upsample, quantization, Einsum,
// window functions and Det.
#include <cmath>
#include <map>
#include <optional>

#include "graph/conv_attrs.h"
#include "graph/einsum_equation.h"
#include "graph/shape_fn.h"
#include "support/error.h"

namespace kiln {

namespace {

int spatial_rank(const ShapeContext &c, const Shape &x) {
  user_assert(x.size() >= 3) << c.node.describe() << ": input must be N x C x D1 x ... (rank >= 3), got rank "
                             << x.size();
  return static_cast<int>(x.size()) - 2;
}

void require_float(const ShapeContext &c, size_t i) {
  user_assert(dtype_is_float(c.input(i).dtype))
      << c.node.describe() << ": input " << i << " must be a floating-point tensor, got "
      << dtype_name(c.input(i).dtype);
}

void check_positive(const ShapeContext &c, const Dim &d) {
  user_assert(!d.is_const() || d.value() > 0) << c.node.describe() << ": output size would be " << d.value();
}

// Runs another op's shape function on a subset of this node's inputs (QLinearConv's x and
// w are inputs 0 and 3); `dtype` overrides the inputs' element types for checks that
// want them equal.
ValueInfo shape_via(ShapeContext &c, ShapeFn fn, std::vector<size_t> inputs, DType dtype) {
  std::vector<ValueInfo> in;
  for (size_t i : inputs) {
    ValueInfo v = c.input(i);
    v.dtype = dtype;
    in.push_back(v);
  }
  ShapeContext sub(c.node, std::move(in), c.fresh);
  fn(sub);
  return sub.out[0];
}

// Scalar or 1-D tensor of `n` elements along `axis` of a rank-`rank` tensor.
void check_quant_param(const ShapeContext &c, size_t i, const Shape &x) {
  if (!c.has(i) || !c.input(i).has_shape) return;
  const Shape &s = c.input(i).shape;
  if (s.empty() || (s.size() == 1 && s[0].is_const() && s[0].value() == 1)) return;
  user_assert(s.size() == 1) << c.node.describe() << ": input " << i << " must be a scalar or 1-D (per-axis)";
  int axis = normalize_axis(c.node.attr_i("axis", 1), static_cast<int>(x.size()), c.node);
  if (s[0].is_const() && x[axis].is_const()) {
    user_assert(s[0].value() == x[axis].value())
        << c.node.describe() << ": per-axis input " << i << " has " << s[0].value() << " elements, axis " << axis
        << " has " << x[axis].value();
  }
}

bool is_empty_tensor(const ValueInfo &v) {
  if (!v.has_shape) return false;
  for (auto &d : v.shape) {
    if (d.is_const() && d.value() == 0) return true;
  }
  return false;
}

// floor(in * scale), kept symbolic where the scale is an integer or an exact 1/k.
Dim scaled_dim(ShapeContext &c, const Dim &in, double scale) {
  if (scale == 1.0) return in;
  if (in.is_const()) return Dim(static_cast<int64_t>(std::floor(static_cast<double>(in.value()) * scale)));
  double r = std::round(scale), inv = std::round(1.0 / scale);
  if (r == scale && r >= 1) return in * Dim(static_cast<int64_t>(r));
  if (inv >= 1 && scale * inv == 1.0) return in / Dim(static_cast<int64_t>(inv));
  return c.fresh();
}

}  // namespace

void shape_pool(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  int sp = spatial_rank(c, x);
  DType t = c.input(0).dtype;
  if (c.node.kind != OpKind::MaxPool) require_float(c, 0);
  ConvAttrs a = ConvAttrs::read(c.node, sp, {});
  Shape out = {x[0], x[1]};
  for (int i = 0; i < sp; ++i) {
    Dim o, pb;
    a.geometry(i, x[i + 2], o, pb);
    check_positive(c, o);
    out.push_back(o);
  }
  c.set_output(0, t, out);
  if (c.node.kind == OpKind::MaxPool) {
    int64_t order = c.node.attr_i("storage_order", 0);
    user_assert(order == 0 || order == 1) << c.node.describe() << ": storage_order must be 0 or 1";
    c.set_output(1, DType::I64, out);
  }
}

void shape_global_pool(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  int sp = spatial_rank(c, x);
  if (c.node.kind != OpKind::GlobalMaxPool) require_float(c, 0);
  Shape out = {x[0], x[1]};
  for (int i = 0; i < sp; ++i) out.push_back(Dim(1));
  c.set_output(0, c.input(0).dtype, out);
}

void shape_max_unpool(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  int sp = spatial_rank(c, x);
  user_assert(c.input(1).dtype == DType::I64) << c.node.describe() << ": indices must be int64";
  ConvAttrs a = ConvAttrs::read(c.node, sp, {});
  Shape out;
  if (c.has(2)) {
    auto v = c.dim_values(2);
    if (v) {
      user_assert(v->size() == x.size()) << c.node.describe() << ": output_shape must have " << x.size() << " elements";
      out = *v;
    } else {
      for (size_t i = 0; i < x.size(); ++i) out.push_back(c.fresh());
    }
  } else {
    out = {x[0], x[1]};
    for (int i = 0; i < sp; ++i) {
      out.push_back((x[i + 2] - Dim(1)) * Dim(a.strides[i]) + Dim(a.kernel[i] - a.pads[i] - a.pads[i + sp]));
      check_positive(c, out.back());
    }
  }
  c.set_output(0, c.input(0).dtype, out);
}

void shape_conv_transpose(ShapeContext &c) {
  const Shape &x = c.shape_of(0), &w = c.shape_of(1);
  int sp = spatial_rank(c, x);
  user_assert(w.size() == x.size()) << c.node.describe() << ": weight rank " << w.size()
                                    << " does not match input rank " << x.size();
  std::vector<int64_t> wk;
  for (int i = 0; i < sp; ++i) {
    user_assert(w[i + 2].is_const()) << c.node.describe() << ": weight kernel dims must be static";
    wk.push_back(w[i + 2].value());
  }
  ConvAttrs a = ConvAttrs::read(c.node, sp, wk);
  if (w[0].is_const() && x[1].is_const()) {
    user_assert(w[0].value() == x[1].value())
        << c.node.describe() << ": weight expects " << w[0].value() << " input channels, input has " << x[1].value();
  }
  if (x[1].is_const()) {
    user_assert(x[1].value() % a.group == 0) << c.node.describe() << ": channels not divisible by group";
  }
  user_assert(c.input(0).dtype == c.input(1).dtype) << c.node.describe() << ": input types differ";
  Shape out = {x[0], w[1] * Dim(a.group)};
  for (int i = 0; i < sp; ++i) {
    Dim o, pb;
    a.transpose_geometry(i, x[i + 2], o, pb);
    check_positive(c, o);
    out.push_back(o);
  }
  c.set_output(0, c.input(0).dtype, out);
}

// Resize (opset 10: X, scales; 11+: X, roi, scales, sizes) and Upsample (opset 7: scales
// attribute; 9: X, scales).
void shape_resize(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  int rank = static_cast<int>(x.size());
  const Node &n = c.node;
  user_assert(!n.has_attr("axes") && n.attr_s("keep_aspect_ratio_policy", "stretch") == "stretch" &&
              n.attr_i("antialias", 0) == 0)
      << n.describe() << ": axes, keep_aspect_ratio_policy and antialias (opset 18) are not supported";
  int scales_in = -1, sizes_in = -1;
  if (n.kind == OpKind::Upsample) {
    scales_in = n.opset >= 9 ? 1 : -1;
  } else if (n.opset < 11) {
    scales_in = 1;
  } else {
    scales_in = 2;
    sizes_in = 3;
  }
  Shape out;
  if (sizes_in >= 0 && c.has(sizes_in) && !is_empty_tensor(c.input(sizes_in))) {
    user_assert(!c.has(scales_in) || is_empty_tensor(c.input(scales_in)))
        << n.describe() << ": only one of scales and sizes may be given";
    auto v = c.dim_values(sizes_in);
    if (v) {
      user_assert(static_cast<int>(v->size()) == rank) << n.describe() << ": sizes must have " << rank << " elements";
      out = *v;
    } else {
      for (int i = 0; i < rank; ++i) out.push_back(c.fresh());
    }
  } else {
    std::optional<std::vector<double>> s;
    if (scales_in < 0) {
      s = n.attr_floats("scales");
    } else {
      user_assert(c.has(scales_in)) << n.describe() << ": needs scales or sizes";
      s = c.float_values(scales_in);
    }
    if (s) {
      // floor(in * scale), also for tf_crop_and_resize: the ONNX reference and ONNX Runtime
      // ignore the roi extent the spec text multiplies in.
      user_assert(static_cast<int>(s->size()) == rank) << n.describe() << ": scales must have " << rank << " elements";
      for (int i = 0; i < rank; ++i) {
        user_assert((*s)[i] > 0) << n.describe() << ": scales must be positive";
        out.push_back(scaled_dim(c, x[i], (*s)[i]));
      }
    } else {
      for (int i = 0; i < rank; ++i) out.push_back(c.fresh());
    }
  }
  c.set_output(0, c.input(0).dtype, out);
}

void shape_quantize_linear(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  require_float(c, 0);
  user_assert(c.node.attr_i("block_size", 0) == 0) << c.node.describe() << ": blocked quantization is not supported";
  DType t = c.has(2) ? c.input(2).dtype : DType::U8;
  user_assert(t == DType::U8 || t == DType::I8 || t == DType::U16 || t == DType::I16)
      << c.node.describe() << ": unsupported quantized type " << dtype_name(t);
  check_quant_param(c, 1, x);
  check_quant_param(c, 2, x);
  c.set_output(0, t, x);
}

void shape_dequantize_linear(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  user_assert(dtype_is_int(c.input(0).dtype)) << c.node.describe() << ": input must be an integer tensor";
  user_assert(c.node.attr_i("block_size", 0) == 0) << c.node.describe() << ": blocked quantization is not supported";
  require_float(c, 1);
  check_quant_param(c, 1, x);
  check_quant_param(c, 2, x);
  c.set_output(0, c.input(1).dtype, x);
}

void shape_dynamic_quantize_linear(ShapeContext &c) {
  require_float(c, 0);
  c.set_output(0, DType::U8, c.shape_of(0));
  c.set_output(1, DType::F32, {});
  c.set_output(2, DType::U8, {});
}

void shape_matmul_integer(ShapeContext &c) {
  DType a = c.input(0).dtype, b = c.input(1).dtype;
  user_assert((a == DType::U8 || a == DType::I8) && (b == DType::U8 || b == DType::I8))
      << c.node.describe() << ": inputs must be int8 or uint8";
  ValueInfo o = shape_via(c, &shape_matmul, {0, 1}, a);
  c.set_output(0, DType::I32, o.shape);
}

void shape_conv_integer(ShapeContext &c) {
  DType x = c.input(0).dtype, w = c.input(1).dtype;
  user_assert((x == DType::U8 || x == DType::I8) && (w == DType::U8 || w == DType::I8))
      << c.node.describe() << ": inputs must be int8 or uint8";
  ValueInfo o = shape_via(c, &shape_conv, {0, 1}, x);
  c.set_output(0, DType::I32, o.shape);
}

void shape_qlinear_matmul(ShapeContext &c) {
  ValueInfo o = shape_via(c, &shape_matmul, {0, 3}, c.input(0).dtype);
  c.set_output(0, c.input(7).dtype, o.shape);
}

void shape_qlinear_conv(ShapeContext &c) {
  ValueInfo o = shape_via(c, &shape_conv, {0, 3}, c.input(0).dtype);
  user_assert(!c.has(8) || c.input(8).dtype == DType::I32) << c.node.describe() << ": bias must be int32";
  c.set_output(0, c.input(7).dtype, o.shape);
}

void shape_einsum(ShapeContext &c) {
  user_assert(!c.in.empty()) << c.node.describe() << ": needs at least one input";
  std::vector<int> ranks;
  DType t = c.input(0).dtype;
  for (size_t i = 0; i < c.in.size(); ++i) {
    ranks.push_back(static_cast<int>(c.shape_of(i).size()));
    user_assert(c.input(i).dtype == t) << c.node.describe() << ": input types differ";
  }
  EinsumEquation e = EinsumEquation::parse(c.node.attr_s("equation", ""), ranks, c.node);
  std::map<int, Dim> size;
  for (size_t i = 0; i < c.in.size(); ++i) {
    const Shape &s = c.shape_of(i);
    for (size_t a = 0; a < s.size(); ++a) {
      int l = e.inputs[i][a];
      auto it = size.find(l);
      if (it == size.end()) {
        size[l] = s[a];
      } else if (l >= EinsumEquation::kEllipsis) {
        it->second = broadcast_shapes({it->second}, {s[a]}, c.node)[0];
      } else if (it->second.is_const() && s[a].is_const()) {
        user_assert(it->second.value() == s[a].value())
            << c.node.describe() << ": einsum label has sizes " << it->second.value() << " and " << s[a].value();
      }
    }
  }
  Shape out;
  for (int l : e.output) out.push_back(size.at(l));
  c.set_output(0, t, out);
}

void shape_window(ShapeContext &c) {
  const ValueInfo &s = c.input(0);
  user_assert(s.dtype == DType::I32 || s.dtype == DType::I64) << c.node.describe() << ": size must be int32 or int64";
  int64_t t = c.node.attr_i("output_datatype", 1);
  user_assert(dtype_valid(static_cast<int>(t)) && t != static_cast<int64_t>(DType::String) &&
              t != static_cast<int64_t>(DType::Bool))
      << c.node.describe() << ": unsupported output_datatype " << t;
  auto v = c.dim_values(0);
  Dim n = v && v->size() == 1 ? (*v)[0] : c.fresh();
  user_assert(!n.is_const() || n.value() >= 0) << c.node.describe() << ": negative window size";
  c.set_output(0, static_cast<DType>(t), {n});
}

void shape_det(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  require_float(c, 0);
  user_assert(x.size() >= 2) << c.node.describe() << ": input must have rank >= 2";
  const Dim &m = x[x.size() - 2], &n = x.back();
  if (m.is_const() && n.is_const()) {
    user_assert(m.value() == n.value()) << c.node.describe() << ": matrices must be square, got " << m.value() << "x"
                                        << n.value();
  }
  c.set_output(0, c.input(0).dtype, Shape(x.begin(), x.end() - 2));
}

}  // namespace kiln
