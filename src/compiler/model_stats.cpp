#include "compiler/model_stats.h"

#include <algorithm>

namespace kiln {

namespace {

struct Eval {
  const std::map<std::string, int64_t> &symbols;
  bool symbolic = false;
  double dim(const Dim &d) {
    std::vector<std::string> syms;
    d.collect_symbols(syms);
    std::map<std::string, int64_t> env = symbols;
    for (auto &s : syms) {
      if (!env.count(s)) {
        env[s] = 1;
        symbolic = true;
      }
    }
    auto v = d.eval(env);
    return v ? static_cast<double>(*v) : 0.0;
  }
  double bytes(const Value *v) { return v && v->dtype != DType::String ? numel(v) * dtype_size(v->dtype) : 0; }
  double numel(const Value *v) {
    if (!v || !v->has_shape) return 0;
    double n = 1;
    for (auto &d : v->shape) n *= dim(d);
    return n;
  }
};

double node_flops(const Node &n, Eval &e) {
  const Value *y = n.output(0);
  double out = e.numel(y);
  switch (n.kind) {
    case OpKind::BlockedConv: {
      // Real channels only: the blocks' padding multiplies zero weights. y is [N, CB, OH, OW, b].
      if (!y || !y->has_shape || y->shape.size() != 5) return 0;
      double px = e.dim(y->shape[0]) * e.dim(y->shape[2]) * e.dim(y->shape[3]);
      double m = static_cast<double>(n.attr_i("out_channels", 0));
      const Value *w = n.input(1);  // [OCp, IC or 1, kh, kw] in every blocked form
      if (!w || !w->has_shape || w->shape.size() != 4) return 0;
      double taps = e.dim(w->shape[2]) * e.dim(w->shape[3]);
      bool depthwise = n.attr_i("group", 1) > 1;
      double cin = depthwise ? 1 : static_cast<double>(n.attr_i("in_channels", 0));
      return 2 * px * m * cin * taps;
    }
    case OpKind::BlockedSeparableConv: {
      // [expansion over the input's pixels +] depthwise + projection, real channels.
      const Value *x = n.input(0), *wd = n.input(3);
      if (!y || !y->has_shape || y->shape.size() != 5 || !x || !x->has_shape || x->shape.size() != 5 || !wd ||
          !wd->has_shape || wd->shape.size() != 4) {
        return 0;
      }
      double batch = e.dim(y->shape[0]), px_in = e.dim(x->shape[2]) * e.dim(x->shape[3]);
      double px = e.dim(y->shape[2]) * e.dim(y->shape[3]), taps = e.dim(wd->shape[2]) * e.dim(wd->shape[3]);
      double k = static_cast<double>(n.attr_i("in_channels", 0)), m = static_cast<double>(n.attr_i("mid_channels", 0));
      double o = static_cast<double>(n.attr_i("out_channels", 0));
      return 2 * batch * ((n.input(1) ? px_in * k * m : 0) + px * m * taps + px * m * o);
    }
    case OpKind::Conv:
    case OpKind::FusedConv: {
      const Value *w = n.input(1);
      if (!w || !w->has_shape) return 0;
      double k = 1;
      for (size_t i = 1; i < w->shape.size(); ++i) k *= e.dim(w->shape[i]);
      return 2 * out * k;
    }
    case OpKind::WinogradConv: {  // the direct convolution's count
      const Value *u = n.input(1);
      if (!u || !u->has_shape || u->shape.size() != 3) return 0;
      return 2 * out * e.dim(u->shape[2]) * 9;
    }
    case OpKind::MatMul:
    case OpKind::FusedMatMul: {
      const Value *a = n.input(0);
      if (!a || !a->has_shape || a->shape.empty()) return 0;
      return 2 * out * e.dim(a->shape.back());
    }
    case OpKind::FusedAttention: {  // Q·Kᵀ and P·V, plus ~5 per score for scale, mask, softmax
      const Value *q = n.input(0), *k = n.input(1);
      if (!q || !k || !q->has_shape || !k->has_shape || q->shape.size() < 2 || k->shape.size() < 2) return 0;
      auto logical = [&](const Value *v, const char *perm, size_t from_end) {
        std::vector<int64_t> p = n.attr_ints(perm);
        size_t r = v->shape.size(), i = r - from_end;
        return e.dim(v->shape[p.size() == r ? static_cast<size_t>(p[i]) : i]);
      };
      double d = logical(q, "q_perm", 1), sk = logical(k, "k_perm", 2);
      if (d <= 0) return 0;
      double rows = e.numel(q) / d;  // batch x Sq
      double dv = rows > 0 ? out / rows : 0;
      return rows * sk * (2 * d + 2 * dv + 5);
    }
    case OpKind::SampleGather:  // a copy
      return 0;
    case OpKind::Gemm: {
      const Value *a = n.input(0);
      if (!a || !a->has_shape || a->shape.size() != 2) return 0;
      return 2 * out * e.dim(a->shape[n.attr_i("transA", 0) ? 0 : 1]);
    }
    default: return out;
  }
}

// What a BlockedSeparableConv saves: each stage's result written and read back (the expanded
// tensor at the input's map size, the depthwise result at the output's; real channels), plus
// the epilogue ops each stage had fused (fused_ops per stage in `stage_ops`).
double separable_intermediates(const Node &n, Eval &e) {
  const Value *x = n.input(0), *y = n.output(0);
  if (!x || !y || !x->has_shape || !y->has_shape || x->shape.size() != 5 || y->shape.size() != 5) return 0;
  double batch = e.dim(y->shape[0]), m = static_cast<double>(n.attr_i("mid_channels", 0));
  double expanded = 4 * batch * m * e.dim(x->shape[2]) * e.dim(x->shape[3]);
  double dw = 4 * batch * m * e.dim(y->shape[2]) * e.dim(y->shape[3]);
  std::vector<int64_t> stages = n.attr_ints("stage_ops", {0, 1, 1});
  std::vector<double> sizes = {expanded, dw, e.bytes(y)};
  double b = 2 * (dw + (n.input(1) ? expanded : 0));
  for (size_t i = 0; i < 3 && i < stages.size(); ++i) b += 2 * sizes[i] * static_cast<double>(std::max<int64_t>(stages[i] - 1, 0));
  return b;
}

void traffic(const Graph &g, Eval &e, ModelStats &s, size_t repeated, double times) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const auto &n = g.nodes[i];
    const double k = i < repeated ? times : 1;
    double b = 0;
    for (const Value *v : n->inputs) b += k * e.bytes(v);
    for (const Value *v : n->outputs) b += k * e.bytes(v);
    double unfused = b;
    if (n->has_attr("fused_ops")) {
      auto ops = n->attrs.at("fused_ops").strings;
      FusedGroup fg;
      fg.node = n->describe();
      for (size_t i = 0; i < ops.size(); ++i) fg.ops += (i ? "+" : "") + ops[i];
      fg.flops = k * node_flops(*n, e);
      fg.bytes = b;
      if (n->kind == OpKind::BlockedSeparableConv) {
        unfused += k * separable_intermediates(*n, e);
      } else {
        unfused += k * 2 * e.bytes(n->output(0)) * static_cast<double>(ops.size() - 1);
      }
      fg.bytes_unfused = unfused;
      s.groups.push_back(fg);
    }
    s.bytes_moved += b;
    s.bytes_moved_unfused += unfused;
  }
}

void count(const Graph &g, Eval &e, ModelStats &s, std::map<std::string, OpCount> &hist, size_t repeated = 0,
           double times = 1) {
  for (const Value *v : g.initializers) {
    if (!v->constant || v->dtype == DType::String) continue;
    s.parameters += v->constant->numel();
    s.parameter_bytes += static_cast<int64_t>(v->constant->nbytes());
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const auto &n = g.nodes[i];
    auto &h = hist[op_name(n->kind)];
    h.op = op_name(n->kind);
    h.path = op_path(n->kind);
    ++h.count;
    s.flops += (i < repeated ? times : 1) * node_flops(*n, e);
    for (auto &[k, a] : n->attrs) {
      for (auto &sub : a.graphs) count(*sub, e, s, hist);
    }
  }
}

}  // namespace

ModelStats compute_stats(const Graph &g, const std::map<std::string, int64_t> &symbols, size_t repeated, double times) {
  ModelStats s;
  Eval e{symbols};
  std::map<std::string, OpCount> hist;
  count(g, e, s, hist, repeated, times);
  traffic(g, e, s, repeated, times);
  for (auto &[k, v] : hist) s.ops.push_back(v);
  std::stable_sort(s.ops.begin(), s.ops.end(), [](auto &a, auto &b) { return a.count > b.count; });
  s.flops_symbolic = e.symbolic;
  return s;
}

}  // namespace kiln
