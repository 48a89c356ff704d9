// Shared helpers for the unit tests that build Graph IR models by hand: typed values,
// graph inputs, initializer constants, nodes, attribute makers, small tensor makers and
// the user-error catcher. Header-only.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "compiler/compiler.h"
#include "graph/graph.h"
#include "graph/parser.h"
#include "support/error.h"

namespace kiln::test {

// The message of the user_error `f` throws; empty when it throws nothing.
template <typename F>
std::string user_error_of(F &&f) {
  try {
    f();
  } catch (const Error &e) {
    EXPECT_EQ(e.kind(), ErrorKind::User) << e.what();
    return e.what();
  }
  return "";
}

inline std::unique_ptr<CompiledModel> compile_text(const std::string &text) {
  return CompiledModel::compile(parse_model(text));
}

// ---- values ----

// A value named `name` with a known dtype and shape (not yet attached anywhere).
inline Value *typed(Graph &g, const std::string &name, DType t, Shape s) {
  Value *v = g.new_value(name);
  v->dtype = t;
  v->shape = std::move(s);
  v->has_shape = true;
  return v;
}

// A typed value appended to the graph's inputs.
inline Value *input(Graph &g, const std::string &name, DType t, Shape s) {
  Value *v = typed(g, name, t, std::move(s));
  g.inputs.push_back(v);
  return v;
}

// An initializer holding `t`, typed from the tensor.
inline Value *constant(Graph &g, const std::string &name, const Tensor &t) {
  Value *v = g.new_value(name);
  v->constant = t;
  v->dtype = t.dtype();
  v->shape = shape_from(t.shape());
  v->has_shape = true;
  g.initializers.push_back(v);
  return v;
}

// ---- attributes ----

template <Attribute::Kind K, typename T, typename Member>
Attribute make_attr(T v, Member member) {
  Attribute a;
  a.kind = K;
  a.*member = std::move(v);
  return a;
}
inline Attribute int_attr(int64_t v) { return make_attr<Attribute::Kind::Int>(v, &Attribute::i); }
inline Attribute ints_attr(std::vector<int64_t> v) {
  return make_attr<Attribute::Kind::Ints>(std::move(v), &Attribute::ints);
}
inline Attribute float_attr(double v) { return make_attr<Attribute::Kind::Float>(v, &Attribute::f); }
inline Attribute string_attr(std::string v) {
  return make_attr<Attribute::Kind::String>(std::move(v), &Attribute::s);
}
inline Attribute graph_attr(std::shared_ptr<Graph> g) {
  return make_attr<Attribute::Kind::Graph>(std::vector<std::shared_ptr<Graph>>{std::move(g)},
                                           &Attribute::graphs);
}

inline void set_int(Node *n, const std::string &name, int64_t v) { n->attrs[name] = int_attr(v); }
inline void set_ints(Node *n, const std::string &name, std::vector<int64_t> v) {
  n->attrs[name] = ints_attr(std::move(v));
}
inline void set_float(Node *n, const std::string &name, double v) { n->attrs[name] = float_attr(v); }
inline void set_str(Node *n, const std::string &name, const std::string &v) {
  n->attrs[name] = string_attr(v);
}
inline void set_graph(Node *n, const std::string &name, std::shared_ptr<Graph> g) {
  n->attrs[name] = graph_attr(std::move(g));
}

// ---- tensors ----

inline Tensor f32(const std::vector<float> &v, std::vector<int64_t> shape) {
  Tensor t(DType::F32, std::move(shape));
  for (size_t i = 0; i < v.size(); ++i) t.as<float>()[i] = v[i];
  return t;
}

// ---- a model under construction ----

// How GraphBuilder::node names what it makes.
struct NodeStyle {
  enum class Naming { Numbered, OpName, Fixed };
  Naming naming = Naming::Numbered;  // "Relu3" (op name + node count), "Relu", or node_name
  std::string node_name;             // with Naming::Fixed
  bool op_type = true;           // op_type from the kind, else left empty
  std::string out_prefix = "out";  // outputs "out0", "out1", ...; empty: unnamed
  bool sets_outputs = false;     // each node's outputs become the graph's outputs

  static NodeStyle fixed(std::string name) {
    NodeStyle st;
    st.naming = Naming::Fixed;
    st.node_name = std::move(name);
    return st;
  }
  // Named after the op; each node's outputs become the graph's outputs.
  static NodeStyle op_named_outputs() {
    NodeStyle st;
    st.naming = Naming::OpName;
    st.sets_outputs = true;
    return st;
  }
  // Numbered names, no op_type, unnamed outputs.
  static NodeStyle anonymous() {
    NodeStyle st;
    st.op_type = false;
    st.out_prefix = "";
    return st;
  }
};

class GraphBuilder {
 public:
  Model m;
  Graph &g;
  NodeStyle style;

  explicit GraphBuilder(int64_t opset, NodeStyle s = {})
      : m{std::make_shared<Graph>(), opset, "unit", ""}, g(*m.graph), style(std::move(s)) {
    g.name = "main";
  }

  Value *input(const std::string &name, DType t, Shape s) {
    return test::input(g, name, t, std::move(s));
  }
  Value *constant(const std::string &name, const Tensor &t) { return test::constant(g, name, t); }
  // An unnamed i64 initializer.
  Value *ints_constant(const std::vector<int64_t> &v, std::vector<int64_t> shape) {
    return constant("", Tensor::from_i64(v, std::move(shape)));
  }

  Node *node(OpKind k, std::vector<Value *> ins, size_t outs = 1,
             std::vector<std::pair<std::string, Attribute>> attrs = {}) {
    Node *n = g.new_node(k, style.op_type ? op_name(k) : "");
    n->opset = static_cast<int>(m.opset);
    switch (style.naming) {
      case NodeStyle::Naming::Numbered:
        n->name = std::string(op_name(k)) + std::to_string(g.nodes.size());
        break;
      case NodeStyle::Naming::OpName: n->name = op_name(k); break;
      case NodeStyle::Naming::Fixed: n->name = style.node_name; break;
    }
    n->inputs = std::move(ins);
    for (size_t i = 0; i < outs; ++i) {
      Value *o = g.new_value(style.out_prefix.empty() ? "" : style.out_prefix + std::to_string(i));
      o->producer = n;
      n->outputs.push_back(o);
    }
    for (auto &[name, a] : attrs) n->attrs[name] = std::move(a);
    if (style.sets_outputs) g.outputs = n->outputs;
    return n;
  }
  Value *op(OpKind k, std::vector<Value *> ins) { return node(k, std::move(ins))->outputs[0]; }

  void output(Value *v) { g.outputs.push_back(v); }
  Model model() const { return m; }
};

}  // namespace kiln::test
