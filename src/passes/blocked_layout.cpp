// NCHWc blocked activations (-O2 and above): regions of depthwise and 1x1 convs run on
// tensors blocked by `b` channels ([N, ceil(C/b), H, W, b], b = the target's f32 lanes),
// where every kernel's vectors run across channels (lower/conv_blocked.cpp): a depthwise
// tap is one vector load for b channels on maps of any width (NCHW vectorizes along rows,
// which on 7x7 and 14x14 maps leaves lanes idle or needs gathers), and a 1x1 conv's
// results are contiguous stores.
//
// Candidates: FusedConvs (1x1 group-1 without padding, depthwise, or a stem: a dense conv
// over <= 4 input channels, which reads NCHW and writes blocked) with static NCHW
// shapes and constant weights / per-channel vectors; GlobalAveragePool; Mul/Add of
// same-shape NCHW tensors or of one with a per-channel [N, C, 1, 1] one (squeeze-and-
// excitation: the broadcast stays a broadcast on the blocked shapes). Connected candidates
// form regions; a region is converted when it holds a depthwise conv and a 1x1 conv (the
// MobileNet inverted-residual pattern; a region without a depthwise conv would only move
// ResNet's GEMMs to another layout and pay the reorders), after its edges are moved to
// the smallest tensors they can be (peel_edges). ToBlocked / FromBlocked reorder
// at the region's edges; the weights and per-channel vectors are padded with zeros to
// whole blocks, so the padded channels compute finite don't-care values that no real
// channel ever reads.
#include <functional>
#include <numeric>
#include <set>

#include "graph/conv_attrs.h"
#include "passes/passes.h"
#include "passes/rewrite.h"

namespace kiln {

namespace {

// Stem: a dense conv over few input channels (an image's 3) reading its NCHW input and
// writing the blocked output (no ToBlocked after the network's first conv).
enum class Role { None, Pointwise, Depthwise, Stem, Pool, Binary };

bool static_nchw(const Value *v) {
  if (!v || !v->has_shape || v->dtype != DType::F32 || v->shape.size() != 4) return false;
  for (int i = 1; i < 4; ++i) {
    if (!v->shape[i].is_const()) return false;
  }
  return true;
}

bool zero_pads(const Node &n) {
  std::string ap = n.attr_s("auto_pad", "NOTSET");
  if (ap != "NOTSET" && ap != "VALID" && ap != "") return false;
  for (int64_t p : n.attr_ints("pads", {0, 0, 0, 0})) {
    if (p != 0) return false;
  }
  return true;
}

Role role_of(const Node &n) {
  if (n.kind == OpKind::FusedConv) {
    const Value *x = n.input(0), *y = n.output(0);
    const Tensor *w = f32_constant(n.input(1));
    if (!static_nchw(x) || !static_nchw(y) || !w || w->rank() != 4 || n.has_attr("packed_mr") ||
        n.has_attr("packed_nr")) {
      return Role::None;
    }
    for (size_t i : {2, 4, 5}) {
      if (n.input(i) && !f32_constant(n.input(i))) return Role::None;
    }
    if (n.input(3) && (!static_nchw(n.input(3)) || !shapes_same(n.input(3)->shape, y->shape))) return Role::None;
    int64_t group = n.attr_i("group", 1), C = x->shape[1].value(), M = y->shape[1].value();
    if (group == 1 && w->shape()[2] == 1 && w->shape()[3] == 1 && zero_pads(n)) return Role::Pointwise;
    if (group == 1 && C <= 4 && !n.input(3)) return Role::Stem;
    if (group == C && C == M && w->shape()[1] == 1) {
      // The kernel computes static padding; SAME_* auto_pad resolves to it on static maps.
      return Role::Depthwise;
    }
    return Role::None;
  }
  if (n.kind == OpKind::GlobalAveragePool) return static_nchw(n.input(0)) ? Role::Pool : Role::None;
  if ((n.kind == OpKind::Mul || n.kind == OpKind::Add) && n.inputs.size() == 2) {
    const Value *y = n.output(0);
    if (!static_nchw(y)) return Role::None;
    for (const Value *v : n.inputs) {
      if (!static_nchw(v) || !v->shape[0].same_as(y->shape[0]) || !v->shape[1].same_as(y->shape[1])) return Role::None;
      bool same = shapes_same(v->shape, y->shape);
      bool per_channel = v->shape[2].value() == 1 && v->shape[3].value() == 1;
      if (!same && !per_channel) return Role::None;
    }
    return Role::Binary;
  }
  return Role::None;
}

int64_t round_up(int64_t v, int64_t b) { return (v + b - 1) / b * b; }

// A per-channel vector padded with zeros to `cp` channels.
Value *padded_vector(Graph &g, const Value *v, int64_t cp) {
  const Tensor &t = *f32_constant(v);
  Tensor p(DType::F32, {cp});
  std::fill(p.as<float>(), p.as<float>() + cp, 0.0f);
  std::copy(t.as<float>(), t.as<float>() + t.numel(), p.as<float>());
  return add_constant(g, v->name + "_blocked", std::move(p));
}

// Weights in blocked order for padded channel counts: 1x1 W'[ocb][ic][j] (shape
// [OCp, ICp, 1, 1]), depthwise W'[cb][tap][j] (shape [Cp, 1, kh, kw]), stem
// W'[ocb][ic][tap][j] (shape [OCp, IC, kh, kw]).
Value *blocked_weights(Graph &g, const Value *wv, Role role, int64_t b) {
  const Tensor &w = *f32_constant(wv);
  int64_t M = w.shape()[0], K = w.shape()[1], kh = w.shape()[2], kw = w.shape()[3];
  int64_t Mp = round_up(M, b), taps = kh * kw;
  const float *src = w.as<float>();
  if (role == Role::Depthwise || role == Role::Stem) {
    int64_t k = role == Role::Stem ? K * taps : taps;  // per output channel
    Tensor p(DType::F32, {Mp, role == Role::Stem ? K : 1, kh, kw});
    float *dst = p.as<float>();
    for (int64_t m = 0; m < Mp; ++m) {
      for (int64_t t = 0; t < k; ++t) dst[((m / b) * k + t) * b + m % b] = m < M ? src[m * k + t] : 0.0f;
    }
    return add_constant(g, wv->name + "_blocked", std::move(p));
  }
  int64_t Kp = round_up(K, b);
  Tensor p(DType::F32, {Mp, Kp, 1, 1});
  float *dst = p.as<float>();
  for (int64_t m = 0; m < Mp; ++m) {
    for (int64_t k = 0; k < Kp; ++k) dst[((m / b) * Kp + k) * b + m % b] = m < M && k < K ? src[m * K + k] : 0.0f;
  }
  return add_constant(g, wv->name + "_blocked", std::move(p));
}

// The blocked form of NCHW value `v`, made by `producer` (its only output), recorded in `blocked`.
Value *blocked_value(Graph &g, Value *v, Node *producer, int64_t b, std::map<const Value *, Value *> &blocked) {
  Value *o = g.new_value(v->name + "_blocked");
  o->dtype = DType::F32;
  o->shape = {v->shape[0], Dim((v->shape[1].value() + b - 1) / b), v->shape[2], v->shape[3], Dim(b)};
  o->has_shape = true;
  o->producer = producer;
  producer->outputs = {o};
  blocked[v] = o;
  return o;
}

double numel(const Value *v) {
  double n = 1;
  for (const Dim &d : v->shape) n *= d.is_const() ? static_cast<double>(d.value()) : 1.0;
  return n;
}

// Regions: the nodes marked in `convert` joined through the values they pass to each
// other. Unmarks the regions without both a depthwise and a 1x1 conv.
void keep_mixed_regions(const Graph &g, const std::vector<Role> &role, std::vector<bool> &convert) {
  const size_t count = g.nodes.size();
  std::map<const Node *, size_t> index;
  for (size_t i = 0; i < count; ++i) index[g.nodes[i].get()] = i;
  std::vector<size_t> parent(count);
  std::iota(parent.begin(), parent.end(), 0);
  std::function<size_t(size_t)> find = [&](size_t i) { return parent[i] == i ? i : parent[i] = find(parent[i]); };
  for (size_t i = 0; i < count; ++i) {
    if (!convert[i]) continue;
    for (const Value *v : g.nodes[i]->inputs) {
      auto it = v && v->producer ? index.find(v->producer) : index.end();
      if (it != index.end() && convert[it->second]) parent[find(i)] = find(it->second);
    }
  }
  std::map<size_t, std::pair<bool, bool>> has;  // region -> (depthwise, pointwise)
  for (size_t i = 0; i < count; ++i) {
    if (!convert[i]) continue;
    if (role[i] == Role::Depthwise) has[find(i)].first = true;
    if (role[i] == Role::Pointwise) has[find(i)].second = true;
  }
  for (size_t i = 0; i < count; ++i) {
    if (convert[i]) convert[i] = has[find(i)].first && has[find(i)].second;
  }
}

// The tensors a converted node reads in the blocked layout (not its weights).
std::vector<const Value *> data_inputs(const Node &n, Role r) {
  if (r == Role::Stem) return {};  // reads its input in NCHW
  if (r == Role::Pointwise || r == Role::Depthwise) return {n.input(0), n.input(3)};
  return {n.inputs.begin(), n.inputs.end()};
}

// Moves region edges to smaller tensors. The reorders cost about their tensors' sizes;
// a node other than a depthwise conv goes back to NCHW together with every converted node
// downstream of it (none of them depthwise) when that lowers the total (e.g. a 1x1 conv
// widening a region's last tensor to 96 channels on a 160x160 map, with a squeeze-and-
// excitation branch after it, right before the region ends). Repeats until nothing moves.
void peel_edges(const Graph &g, const std::vector<Role> &role, std::vector<bool> &convert) {
  const size_t count = g.nodes.size();
  std::map<const Node *, size_t> index;
  for (size_t i = 0; i < count; ++i) index[g.nodes[i].get()] = i;
  std::map<const Value *, std::vector<size_t>> readers;
  for (size_t i = 0; i < count; ++i) {
    for (const Value *v : g.nodes[i]->inputs) {
      if (v) readers[v].push_back(i);
    }
  }
  std::set<const Value *> outputs(g.outputs.begin(), g.outputs.end());
  auto producer = [&](const Value *v) -> long {
    auto it = v->producer ? index.find(v->producer) : index.end();
    return it == index.end() ? -1 : static_cast<long>(it->second);
  };
  auto reorder_cost = [&](const std::vector<bool> &cv) {
    double cost = 0;
    std::set<const Value *> to, from;
    for (size_t i = 0; i < count; ++i) {
      const Node &n = *g.nodes[i];
      if (cv[i]) {
        for (const Value *v : data_inputs(n, role[i])) {
          long p = v ? producer(v) : -1;
          if (v && (p < 0 || !cv[p])) to.insert(v);
        }
        const Value *y = n.output(0);
        bool outside = outputs.count(y) != 0;
        for (size_t r : readers[y]) outside |= !cv[r];
        if (outside) from.insert(y);
      }
    }
    for (const Value *v : to) cost += numel(v);
    for (const Value *v : from) cost += numel(v);
    return cost;
  };
  double best = reorder_cost(convert);
  for (bool moved = true; moved;) {
    moved = false;
    for (size_t i = count; i-- > 0;) {
      if (!convert[i] || role[i] == Role::Depthwise) continue;
      // i and the converted nodes downstream of it.
      std::vector<bool> trial = convert;
      std::vector<size_t> stack = {i};
      bool depthwise = false;
      while (!stack.empty() && !depthwise) {
        size_t k = stack.back();
        stack.pop_back();
        if (!trial[k]) continue;
        depthwise |= role[k] == Role::Depthwise;
        trial[k] = false;
        for (size_t r : readers[g.nodes[k]->output(0)]) {
          if (trial[r]) stack.push_back(r);
        }
      }
      if (depthwise) continue;
      double cost = reorder_cost(trial);
      if (cost < best) {
        best = cost;
        convert = trial;
        moved = true;
      }
    }
  }
}

}  // namespace

void blocked_layout(Graph &g, int b) {
  if (b < 4) return;
  const size_t count = g.nodes.size();
  std::vector<Role> role(count);
  for (size_t i = 0; i < count; ++i) role[i] = role_of(*g.nodes[i]);
  std::vector<bool> convert(count);
  for (size_t i = 0; i < count; ++i) convert[i] = role[i] != Role::None;
  keep_mixed_regions(g, role, convert);
  peel_edges(g, role, convert);
  keep_mixed_regions(g, role, convert);
  if (std::find(convert.begin(), convert.end(), true) == convert.end()) return;

  // Rewrite in graph order into a new node list.
  std::map<const Value *, int> uses = use_counts(g);
  std::map<const Value *, Value *> blocked;  // NCHW value -> its blocked form
  std::map<const Value *, int> blocked_uses;  // NCHW value -> reads by converted nodes
  for (size_t i = 0; i < count; ++i) {
    if (!convert[i]) continue;
    for (const Value *v : data_inputs(*g.nodes[i], role[i])) {
      if (v) ++blocked_uses[v];
    }
  }
  std::vector<std::unique_ptr<Node>> old = std::move(g.nodes);
  g.nodes.clear();
  auto emit = [&](OpKind k, const std::string &name) {
    Node *n = g.new_node(k, "");
    n->name = name;
    return n;
  };
  auto to_blocked = [&](Value *v, const std::string &at) {
    auto it = blocked.find(v);
    if (it != blocked.end()) return it->second;
    Node *r = emit(OpKind::ToBlocked, at + "/to_blocked");
    r->attrs["block"].kind = Attribute::Kind::Int;
    r->attrs["block"].i = b;
    r->inputs = {v};
    return blocked_value(g, v, r, b, blocked);
  };
  for (size_t i = 0; i < count; ++i) {
    std::unique_ptr<Node> &slot = old[i];
    if (!convert[i]) {
      g.nodes.push_back(std::move(slot));
      continue;
    }
    Node &n = *slot;
    Value *y = n.output(0);
    Node *r = nullptr;
    if (role[i] == Role::Pointwise || role[i] == Role::Depthwise || role[i] == Role::Stem) {
      bool dw = role[i] == Role::Depthwise, stem = role[i] == Role::Stem;
      int64_t mp = round_up(y->shape[1].value(), b);
      std::vector<Value *> in(n.inputs.size(), nullptr);
      in[0] = stem ? n.input(0) : to_blocked(n.input(0), n.name);
      in[1] = blocked_weights(g, n.input(1), role[i], b);
      for (size_t k : {2, 4, 5}) {
        if (n.input(k)) in[k] = padded_vector(g, n.input(k), mp);
      }
      if (n.input(3)) in[3] = to_blocked(n.input(3), n.name);
      r = emit(OpKind::BlockedConv, n.name);
      r->attrs = n.attrs;
      r->attrs["out_channels"].kind = Attribute::Kind::Int;  // the real ones (FLOP counts)
      r->attrs["out_channels"].i = y->shape[1].value();
      if (dw) {
        r->attrs["group"].i = mp;
      } else {
        r->attrs["in_channels"].kind = Attribute::Kind::Int;
        r->attrs["in_channels"].i = n.input(0)->shape[1].value();
        if (stem) {
          r->attrs["block"].kind = Attribute::Kind::Int;  // the output's (the input is NCHW)
          r->attrs["block"].i = b;
        }
      }
      r->inputs = in;
    } else if (role[i] == Role::Pool) {
      r = emit(OpKind::BlockedGlobalAveragePool, n.name);
      r->inputs = {to_blocked(n.input(0), n.name)};
    } else {
      r = emit(n.kind, n.name);
      r->attrs = n.attrs;
      r->inputs = {to_blocked(n.input(0), n.name), to_blocked(n.input(1), n.name)};
    }
    r->opset = n.opset;
    r->domain = n.domain;
    if (n.has_attr("fused_ops")) r->attrs["fused_ops"] = n.attrs.at("fused_ops");
    Value *yb = blocked_value(g, y, r, b, blocked);
    // Readers outside the region (and graph outputs) get the NCHW tensor back.
    if (uses[y] > blocked_uses[y]) {
      Node *back = emit(OpKind::FromBlocked, n.name + "/from_blocked");
      back->attrs["channels"].kind = Attribute::Kind::Int;
      back->attrs["channels"].i = y->shape[1].value();
      back->inputs = {yb};
      back->outputs = {y};
      y->producer = back;
    } else {
      y->producer = nullptr;
    }
  }
}

}  // namespace kiln
