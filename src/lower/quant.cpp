// Compute definitions of the quantization ops: QuantizeLinear, DequantizeLinear,
// DynamicQuantizeLinear, and the integer matmul/conv families (MatMulInteger,
// ConvInteger, QLinearMatMul, QLinearConv). Integer products accumulate in i32.
#include <functional>

#include "graph/conv_attrs.h"
#include "lower/lower.h"
#include "support/error.h"

namespace kiln {

namespace {

const Type kI32 = Type::i(32);
const Type kF32 = Type::f(32);

// Element of a scale or zero point that applies at index `i` of the tensor it quantizes:
// per-tensor (a scalar or one element) or per-axis (1-D along `axis`). Absent: zero.
Expr quant_param(const Operand &p, const std::vector<Expr> &i, int axis, Type t) {
  if (!p.present()) return make_zero(t);
  if (p.rank() == 0) return cast(t, load_flat(p, Expr(0)));
  const Expr &n = p.shape[0];
  Expr k = is_const(n, 1) ? Expr(0) : is_const(n) ? i[axis] : select(n == Expr(1), Expr(0), i[axis]);
  return cast(t, load_flat(p, k));
}

// Input i, or an absent operand when the node omits it.
const Operand &optional_input(const LowerContext &c, size_t i) {
  static const Operand kAbsent;
  return c.has(i) ? c.in[i] : kAbsent;
}

int quant_axis(const LowerContext &c, int rank) {
  int64_t axis = c.node.attr_i("axis", 1);
  if (rank == 0) return 0;
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

// The representable range of an integer storage type.
Expr saturate(const Expr &v, DType t) {
  Type st = type_of(t);
  return min(max(v, cast(v.type(), type_min(st))), cast(v.type(), type_max(st)));
}

Expr quantize(const Expr &real, const Expr &scale, const Expr &zero_point, DType t) {
  Expr q = call("round", {real / scale}) + zero_point;
  return cast(type_of(t), saturate(q, t));
}

}  // namespace

Stmt lower_quantize_linear(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  int axis = quant_axis(c, x.rank());
  Type ct = x.compute();
  return compute(c, y, [&](const std::vector<Expr> &i) {
    Expr scale = quant_param(c.in[1], i, axis, ct), zero_point = quant_param(optional_input(c, 2), i, axis, ct);
    return quantize(load(x, i), scale, zero_point, y.dtype);
  });
}

Stmt lower_dequantize_linear(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  int axis = quant_axis(c, x.rank());
  Type ct = y.compute();
  return compute(c, y, [&](const std::vector<Expr> &i) {
    Expr zp = quant_param(optional_input(c, 2), i, axis, Type::index());
    Expr shifted = cast(Type::index(), load(x, i)) - zp;
    return cast(ct, shifted) * quant_param(c.in[1], i, axis, ct);
  });
}

// y_scale = (max(x, 0) - min(x, 0)) / 255, y_zero_point = round(-min / y_scale), and x
// quantized to uint8 with them. An all-zero x gets scale 0 and zero point 0.
Stmt lower_dynamic_quantize_linear(LowerContext &c) {
  const Operand &x = c.in[0];
  Type t = x.compute();
  std::string lo = c.fresh("lo"), hi = c.fresh("hi"), sc = c.fresh("scale"), zp = c.fresh("zp");
  Expr vlo = Load::make(t, lo, Expr(0)), vhi = Load::make(t, hi, Expr(0));
  Expr vsc = Load::make(t, sc, Expr(0)), vzp = Load::make(t, zp, Expr(0));
  Stmt scan = loop_nest(c, x.shape, [&](const std::vector<Expr> &i) {
    Expr v = load(x, i);
    return Block::make({Store::make(lo, min(vlo, v), Expr(0)), Store::make(hi, max(vhi, v), Expr(0))});
  });
  Expr scale = (vhi - vlo) / make_const(t, 255);
  Expr zero_point = select(vsc == make_zero(t), make_zero(t),
                           call("round", {min(max(-vlo / vsc, make_zero(t)), make_const(t, 255))}));
  std::vector<Stmt> body = {Store::make(lo, make_zero(t), Expr(0)), Store::make(hi, make_zero(t), Expr(0)), scan,
                            Store::make(sc, scale, Expr(0)), Store::make(zp, zero_point, Expr(0))};
  if (c.out[0].present()) {
    body.push_back(compute(c, c.out[0], [&](const std::vector<Expr> &i) {
      Expr q = quantize(load(x, i), vsc, vzp, DType::U8);
      return select(vsc == make_zero(t), make_const(Type::u(8), 0), q);
    }));
  }
  if (c.out.size() > 1 && c.out[1].present()) body.push_back(store_flat(c.out[1], Expr(0), vsc));
  if (c.out.size() > 2 && c.out[2].present()) body.push_back(store_flat(c.out[2], Expr(0), vzp));
  Stmt s = Block::make(body);
  for (const std::string &b : {lo, hi, sc, zp}) s = Allocate::make(b, t, Expr(1), s);
  return s;
}

namespace {

// Batched (numpy-broadcast) integer matmul: acc = sum_k av(ia) * bv(ib) in i32, where
// av/bv load an operand element already shifted by its zero point; `finish` stores the
// result at output index i (of the output with 1-D operands' dims restored).
Stmt integer_matmul(LowerContext &c, Operand a, Operand b, const Operand &y,
                    const std::function<Expr(const std::vector<Expr> &)> &av,
                    const std::function<Expr(const std::vector<Expr> &)> &bv,
                    const std::function<Stmt(Expr, const Operand &, const std::vector<Expr> &)> &finish) {
  bool a1 = a.rank() == 1, b1 = b.rank() == 1;
  if (a1) a.shape.insert(a.shape.begin(), Expr(1));
  if (b1) b.shape.push_back(Expr(1));
  Operand yv = y;
  if (a1) yv.shape.insert(yv.shape.end() - (b1 ? 0 : 1), Expr(1));
  if (b1) yv.shape.push_back(Expr(1));
  int R = yv.rank();
  return loop_nest(c, yv.shape, [&](const std::vector<Expr> &i) {
    std::vector<Expr> ob(i.begin(), i.end() - 2);
    Operand ab = a, bb = b;
    ab.shape.resize(a.rank() - 2);
    bb.shape.resize(b.rank() - 2);
    std::vector<Expr> ai = broadcast_index(ab, ob), bi = broadcast_index(bb, ob);
    return reduce(c, kI32, make_zero(kI32), {a.shape.back()},
                  [&](Expr s, const std::vector<Expr> &k) {
                    std::vector<Expr> ia = ai, ib = bi;
                    ia.push_back(i[R - 2]);
                    ia.push_back(k[0]);
                    ib.push_back(k[0]);
                    ib.push_back(i[R - 1]);
                    if (a1) ia.erase(ia.begin());
                    if (b1) ib.pop_back();
                    return s + av(ia) * bv(ib);
                  },
                  [&](Expr r) { return finish(r, yv, i); });
  }, ForKind::Parallel);
}

// Zero point (or scale) of a matmul operand: per tensor, per row of A (`row` = true) or
// per column of B given as a 1-D tensor, or broadcast against the operand in general.
Expr matmul_param(const LowerContext &c, size_t in, const std::vector<Expr> &idx, bool row, Type t) {
  if (!c.has(in)) return make_zero(t);
  const Operand &p = c.in[in];
  if (p.rank() == 0 || is_const(numel(p.shape), 1)) return cast(t, load_flat(p, Expr(0)));
  if (p.rank() == 1) {
    // A 1-D operand has no rows or columns to index per.
    Expr k = idx.size() < 2 ? Expr(0) : row ? idx[idx.size() - 2] : idx.back();
    return cast(t, load_flat(p, k));
  }
  return cast(t, load(p, broadcast_index(p, idx)));
}

// A QLinear op's output: the i32 accumulator rescaled by a_scale * b_scale / y_scale
// (computed in f32), rounded half to even, offset and saturated.
Expr requantize(const Operand &y, Expr acc, Expr multiplier, Expr zero_point) {
  return cast(type_of(y.dtype), saturate(call("round", {cast(kF32, acc) * multiplier}) + zero_point, y.dtype));
}

// out(n, m, o...) = sum over the window of xv(x index) * wv(w index), the x index clamped
// in bounds and padding contributing nothing; finish stores the i32 accumulator.
Stmt integer_conv(LowerContext &c, const Operand &x, const Operand &w, const Operand &y,
                  const std::function<Expr(const std::vector<Expr> &)> &xv,
                  const std::function<Expr(const std::vector<Expr> &)> &wv,
                  const std::function<Stmt(Expr, const std::vector<Expr> &)> &finish) {
  int sp = x.rank() - 2;
  ConvAttrs a = ConvAttrs::read(c.node, sp, static_kernel_dims(c, w));
  std::vector<Expr> pad(sp);
  for (int d = 0; d < sp; ++d) {
    Expr o;
    a.geometry(d, x.shape[d + 2], o, pad[d]);
  }
  Expr cin_g = w.shape[1], cout_g = y.shape[1] / Expr(a.group);
  std::vector<Expr> rext = {cin_g};
  for (int d = 0; d < sp; ++d) rext.push_back(Expr(a.kernel[d]));
  return parallel_loop_nest(c, y.shape, [&](const std::vector<Expr> &i) {
    Expr g = i[1] / cout_g;
    return reduce(c, kI32, make_zero(kI32), rext,
                  [&](Expr s, const std::vector<Expr> &r) {
                    std::vector<Expr> xi = {i[0], g * cin_g + r[0]}, wi = {i[1], r[0]};
                    Expr inside = make_const(Type::boolean(), 1);
                    for (int d = 0; d < sp; ++d) {
                      Expr p = i[d + 2] * Expr(a.strides[d]) + r[d + 1] * Expr(a.dilations[d]) - pad[d];
                      inside = inside && p >= Expr(0) && p < x.shape[d + 2];
                      xi.push_back(max(min(p, x.shape[d + 2] - Expr(1)), Expr(0)));
                      wi.push_back(r[d + 1]);
                    }
                    return select(inside, s + xv(xi) * wv(wi), s);
                  },
                  [&](Expr r) { return finish(r, i); });
  });
}

Expr shifted(const Operand &o, const std::vector<Expr> &i, const Expr &zero_point) {
  return cast(kI32, load(o, i)) - zero_point;
}

}  // namespace

Stmt lower_matmul_integer(LowerContext &c) {
  const Operand &a = c.in[0], &b = c.in[1];
  return integer_matmul(
      c, a, b, c.out[0], [&](const std::vector<Expr> &i) { return shifted(a, i, matmul_param(c, 2, i, true, kI32)); },
      [&](const std::vector<Expr> &i) { return shifted(b, i, matmul_param(c, 3, i, false, kI32)); },
      [&](Expr acc, const Operand &yv, const std::vector<Expr> &i) { return store(yv, i, acc); });
}

// QLinearMatMul inputs: a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale,
// y_zero_point.
Stmt lower_qlinear_matmul(LowerContext &c) {
  const Operand &a = c.in[0], &b = c.in[3];
  return integer_matmul(
      c, a, b, c.out[0], [&](const std::vector<Expr> &i) { return shifted(a, i, matmul_param(c, 2, i, true, kI32)); },
      [&](const std::vector<Expr> &i) { return shifted(b, i, matmul_param(c, 5, i, false, kI32)); },
      [&](Expr acc, const Operand &yv, const std::vector<Expr> &i) {
        Expr m = matmul_param(c, 1, i, true, kF32) * matmul_param(c, 4, i, false, kF32) /
                 matmul_param(c, 6, i, false, kF32);
        return store(yv, i, requantize(yv, acc, m, matmul_param(c, 7, i, false, kF32)));
      });
}

Stmt lower_conv_integer(LowerContext &c) {
  const Operand &x = c.in[0], &w = c.in[1];
  return integer_conv(
      c, x, w, c.out[0],
      [&](const std::vector<Expr> &i) { return shifted(x, i, quant_param(optional_input(c, 2), i, 1, kI32)); },
      [&](const std::vector<Expr> &i) { return shifted(w, i, quant_param(optional_input(c, 3), i, 0, kI32)); },
      [&](Expr acc, const std::vector<Expr> &i) { return store(c.out[0], i, acc); });
}

// QLinearConv inputs: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale,
// y_zero_point, B (i32 bias, added to the accumulator).
Stmt lower_qlinear_conv(LowerContext &c) {
  const Operand &x = c.in[0], &w = c.in[3], &y = c.out[0];
  return integer_conv(
      c, x, w, y, [&](const std::vector<Expr> &i) { return shifted(x, i, quant_param(c.in[2], i, 1, kI32)); },
      [&](const std::vector<Expr> &i) { return shifted(w, i, quant_param(c.in[5], i, 0, kI32)); },
      [&](Expr acc, const std::vector<Expr> &i) {
        if (c.has(8)) acc = acc + cast(kI32, load(c.in[8], {i[1]}));
        Expr m = quant_param(c.in[1], i, 1, kF32) * quant_param(c.in[4], i, 1, kF32) / quant_param(c.in[6], i, 1, kF32);
        return store(y, i, requantize(y, acc, m, quant_param(c.in[7], i, 1, kF32)));
      });
}

}  // namespace kiln
