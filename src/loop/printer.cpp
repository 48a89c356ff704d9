#include "loop/printer.h"

#include <sstream>

namespace kiln {

namespace {

class Printer {
 public:
  explicit Printer(std::ostream &os) : os_(os) {}

  void print(const Expr &e) {
    switch (e.node_type()) {
      case IRNodeType::IntImm: {
        auto *n = e.as<IntImm>();
        if (n->type == Type::index()) os_ << n->value;
        else if (n->type.is_bool()) os_ << (n->value ? "true" : "false");
        else os_ << "(" << n->type.str() << ")" << n->value;
        return;
      }
      case IRNodeType::FloatImm: {
        auto *n = e.as<FloatImm>();
        std::ostringstream s;
        s.precision(9);
        s << n->value;
        os_ << s.str();
        if (n->type != Type::f(32)) os_ << n->type.str();
        else if (s.str().find_first_of(".eni") == std::string::npos) os_ << ".0";
        return;
      }
      case IRNodeType::Var: os_ << e.as<Var>()->name; return;
#define BIN(N, OP)                                                     \
  case IRNodeType::N: {                                                \
    auto *n = e.as<N>();                                               \
    os_ << "(";                                                        \
    print(n->a);                                                       \
    os_ << OP;                                                         \
    print(n->b);                                                       \
    os_ << ")";                                                        \
    return;                                                            \
  }
      BIN(Add, " + ") BIN(Sub, " - ") BIN(Mul, " * ") BIN(Div, " / ") BIN(Mod, " % ")
      BIN(EQ, " == ") BIN(NE, " != ") BIN(LT, " < ") BIN(LE, " <= ") BIN(GT, " > ")
      BIN(GE, " >= ") BIN(And, " && ") BIN(Or, " || ")
#undef BIN
      case IRNodeType::Min: {
        auto *n = e.as<Min>();
        os_ << "min(";
        print(n->a);
        os_ << ", ";
        print(n->b);
        os_ << ")";
        return;
      }
      case IRNodeType::Max: {
        auto *n = e.as<Max>();
        os_ << "max(";
        print(n->a);
        os_ << ", ";
        print(n->b);
        os_ << ")";
        return;
      }
      case IRNodeType::Not: os_ << "!"; print(e.as<Not>()->a); return;
      case IRNodeType::Select: {
        auto *n = e.as<Select>();
        os_ << "select(";
        print(n->cond);
        os_ << ", ";
        print(n->true_value);
        os_ << ", ";
        print(n->false_value);
        os_ << ")";
        return;
      }
      case IRNodeType::Cast: {
        auto *n = e.as<Cast>();
        os_ << n->type.str() << "(";
        print(n->value);
        os_ << ")";
        return;
      }
      case IRNodeType::Load: {
        auto *n = e.as<Load>();
        os_ << n->buffer << "[";
        print(n->index);
        os_ << "]";
        return;
      }
      case IRNodeType::Ramp: {
        auto *n = e.as<Ramp>();
        os_ << "ramp(";
        print(n->base);
        os_ << ", ";
        print(n->stride);
        os_ << ", " << n->lanes << ")";
        return;
      }
      case IRNodeType::Broadcast: {
        auto *n = e.as<Broadcast>();
        os_ << "x" << n->lanes << "(";
        print(n->value);
        os_ << ")";
        return;
      }
      case IRNodeType::Call: {
        auto *n = e.as<Call>();
        os_ << n->name << "(";
        for (size_t i = 0; i < n->args.size(); ++i) {
          if (i) os_ << ", ";
          print(n->args[i]);
        }
        os_ << ")";
        return;
      }
      case IRNodeType::Let: {
        auto *n = e.as<Let>();
        os_ << "(let " << n->name << " = ";
        print(n->value);
        os_ << " in ";
        print(n->body);
        os_ << ")";
        return;
      }
      default: os_ << "<?>"; return;
    }
  }

  void print(const Stmt &s) {
    if (!s.defined()) return;
    switch (s.node_type()) {
      case IRNodeType::Store: {
        auto *n = s.as<Store>();
        indent();
        os_ << n->buffer << "[";
        print(n->index);
        os_ << "] = ";
        print(n->value);
        os_ << "\n";
        return;
      }
      case IRNodeType::For: {
        auto *n = s.as<For>();
        indent();
        os_ << for_kind_name(n->kind) << " (" << n->name << ", ";
        print(n->min);
        os_ << ", ";
        print(n->extent);
        os_ << ") {\n";
        nest(n->body);
        indent();
        os_ << "}\n";
        return;
      }
      case IRNodeType::LetStmt: {
        auto *n = s.as<LetStmt>();
        indent();
        os_ << "let " << n->name << " = ";
        print(n->value);
        os_ << "\n";
        print(n->body);
        return;
      }
      case IRNodeType::Block:
        for (auto &st : s.as<Block>()->stmts) print(st);
        return;
      case IRNodeType::IfThenElse: {
        auto *n = s.as<IfThenElse>();
        indent();
        os_ << "if (";
        print(n->cond);
        os_ << ") {\n";
        nest(n->then_case);
        if (n->else_case.defined()) {
          indent();
          os_ << "} else {\n";
          nest(n->else_case);
        }
        indent();
        os_ << "}\n";
        return;
      }
      case IRNodeType::Allocate: {
        auto *n = s.as<Allocate>();
        indent();
        os_ << "allocate " << n->buffer << "[" << n->type.str() << " * ";
        print(n->size);
        os_ << "]\n";
        print(n->body);
        return;
      }
      default: indent(); os_ << "<?>\n"; return;
    }
  }

 private:
  void indent() {
    for (int i = 0; i < depth_; ++i) os_ << "  ";
  }
  void nest(const Stmt &s) {
    ++depth_;
    print(s);
    --depth_;
  }
  std::ostream &os_;
  int depth_ = 0;
};

}  // namespace

std::string to_string(const Expr &e) {
  std::ostringstream s;
  Printer(s).print(e);
  return s.str();
}
std::string to_string(const Stmt &st) {
  std::ostringstream s;
  Printer(s).print(st);
  return s.str();
}
std::ostream &operator<<(std::ostream &os, const Expr &e) { return os << to_string(e); }
std::ostream &operator<<(std::ostream &os, const Stmt &s) { return os << to_string(s); }

}  // namespace kiln
