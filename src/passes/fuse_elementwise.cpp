// Trees of elementwise nodes become one FusedElementwise, evaluated per output element in
// one loop with no intermediate tensors (ops.def, lower/elementwise.cpp).
//
// From each root (an elementwise node not absorbed into a later one), the region grows
// upwards into the producers of its operands while the operand is an f32 value of the
// root's output shape read by nothing else. What the region reads from outside -- the
// main tensors, constants, per-channel or other broadcast operands -- become the fused
// node's inputs (each once, however often it is read: x * Sigmoid(x * c) reads x once).
// Regions of one node stay as they are. Runs after fuse_epilogues, so activations that
// can ride in a Conv / MatMul epilogue go there first.
#include <algorithm>
#include <set>

#include "passes/passes.h"
#include "passes/rewrite.h"

namespace kiln {

namespace {

bool f32_shaped(const Value *v) { return v && v->dtype == DType::F32 && v->has_shape; }

bool same_dims(const Shape &a, const Shape &b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].same_as(b[i])) return false;
  }
  return true;
}

// Ops whose single-node lowering (lower/elementwise.cpp) the program can reuse, with the
// operands they take.
bool fusable_kind(OpKind k) {
  switch (k) {
    case OpKind::Add: case OpKind::Sub: case OpKind::Mul: case OpKind::Div: case OpKind::Pow: case OpKind::PRelu:
    case OpKind::Max: case OpKind::Min: case OpKind::Clip:
    case OpKind::Abs: case OpKind::Neg: case OpKind::Exp: case OpKind::Log: case OpKind::Sqrt:
    case OpKind::Reciprocal: case OpKind::Sigmoid: case OpKind::Tanh: case OpKind::Relu: case OpKind::LeakyRelu:
    case OpKind::Elu: case OpKind::Selu: case OpKind::Celu: case OpKind::HardSigmoid: case OpKind::HardSwish:
    case OpKind::Softplus: case OpKind::Softsign: case OpKind::Erf: case OpKind::Gelu: case OpKind::Floor:
    case OpKind::Ceil: case OpKind::Round:
      return true;
    default: return false;
  }
}

// How many operands a fusable op takes (Clip: x and optional bounds).
size_t max_operands(OpKind k) {
  switch (k) {
    case OpKind::Clip: return 3;
    case OpKind::Add: case OpKind::Sub: case OpKind::Mul: case OpKind::Div: case OpKind::Pow: case OpKind::PRelu:
    case OpKind::Max: case OpKind::Min:
      return 2;
    default: return 1;
  }
}

bool fusable(const Node &n) {
  if (!fusable_kind(n.kind) || n.outputs.size() != 1 || !f32_shaped(n.output(0))) return false;
  if ((n.kind == OpKind::Max || n.kind == OpKind::Min) && n.inputs.size() != 2) return false;
  if (n.inputs.empty() || n.inputs.size() > max_operands(n.kind) || !n.input(0)) return false;
  return std::all_of(n.inputs.begin(), n.inputs.end(), [](const Value *v) { return !v || f32_shaped(v); });
}

class ElementwiseFuser {
 public:
  explicit ElementwiseFuser(Graph &g) : g_(g), uses_(use_counts(g)) {}

  void run() {
    for (size_t i = g_.nodes.size(); i-- > 0;) {
      Node *root = g_.nodes[i].get();
      if (!root || taken_.count(root) || !fusable(*root)) continue;
      std::vector<Node *> region;
      grow(*root, root->output(0)->shape, region);
      if (region.size() >= 2) fuse(region);
    }
    std::erase_if(g_.nodes, [](const std::unique_ptr<Node> &n) { return n == nullptr; });
  }

 private:
  void grow(Node &n, const Shape &shape, std::vector<Node *> &region) {
    region.push_back(&n);
    taken_.insert(&n);
    for (Value *v : n.inputs) {
      Node *p = v ? v->producer : nullptr;
      if (p && !taken_.count(p) && fusable(*p) && uses_[v] == 1 && same_dims(v->shape, shape) && owned(p)) {
        grow(*p, shape, region);
      }
    }
  }

  // Whether p is a node of this graph (not of an enclosing one).
  bool owned(const Node *p) const {
    return std::any_of(g_.nodes.begin(), g_.nodes.end(), [p](const std::unique_ptr<Node> &n) { return n.get() == p; });
  }

  void fuse(std::vector<Node *> region) {
    // Steps in graph order; ids: inputs 0..L-1, then step k is L + k.
    std::map<const Node *, size_t> order;
    for (size_t i = 0; i < g_.nodes.size(); ++i) order[g_.nodes[i].get()] = i;
    std::sort(region.begin(), region.end(), [&](const Node *a, const Node *b) { return order[a] < order[b]; });
    std::set<const Node *> in_region(region.begin(), region.end());
    std::vector<Value *> inputs;
    for (const Node *n : region) {
      for (Value *v : n->inputs) {
        if (v && !in_region.count(v->producer) && std::find(inputs.begin(), inputs.end(), v) == inputs.end()) {
          inputs.push_back(v);
        }
      }
    }
    std::map<const Value *, int64_t> id;
    for (size_t i = 0; i < inputs.size(); ++i) id[inputs[i]] = static_cast<int64_t>(i);
    Attribute ops{}, arity{}, args{};
    ops.kind = Attribute::Kind::Strings;
    arity.kind = args.kind = Attribute::Kind::Ints;
    std::map<std::string, Attribute> step_attrs;
    for (size_t k = 0; k < region.size(); ++k) {
      const Node *n = region[k];
      ops.strings.push_back(op_name(n->kind));
      arity.ints.push_back(static_cast<int64_t>(n->inputs.size()));
      for (Value *v : n->inputs) args.ints.push_back(v ? id.at(v) : -1);
      for (const auto &[name, a] : n->attrs) step_attrs["step" + std::to_string(k) + "_" + name] = a;
      id[n->output(0)] = static_cast<int64_t>(inputs.size() + k);
    }
    Node *f = replace_with_fused(g_, uses_, region, OpKind::FusedElementwise, inputs);
    f->attrs["ops"] = ops;
    f->attrs["arity"] = arity;
    f->attrs["args"] = args;
    for (auto &[name, a] : step_attrs) f->attrs[name] = a;
  }

  Graph &g_;
  std::map<const Value *, int> uses_;
  std::set<const Node *> taken_;
};

}  // namespace

void fuse_elementwise(Graph &g) { ElementwiseFuser(g).run(); }

}  // namespace kiln
