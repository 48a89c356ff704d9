// Graph IR: SSA values with dtype and symbolic shape, nodes with an op kind from ops.def,
// and subgraphs for If/Loop/Scan. A Graph owns its values and nodes; nodes are kept in
// topological order by the importer and by every pass (verify_graph checks it).
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "graph/dim.h"
#include "graph/op_kind.h"
#include "support/dtype.h"
#include "support/tensor.h"

namespace kiln {

struct Node;
struct Graph;

struct Value {
  int id = 0;
  std::string name;
  DType dtype = DType::Undefined;
  Shape shape;
  bool has_shape = false;           // rank known
  Node *producer = nullptr;         // null for graph inputs, initializers, outer-scope values
  std::optional<Tensor> constant;   // initializer or folded constant
  // Element values of a small integer tensor whose contents are known symbolically
  // (e.g. Shape(x) = [batch, 3, h, w]); lets Reshape/Expand/Slice stay symbolic.
  std::optional<std::vector<Dim>> sym_values;
};

struct Attribute {
  enum class Kind { Undefined, Float, Int, String, Tensor, Graph, Floats, Ints, Strings, Graphs };
  Kind kind = Kind::Undefined;
  double f = 0;
  int64_t i = 0;
  std::string s;
  kiln::Tensor t;
  std::vector<double> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<std::shared_ptr<kiln::Graph>> graphs;  // one for Graph, several for Graphs
};

struct Node {
  OpKind kind = OpKind::Unknown;
  std::string op_type;   // as in the model (kept for messages)
  std::string name;
  std::string domain;
  int opset = 0;         // the default-domain opset the model imports
  std::vector<Value *> inputs;   // null entries are omitted optional inputs
  std::vector<Value *> outputs;  // null entries are omitted optional outputs
  std::map<std::string, Attribute> attrs;

  bool has_attr(const std::string &n) const { return attrs.count(n) != 0; }
  int64_t attr_i(const std::string &n, int64_t def) const;
  double attr_f(const std::string &n, double def) const;
  std::string attr_s(const std::string &n, const std::string &def) const;
  std::vector<int64_t> attr_ints(const std::string &n, std::vector<int64_t> def = {}) const;
  std::vector<double> attr_floats(const std::string &n) const;
  const Graph *attr_graph(const std::string &n) const;
  Value *input(size_t i) const { return i < inputs.size() ? inputs[i] : nullptr; }
  Value *output(size_t i) const { return i < outputs.size() ? outputs[i] : nullptr; }
  std::string describe() const;  // "Conv 'conv1'" for error messages
};

struct Graph {
  std::string name;
  Graph *parent = nullptr;  // enclosing graph for If/Loop/Scan bodies
  std::vector<std::unique_ptr<Value>> values;
  std::vector<std::unique_ptr<Node>> nodes;  // topological order
  std::vector<Value *> inputs;    // runtime inputs (not initializers)
  std::vector<Value *> outputs;
  std::vector<Value *> initializers;

  Value *new_value(const std::string &name);
  Node *new_node(OpKind kind, const std::string &op_type);
  // Name lookup in this graph, then enclosing graphs (outer-scope references).
  Value *find(const std::string &name) const;
  void rebuild_index();
  // Number of values in this graph and nested subgraphs.
  size_t node_count_recursive() const;

 private:
  std::map<std::string, Value *> by_name_;
  int next_id_ = 0;
};

struct Model {
  std::shared_ptr<Graph> graph;
  int64_t opset = 0;  // default domain
  std::string producer;
  std::string path;   // where it was loaded from (for messages)
};

// Checks SSA form, topological order, operand counts and that every value used is defined.
// Throws user_error (malformed model) naming the first problem.
void verify_graph(const Graph &g);

}  // namespace kiln
