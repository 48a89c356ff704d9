#include "graph/graph.h"

#include "support/error.h"

namespace kiln {

int64_t Node::attr_i(const std::string &n, int64_t def) const {
  auto it = attrs.find(n);
  if (it == attrs.end()) return def;
  user_assert(it->second.kind == Attribute::Kind::Int)
      << describe() << ": attribute '" << n << "' must be an int";
  return it->second.i;
}

double Node::attr_f(const std::string &n, double def) const {
  auto it = attrs.find(n);
  if (it == attrs.end()) return def;
  if (it->second.kind == Attribute::Kind::Int) return static_cast<double>(it->second.i);
  user_assert(it->second.kind == Attribute::Kind::Float)
      << describe() << ": attribute '" << n << "' must be a float";
  return it->second.f;
}

std::string Node::attr_s(const std::string &n, const std::string &def) const {
  auto it = attrs.find(n);
  if (it == attrs.end()) return def;
  user_assert(it->second.kind == Attribute::Kind::String)
      << describe() << ": attribute '" << n << "' must be a string";
  return it->second.s;
}

std::vector<int64_t> Node::attr_ints(const std::string &n, std::vector<int64_t> def) const {
  auto it = attrs.find(n);
  if (it == attrs.end()) return def;
  if (it->second.kind == Attribute::Kind::Int) return {it->second.i};
  user_assert(it->second.kind == Attribute::Kind::Ints)
      << describe() << ": attribute '" << n << "' must be a list of ints";
  return it->second.ints;
}

std::vector<double> Node::attr_floats(const std::string &n) const {
  auto it = attrs.find(n);
  if (it == attrs.end()) return {};
  user_assert(it->second.kind == Attribute::Kind::Floats)
      << describe() << ": attribute '" << n << "' must be a list of floats";
  return it->second.floats;
}

const Graph *Node::attr_graph(const std::string &n) const {
  auto it = attrs.find(n);
  if (it == attrs.end() || it->second.kind != Attribute::Kind::Graph || it->second.graphs.empty()) {
    return nullptr;
  }
  return it->second.graphs[0].get();
}

std::string Node::describe() const {
  std::string s = op_type.empty() ? op_name(kind) : op_type;
  if (!name.empty()) s += " '" + name + "'";
  return s;
}

Value *Graph::new_value(const std::string &name) {
  auto v = std::make_unique<Value>();
  v->id = next_id_++;
  v->name = name.empty() ? "%" + std::to_string(v->id) : name;
  Value *p = v.get();
  values.push_back(std::move(v));
  by_name_[p->name] = p;
  return p;
}

Node *Graph::new_node(OpKind kind, const std::string &op_type) {
  auto n = std::make_unique<Node>();
  n->kind = kind;
  n->op_type = op_type.empty() ? op_name(kind) : op_type;
  Node *p = n.get();
  nodes.push_back(std::move(n));
  return p;
}

Value *Graph::find(const std::string &name) const {
  auto it = by_name_.find(name);
  if (it != by_name_.end()) return it->second;
  return parent ? parent->find(name) : nullptr;
}

void Graph::rebuild_index() {
  by_name_.clear();
  for (auto &v : values) by_name_[v->name] = v.get();
}

size_t Graph::node_count_recursive() const {
  size_t n = nodes.size();
  for (auto &node : nodes) {
    for (auto &[k, a] : node->attrs) {
      for (auto &g : a.graphs) n += g->node_count_recursive();
    }
  }
  return n;
}

}  // namespace kiln
