// Batch splitting: a conv net run on a batch of N samples is compiled for one sample and
// run N times (CompiledModel::run slices the inputs and stacks the outputs). kiln's conv
// kernels loop over the samples one at a time anyway, so batching buys them nothing, while
// a whole batch's activations fall out of the caches between layers: ResNet-50 at batch 8
// moves 25 MB tensors through DRAM at every 1x1 conv (297 ms against 8 x 34 ms at batch 1).
//
// A graph is split only when every node is known to treat the samples independently
// (dim 0 of every input-dependent value is the sample); anything else -- a Shape op, a
// reduction or reshape that mixes samples, an op not on the list -- keeps it whole.
#include <map>
#include <set>

#include "passes/passes.h"
#include "support/error.h"

namespace kiln {

namespace {

bool batched(const Value *v, int64_t n) {
  return v && v->has_shape && !v->shape.empty() && v->shape[0].is_const() && v->shape[0].value() == n;
}

// Normalized axis of attribute `name` (default `def`) against rank `rank`.
int64_t axis_of(const Node &node, const char *name, int64_t def, size_t rank) {
  int64_t a = node.attr_i(name, def);
  return a < 0 ? a + static_cast<int64_t>(rank) : a;
}

// Whether `node` maps sample i of its batched inputs to sample i of its outputs, given
// which of its inputs depend on the graph inputs (`dep`: those must be batched).
bool separable(const Node &node, const std::set<const Value *> &dep, int64_t n) {
  auto is_dep = [&](const Value *v) { return v && dep.count(v) != 0; };
  size_t rank = node.inputs.empty() || !node.inputs[0] || !node.inputs[0]->has_shape ? 0 : node.inputs[0]->shape.size();
  switch (node.kind) {
    case OpKind::Conv:
    case OpKind::MaxPool:
    case OpKind::AveragePool:
    case OpKind::GlobalAveragePool:
    case OpKind::GlobalMaxPool:
    case OpKind::BatchNormalization:  // inference form: per-channel constants
    case OpKind::Gemm:                // A [N, K] by rows (the weights must not depend on inputs)
    case OpKind::MatMul:              // A [N, ..., K] by rows
      if (node.kind == OpKind::Gemm && node.attr_i("transA", 0) != 0) return false;
      if (node.kind == OpKind::BatchNormalization && node.attr_i("training_mode", 0) != 0) return false;
      for (size_t i = 1; i < node.inputs.size(); ++i) {
        const Value *v = node.inputs[i];
        if (is_dep(v)) return false;
        // Constants that pair rows with samples: a Gemm bias [N, M], a batched MatMul B.
        bool rows = node.kind == OpKind::Gemm && i == 2 && v && v->has_shape && v->shape.size() == 2 &&
                    !(v->shape[0].is_const() && v->shape[0].value() == 1);
        if (rows || (node.kind == OpKind::MatMul && (!v->has_shape || v->shape.size() > 2))) return false;
      }
      if (node.kind == OpKind::MatMul && rank < 2) return false;
      return batched(node.input(0), n);
    case OpKind::Relu:
    case OpKind::LeakyRelu:
    case OpKind::Sigmoid:
    case OpKind::Tanh:
    case OpKind::Clip:
    case OpKind::HardSwish:
    case OpKind::HardSigmoid:
    case OpKind::Identity:
    case OpKind::Dropout:
    case OpKind::Add:
    case OpKind::Sub:
    case OpKind::Mul:
    case OpKind::Div: {
      // Input-dependent operands batched at the output's rank; constants broadcast.
      const Value *out = node.output(0);
      if (!batched(out, n)) return false;
      for (const Value *v : node.inputs) {
        if (!v) continue;
        if (is_dep(v) && (!batched(v, n) || v->shape.size() != out->shape.size())) return false;
        // A constant as long as the output pairs its rows with the samples.
        if (!is_dep(v) && (!v->has_shape || (v->shape.size() == out->shape.size() &&
                                             !(v->shape[0].is_const() && v->shape[0].value() == 1))))
          return false;
      }
      return true;
    }
    case OpKind::Flatten:
      return batched(node.input(0), n) && axis_of(node, "axis", 1, rank) >= 1;
    case OpKind::Softmax:
      return batched(node.input(0), n) && axis_of(node, "axis", node.opset >= 13 ? -1 : 1, rank) >= 1;
    case OpKind::Concat:
      for (const Value *v : node.inputs) {
        if (!is_dep(v) || !batched(v, n)) return false;
      }
      return axis_of(node, "axis", 0, rank) >= 1;
    case OpKind::Transpose: {
      std::vector<int64_t> perm = node.attr_ints("perm");
      return batched(node.input(0), n) && !perm.empty() && perm[0] == 0;
    }
    case OpKind::Reshape: {
      // A constant target shape keeping the samples apart: [0 or -1, ...] (one sample of
      // the same size, -1 then being the sample) -- never a literal batch size.
      const Value *s = node.input(1);
      if (!batched(node.input(0), n) || !batched(node.output(0), n) || !s || !s->constant) return false;
      std::vector<int64_t> dims = s->constant->to_i64_vector();
      if (dims.empty() || (dims[0] != 0 && dims[0] != -1)) return false;
      for (size_t i = 1; i < dims.size(); ++i) {
        if (dims[i] == -1 || (dims[i] == 0 && dims[0] == -1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

}  // namespace

int64_t batch_split_factor(const Graph &g) {
  if (g.inputs.empty() || g.outputs.empty()) return 0;
  int64_t n = 0;
  for (const Value *v : g.inputs) {
    if (!v->has_shape || v->shape.empty() || !v->shape[0].is_const()) return 0;
    if (v->dtype == DType::String) return 0;
    if (n == 0) n = v->shape[0].value();
    if (v->shape[0].value() != n) return 0;
  }
  if (n <= 1) return 0;
  std::set<const Value *> dep(g.inputs.begin(), g.inputs.end());
  bool has_conv = false;
  for (const auto &node : g.nodes) {
    bool uses_input = false;
    for (const Value *v : node->inputs) uses_input |= v && dep.count(v) != 0;
    if (!uses_input) continue;  // constants only: folded, the same for every sample
    if (!separable(*node, dep, n)) return 0;
    has_conv |= node->kind == OpKind::Conv;
    for (const Value *v : node->outputs) {
      if (!v) continue;
      if (!batched(v, n)) return 0;
      dep.insert(v);
    }
  }
  for (const Value *v : g.outputs) {
    if (!dep.count(v) || !batched(v, n)) return 0;
  }
  // Without convs (MatMul models) a batch shares each weight panel between its samples.
  return has_conv ? n : 0;
}

namespace {

bool weighted(OpKind k) {
  switch (k) {
    case OpKind::Conv:
    case OpKind::FusedConv:
    case OpKind::WinogradConv:
    case OpKind::BlockedConv:
    case OpKind::BlockedSeparableConv:
    case OpKind::MatMul:
    case OpKind::FusedMatMul:
    case OpKind::Gemm:
      return true;
    default:
      return false;
  }
}

double bytes_of(const Value *v) {
  if (!v || !v->has_shape) return 0;
  double b = static_cast<double>(dtype_size(v->dtype));
  for (const Dim &d : v->shape) b *= d.is_const() ? static_cast<double>(d.value()) : 0.0;
  return b;
}

}  // namespace

const Value *batch_split_cut(const Graph &g) {
  const size_t count = g.nodes.size();
  // Nodes from which on every conv / matmul reads at least as many weight bytes as
  // activation bytes of one sample: run per sample, it would stream its weights once per
  // sample for little activation traffic saved.
  std::vector<bool> weights_rule(count + 1, true);
  std::vector<bool> weighted_after(count + 1, false);
  for (size_t i = count; i-- > 0;) {
    const Node &n = *g.nodes[i];
    bool ok = true;
    if (weighted(n.kind)) {
      double w = 0;
      for (const Value *v : n.inputs) {
        if (v && v->constant) w += static_cast<double>(v->constant->nbytes());
      }
      ok = w >= bytes_of(n.input(0));
    }
    weights_rule[i] = ok && weights_rule[i + 1];
    weighted_after[i] = weighted(n.kind) || weighted_after[i + 1];
  }
  // Cuts: points in graph order where exactly one value is live (produced before, read
  // after; graph inputs count as produced at the start, graph outputs as read at the end).
  std::map<const Value *, int> uses;
  for (const auto &n : g.nodes) {
    for (const Value *v : n->inputs) {
      if (v && !v->constant) ++uses[v];
    }
  }
  for (const Value *v : g.outputs) ++uses[v];
  std::set<const Value *> live;
  for (const Value *v : g.inputs) {
    if (uses[v] > 0) live.insert(v);
  }
  for (size_t i = 0; i + 1 < count; ++i) {
    const Node &n = *g.nodes[i];
    for (const Value *v : n.inputs) {
      if (v && !v->constant && --uses[v] == 0) live.erase(v);
    }
    for (const Value *v : n.outputs) {
      if (v && uses[v] > 0) live.insert(v);
    }
    if (live.size() == 1 && *live.begin() == n.output(0) && weights_rule[i + 1] && weighted_after[i + 1]) {
      return n.output(0);
    }
  }
  return nullptr;
}

size_t insert_sample_gather(Graph &g, int64_t n) {
  const Value *cut = batch_split_cut(g);
  if (!cut) return 0;
  size_t at = 0;
  while (at < g.nodes.size() && g.nodes[at].get() != cut->producer) ++at;
  internal_assert(at < g.nodes.size()) << "split batch: the cut value has no producer";
  Value *whole = g.new_value(cut->name + "_samples");
  for (auto &node : g.nodes) {
    for (Value *&v : node->inputs) {
      if (v == cut) v = whole;
    }
  }
  for (Value *&v : g.outputs) {
    if (v == cut) v = whole;
  }
  Node *gather = g.new_node(OpKind::SampleGather, "SampleGather");
  std::unique_ptr<Node> owned = std::move(g.nodes.back());
  g.nodes.pop_back();
  gather->name = cut->name + "/sample_gather";
  gather->inputs = {const_cast<Value *>(cut)};
  gather->outputs = {whole};
  gather->attrs["samples"].kind = Attribute::Kind::Int;
  gather->attrs["samples"].i = n;
  whole->producer = gather;
  g.nodes.insert(g.nodes.begin() + static_cast<long>(at) + 1, std::move(owned));
  return at + 1;
}

}  // namespace kiln
