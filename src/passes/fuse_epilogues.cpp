// Conv / MatMul / Gemm with a constant weight absorb the elementwise nodes that follow
// them into one FusedConv / FusedMatMul:
//   act(op(x, w) + bias + z)
// bias: Adds of per-channel (Conv) or per-column (MatMul) constants, summed at compile
// time; z: one Add of a tensor of the output's shape (a residual); act: one activation.
// Each absorbed node must be the sole reader of the value before it. The fused node takes
// the place of the last node it absorbed, so every input (z included) is computed first.
#include <algorithm>
#include <cfloat>
#include <cmath>

#include "passes/passes.h"
#include "passes/rewrite.h"

namespace kiln {

namespace {

bool same_shape(const Value *a, const Value *b) {
  if (!a->has_shape || !b->has_shape || a->shape.size() != b->shape.size()) return false;
  for (size_t i = 0; i < a->shape.size(); ++i) {
    if (!a->shape[i].same_as(b->shape[i])) return false;
  }
  return true;
}

// Per-channel values of a constant `c` added to an output of shape `out` along `axis`
// (all other dims of c broadcast, i.e. 1); empty when c is not of that form.
std::vector<float> channel_values(const Value *c, const Value *out, int axis) {
  const Tensor *t = f32_constant(c);
  if (!t || !out->has_shape) return {};
  int r = static_cast<int>(out->shape.size());
  const auto &s = t->shape();
  if (static_cast<int>(s.size()) > r || !out->shape[axis].is_const()) return {};
  int64_t C = out->shape[axis].value();
  int off = r - static_cast<int>(s.size());
  for (int i = 0; i < static_cast<int>(s.size()); ++i) {
    int a = i + off;
    if (a == axis) {
      if (s[i] != C && s[i] != 1) return {};
    } else if (s[i] != 1) {
      return {};
    }
  }
  std::vector<float> v(C);
  for (int64_t i = 0; i < C; ++i) v[i] = t->numel() == 1 ? t->as<float>()[0] : t->as<float>()[i];
  return v;
}

// The activation of node n as (kind, params), or empty kind when n is not one.
bool activation_of(const Node &n, std::string &kind, std::vector<double> &params) {
  switch (n.kind) {
    case OpKind::Relu: kind = "Relu"; params = {}; return true;
    case OpKind::LeakyRelu: kind = "LeakyRelu"; params = {n.attr_f("alpha", 0.01)}; return true;
    case OpKind::HardSigmoid: kind = "HardSigmoid"; params = {n.attr_f("alpha", 0.2), n.attr_f("beta", 0.5)}; return true;
    case OpKind::HardSwish: kind = "HardSwish"; params = {}; return true;
    case OpKind::Sigmoid: kind = "Sigmoid"; params = {}; return true;
    case OpKind::Gelu: {
      std::string approx = n.attr_s("approximate", "none");
      if (approx != "none" && approx != "tanh") return false;
      kind = approx == "none" ? "Gelu" : "GeluTanh";
      params = {};
      return true;
    }
    case OpKind::Clip: {
      double lo = -FLT_MAX, hi = FLT_MAX;
      if (n.opset < 11) {
        lo = n.attr_f("min", lo);
        hi = n.attr_f("max", hi);
      } else {
        for (int i : {1, 2}) {
          if (!n.input(i)) continue;
          const Tensor *t = f32_constant(n.input(i));
          if (!t || t->numel() != 1) return false;
          (i == 1 ? lo : hi) = t->as<float>()[0];
        }
      }
      kind = "Clip";
      params = {lo, hi};
      return true;
    }
    default: return false;
  }
}

class Fuser {
 public:
  explicit Fuser(Graph &g) : g_(g), uses_(use_counts(g)) {}

  void run() {
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      Node *n = g_.nodes[i].get();
      if (n && start(*n)) grow(i);
    }
    std::erase_if(g_.nodes, [](const std::unique_ptr<Node> &n) { return n == nullptr; });
  }

 private:
  // Turns Conv / MatMul / Gemm into its fused form; false when it does not qualify.
  bool start(Node &n) {
    Value *y = n.output(0);
    if (!y || y->dtype != DType::F32) return false;
    if (n.kind == OpKind::Conv) {
      if (!f32_constant(n.input(1)) || (n.input(2) && !f32_constant(n.input(2)))) return false;
      begin_fused(n);
      n.kind = OpKind::FusedConv;
      n.op_type = "FusedConv";
      n.inputs.resize(4, nullptr);
      axis_ = 1;
      return true;
    }
    if (n.kind == OpKind::MatMul) {
      const Tensor *b = f32_constant(n.input(1));
      if (!b || b->rank() != 2 || !n.input(0)->has_shape || n.input(0)->shape.size() < 2) return false;
      begin_fused(n);
      n.kind = OpKind::FusedMatMul;
      n.op_type = "FusedMatMul";
      n.inputs.resize(4, nullptr);
      axis_ = static_cast<int>(y->shape.size()) - 1;
      return true;
    }
    if (n.kind == OpKind::Gemm) return start_gemm(n);
    return false;
  }

  // Gemm(A, B, C) with constant B (and C broadcastable to one row): B' = alpha * op(B),
  // bias = beta * C.
  bool start_gemm(Node &n) {
    const Tensor *b = f32_constant(n.input(1));
    if (!b || b->rank() != 2 || n.attr_i("transA", 0) != 0) return false;
    Value *y = n.output(0);
    if (!y->has_shape || y->shape.size() != 2 || !y->shape[1].is_const()) return false;
    int64_t N = y->shape[1].value();
    std::vector<float> bias;
    if (n.input(2)) {
      bias = channel_values(n.input(2), y, 1);
      if (bias.empty()) return false;
    }
    bool tb = n.attr_i("transB", 0) != 0;
    int64_t K = tb ? b->shape()[1] : b->shape()[0];
    float alpha = static_cast<float>(n.attr_f("alpha", 1.0)), beta = static_cast<float>(n.attr_f("beta", 1.0));
    Tensor bt(DType::F32, {K, N});
    for (int64_t k = 0; k < K; ++k) {
      for (int64_t j = 0; j < N; ++j) bt.as<float>()[k * N + j] = alpha * b->as<float>()[tb ? j * K + k : k * N + j];
    }
    n.kind = OpKind::FusedMatMul;
    n.attrs.clear();
    n.op_type = "Gemm";
    begin_fused(n);
    n.op_type = "FusedMatMul";
    n.inputs = {n.input(0), add_constant(g_, n.input(1)->name + "_packed", std::move(bt)), nullptr, nullptr};
    axis_ = 1;
    if (!bias.empty()) {
      for (float &v : bias) v *= beta;
      set_bias(n, bias);
    }
    return true;
  }

  void set_bias(Node &n, std::vector<float> add) {
    const Tensor *old = n.input(2) ? f32_constant(n.input(2)) : nullptr;
    Tensor t(DType::F32, {static_cast<int64_t>(add.size())});
    for (size_t i = 0; i < add.size(); ++i) t.as<float>()[i] = add[i] + (old ? old->as<float>()[i] : 0.0f);
    n.inputs[2] = add_constant(g_, n.output(0)->name + "_bias", std::move(t));
  }

  // Multiplies the weights (and bias) of n by per-channel `scale`: op(x, w) * s.
  void scale_weights(Node &n, const std::vector<float> &scale) {
    const Tensor *w = f32_constant(n.input(1));
    Tensor nw = w->clone();
    int64_t C = static_cast<int64_t>(scale.size());
    if (n.kind == OpKind::FusedConv) {
      int64_t per = nw.numel() / C;
      for (int64_t i = 0; i < nw.numel(); ++i) nw.as<float>()[i] *= scale[i / per];
    } else {
      for (int64_t i = 0; i < nw.numel(); ++i) nw.as<float>()[i] *= scale[i % C];
    }
    n.inputs[1] = add_constant(g_, n.input(1)->name + "_scaled", std::move(nw));
    if (const Tensor *b = n.input(2) ? f32_constant(n.input(2)) : nullptr) {
      Tensor nb = b->clone();
      for (int64_t i = 0; i < C; ++i) nb.as<float>()[i] *= scale[i];
      n.inputs[2] = add_constant(g_, n.output(0)->name + "_bias", std::move(nb));
    }
  }

  // Post-activation affine: y = y * s + t per channel (inputs 4 and 5).
  void post_affine(Node &n, const std::vector<float> &s, const std::vector<float> &t) {
    int64_t C = static_cast<int64_t>(s.empty() ? t.size() : s.size());
    const Tensor *os = n.input(4) ? f32_constant(n.input(4)) : nullptr, *ot = n.input(5) ? f32_constant(n.input(5)) : nullptr;
    Tensor ns(DType::F32, {C}), nt(DType::F32, {C});
    for (int64_t i = 0; i < C; ++i) {
      float a = os ? os->as<float>()[i] : 1.0f, b = ot ? ot->as<float>()[i] : 0.0f;
      float m = s.empty() ? 1.0f : s[i], d = t.empty() ? 0.0f : t[i];
      ns.as<float>()[i] = a * m;      // (y*a + b)*m + d = y*(a*m) + (b*m + d)
      nt.as<float>()[i] = b * m + d;
    }
    n.inputs.resize(6, nullptr);
    n.inputs[4] = add_constant(g_, n.output(0)->name + "_post_scale", std::move(ns));
    n.inputs[5] = add_constant(g_, n.output(0)->name + "_post_shift", std::move(nt));
  }

  void set_activation(Node &n, const std::string &kind, const std::vector<double> &params) {
    n.attrs["activation"].kind = Attribute::Kind::String;
    n.attrs["activation"].s = kind;
    if (!params.empty()) {
      n.attrs["activation_params"].kind = Attribute::Kind::Floats;
      n.attrs["activation_params"].floats = params;
    }
  }

  // The other operand of binary node c whose one operand is y (null if both are y).
  static Value *other_operand(const Node &c, const Value *y) {
    Value *o = c.input(0) == y ? c.input(1) : c.input(0);
    return o == y ? nullptr : o;
  }

  static bool is_scalar_const(const Value *v, float want) {
    const Tensor *t = f32_constant(v);
    return t && t->numel() == 1 && t->as<float>()[0] == want;
  }

  // x * clip(x + 3, 0, 6) / 6 (or * 1/6) or x * HardSigmoid(x), the decomposed HardSwish
  // exporters write, or x * Sigmoid(x) (SiLU; sets silu_), on y: returns its nodes (the
  // last one produces the result), or empty.
  std::vector<Node *> match_hardswish(const Value *y) {
    std::vector<Node *> users;
    for (auto &n : g_.nodes) {
      if (!n) continue;
      for (Value *v : n->inputs) {
        if (v == y) {
          users.push_back(n.get());
          break;
        }
      }
    }
    if (users.size() != 2 || uses_[y] != 2) return {};
    // x * Sigmoid(x): SiLU / Swish.
    Node *sg = users[0]->kind == OpKind::Sigmoid ? users[0] : users[1];
    Node *sm = sg == users[0] ? users[1] : users[0];
    if (sg->kind == OpKind::Sigmoid && sm->kind == OpKind::Mul && sg->input(0) == y &&
        other_operand(*sm, y) == sg->output(0) && sole_consumer(g_, uses_, sg->output(0)) == sm &&
        same_shape(sm->output(0), y)) {
      silu_ = true;
      return {sg, sm};
    }
    // x * HardSigmoid(x) with alpha 1/6, beta 1/2 (torch's export below opset 14).
    Node *hs = users[0]->kind == OpKind::HardSigmoid ? users[0] : users[1];
    Node *prod = hs == users[0] ? users[1] : users[0];
    if (hs->kind == OpKind::HardSigmoid && prod->kind == OpKind::Mul && hs->input(0) == y &&
        std::abs(hs->attr_f("alpha", 0.2) - 1.0 / 6) < 1e-6 && std::abs(hs->attr_f("beta", 0.5) - 0.5) < 1e-6 &&
        other_operand(*prod, y) == hs->output(0) && sole_consumer(g_, uses_, hs->output(0)) == prod &&
        same_shape(prod->output(0), y)) {
      return {hs, prod};
    }
    Node *add = users[0]->kind == OpKind::Add ? users[0] : users[1];
    Node *mul = add == users[0] ? users[1] : users[0];
    if (add->kind != OpKind::Add || mul->kind != OpKind::Mul || !is_scalar_const(other_operand(*add, y), 3.0f)) return {};
    Node *clip = sole_consumer(g_, uses_, add->output(0));
    std::string kind;
    std::vector<double> p;
    if (!clip || !activation_of(*clip, kind, p) || kind != "Clip" || p[0] != 0.0 || p[1] != 6.0) return {};
    if (other_operand(*mul, y) != clip->output(0) || sole_consumer(g_, uses_, clip->output(0)) != mul) return {};
    Node *div = sole_consumer(g_, uses_, mul->output(0));
    if (!div || div->input(0) != mul->output(0)) return {};
    bool sixth = (div->kind == OpKind::Div && is_scalar_const(div->input(1), 6.0f)) ||
                 (div->kind == OpKind::Mul && is_scalar_const(div->input(1), 1.0f / 6.0f));
    if (!sixth || !same_shape(div->output(0), y)) return {};
    return {add, clip, mul, div};
  }

  // Absorbs followers of the fused node at index i while they qualify:
  //   before the activation: Add constant (bias), Add tensor (residual), Mul constant
  //   (scales the weights; not after a residual), then the activation;
  //   after it: Mul / Add constants (per-channel affine, inputs 4 and 5).
  void grow(size_t i) {
    Node *n = g_.nodes[i].get();
    size_t at = i;
    bool has_act = false;
    for (;;) {
      Value *y = n->output(0);
      std::vector<Node *> absorbed;
      if (!has_act) {
        silu_ = false;
        absorbed = match_hardswish(y);
        if (!absorbed.empty()) {
          set_activation(*n, silu_ ? "SiLU" : "HardSwish", {});
          has_act = true;
        }
      }
      Node *c = absorbed.empty() ? sole_consumer(g_, uses_, y) : nullptr;
      if (absorbed.empty()) {
        if (!c || !c->output(0) || !same_shape(c->output(0), y)) break;
        std::string kind;
        std::vector<double> params;
        Value *other = (c->kind == OpKind::Add || c->kind == OpKind::Mul) ? other_operand(*c, y) : nullptr;
        std::vector<float> per_channel = other ? channel_values(other, y, axis_) : std::vector<float>{};
        if (c->kind == OpKind::Add && other && !per_channel.empty()) {
          if (has_act) {
            post_affine(*n, {}, per_channel);
          } else if (!n->input(2) || f32_constant(n->input(2))) {
            set_bias(*n, per_channel);
          } else {
            break;
          }
        } else if (c->kind == OpKind::Mul && other && !per_channel.empty()) {
          if (has_act) {
            post_affine(*n, per_channel, {});
          } else if (!n->input(3) && (!n->input(2) || f32_constant(n->input(2)))) {
            scale_weights(*n, per_channel);
          } else {
            break;
          }
        } else if (!has_act && c->kind == OpKind::Add && other && !n->input(3) && !other->constant &&
                   other->dtype == DType::F32 && same_shape(other, y)) {
          n->inputs[3] = other;
        } else if (!has_act && activation_of(*c, kind, params) && c->input(0) == y) {
          set_activation(*n, kind, params);
          has_act = true;
        } else {
          break;
        }
        absorbed = {c};
      }
      // n takes over the last absorbed node's output and place in the order.
      size_t last = at;
      for (Node *a : absorbed) {
        note_fused(*n, a->op_type);
        size_t ai = index_of(a, at);
        last = std::max(last, ai);
      }
      Value *out = absorbed.back()->output(0);
      for (Node *a : absorbed) g_.nodes[index_of(a, at)].reset();
      std::swap(g_.nodes[at], g_.nodes[last]);
      n->outputs[0] = out;
      out->producer = n;
      at = last;
    }
  }

  size_t index_of(const Node *c, size_t from) const {
    for (size_t k = from; k < g_.nodes.size(); ++k) {
      if (g_.nodes[k].get() == c) return k;
    }
    return from;
  }

  Graph &g_;
  std::map<const Value *, int> uses_;
  int axis_ = 1;
  bool silu_ = false;  // set by match_hardswish when the pattern is x * Sigmoid(x)
};

}  // namespace

void fuse_epilogues(Graph &g) { Fuser(g).run(); }

}  // namespace kiln
