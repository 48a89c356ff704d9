// Symbolic dimensions: a constant, a named symbol (from the model's dim_param or minted
// by shape inference), or an expression over them, e.g. `(h + 2 - 3) / 2 + 1`.
// Immutable and cheap to copy; arithmetic folds constants and simple identities, so a
// fully concrete shape stays a list of constants.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kiln {

class Dim {
 public:
  enum class Kind { Const, Sym, Add, Sub, Mul, Div, Mod, Max, Min };

  Dim() : Dim(int64_t{0}) {}
  Dim(int64_t v);  // NOLINT: implicit on purpose, shapes mix ints and symbols
  Dim(int v) : Dim(static_cast<int64_t>(v)) {}  // NOLINT
  static Dim sym(const std::string &name);

  Kind kind() const { return node_->kind; }
  bool is_const() const { return node_->kind == Kind::Const; }
  int64_t value() const;  // requires is_const()
  const std::string &name() const { return node_->name; }
  const Dim &a() const { return *node_->a; }
  const Dim &b() const { return *node_->b; }

  // Evaluates with concrete symbol values; nullopt if a symbol is unbound.
  std::optional<int64_t> eval(const std::map<std::string, int64_t> &env) const;
  void collect_symbols(std::vector<std::string> &out) const;
  bool same_as(const Dim &o) const;  // structural equality
  std::string str() const;

  friend Dim operator+(const Dim &x, const Dim &y);
  friend Dim operator-(const Dim &x, const Dim &y);
  friend Dim operator*(const Dim &x, const Dim &y);
  friend Dim operator/(const Dim &x, const Dim &y);  // floor division
  friend Dim operator%(const Dim &x, const Dim &y);
  friend Dim dim_max(const Dim &x, const Dim &y);
  friend Dim dim_min(const Dim &x, const Dim &y);

 private:
  struct Node {
    Kind kind;
    int64_t value = 0;
    std::string name;
    std::shared_ptr<const Dim> a, b;
  };
  explicit Dim(std::shared_ptr<const Node> n) : node_(std::move(n)) {}
  static Dim binary(Kind k, const Dim &x, const Dim &y);
  std::shared_ptr<const Node> node_;
};

using Shape = std::vector<Dim>;

std::string shape_str(const Shape &s);  // "[batch, 3, (h / 2), 224]"
bool shape_is_const(const Shape &s);
std::vector<int64_t> shape_values(const Shape &s);  // requires shape_is_const
Shape shape_from(const std::vector<int64_t> &v);
bool shapes_same(const Shape &a, const Shape &b);

// Parses the textual form printed by str(); returns nullopt on malformed text.
std::optional<Dim> parse_dim(const std::string &text);

}  // namespace kiln
