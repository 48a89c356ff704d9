#include "graph/dim.h"

#include <cctype>
#include <charconv>

#include "support/error.h"

namespace kiln {

namespace {
int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}
int64_t floor_mod(int64_t a, int64_t b) { return a - floor_div(a, b) * b; }
}  // namespace

Dim::Dim(int64_t v) {
  auto n = std::make_shared<Node>();
  n->kind = Kind::Const;
  n->value = v;
  node_ = std::move(n);
}

Dim Dim::sym(const std::string &name) {
  auto n = std::make_shared<Node>();
  n->kind = Kind::Sym;
  n->name = name;
  return Dim(std::shared_ptr<const Node>(std::move(n)));
}

int64_t Dim::value() const {
  internal_assert(is_const()) << "value() of symbolic dim " << str();
  return node_->value;
}

Dim Dim::binary(Kind k, const Dim &x, const Dim &y) {
  if (x.is_const() && y.is_const()) {
    int64_t a = x.value(), b = y.value();
    switch (k) {
      case Kind::Add: return Dim(a + b);
      case Kind::Sub: return Dim(a - b);
      case Kind::Mul: return Dim(a * b);
      case Kind::Div: user_assert(b != 0) << "division by zero in a shape"; return Dim(floor_div(a, b));
      case Kind::Mod: user_assert(b != 0) << "modulo by zero in a shape"; return Dim(floor_mod(a, b));
      case Kind::Max: return Dim(a > b ? a : b);
      case Kind::Min: return Dim(a < b ? a : b);
      default: break;
    }
  }
  auto is = [](const Dim &d, int64_t v) { return d.is_const() && d.value() == v; };
  switch (k) {
    case Kind::Add: if (is(x, 0)) return y; if (is(y, 0)) return x; break;
    case Kind::Sub: if (is(y, 0)) return x; if (x.same_as(y)) return Dim(0); break;
    case Kind::Mul: if (is(x, 1)) return y; if (is(y, 1)) return x;
                    if (is(x, 0) || is(y, 0)) return Dim(0); break;
    case Kind::Div: if (is(y, 1)) return x;
                    // (a * c) / c -> a
                    if (x.kind() == Kind::Mul && x.b().same_as(y)) return x.a();
                    if (x.kind() == Kind::Mul && x.a().same_as(y)) return x.b();
                    if (x.same_as(y)) return Dim(1);
                    break;
    case Kind::Max: case Kind::Min: if (x.same_as(y)) return x; break;
    default: break;
  }
  // (s + c1) + c2 -> s + (c1 + c2); (s - c1) + c2 likewise, to keep derived dims short.
  if ((k == Kind::Add || k == Kind::Sub) && y.is_const() &&
      (x.kind() == Kind::Add || x.kind() == Kind::Sub) && x.b().is_const()) {
    int64_t c1 = x.kind() == Kind::Add ? x.b().value() : -x.b().value();
    int64_t c2 = k == Kind::Add ? y.value() : -y.value();
    int64_t c = c1 + c2;
    if (c == 0) return x.a();
    return c > 0 ? binary(Kind::Add, x.a(), Dim(c)) : binary(Kind::Sub, x.a(), Dim(-c));
  }
  auto n = std::make_shared<Node>();
  n->kind = k;
  n->a = std::make_shared<const Dim>(x);
  n->b = std::make_shared<const Dim>(y);
  return Dim(std::shared_ptr<const Node>(std::move(n)));
}

Dim operator+(const Dim &x, const Dim &y) { return Dim::binary(Dim::Kind::Add, x, y); }
Dim operator-(const Dim &x, const Dim &y) { return Dim::binary(Dim::Kind::Sub, x, y); }
Dim operator*(const Dim &x, const Dim &y) { return Dim::binary(Dim::Kind::Mul, x, y); }
Dim operator/(const Dim &x, const Dim &y) { return Dim::binary(Dim::Kind::Div, x, y); }
Dim operator%(const Dim &x, const Dim &y) { return Dim::binary(Dim::Kind::Mod, x, y); }
Dim dim_max(const Dim &x, const Dim &y) { return Dim::binary(Dim::Kind::Max, x, y); }
Dim dim_min(const Dim &x, const Dim &y) { return Dim::binary(Dim::Kind::Min, x, y); }

std::optional<int64_t> Dim::eval(const std::map<std::string, int64_t> &env) const {
  switch (kind()) {
    case Kind::Const: return value();
    case Kind::Sym: {
      auto it = env.find(name());
      if (it == env.end()) return std::nullopt;
      return it->second;
    }
    default: break;
  }
  auto x = a().eval(env), y = b().eval(env);
  if (!x || !y) return std::nullopt;
  return binary(kind(), Dim(*x), Dim(*y)).value();
}

void Dim::collect_symbols(std::vector<std::string> &out) const {
  if (kind() == Kind::Sym) {
    for (auto &s : out) {
      if (s == name()) return;
    }
    out.push_back(name());
  } else if (kind() != Kind::Const) {
    a().collect_symbols(out);
    b().collect_symbols(out);
  }
}

bool Dim::same_as(const Dim &o) const {
  if (node_ == o.node_) return true;
  if (kind() != o.kind()) return false;
  switch (kind()) {
    case Kind::Const: return value() == o.value();
    case Kind::Sym: return name() == o.name();
    default: return a().same_as(o.a()) && b().same_as(o.b());
  }
}

namespace {
// A symbol prints bare when parse_dim reads it back as the same symbol; otherwise quoted.
std::string sym_text(const std::string &name) {
  bool bare = !name.empty() && (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_');
  for (char c : name) {
    bare = bare && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == ':');
  }
  if (bare) return name;
  std::string q = "\"";
  for (char c : name) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  return q + "\"";
}
}  // namespace

std::string Dim::str() const {
  const char *op = nullptr;
  switch (kind()) {
    case Kind::Const: return std::to_string(value());
    case Kind::Sym: return sym_text(name());
    case Kind::Add: op = " + "; break;
    case Kind::Sub: op = " - "; break;
    case Kind::Mul: op = " * "; break;
    case Kind::Div: op = " / "; break;
    case Kind::Mod: op = " % "; break;
    case Kind::Max: return "max(" + a().str() + ", " + b().str() + ")";
    case Kind::Min: return "min(" + a().str() + ", " + b().str() + ")";
  }
  return "(" + a().str() + op + b().str() + ")";
}

std::string shape_str(const Shape &s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += s[i].str();
  }
  return r + "]";
}

bool shape_is_const(const Shape &s) {
  for (auto &d : s) {
    if (!d.is_const()) return false;
  }
  return true;
}

std::vector<int64_t> shape_values(const Shape &s) {
  std::vector<int64_t> v;
  for (auto &d : s) v.push_back(d.value());
  return v;
}

Shape shape_from(const std::vector<int64_t> &v) { return Shape(v.begin(), v.end()); }

bool shapes_same(const Shape &a, const Shape &b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].same_as(b[i])) return false;
  }
  return true;
}

namespace {
// Recursive-descent parser for the grammar printed by Dim::str().
struct DimParser {
  const std::string &s;
  size_t p = 0;
  void ws() { while (p < s.size() && s[p] == ' ') ++p; }
  bool eat(char c) { ws(); if (p < s.size() && s[p] == c) { ++p; return true; } return false; }
  std::optional<Dim> primary() {
    ws();
    if (p >= s.size()) return std::nullopt;
    if (s[p] == '(') {
      ++p;
      auto x = primary();
      if (!x) return std::nullopt;
      ws();
      if (p >= s.size()) return std::nullopt;
      char op = s[p++];
      auto y = primary();
      if (!y || !eat(')')) return std::nullopt;
      switch (op) {
        case '+': return *x + *y;
        case '-': return *x - *y;
        case '*': return *x * *y;
        case '/': return *x / *y;
        case '%': return *x % *y;
        default: return std::nullopt;
      }
    }
    if (s[p] == '-' || std::isdigit(static_cast<unsigned char>(s[p]))) {
      int64_t v = 0;
      auto [end, ec] = std::from_chars(s.data() + p, s.data() + s.size(), v);
      if (ec != std::errc()) return std::nullopt;
      p = static_cast<size_t>(end - s.data());
      return Dim(v);
    }
    if (s[p] == '"') {
      std::string name;
      for (++p; p < s.size() && s[p] != '"'; ++p) {
        if (s[p] == '\\' && p + 1 < s.size()) ++p;
        name += s[p];
      }
      if (!eat('"')) return std::nullopt;
      return Dim::sym(name);
    }
    size_t q = p;
    while (q < s.size() && (std::isalnum(static_cast<unsigned char>(s[q])) || s[q] == '_' ||
                            s[q] == '.' || s[q] == ':'))
      ++q;
    if (q == p) return std::nullopt;
    std::string name = s.substr(p, q - p);
    p = q;
    if ((name == "max" || name == "min") && eat('(')) {
      auto x = primary();
      if (!x || !eat(',')) return std::nullopt;
      auto y = primary();
      if (!y || !eat(')')) return std::nullopt;
      return name == "max" ? dim_max(*x, *y) : dim_min(*x, *y);
    }
    return Dim::sym(name);
  }
};
}  // namespace

std::optional<Dim> parse_dim(const std::string &text) {
  DimParser ps{text};
  auto d = ps.primary();
  ps.ws();
  if (!d || ps.p != text.size()) return std::nullopt;
  return d;
}

}  // namespace kiln
