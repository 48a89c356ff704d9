// Loop IR: immutable Halide-like expression and statement nodes. Nodes are created with
// make(), which validates operands; handles (Expr, Stmt) share nodes. No RTTI: each node
// has a tag and as<T>() checks it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loop/type.h"

namespace kiln {

#define KILN_EXPR_NODES(X) \
  X(IntImm) X(FloatImm) X(Var) X(Add) X(Sub) X(Mul) X(Div) X(Mod) X(Min) X(Max) \
  X(EQ) X(NE) X(LT) X(LE) X(GT) X(GE) X(And) X(Or) X(Not) X(Select) X(Cast) X(Load) \
  X(Ramp) X(Broadcast) X(Call) X(Let)
#define KILN_STMT_NODES(X) X(Store) X(For) X(LetStmt) X(Block) X(IfThenElse) X(Allocate)

enum class IRNodeType {
#define X(n) n,
  KILN_EXPR_NODES(X) KILN_STMT_NODES(X)
#undef X
};

struct IRNode {
  explicit IRNode(IRNodeType t) : node_type(t) {}
  virtual ~IRNode() = default;
  IRNodeType node_type;
};

struct ExprNode : IRNode {
  using IRNode::IRNode;
  Type type;
};
struct StmtNode : IRNode {
  using IRNode::IRNode;
};

class Expr {
 public:
  Expr() = default;
  explicit Expr(std::shared_ptr<const ExprNode> n) : node_(std::move(n)) {}
  Expr(int64_t v);  // NOLINT: i64 constant
  Expr(int v);      // NOLINT: i64 constant
  Expr(double v);   // NOLINT: f32 constant
  bool defined() const { return node_ != nullptr; }
  Type type() const { return node_->type; }
  IRNodeType node_type() const { return node_->node_type; }
  const ExprNode *get() const { return node_.get(); }
  template <typename T>
  const T *as() const {
    return node_ && node_->node_type == T::kType ? static_cast<const T *>(node_.get()) : nullptr;
  }
  bool same_as(const Expr &o) const { return node_ == o.node_; }

 private:
  std::shared_ptr<const ExprNode> node_;
};

class Stmt {
 public:
  Stmt() = default;
  explicit Stmt(std::shared_ptr<const StmtNode> n) : node_(std::move(n)) {}
  bool defined() const { return node_ != nullptr; }
  IRNodeType node_type() const { return node_->node_type; }
  const StmtNode *get() const { return node_.get(); }
  template <typename T>
  const T *as() const {
    return node_ && node_->node_type == T::kType ? static_cast<const T *>(node_.get()) : nullptr;
  }
  bool same_as(const Stmt &o) const { return node_ == o.node_; }

 private:
  std::shared_ptr<const StmtNode> node_;
};

template <IRNodeType T>
struct ExprBase : ExprNode {
  static constexpr IRNodeType kType = T;
  ExprBase() : ExprNode(T) {}
};
template <IRNodeType T>
struct StmtBase : StmtNode {
  static constexpr IRNodeType kType = T;
  StmtBase() : StmtNode(T) {}
};

struct IntImm : ExprBase<IRNodeType::IntImm> {
  int64_t value;
  static Expr make(Type t, int64_t v);
};
struct FloatImm : ExprBase<IRNodeType::FloatImm> {
  double value;
  static Expr make(Type t, double v);
};
struct Var : ExprBase<IRNodeType::Var> {
  std::string name;
  static Expr make(Type t, const std::string &name);
};

template <IRNodeType T>
struct BinaryNode : ExprBase<T> {
  Expr a, b;
  static Expr make(Expr a, Expr b);
};
using Add = BinaryNode<IRNodeType::Add>;
using Sub = BinaryNode<IRNodeType::Sub>;
using Mul = BinaryNode<IRNodeType::Mul>;
using Div = BinaryNode<IRNodeType::Div>;  // ints: floor division; floats: IEEE
using Mod = BinaryNode<IRNodeType::Mod>;  // ints: floor modulo (sign of divisor); floats: fmod
using Min = BinaryNode<IRNodeType::Min>;
using Max = BinaryNode<IRNodeType::Max>;
using EQ = BinaryNode<IRNodeType::EQ>;
using NE = BinaryNode<IRNodeType::NE>;
using LT = BinaryNode<IRNodeType::LT>;
using LE = BinaryNode<IRNodeType::LE>;
using GT = BinaryNode<IRNodeType::GT>;
using GE = BinaryNode<IRNodeType::GE>;
using And = BinaryNode<IRNodeType::And>;
using Or = BinaryNode<IRNodeType::Or>;

struct Not : ExprBase<IRNodeType::Not> {
  Expr a;
  static Expr make(Expr a);
};
struct Select : ExprBase<IRNodeType::Select> {
  Expr cond, true_value, false_value;
  static Expr make(Expr c, Expr t, Expr f);
};
struct Cast : ExprBase<IRNodeType::Cast> {
  Expr value;
  static Expr make(Type t, Expr v);
};
// Load of element `index` (in elements) of a buffer whose element storage type is `type`.
struct Load : ExprBase<IRNodeType::Load> {
  std::string buffer;
  Expr index;
  static Expr make(Type t, const std::string &buffer, Expr index);
};
struct Ramp : ExprBase<IRNodeType::Ramp> {
  Expr base, stride;
  int lanes;
  static Expr make(Expr base, Expr stride, int lanes);
};
struct Broadcast : ExprBase<IRNodeType::Broadcast> {
  Expr value;
  int lanes;
  static Expr make(Expr v, int lanes);
};
// Pure math intrinsic: exp, log, sqrt, tanh, sin, cos, ..., erf, floor, ceil, round
// (half to even), abs, pow, atan2, fma, isnan, isinf, bit ops (shl, shr, and, or, xor),
// reinterpret (the same bits as the call's type, e.g. i32 <-> f32).
// Vector: stride_lanes(v, phase, stride) = lanes phase, phase + stride, ... of v (the
// call's type gives the result lanes; phase and stride are constants);
// interleave(a, b, half) = a[h], b[h], a[h + 1], b[h + 1], ... from h = half * lanes / 2
// (half 0 or 1, a constant): the low or high halves of a and b, alternating.
struct Call : ExprBase<IRNodeType::Call> {
  std::string name;
  std::vector<Expr> args;
  static Expr make(Type t, const std::string &name, std::vector<Expr> args);
};
struct Let : ExprBase<IRNodeType::Let> {
  std::string name;
  Expr value, body;
  static Expr make(const std::string &name, Expr value, Expr body);
};

struct Store : StmtBase<IRNodeType::Store> {
  std::string buffer;
  Expr index, value;
  static Stmt make(const std::string &buffer, Expr value, Expr index);
};
enum class ForKind { Serial, Parallel, Vectorized, Unrolled };
const char *for_kind_name(ForKind k);
struct For : StmtBase<IRNodeType::For> {
  std::string name;
  Expr min, extent;
  ForKind kind;
  Stmt body;
  static Stmt make(const std::string &name, Expr min, Expr extent, ForKind kind, Stmt body);
};
struct LetStmt : StmtBase<IRNodeType::LetStmt> {
  std::string name;
  Expr value;
  Stmt body;
  static Stmt make(const std::string &name, Expr value, Stmt body);
};
struct Block : StmtBase<IRNodeType::Block> {
  std::vector<Stmt> stmts;
  static Stmt make(std::vector<Stmt> stmts);
};
struct IfThenElse : StmtBase<IRNodeType::IfThenElse> {
  Expr cond;
  Stmt then_case, else_case;  // else_case may be undefined
  static Stmt make(Expr c, Stmt t, Stmt e = Stmt());
};
// A scratch buffer of `size` elements, live for `body`. Small constant sizes live on the
// stack (an accumulator promoted to registers); others on the heap.
struct Allocate : StmtBase<IRNodeType::Allocate> {
  std::string buffer;
  Type type;
  Expr size;
  Stmt body;
  static Stmt make(const std::string &buffer, Type t, Expr size, Stmt body);
};

// Convenience constructors with type coercion of constants (Halide-style operator
// overloads). Mixing an Expr with an int/double literal converts the literal to the
// Expr's type.
Expr operator+(Expr a, Expr b);
Expr operator-(Expr a, Expr b);
Expr operator*(Expr a, Expr b);
Expr operator/(Expr a, Expr b);
Expr operator%(Expr a, Expr b);
Expr operator-(Expr a);
Expr operator==(Expr a, Expr b);
Expr operator!=(Expr a, Expr b);
Expr operator<(Expr a, Expr b);
Expr operator<=(Expr a, Expr b);
Expr operator>(Expr a, Expr b);
Expr operator>=(Expr a, Expr b);
Expr operator&&(Expr a, Expr b);
Expr operator||(Expr a, Expr b);
Expr operator!(Expr a);
Expr min(Expr a, Expr b);
Expr max(Expr a, Expr b);
Expr select(Expr c, Expr t, Expr f);
Expr cast(Type t, Expr v);
Expr make_const(Type t, double v);
Expr make_zero(Type t);
Expr call(Type t, const std::string &name, std::vector<Expr> args);
Expr call(const std::string &name, std::vector<Expr> args);  // type of args[0]
// Lowest/highest finite value of a type (used as reduction identities).
Expr type_min(Type t);
Expr type_max(Type t);
bool is_const(const Expr &e, int64_t v);
bool is_const(const Expr &e);

}  // namespace kiln
