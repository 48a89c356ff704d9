// Depthwise-separable chains on blocked tensors as one kernel (-O2 and above, after
// blocked_layout): a depthwise BlockedConv whose result only feeds a 1x1 BlockedConv (stride
// 1), together with the 1x1 BlockedConv (stride 1) feeding it when the depthwise conv is its
// only reader -- MobileNet's inverted residual (expand -> depthwise -> project) or a
// depthwise-separable conv (depthwise -> pointwise) -- becomes one BlockedSeparableConv
// (lower/separable_conv.cpp), which keeps the intermediate tensors in per-thread rows.
// Only where the bands of rows are tall enough (worth_fusing); on small maps the
// single-conv kernels split their work across threads more finely.
#include "passes/passes.h"
#include "passes/rewrite.h"

namespace kiln {

namespace {

bool is_blocked_conv(const Node *n) { return n && n->kind == OpKind::BlockedConv && n->input(0) && n->input(0)->shape.size() == 5; }

bool depthwise(const Node &n) { return n.attr_i("group", 1) > 1; }

// A 1x1 conv with stride 1 and no epilogue after its activation (scale / shift).
bool plain_pointwise(const Node &n) {
  if (depthwise(n) || n.input(4) || n.input(5)) return false;
  for (int64_t s : n.attr_ints("strides", {1, 1})) {
    if (s != 1) return false;
  }
  return true;
}

// At least two bands of 4 or more output rows (lower/separable_conv.cpp), each recomputing at
// most 30% more expanded rows than it uses (the rows its window shares with the band above).
// Measured on MobileNetV2/V3 at 2 threads: 28x28 and 14x14 maps 5-15% faster per block, 56x56
// and 112x112 about even; 7x7 maps (2/3 more expansion work) and 5x5 kernels on 14x14 slower.
bool worth_fusing(const Node &d, bool expand) {
  const Value *y = d.output(0);
  if (y->shape.size() != 5 || !y->shape[2].is_const()) return false;
  int64_t rows = y->shape[2].value() / 2;
  const Value *w = d.input(1);  // [Cp, 1, kh, kw]
  std::vector<int64_t> st = d.attr_ints("strides", {1, 1}), dl = d.attr_ints("dilations", {1, 1});
  if (rows < 4 || !w || w->shape.size() != 4 || !w->shape[2].is_const() || st.size() != 2 || dl.size() != 2) return false;
  int64_t span = (w->shape[2].value() - 1) * dl[0] + 1;
  return !expand || static_cast<double>(span - st[0]) <= 0.3 * static_cast<double>(rows * st[0]);
}

void copy_activation(const Node &from, std::map<std::string, Attribute> &to, const std::string &prefix) {
  for (const char *k : {"activation", "activation_params"}) {
    auto it = from.attrs.find(k);
    if (it != from.attrs.end()) to[prefix + k] = it->second;
  }
}

void set_int(std::map<std::string, Attribute> &attrs, const char *k, int64_t v) {
  attrs[k].kind = Attribute::Kind::Int;
  attrs[k].i = v;
}

std::vector<std::string> ops_of(const Node &n) {
  auto it = n.attrs.find("fused_ops");
  return it != n.attrs.end() ? it->second.strings : std::vector<std::string>{"Conv"};
}

}  // namespace

void fuse_separable_convs(Graph &g) {
  std::map<const Value *, int> uses = use_counts(g);
  bool changed = false;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node *d = g.nodes[i].get();
    if (!is_blocked_conv(d) || !depthwise(*d) || d->input(3) || d->input(4) || d->input(5)) continue;
    Node *p = sole_consumer(g, uses, d->output(0));
    if (!is_blocked_conv(p) || !plain_pointwise(*p) || p->input(0) != d->output(0) || p->input(3) == d->output(0)) continue;
    Node *e = d->input(0)->producer;
    if (!is_blocked_conv(e) || !plain_pointwise(*e) || e->input(3) || sole_consumer(g, uses, e->output(0)) != d) e = nullptr;
    if (!worth_fusing(*d, e != nullptr)) continue;

    std::vector<Value *> in = {e ? e->input(0) : d->input(0), e ? e->input(1) : nullptr, e ? e->input(2) : nullptr,
                               d->input(1), d->input(2), p->input(1), p->input(2), p->input(3)};
    std::vector<Node *> absorbed = {d, p};
    if (e) absorbed.insert(absorbed.begin(), e);
    // The fused node's attributes: the depthwise conv's (kernel, strides, pads, dilations,
    // group), each stage's activation, the real channel counts, the ops it stands for.
    std::map<std::string, Attribute> attrs;
    for (auto &[k, v] : d->attrs) {
      if (k != "activation" && k != "activation_params" && k != "out_channels" && k != "fused_ops") attrs[k] = v;
    }
    copy_activation(*d, attrs, "depthwise_");
    if (e) copy_activation(*e, attrs, "expand_");
    copy_activation(*p, attrs, "");
    set_int(attrs, "in_channels", e ? e->attr_i("in_channels", 0) : d->attr_i("out_channels", 0));
    set_int(attrs, "mid_channels", d->attr_i("out_channels", 0));
    set_int(attrs, "out_channels", p->attr_i("out_channels", 0));
    Attribute &ops = attrs["fused_ops"], &stages = attrs["stage_ops"];  // stage_ops: fused_ops per stage
    ops.kind = Attribute::Kind::Strings;
    stages.kind = Attribute::Kind::Ints;
    if (!e) stages.ints.push_back(0);
    for (Node *s : absorbed) {
      auto o = ops_of(*s);
      ops.strings.insert(ops.strings.end(), o.begin(), o.end());
      stages.ints.push_back(static_cast<int64_t>(o.size()));
    }
    Node *f = replace_with_fused(g, uses, absorbed, OpKind::BlockedSeparableConv, in);
    f->attrs = std::move(attrs);
    f->op_type = "BlockedSeparableConv";
    changed = true;
  }
  if (!changed) return;
  std::vector<std::unique_ptr<Node>> kept;
  for (auto &n : g.nodes) {
    if (n) kept.push_back(std::move(n));
  }
  g.nodes = std::move(kept);
}

}  // namespace kiln
