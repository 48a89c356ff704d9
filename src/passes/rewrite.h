// Small helpers shared by the rewriting passes (fusion, folding).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace kiln {

// How many times each value is read: node inputs (subgraphs included) and graph outputs.
std::map<const Value *, int> use_counts(const Graph &g);

// The only node of `g` reading `v`, or null when v has other uses (or is a graph output).
Node *sole_consumer(const Graph &g, const std::map<const Value *, int> &uses, const Value *v);

// A new initializer holding `t`.
Value *add_constant(Graph &g, const std::string &name, Tensor t);

// The f32 contents of a constant value (null when not a constant f32 tensor).
const Tensor *f32_constant(const Value *v);

// Records on a fused node the ops it stands for (attribute `fused_ops`, for kiln
// inspect's traffic report): begin_fused starts the list with the node's own op (if not
// started), note_fused appends an absorbed op.
void begin_fused(Node &n);
void note_fused(Node &n, const std::string &absorbed_op);

// A new `kind` node reading `inputs` (trailing nulls dropped) takes the place of the last
// of `absorbed` (in graph order) and its output; the other absorbed nodes' slots in
// g.nodes are emptied (null, for the caller to erase after its scan). `fused_ops` lists
// the absorbed ops in graph order; `uses` is kept current.
Node *replace_with_fused(Graph &g, std::map<const Value *, int> &uses, const std::vector<Node *> &absorbed,
                         OpKind kind, std::vector<Value *> inputs);

}  // namespace kiln
