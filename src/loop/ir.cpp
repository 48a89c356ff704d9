#include "loop/ir.h"

#include <cmath>
#include <limits>

#include "support/error.h"

namespace kiln {

std::string Type::str() const {
  std::string s;
  if (is_bool()) {
    s = "bool";
  } else {
    s = code == Int ? "i" : code == UInt ? "u" : code == Float ? "f" : "bf";
    s += std::to_string(bits);
  }
  if (lanes > 1) s += "x" + std::to_string(lanes);
  return s;
}

Type type_of(DType t) {
  switch (t) {
    case DType::F32: return Type::f(32);
    case DType::F64: return Type::f(64);
    case DType::F16: return Type::f(16);
    case DType::BF16: return Type::bf16();
    case DType::I8: return Type::i(8);
    case DType::U8: return Type::u(8);
    case DType::I16: return Type::i(16);
    case DType::U16: return Type::u(16);
    case DType::I32: return Type::i(32);
    case DType::U32: return Type::u(32);
    case DType::I64: return Type::i(64);
    case DType::U64: return Type::u(64);
    case DType::Bool: return Type::u(8);
    default: user_error << "dtype " << dtype_name(t) << " cannot be used in generated code";
  }
  return {};
}

Type compute_type_of(DType t) {
  if (t == DType::F16 || t == DType::BF16) return Type::f(32);
  if (t == DType::Bool) return Type::boolean();
  return type_of(t);
}

Expr::Expr(int64_t v) : Expr(IntImm::make(Type::index(), v)) {}
Expr::Expr(int v) : Expr(IntImm::make(Type::index(), v)) {}
Expr::Expr(double v) : Expr(FloatImm::make(Type::f(32), v)) {}

Expr IntImm::make(Type t, int64_t v) {
  internal_assert(!t.is_float() && t.lanes == 1) << "IntImm of type " << t.str();
  auto n = std::make_shared<IntImm>();
  n->type = t;
  if (t.bits < 64) {
    // Wrap to the type's width so constants print and compare canonically.
    int64_t mask = (int64_t{1} << t.bits) - 1;
    v &= mask;
    if (t.is_int() && (v >> (t.bits - 1)) & 1) v -= (int64_t{1} << t.bits);
  }
  n->value = v;
  return Expr(n);
}

Expr FloatImm::make(Type t, double v) {
  internal_assert(t.is_float() && t.lanes == 1) << "FloatImm of type " << t.str();
  auto n = std::make_shared<FloatImm>();
  n->type = t;
  n->value = t.bits == 32 && t.code == Type::Float ? static_cast<double>(static_cast<float>(v)) : v;
  return Expr(n);
}

Expr Var::make(Type t, const std::string &name) {
  auto n = std::make_shared<Var>();
  n->type = t;
  n->name = name;
  return Expr(n);
}

namespace {
bool is_compare(IRNodeType t) {
  return t == IRNodeType::EQ || t == IRNodeType::NE || t == IRNodeType::LT ||
         t == IRNodeType::LE || t == IRNodeType::GT || t == IRNodeType::GE;
}
}  // namespace

template <IRNodeType T>
Expr BinaryNode<T>::make(Expr a, Expr b) {
  internal_assert(a.defined() && b.defined()) << "undefined operand";
  internal_assert(a.type() == b.type())
      << "operand types differ: " << a.type().str() << " vs " << b.type().str();
  auto n = std::make_shared<BinaryNode<T>>();
  if (is_compare(T)) {
    n->type = Type::boolean(a.type().lanes);
  } else if (T == IRNodeType::And || T == IRNodeType::Or) {
    internal_assert(a.type().is_bool()) << "logical op on " << a.type().str();
    n->type = a.type();
  } else {
    n->type = a.type();
  }
  n->a = std::move(a);
  n->b = std::move(b);
  return Expr(n);
}

#define X(n) template struct BinaryNode<IRNodeType::n>;
X(Add) X(Sub) X(Mul) X(Div) X(Mod) X(Min) X(Max) X(EQ) X(NE) X(LT) X(LE) X(GT) X(GE) X(And) X(Or)
#undef X

Expr Not::make(Expr a) {
  internal_assert(a.type().is_bool()) << "Not of " << a.type().str();
  auto n = std::make_shared<Not>();
  n->type = a.type();
  n->a = std::move(a);
  return Expr(n);
}

Expr Select::make(Expr c, Expr t, Expr f) {
  internal_assert(c.type().is_bool()) << "Select condition of type " << c.type().str();
  internal_assert(t.type() == f.type()) << "Select arms differ: " << t.type().str() << " vs "
                                        << f.type().str();
  auto n = std::make_shared<Select>();
  n->type = t.type();
  n->cond = std::move(c);
  n->true_value = std::move(t);
  n->false_value = std::move(f);
  return Expr(n);
}

Expr Cast::make(Type t, Expr v) {
  auto n = std::make_shared<Cast>();
  n->type = t;
  n->value = std::move(v);
  return Expr(n);
}

Expr Load::make(Type t, const std::string &buffer, Expr index) {
  internal_assert(index.type().element() == Type::index()) << "Load index of type "
                                                           << index.type().str();
  auto n = std::make_shared<Load>();
  n->type = t.with_lanes(index.type().lanes);
  n->buffer = buffer;
  n->index = std::move(index);
  return Expr(n);
}

Expr Ramp::make(Expr base, Expr stride, int lanes) {
  internal_assert(base.type() == stride.type() && lanes > 1);
  auto n = std::make_shared<Ramp>();
  n->type = base.type().with_lanes(lanes);
  n->base = std::move(base);
  n->stride = std::move(stride);
  n->lanes = lanes;
  return Expr(n);
}

Expr Broadcast::make(Expr v, int lanes) {
  internal_assert(!v.type().is_vector() && lanes > 1);
  auto n = std::make_shared<Broadcast>();
  n->type = v.type().with_lanes(lanes);
  n->value = std::move(v);
  n->lanes = lanes;
  return Expr(n);
}

Expr Call::make(Type t, const std::string &name, std::vector<Expr> args) {
  auto n = std::make_shared<Call>();
  n->type = t;
  n->name = name;
  n->args = std::move(args);
  return Expr(n);
}

Expr Let::make(const std::string &name, Expr value, Expr body) {
  auto n = std::make_shared<Let>();
  n->type = body.type();
  n->name = name;
  n->value = std::move(value);
  n->body = std::move(body);
  return Expr(n);
}

Stmt Store::make(const std::string &buffer, Expr value, Expr index) {
  internal_assert(value.defined() && index.defined());
  internal_assert(index.type().element() == Type::index()) << "Store index of type "
                                                           << index.type().str();
  auto n = std::make_shared<Store>();
  n->buffer = buffer;
  n->value = std::move(value);
  n->index = std::move(index);
  return Stmt(n);
}

const char *for_kind_name(ForKind k) {
  switch (k) {
    case ForKind::Serial: return "for";
    case ForKind::Parallel: return "parallel";
    case ForKind::Vectorized: return "vectorized";
    case ForKind::Unrolled: return "unrolled";
  }
  return "?";
}

Stmt For::make(const std::string &name, Expr min, Expr extent, ForKind kind, Stmt body) {
  internal_assert(min.type() == Type::index() && extent.type() == Type::index())
      << "loop bounds must be i64";
  auto n = std::make_shared<For>();
  n->name = name;
  n->min = std::move(min);
  n->extent = std::move(extent);
  n->kind = kind;
  n->body = std::move(body);
  return Stmt(n);
}

Stmt LetStmt::make(const std::string &name, Expr value, Stmt body) {
  auto n = std::make_shared<LetStmt>();
  n->name = name;
  n->value = std::move(value);
  n->body = std::move(body);
  return Stmt(n);
}

Stmt Block::make(std::vector<Stmt> stmts) {
  std::vector<Stmt> flat;
  for (auto &s : stmts) {
    if (!s.defined()) continue;
    if (auto *b = s.as<Block>()) {
      flat.insert(flat.end(), b->stmts.begin(), b->stmts.end());
    } else {
      flat.push_back(s);
    }
  }
  if (flat.size() == 1) return flat[0];
  auto n = std::make_shared<Block>();
  n->stmts = std::move(flat);
  return Stmt(n);
}

Stmt IfThenElse::make(Expr c, Stmt t, Stmt e) {
  internal_assert(c.type().is_bool() && !c.type().is_vector()) << "If condition of type "
                                                               << c.type().str();
  auto n = std::make_shared<IfThenElse>();
  n->cond = std::move(c);
  n->then_case = std::move(t);
  n->else_case = std::move(e);
  return Stmt(n);
}

Stmt Allocate::make(const std::string &buffer, Type t, Expr size, Stmt body) {
  internal_assert(size.type() == Type::index());
  auto n = std::make_shared<Allocate>();
  n->buffer = buffer;
  n->type = t;
  n->size = std::move(size);
  n->body = std::move(body);
  return Stmt(n);
}

// ---- operator sugar with constant folding -------------------------------------------

Expr make_const(Type t, double v) {
  if (t.is_vector()) return Broadcast::make(make_const(t.element(), v), t.lanes);
  if (t.is_float()) return FloatImm::make(t, v);
  if (t.is_bool()) return IntImm::make(t, v != 0);
  return IntImm::make(t, static_cast<int64_t>(v));
}
Expr make_zero(Type t) { return make_const(t, 0); }

bool is_const(const Expr &e) { return e.as<IntImm>() || e.as<FloatImm>(); }
bool is_const(const Expr &e, int64_t v) {
  if (auto *i = e.as<IntImm>()) return i->value == v;
  if (auto *f = e.as<FloatImm>()) return f->value == static_cast<double>(v);
  return false;
}

namespace {
// Literals adopt the other operand's type.
void match_types(Expr &a, Expr &b) {
  if (a.type() == b.type()) return;
  if (auto *i = b.as<IntImm>()) {
    b = make_const(a.type(), static_cast<double>(i->value));
  } else if (auto *f = b.as<FloatImm>()) {
    b = make_const(a.type(), f->value);
  } else if (auto *i2 = a.as<IntImm>()) {
    a = make_const(b.type(), static_cast<double>(i2->value));
  } else if (auto *f2 = a.as<FloatImm>()) {
    a = make_const(b.type(), f2->value);
  }
  internal_assert(a.type() == b.type()) << "type mismatch " << a.type().str() << " vs "
                                        << b.type().str();
}
int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}
}  // namespace

Expr operator+(Expr a, Expr b) {
  match_types(a, b);
  auto *ia = a.as<IntImm>(), *ib = b.as<IntImm>();
  if (ia && ib) return IntImm::make(a.type(), ia->value + ib->value);
  if (is_const(b, 0) && !a.type().is_float()) return a;
  if (is_const(a, 0) && !a.type().is_float()) return b;
  return Add::make(a, b);
}
Expr operator-(Expr a, Expr b) {
  match_types(a, b);
  auto *ia = a.as<IntImm>(), *ib = b.as<IntImm>();
  if (ia && ib) return IntImm::make(a.type(), ia->value - ib->value);
  if (is_const(b, 0) && !a.type().is_float()) return a;
  return Sub::make(a, b);
}
Expr operator*(Expr a, Expr b) {
  match_types(a, b);
  auto *ia = a.as<IntImm>(), *ib = b.as<IntImm>();
  if (ia && ib) return IntImm::make(a.type(), ia->value * ib->value);
  if (!a.type().is_float()) {
    if (is_const(b, 1)) return a;
    if (is_const(a, 1)) return b;
    if (is_const(a, 0) || is_const(b, 0)) return make_zero(a.type());
  }
  return Mul::make(a, b);
}
Expr operator/(Expr a, Expr b) {
  match_types(a, b);
  auto *ia = a.as<IntImm>(), *ib = b.as<IntImm>();
  if (ia && ib && ib->value != 0 && a.type().is_int()) {
    return IntImm::make(a.type(), floor_div(ia->value, ib->value));
  }
  if (!a.type().is_float() && is_const(b, 1)) return a;
  return Div::make(a, b);
}
Expr operator%(Expr a, Expr b) {
  match_types(a, b);
  auto *ia = a.as<IntImm>(), *ib = b.as<IntImm>();
  if (ia && ib && ib->value != 0 && a.type().is_int()) {
    return IntImm::make(a.type(), ia->value - floor_div(ia->value, ib->value) * ib->value);
  }
  if (!a.type().is_float() && is_const(b, 1)) return make_zero(a.type());
  return Mod::make(a, b);
}
Expr operator-(Expr a) { return make_zero(a.type()) - a; }
Expr operator==(Expr a, Expr b) { match_types(a, b); return EQ::make(a, b); }
Expr operator!=(Expr a, Expr b) { match_types(a, b); return NE::make(a, b); }
Expr operator<(Expr a, Expr b) {
  match_types(a, b);
  auto *ia = a.as<IntImm>(), *ib = b.as<IntImm>();
  if (ia && ib) return make_const(Type::boolean(), ia->value < ib->value);
  return LT::make(a, b);
}
Expr operator<=(Expr a, Expr b) {
  match_types(a, b);
  auto *ia = a.as<IntImm>(), *ib = b.as<IntImm>();
  if (ia && ib) return make_const(Type::boolean(), ia->value <= ib->value);
  return LE::make(a, b);
}
Expr operator>(Expr a, Expr b) { return b < a; }
Expr operator>=(Expr a, Expr b) { return b <= a; }
Expr operator&&(Expr a, Expr b) {
  if (is_const(a, 1)) return b;
  if (is_const(b, 1)) return a;
  return And::make(a, b);
}
Expr operator||(Expr a, Expr b) {
  if (is_const(a, 0)) return b;
  if (is_const(b, 0)) return a;
  return Or::make(a, b);
}
Expr operator!(Expr a) { return Not::make(a); }
Expr min(Expr a, Expr b) {
  match_types(a, b);
  auto *ia = a.as<IntImm>(), *ib = b.as<IntImm>();
  if (ia && ib) return IntImm::make(a.type(), std::min(ia->value, ib->value));
  return Min::make(a, b);
}
Expr max(Expr a, Expr b) {
  match_types(a, b);
  auto *ia = a.as<IntImm>(), *ib = b.as<IntImm>();
  if (ia && ib) return IntImm::make(a.type(), std::max(ia->value, ib->value));
  return Max::make(a, b);
}
Expr select(Expr c, Expr t, Expr f) {
  match_types(t, f);
  if (auto *i = c.as<IntImm>()) return i->value ? t : f;
  return Select::make(c, t, f);
}
Expr cast(Type t, Expr v) {
  if (v.type() == t) return v;
  if (auto *i = v.as<IntImm>()) {
    if (!t.is_vector()) return make_const(t, static_cast<double>(i->value));
  }
  if (auto *f = v.as<FloatImm>()) {
    if (t.is_float() && !t.is_vector()) return make_const(t, f->value);
  }
  return Cast::make(t, v);
}
Expr call(Type t, const std::string &name, std::vector<Expr> args) {
  return Call::make(t, name, std::move(args));
}
Expr call(const std::string &name, std::vector<Expr> args) {
  Type t = args.at(0).type();
  return Call::make(t, name, std::move(args));
}

Expr type_min(Type t) {
  if (t.is_float()) return make_const(t, -std::numeric_limits<double>::infinity());
  if (t.is_uint()) return make_const(t, 0);
  if (t.bits == 64) return IntImm::make(t, std::numeric_limits<int64_t>::min());
  return make_const(t, -std::ldexp(1.0, t.bits - 1));
}
Expr type_max(Type t) {
  if (t.is_float()) return make_const(t, std::numeric_limits<double>::infinity());
  if (t.is_bool()) return make_const(t, 1);
  if (t.bits == 64) {
    return IntImm::make(t, t.is_uint() ? -1 : std::numeric_limits<int64_t>::max());
  }
  if (t.is_uint()) return IntImm::make(t, (int64_t{1} << t.bits) - 1);
  return IntImm::make(t, (int64_t{1} << (t.bits - 1)) - 1);
}

}  // namespace kiln
