// Compute definitions of elementwise and broadcasting ops. At -O1 and above they run
// as parallel blocks (of elements, or of rows of the last dim when operands broadcast),
// vectorized along the contiguous dim where every operand is f32 and the op's expression
// is one the code generator vectorizes (exp, erf, tanh and sigmoid from vmath).
#include <cmath>

#include "lower/lower.h"
#include "lower/vector_loop.h"
#include "lower/vmath.h"
#include "support/error.h"

namespace kiln {

namespace {

Expr f(Type t, double v) { return make_const(t, v); }

// exp, erf, tanh and sigmoid: libm calls in the -O0 reference; vmath (vectorizable) in
// the -O1 schedules, f32 only.
struct Math {
  bool fast = false;
  Expr exp(Expr x) const { return fast ? vmath::exp(x) : call("exp", {x}); }
  Expr erf(Expr x) const { return fast ? vmath::erf(x) : call("erf", {x}); }
  Expr tanh(Expr x) const { return fast ? vmath::tanh(x) : call("tanh", {x}); }
  Expr sigmoid(Expr x) const {
    if (fast) return vmath::sigmoid(x);
    Type t = x.type();
    return f(t, 1.0) / (f(t, 1.0) + call("exp", {-x}));
  }
};

// Gelu (opset 20): x/2 (1 + erf(x / sqrt 2)), or with approximate = "tanh"
// x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
Expr gelu(const Node &n, Expr x, const Math &m) {
  Type t = x.type();
  std::string approx = n.attr_s("approximate", "none");
  user_assert(approx == "none" || approx == "tanh")
      << n.describe() << ": approximate must be \"none\" or \"tanh\", got \"" << approx << "\"";
  Expr inner = approx == "tanh" ? m.tanh(f(t, std::sqrt(2.0 / M_PI)) * (x + f(t, 0.044715) * x * x * x))
                                : m.erf(x * f(t, M_SQRT1_2));
  return f(t, 0.5) * x * (f(t, 1.0) + inner);
}

// The unary ops whose expression has no libm call once Math is fast.
bool vectorizable_unary(OpKind k) {
  switch (k) {
    case OpKind::Identity: case OpKind::Abs: case OpKind::Neg: case OpKind::Exp: case OpKind::Sqrt:
    case OpKind::Reciprocal: case OpKind::Sigmoid: case OpKind::Tanh: case OpKind::Relu:
    case OpKind::LeakyRelu: case OpKind::Elu: case OpKind::Selu: case OpKind::Celu:
    case OpKind::HardSigmoid: case OpKind::HardSwish: case OpKind::Softsign: case OpKind::ThresholdedRelu:
    case OpKind::Shrink: case OpKind::Floor: case OpKind::Ceil: case OpKind::Round: case OpKind::Sign:
    case OpKind::Erf: case OpKind::Gelu:
      return true;
    default: return false;
  }
}

// The function of a unary op applied to x (x in compute type, scalar or vector).
Expr unary_expr(const Node &n, Expr x, const Math &m) {
  Type t = x.type();
  auto af = [&](const char *a, double d) { return f(t, n.attr_f(a, d)); };
  auto need_float = [&] {
    user_assert(t.is_float()) << n.describe() << ": needs a floating-point input, got " << t.str();
  };
  switch (n.kind) {
    case OpKind::Identity: return x;
    case OpKind::Abs: return call("abs", {x});
    case OpKind::Neg: return -x;
    case OpKind::Exp: need_float(); return m.exp(x);
    case OpKind::Log: need_float(); return call("log", {x});
    case OpKind::Sqrt: need_float(); return call("sqrt", {x});
    case OpKind::Reciprocal: need_float(); return f(t, 1.0) / x;
    case OpKind::Sigmoid: need_float(); return m.sigmoid(x);
    case OpKind::Tanh: need_float(); return m.tanh(x);
    case OpKind::Relu: return max(x, make_zero(t));
    case OpKind::LeakyRelu: return select(x < f(t, 0), x * af("alpha", 0.01), x);
    case OpKind::Elu: return select(x < f(t, 0), af("alpha", 1.0) * (m.exp(x) - f(t, 1)), x);
    case OpKind::Selu: {
      Expr a = af("alpha", 1.67326319217681884765625), g = af("gamma", 1.05070102214813232421875);
      return select(x <= f(t, 0), g * (a * m.exp(x) - a), g * x);
    }
    case OpKind::Celu: {
      Expr a = af("alpha", 1.0);
      return max(f(t, 0), x) + min(f(t, 0), a * (m.exp(x / a) - f(t, 1)));
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
    case OpKind::Erf: return m.erf(x);
    case OpKind::Gelu: need_float(); return gelu(n, x, m);
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

Expr variadic_expr(const Node &n, const std::vector<Expr> &v) {
  Expr r = v[0];
  for (size_t k = 1; k < v.size(); ++k) {
    switch (n.kind) {
      case OpKind::Max: r = max(r, v[k]); break;
      case OpKind::Min: r = min(r, v[k]); break;
      default: r = r + v[k]; break;
    }
  }
  if (n.kind == OpKind::Mean) r = r / make_const(r.type(), static_cast<double>(v.size()));
  return r;
}

// ---- FusedElementwise programs (passes/fuse_elementwise.cpp) ----

// Clip's bounds: attributes before opset 11, optional inputs since (absent: unbounded).
Expr clip_expr(const Node &n, Expr x, Expr lo, Expr hi) {
  Type t = x.type();
  if (n.opset < 11) {
    lo = make_const(t, n.attr_f("min", -3.4028234663852886e38));
    hi = make_const(t, n.attr_f("max", 3.4028234663852886e38));
  }
  if (lo.defined()) x = max(x, lo);
  return hi.defined() ? min(x, hi) : x;
}

bool binary_kind(OpKind k) {
  return k == OpKind::Add || k == OpKind::Sub || k == OpKind::Mul || k == OpKind::Div || k == OpKind::Pow ||
         k == OpKind::PRelu;
}

// Step k of a FusedElementwise as a node of its own: the op, its attributes (stored on
// the fused node as `step<k>_<name>`) and the model's opset, so the single-op functions
// above compute it exactly as the unfused node.
Node program_step(const Node &n, size_t k, const std::string &op) {
  Node s;
  s.kind = op_kind_from_name(op);
  s.op_type = op;
  s.name = n.name;
  s.opset = n.opset;
  std::string prefix = "step" + std::to_string(k) + "_";
  for (const auto &[name, a] : n.attrs) {
    if (name.rfind(prefix, 0) == 0) s.attrs[name.substr(prefix.size())] = a;
  }
  internal_assert(s.kind != OpKind::Unknown) << n.describe() << ": unknown step op '" << op << "'";
  return s;
}

// The value of the fused program for input values `in` (one output element or vector).
Expr fused_expr(const Node &n, const std::vector<Expr> &in, const Math &m) {
  const std::vector<std::string> &ops = n.attrs.at("ops").strings;
  std::vector<int64_t> arity = n.attr_ints("arity"), args = n.attr_ints("args");
  internal_assert(arity.size() == ops.size()) << n.describe() << ": malformed program";
  std::vector<Expr> vals = in;
  size_t at = 0;
  for (size_t k = 0; k < ops.size(); ++k) {
    Node step = program_step(n, k, ops[k]);
    std::vector<Expr> x;
    for (int64_t j = 0; j < arity[k]; ++j, ++at) {
      int64_t id = args.at(at);
      internal_assert(id < static_cast<int64_t>(vals.size())) << n.describe() << ": step " << k << " reads ahead";
      x.push_back(id < 0 ? Expr() : vals[id]);
    }
    x.resize(3);
    if (step.kind == OpKind::Clip) {
      vals.push_back(clip_expr(step, x[0], x[1], x[2]));
    } else if (step.kind == OpKind::Max || step.kind == OpKind::Min) {
      vals.push_back(variadic_expr(step, {x[0], x[1]}));
    } else if (binary_kind(step.kind)) {
      vals.push_back(binary_expr(step, x[0], x[1]));
    } else {
      vals.push_back(unary_expr(step, x[0], m));
    }
  }
  return vals.back();
}

// Whether every step of the program vectorizes (no libm call once Math is fast).
bool vectorizable_program(const Node &n) {
  for (const std::string &op : n.attrs.at("ops").strings) {
    OpKind k = op_kind_from_name(op);
    bool vec = vectorizable_unary(k) || k == OpKind::Add || k == OpKind::Sub || k == OpKind::Mul ||
               k == OpKind::Div || k == OpKind::PRelu || k == OpKind::Max || k == OpKind::Min || k == OpKind::Clip;
    if (!vec) return false;
  }
  return true;
}

// ---- the -O1 schedule ----

// Elements per parallel block (rows of the last dim count their elements): an output of
// one block runs on the calling thread.
constexpr int64_t kBlockElements = 16384;

using ElementFn = std::function<Expr(const std::vector<Expr> &)>;

bool same_dim(const Expr &a, const Expr &b) {
  if (is_const(a) || is_const(b)) return is_const(a) && is_const(b) && a.as<IntImm>()->value == b.as<IntImm>()->value;
  auto *va = a.as<Var>(), *vb = b.as<Var>();
  return a.same_as(b) || (va && vb && va->name == vb->name);
}

bool same_shape(const Operand &a, const Operand &b) {
  if (a.rank() != b.rank()) return false;
  for (int i = 0; i < a.rank(); ++i) {
    if (!same_dim(a.shape[i], b.shape[i])) return false;
  }
  return true;
}

// Where an operand's elements of one output row are: base + j * stride (stride 0 when
// the operand is broadcast along the last dim, 1 when it runs along it), or with a
// `period`, base + j % period (broadcast along the row's outer dims, full along its inner
// ones: a per-channel scale of NCHWc blocks, [N, CB, 1, 1, b] over [N, CB, H, W, b];
// vectors never straddle a period, which the lanes divide).
struct RowAccess {
  const Operand *o;
  Expr base, stride;
  int64_t period = 0;

  Expr value(Expr j, int lanes) const {
    if (period) return run_load(o->storage(), o->buf, base, j % Expr(period), lanes);
    if (lanes == 1 || is_const(stride, 0)) return splat(load_flat(*o, base + j * stride), lanes);
    return run_load(o->storage(), o->buf, base, j, lanes);
  }
};

// Inner loop over one run of `n` output elements starting at out_base.
Stmt run_body(LowerContext &c, const Operand &y, Expr out_base, Expr n, const std::vector<RowAccess> &in, int lanes,
              const ElementFn &fn) {
  return vector_loop(c, n, lanes, [&](Expr j, int w) {
    std::vector<Expr> v;
    for (const RowAccess &a : in) v.push_back(a.value(j, w));
    Expr r = fn(v);
    return w == 1 ? store_flat(y, out_base + j, r) : run_store(y.buf, out_base, j, r);
  });
}

// out = fn(inputs broadcast to the output). Operands of the output's shape are read as
// flat arrays split into parallel blocks of elements; otherwise the output is split into
// rows of its last dim, in parallel blocks of rows. Vectorized (f32 only) when `vectorize`.
Stmt schedule_elementwise(LowerContext &c, const std::vector<const Operand *> &ins, bool vectorize,
                          const ElementFn &fn) {
  const Operand &y = c.out[0];
  bool f32 = y.dtype == DType::F32;
  bool flat = true;
  for (const Operand *o : ins) {
    f32 = f32 && o->dtype == DType::F32;
    flat = flat && same_shape(*o, y);
  }
  int lanes = vectorize && f32 ? c.opts.vector_lanes_f32() : 1;
  if (flat || y.rank() == 0) {
    return parallel_blocks(c, numel(y.shape), Expr(kBlockElements), [&](Expr begin, Expr count) {
      std::vector<RowAccess> in;
      for (const Operand *o : ins) in.push_back({o, begin, Expr(1)});
      return run_body(c, y, begin, count, in, lanes, fn);
    });
  }
  // Rows: the output's trailing dims over which every operand is either broadcast
  // throughout or read in full (e.g. x * s[c] over [N, C, H, W]: rows of H*W), at least
  // the last dim.
  int r = y.rank(), suffix = 1;
  auto state = [&](const Operand &o, int d) {  // 0: size 1 here, 1: full, 2: neither / unknown
    int od = d - (r - o.rank());
    if (od < 0 || is_const(o.shape[od], 1)) return 0;
    return same_dim(o.shape[od], y.shape[d]) ? 1 : 2;
  };
  // Or broadcast over the outer dims of the suffix and full over its inner ones, when
  // the inner dims' size is static and a whole number of vectors (`period`).
  auto period_of = [&](const Operand &o, int k) -> int64_t {
    int64_t inner = 1;
    bool outer = false;
    for (int d = r - k; d < r; ++d) {
      if (is_const(y.shape[d], 1)) continue;
      int st = state(o, d);
      if (st == 0) {
        if (inner > 1) return -1;  // full, then broadcast again
        outer = true;
      } else {
        auto *e = y.shape[d].as<IntImm>();
        if (!e) return -1;
        inner *= e->value;
      }
    }
    return outer && inner > 1 ? (inner % lanes == 0 && lanes > 1 ? inner : -1) : 0;
  };
  for (int k = 2; k <= r; ++k) {
    bool ok = true;
    for (const Operand *o : ins) {
      int first = -1;
      bool uniform = true;
      for (int d = r - k; d < r; ++d) {
        if (is_const(y.shape[d], 1)) continue;
        int st = state(*o, d);
        if (st == 2 || (first >= 0 && st != first)) uniform = false;
        if (first < 0) first = st;
      }
      ok = ok && (uniform || period_of(*o, k) > 0);
    }
    if (!ok) break;
    suffix = k;
  }
  std::vector<Expr> lead(y.shape.begin(), y.shape.end() - suffix);
  Expr width = numel(std::vector<Expr>(y.shape.end() - suffix, y.shape.end()));
  return parallel_blocks(c, numel(lead), rows_per_block(width, kBlockElements), [&](Expr begin, Expr count) {
    std::string rn = c.fresh("row");
    Expr row = Var::make(Type::index(), rn);
    std::vector<Expr> idx(r, Expr(0));
    Expr rest = row;
    for (size_t d = lead.size(); d-- > 0;) {
      idx[d] = d == 0 ? rest : rest % lead[d];
      rest = rest / lead[d];
    }
    std::vector<RowAccess> in;
    int w = lanes;
    for (const Operand *o : ins) {
      Expr stride;
      int64_t period = suffix > 1 ? period_of(*o, suffix) : 0;
      if (period > 0) {
        in.push_back({o, flat_index(o->shape, broadcast_index(*o, idx)), Expr(0), period});
        continue;
      }
      if (suffix > 1) {
        bool full = false;
        for (int d = r - suffix; d < r; ++d) full = full || (!is_const(y.shape[d], 1) && state(*o, d) == 1);
        stride = Expr(full ? 1 : 0);
      } else {
        Expr d = o->rank() == 0 ? Expr(1) : o->shape.back();
        stride = is_const(d) ? Expr(is_const(d, 1) ? 0 : 1) : select(d == Expr(1), Expr(0), Expr(1));
      }
      if (!is_const(stride)) w = 1;
      in.push_back({o, flat_index(o->shape, broadcast_index(*o, idx)), stride});
    }
    return For::make(rn, begin, count, ForKind::Serial, run_body(c, y, row * width, width, in, w, fn));
  });
}

}  // namespace

Stmt lower_unary(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  if (c.opts.opt_level >= 1) {
    bool vec = x.dtype == DType::F32 && vectorizable_unary(c.node.kind);
    Math m{vec};
    return schedule_elementwise(c, {&x}, vec, [&](const std::vector<Expr> &v) { return unary_expr(c.node, v[0], m); });
  }
  return compute(c, y, [&](const std::vector<Expr> &i) { return unary_expr(c.node, load(x, i), Math{}); });
}

Stmt lower_binary(LowerContext &c) {
  const Operand &a = c.in[0], &b = c.in[1], &y = c.out[0];
  auto fn = [&](Expr va, Expr vb) {
    if (c.node.kind == OpKind::BitShift || c.node.kind == OpKind::Pow) {
      if (vb.type() != va.type() && c.node.kind == OpKind::BitShift) vb = cast(va.type(), vb);
    }
    return binary_expr(c.node, va, vb);
  };
  if (c.opts.opt_level >= 1) {
    OpKind k = c.node.kind;
    bool vec = k == OpKind::Add || k == OpKind::Sub || k == OpKind::Mul || k == OpKind::Div || k == OpKind::PRelu;
    return schedule_elementwise(c, {&a, &b}, vec, [&](const std::vector<Expr> &v) { return fn(v[0], v[1]); });
  }
  return compute(c, y, [&](const std::vector<Expr> &i) {
    return fn(load(a, broadcast_index(a, i)), load(b, broadcast_index(b, i)));
  });
}

Stmt lower_variadic(LowerContext &c) {
  const Operand &y = c.out[0];
  if (c.opts.opt_level >= 1) {
    std::vector<const Operand *> ins;
    for (const Operand &o : c.in) ins.push_back(&o);
    return schedule_elementwise(c, ins, true, [&](const std::vector<Expr> &v) { return variadic_expr(c.node, v); });
  }
  return compute(c, y, [&](const std::vector<Expr> &i) {
    std::vector<Expr> v;
    for (const Operand &o : c.in) v.push_back(load(o, broadcast_index(o, i)));
    return variadic_expr(c.node, v);
  });
}

Stmt lower_where(LowerContext &c) {
  const Operand &y = c.out[0];
  if (c.opts.opt_level >= 1) {
    return schedule_elementwise(c, {&c.in[0], &c.in[1], &c.in[2]}, false,
                                [&](const std::vector<Expr> &v) { return select(v[0], v[1], v[2]); });
  }
  return compute(c, y, [&](const std::vector<Expr> &i) {
    return select(load(c.in[0], broadcast_index(c.in[0], i)), load(c.in[1], broadcast_index(c.in[1], i)),
                  load(c.in[2], broadcast_index(c.in[2], i)));
  });
}

Stmt lower_fused_elementwise(LowerContext &c) {
  std::vector<const Operand *> ins;
  for (const Operand &o : c.in) {
    user_assert(o.dtype == DType::F32) << c.node.describe() << ": only f32 is supported";
    ins.push_back(&o);
  }
  if (c.opts.opt_level >= 1) {
    Math m{vectorizable_program(c.node)};
    return schedule_elementwise(c, ins, m.fast, [&](const std::vector<Expr> &v) { return fused_expr(c.node, v, m); });
  }
  return compute(c, c.out[0], [&](const std::vector<Expr> &i) {
    std::vector<Expr> v;
    for (const Operand &o : c.in) v.push_back(load(o, broadcast_index(o, i)));
    return fused_expr(c.node, v, Math{});
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
