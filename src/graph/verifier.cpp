#include <map>
#include <unordered_set>

#include "graph/graph.h"
#include "graph/printer.h"
#include "support/error.h"

namespace kiln {

namespace {

using ValueSet = std::unordered_set<const Value *>;

class Verifier {
 public:
  void graph(const Graph &g) {
    ValueSet all = definitions(g);
    ValueSet defined;
    for (const Value *v : g.inputs) defined.insert(v);
    for (const Value *v : g.initializers) defined.insert(v);
    for (const auto &n : g.nodes) {
      user_assert(n->kind != OpKind::Unknown)
          << where(g) << n->describe() << " has an op kind kiln does not know";
      for (const Value *v : n->inputs) {
        if (!v || visible(defined, v)) continue;
        if (all.count(v)) {
          user_error << where(g) << n->describe() << " uses " << value_ref(v)
                     << " before it is defined (nodes are not in topological order)";
        }
        user_error << where(g) << n->describe() << " uses undefined value " << value_ref(v);
      }
      for (const auto &[attr, a] : n->attrs) {
        for (const auto &sub : a.graphs) {
          user_assert(sub) << where(g) << n->describe() << ": attribute '" << attr
                           << "' holds no graph";
          user_assert(sub->parent == &g) << where(g) << n->describe() << ": subgraph '" << sub->name
                                         << "' does not have this graph as its parent";
          outer_.push_back(&defined);
          graph(*sub);
          outer_.pop_back();
        }
      }
      for (const Value *v : n->outputs) {
        if (v) defined.insert(v);
      }
    }
    for (const Value *v : g.outputs) {
      user_assert(v) << where(g) << "a graph output is null";
      user_assert(visible(defined, v))
          << where(g) << "graph output " << value_ref(v) << " is not defined";
    }
  }

 private:
  static std::string where(const Graph &g) { return "graph '" + g.name + "': "; }

  // Every value `g` defines, each exactly once and with a name no other value of `g` has.
  static ValueSet definitions(const Graph &g) {
    ValueSet all;
    std::map<std::string, const Value *> names;
    auto define = [&](const Value *v, const Node *producer) {
      user_assert(all.insert(v).second)
          << where(g) << "value " << value_ref(v) << " is defined more than once";
      user_assert(names.emplace(v->name, v).second)
          << where(g) << "two different values are named " << value_ref(v);
      if (v->producer == producer) return;
      std::string is = v->producer ? v->producer->describe() : std::string("none");
      std::string want = producer ? producer->describe() : std::string("none");
      user_error << where(g) << "value " << value_ref(v) << " has producer " << is << ", expected "
                 << want;
    };
    for (const Value *v : g.inputs) {
      user_assert(v) << where(g) << "a graph input is null";
      define(v, nullptr);
    }
    for (const Value *v : g.initializers) {
      user_assert(v) << where(g) << "an initializer is null";
      define(v, nullptr);
    }
    for (const auto &n : g.nodes) {
      for (const Value *v : n->outputs) {
        if (v) define(v, n.get());
      }
    }
    return all;
  }

  bool visible(const ValueSet &defined, const Value *v) const {
    if (defined.count(v)) return true;
    for (const ValueSet *s : outer_) {
      if (s->count(v)) return true;
    }
    return false;
  }

  // For a subgraph: the values of each enclosing graph defined before the node holding it.
  std::vector<const ValueSet *> outer_;
};

}  // namespace

void verify_graph(const Graph &g) { Verifier().graph(g); }

}  // namespace kiln
