// Compute definitions of elementwise and broadcasting ops.
#include <cmath>

#include "lower/lower.h"
#include "support/error.h"

namespace kiln {

namespace {

Expr f(Type t, double v) { return make_const(t, v); }

Expr sigmoid(Expr x) {
  Type t = x.type();
  return f(t, 1.0) / (f(t, 1.0) + call("exp", {-x}));
}

// The scalar function of a unary op applied to x (x in compute type).
Expr unary_expr(const Node &n, Expr x) {
  Type t = x.type();
  auto af = [&](const char *a, double d) { return f(t, n.attr_f(a, d)); };
  auto need_float = [&] {
    user_assert(t.is_float()) << n.describe() << ": needs a floating-point input, got " << t.str();
  };
  switch (n.kind) {
    case OpKind::Identity: return x;
    case OpKind::Abs: return call("abs", {x});
    case OpKind::Neg: return -x;
    case OpKind::Exp: need_float(); return call("exp", {x});
    case OpKind::Log: need_float(); return call("log", {x});
    case OpKind::Sqrt: need_float(); return call("sqrt", {x});
    case OpKind::Reciprocal: need_float(); return f(t, 1.0) / x;
    case OpKind::Sigmoid: need_float(); return sigmoid(x);
    case OpKind::Tanh: need_float(); return call("tanh", {x});
    case OpKind::Relu: return max(x, make_zero(t));
    case OpKind::LeakyRelu: return select(x < f(t, 0), x * af("alpha", 0.01), x);
    case OpKind::Elu: return select(x < f(t, 0), af("alpha", 1.0) * (call("exp", {x}) - f(t, 1)), x);
    case OpKind::Selu: {
      Expr a = af("alpha", 1.67326319217681884765625), g = af("gamma", 1.05070102214813232421875);
      return select(x <= f(t, 0), g * (a * call("exp", {x}) - a), g * x);
    }
    case OpKind::Celu: {
      Expr a = af("alpha", 1.0);
      return max(f(t, 0), x) + min(f(t, 0), a * (call("exp", {x / a}) - f(t, 1)));
    }
    case OpKind::HardSigmoid:
      return max(f(t, 0), min(f(t, 1), af("alpha", 0.2) * x + af("beta", 0.5)));
    case OpKind::HardSwish:
      return x * max(f(t, 0), min(f(t, 1), f(t, 1.0 / 6.0) * x + f(t, 0.5)));
    case OpKind::Softplus: return call("log", {call("exp", {x}) + f(t, 1)});
    case OpKind::Softsign: return x / (f(t, 1) + call("abs", {x}));
    case OpKind::ThresholdedRelu: return select(x > af("alpha", 1.0), x, f(t, 0));
    case OpKind::Shrink: {
      Expr l = af("lambd", 0.5), b = af("bias", 0.0);
      if (!t.is_float()) {
        l = f(t, n.attr_f("lambd", 0.5));
        b = f(t, n.attr_f("bias", 0.0));
      }
      return select(x < -l, x + b, select(x > l, x - b, f(t, 0)));
    }
    case OpKind::Floor: return call("floor", {x});
    case OpKind::Ceil: return call("ceil", {x});
    case OpKind::Round: return call("round", {x});
    case OpKind::Sign:
      return select(x > f(t, 0), f(t, 1), select(x < f(t, 0), f(t, -1), f(t, 0)));
    case OpKind::Erf: return call("erf", {x});
    case OpKind::Sin: return call("sin", {x});
    case OpKind::Cos: return call("cos", {x});
    case OpKind::Tan: return call("tan", {x});
    case OpKind::Asin: return call("asin", {x});
    case OpKind::Acos: return call("acos", {x});
    case OpKind::Atan: return call("atan", {x});
    case OpKind::Sinh: return call("sinh", {x});
    case OpKind::Cosh: return call("cosh", {x});
    case OpKind::Asinh: return call("asinh", {x});
    case OpKind::Acosh: return call("acosh", {x});
    case OpKind::Atanh: return call("atanh", {x});
    case OpKind::Not: return !x;
    case OpKind::IsNaN: return call(Type::boolean(), "isnan", {x});
    case OpKind::IsInf: {
      bool neg = n.attr_i("detect_negative", 1), pos = n.attr_i("detect_positive", 1);
      Expr inf = call(Type::boolean(), "isinf", {x});
      if (neg && pos) return inf;
      if (neg) return inf && x < f(t, 0);
      if (pos) return inf && x > f(t, 0);
      return make_const(Type::boolean(), 0);
    }
    default: internal_error << "not a unary op: " << n.describe();
  }
  return x;
}

Expr binary_expr(const Node &n, Expr a, Expr b) {
  Type t = a.type();
  switch (n.kind) {
    case OpKind::Add: return a + b;
    case OpKind::Sub: return a - b;
    case OpKind::Mul: return a * b;
    case OpKind::Div:
      // ONNX integer division truncates toward zero (like C).
      return t.is_float() ? a / b : call("trunc_div", {a, b});
    case OpKind::Pow: {
      Type ct = t.is_float() ? t : Type::f(64);
      Expr r = call("pow", {cast(ct, a), cast(ct, b.type() == ct ? b : cast(ct, b))});
      return cast(t, r);
    }
    case OpKind::Mod: {
      if (n.attr_i("fmod", 0)) return call("trunc_mod", {a, b});
      user_assert(!t.is_float()) << n.describe() << ": fmod=0 requires integer inputs";
      return a % b;  // floor modulo: sign of the divisor, as ONNX specifies
    }
    case OpKind::PRelu: return select(a < make_zero(t), a * b, a);
    case OpKind::BitShift: {
      bool left = n.attr_s("direction", "") == "LEFT";
      user_assert(left || n.attr_s("direction", "") == "RIGHT")
          << n.describe() << ": direction must be LEFT or RIGHT";
      return call(left ? "shl" : "shr", {a, b});
    }
    case OpKind::And: return a && b;
    case OpKind::Or: return a || b;
    case OpKind::Xor: return a != b;
    case OpKind::Equal: return a == b;
    case OpKind::Greater: return a > b;
    case OpKind::Less: return a < b;
    case OpKind::GreaterOrEqual: return a >= b;
    case OpKind::LessOrEqual: return a <= b;
    default: internal_error << "not a binary op: " << n.describe();
  }
  return a;
}

}  // namespace

Stmt lower_unary(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  return compute(c, y, [&](const std::vector<Expr> &i) { return unary_expr(c.node, load(x, i)); });
}

Stmt lower_binary(LowerContext &c) {
  const Operand &a = c.in[0], &b = c.in[1], &y = c.out[0];
  return compute(c, y, [&](const std::vector<Expr> &i) {
    Expr va = load(a, broadcast_index(a, i)), vb = load(b, broadcast_index(b, i));
    if (c.node.kind == OpKind::BitShift || c.node.kind == OpKind::Pow) {
      if (vb.type() != va.type() && c.node.kind == OpKind::BitShift) vb = cast(va.type(), vb);
    }
    return binary_expr(c.node, va, vb);
  });
}

Stmt lower_variadic(LowerContext &c) {
  const Operand &y = c.out[0];
  return compute(c, y, [&](const std::vector<Expr> &i) {
    Expr r = load(c.in[0], broadcast_index(c.in[0], i));
    for (size_t k = 1; k < c.in.size(); ++k) {
      Expr v = load(c.in[k], broadcast_index(c.in[k], i));
      switch (c.node.kind) {
        case OpKind::Max: r = max(r, v); break;
        case OpKind::Min: r = min(r, v); break;
        default: r = r + v; break;
      }
    }
    if (c.node.kind == OpKind::Mean) r = r / make_const(r.type(), static_cast<double>(c.in.size()));
    return r;
  });
}

Stmt lower_where(LowerContext &c) {
  const Operand &y = c.out[0];
  return compute(c, y, [&](const std::vector<Expr> &i) {
    return select(load(c.in[0], broadcast_index(c.in[0], i)), load(c.in[1], broadcast_index(c.in[1], i)),
                  load(c.in[2], broadcast_index(c.in[2], i)));
  });
}

Stmt lower_clip(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  Type t = x.compute();
  Expr lo, hi;
  if (c.node.opset < 11) {
    lo = make_const(t, c.node.attr_f("min", -3.4028234663852886e38));
    hi = make_const(t, c.node.attr_f("max", 3.4028234663852886e38));
  } else {
    lo = c.has(1) ? load_flat(c.in[1], Expr(0)) : type_min(t);
    hi = c.has(2) ? load_flat(c.in[2], Expr(0)) : type_max(t);
  }
  return compute(c, y, [&](const std::vector<Expr> &i) { return min(max(load(x, i), lo), hi); });
}

Stmt lower_cast(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  user_assert(x.dtype != DType::String && y.dtype != DType::String)
      << c.node.describe() << ": string casts are not supported";
  return compute(c, y, [&](const std::vector<Expr> &i) {
    Expr v = Load::make(x.storage(), x.buf, flat_index(x.shape, i));
    if (x.dtype == DType::Bool) v = cast(Type::boolean(), v);
    if (y.dtype == DType::Bool) return cast(Type::boolean(), v);
    // Half types convert through f32 (storage types differ from compute types).
    if (x.dtype == DType::F16 && y.dtype != DType::F32) v = cast(Type::f(32), v);
    if (y.dtype == DType::F16 && !x.storage().is_float()) v = cast(Type::f(32), v);
    if (y.dtype == DType::BF16 && (x.dtype == DType::F32 || x.dtype == DType::F64)) {
      return call(Type::bf16(), "bf16_trunc", {v});
    }
    return cast(y.storage(), v);
  });
}

}  // namespace kiln

namespace kiln {

// Inference-mode Dropout (or training with ratio 0): y = x, mask = true. Training mode
// with a non-zero ratio draws random masks, which kiln refuses.
Stmt lower_dropout(LowerContext &c) {
  if (c.has(2)) {
    const Tensor &t = c.value(2);
    user_assert(t.numel() == 1) << c.node.describe() << ": training_mode must be a scalar";
    if (t.get_i64(0) != 0) {
      double ratio = c.has(1) ? c.value(1).get_f64(0) : 0.5;
      user_assert(ratio == 0.0) << c.node.describe() << ": training_mode=true (random dropout) is not supported";
    }
  }
  const Operand &x = c.in[0];
  Stmt s = compute(c, c.out[0], [&](const std::vector<Expr> &i) { return load(x, i); });
  if (c.out.size() > 1 && c.out[1].present()) {
    s = Block::make({s, compute(c, c.out[1], [&](const std::vector<Expr> &) {
                       return make_const(Type::boolean(), 1);
                     })});
  }
  return s;
}

}  // namespace kiln
