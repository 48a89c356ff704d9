// Compute definitions of LSTM, GRU and RNN: every (direction, batch) pair is an
// independent recurrence, so the outermost loop runs over them in parallel and each
// iteration walks the time steps serially, keeping the hidden (and cell) state in scratch
// buffers. One time step is: gate pre-activations (two mat-vecs + biases), then the
// elementwise gate update.
#include <algorithm>
#include <cctype>

#include "lower/lower.h"
#include "support/error.h"

namespace kiln {

namespace {

struct Activation {
  std::string name;  // lower case
  double alpha = 0, beta = 0;
  bool operator==(const Activation &o) const { return name == o.name && alpha == o.alpha && beta == o.beta; }
};

bool uses_alpha(const std::string &f) {
  return f == "affine" || f == "leakyrelu" || f == "thresholdedrelu" || f == "scaledtanh" || f == "hardsigmoid" ||
         f == "elu";
}
bool uses_beta(const std::string &f) { return f == "affine" || f == "scaledtanh" || f == "hardsigmoid"; }

double default_alpha(const std::string &f) {
  if (f == "leakyrelu") return 0.01;
  if (f == "hardsigmoid") return 0.2;
  return 1.0;
}
double default_beta(const std::string &f) {
  if (f == "hardsigmoid") return 0.5;
  if (f == "scaledtanh") return 1.0;
  return 0.0;
}

// The activations of each direction (f, g, h for LSTM; f, g for GRU; f for RNN).
// activation_alpha/beta are consumed in order by the activations that take them.
std::vector<std::vector<Activation>> read_activations(const Node &n, int dirs) {
  std::vector<std::string> defaults = n.kind == OpKind::LSTM  ? std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"}
                                      : n.kind == OpKind::GRU ? std::vector<std::string>{"Sigmoid", "Tanh"}
                                                              : std::vector<std::string>{"Tanh"};
  size_t per = defaults.size();
  std::vector<std::string> names;
  if (n.has_attr("activations")) names = n.attrs.at("activations").strings;
  if (names.empty()) {
    for (int d = 0; d < dirs; ++d) names.insert(names.end(), defaults.begin(), defaults.end());
  }
  if (names.size() == per && dirs == 2) names.insert(names.end(), names.begin(), names.end());
  user_assert(names.size() == per * dirs)
      << n.describe() << ": expected " << per * dirs << " activations, got " << names.size();
  std::vector<double> alphas = n.attr_floats("activation_alpha"), betas = n.attr_floats("activation_beta");
  size_t ai = 0, bi = 0;
  std::vector<std::vector<Activation>> r(dirs);
  for (size_t k = 0; k < names.size(); ++k) {
    Activation a;
    a.name = names[k];
    std::transform(a.name.begin(), a.name.end(), a.name.begin(), [](unsigned char ch) { return std::tolower(ch); });
    static const char *known[] = {"relu",       "tanh",        "sigmoid", "affine",   "leakyrelu", "thresholdedrelu",
                                  "scaledtanh", "hardsigmoid", "elu",     "softsign", "softplus"};
    user_assert(std::find(std::begin(known), std::end(known), a.name) != std::end(known))
        << n.describe() << ": unsupported activation '" << names[k] << "'";
    a.alpha = default_alpha(a.name);
    a.beta = default_beta(a.name);
    if (uses_alpha(a.name) && ai < alphas.size()) a.alpha = alphas[ai++];
    if (uses_beta(a.name) && bi < betas.size()) a.beta = betas[bi++];
    r[k / per].push_back(a);
  }
  return r;
}

Expr apply(const Activation &a, Expr x) {
  Type t = x.type();
  auto k = [&](double v) { return make_const(t, v); };
  const std::string &f = a.name;
  if (f == "relu") return max(x, k(0));
  if (f == "tanh") return call("tanh", {x});
  if (f == "sigmoid") return k(1) / (k(1) + call("exp", {-x}));
  if (f == "affine") return k(a.alpha) * x + k(a.beta);
  if (f == "leakyrelu") return select(x < k(0), k(a.alpha) * x, x);
  if (f == "thresholdedrelu") return select(x > k(a.alpha), x, k(0));
  if (f == "scaledtanh") return k(a.alpha) * call("tanh", {k(a.beta) * x});
  if (f == "hardsigmoid") return max(k(0), min(k(1), k(a.alpha) * x + k(a.beta)));
  if (f == "elu") return select(x < k(0), k(a.alpha) * (call("exp", {x}) - k(1)), x);
  if (f == "softsign") return x / (k(1) + call("abs", {x}));
  internal_assert(f == "softplus") << "activation " << f;
  return call("log", {call("exp", {x}) + k(1)});
}

class RnnLowering {
 public:
  explicit RnnLowering(LowerContext &c) : c_(c), n_(c.node) {
    const Operand &x = c.in[0];
    t_ = x.compute();
    layout_ = static_cast<int>(n_.attr_i("layout", 0));
    std::string dir = n_.attr_s("direction", "forward");
    dirs_ = dir == "bidirectional" ? 2 : 1;
    reverse_ = dir == "reverse";
    seq_ = layout_ == 0 ? x.shape[0] : x.shape[1];
    batch_ = layout_ == 0 ? x.shape[1] : x.shape[0];
    input_ = x.shape[2];
    hidden_ = c.in[2].shape[2];
    gates_ = n_.kind == OpKind::LSTM ? 4 : n_.kind == OpKind::GRU ? 3 : 1;
    acts_ = read_activations(n_, dirs_);
    if (n_.has_attr("clip")) {
      double clip = n_.attr_f("clip", 0);
      user_assert(clip > 0) << n_.describe() << ": clip must be positive, got " << clip;
      clip_ = make_const(t_, clip);
    }
  }

  Stmt lower() {
    h_ = c_.fresh("h");
    cell_ = c_.fresh("cell");
    g_ = c_.fresh("gates");
    std::string db = c_.fresh("db");
    Expr dbv = Var::make(Type::index(), db);
    d_ = dirs_ == 1 ? Expr(0) : dbv / batch_;
    b_ = dirs_ == 1 ? dbv : dbv % batch_;
    Expr len = seq_;
    if (c_.has(4)) len = min(max(cast(Type::index(), load(c_.in[4], {b_})), Expr(0)), seq_);
    std::vector<Stmt> body = {init_state()};
    std::string s = c_.fresh("s");
    Expr sv = Var::make(Type::index(), s);
    Expr t = sv;
    if (reverse_) t = len - Expr(1) - sv;
    if (dirs_ == 2) t = select(d_ == Expr(1), len - Expr(1) - sv, sv);
    Stmt step = time_step(t);
    if (c_.has(4)) {
      Stmt pad;
      if (c_.out[0].present()) {
        pad = loop_nest(c_, {hidden_},
                        [&](const std::vector<Expr> &j) { return store(c_.out[0], y_index(sv, j[0]), make_zero(t_)); });
      }
      step = IfThenElse::make(sv < len, step, pad);
    }
    body.push_back(For::make(s, Expr(0), seq_, ForKind::Serial, step));
    body.push_back(final_state(len));
    Stmt s_all = Block::make(body);
    s_all = Allocate::make(g_, t_, Expr(gates_) * hidden_, s_all);
    if (n_.kind == OpKind::LSTM) s_all = Allocate::make(cell_, t_, hidden_, s_all);
    s_all = Allocate::make(h_, t_, hidden_, s_all);
    return For::make(db, Expr(0), Expr(dirs_) * batch_, ForKind::Parallel, s_all);
  }

 private:
  std::vector<Expr> x_index(Expr t, Expr i) const {
    return layout_ == 0 ? std::vector<Expr>{t, b_, i} : std::vector<Expr>{b_, t, i};
  }
  std::vector<Expr> y_index(Expr t, Expr j) const {
    return layout_ == 0 ? std::vector<Expr>{t, d_, b_, j} : std::vector<Expr>{b_, t, d_, j};
  }
  std::vector<Expr> state_index(Expr j) const {
    return layout_ == 0 ? std::vector<Expr>{d_, b_, j} : std::vector<Expr>{b_, d_, j};
  }
  Expr scratch(const std::string &buf, Expr i) const { return Load::make(t_, buf, i); }
  Expr clip(Expr x) const { return clip_.defined() ? min(max(x, -clip_), clip_) : x; }
  // Activation k of this direction, applied to the clipped pre-activation (LSTM's h
  // applies to the cell state, which is not clipped).
  Expr act(int k, Expr x) const {
    if (!(n_.kind == OpKind::LSTM && k == 2)) x = clip(x);
    if (dirs_ == 1 || acts_[0][k] == acts_[1][k]) return apply(acts_[0][k], x);
    return select(d_ == Expr(0), apply(acts_[0][k], x), apply(acts_[1][k], x));
  }
  Expr bias(Expr k) const {  // Wb[k] + Rb[k]
    if (!c_.has(3)) return make_zero(t_);
    return load(c_.in[3], {d_, k}) + load(c_.in[3], {d_, Expr(gates_) * hidden_ + k});
  }
  Expr peephole(int gate, Expr j) const { return load(c_.in[7], {d_, Expr(gate) * hidden_ + j}); }

  Stmt init_state() {
    auto init = [&](const std::string &buf, size_t input) {
      return loop_nest(c_, {hidden_}, [&](const std::vector<Expr> &j) {
        Expr v = c_.has(input) ? load(c_.in[input], state_index(j[0])) : make_zero(t_);
        return Store::make(buf, v, j[0]);
      });
    };
    std::vector<Stmt> s = {init(h_, 5)};
    if (n_.kind == OpKind::LSTM) s.push_back(init(cell_, 6));
    return Block::make(s);
  }

  // Y_h and Y_c; an empty sequence (length 0) gives zeros, as in ONNX Runtime.
  Stmt final_state(Expr len) {
    std::vector<Stmt> s;
    auto out = [&](size_t o, const std::string &buf) {
      if (o < c_.out.size() && c_.out[o].present()) {
        s.push_back(loop_nest(c_, {hidden_}, [&](const std::vector<Expr> &j) {
          Expr v = scratch(buf, j[0]);
          if (c_.has(4)) v = select(len == Expr(0), make_zero(t_), v);
          return store(c_.out[o], state_index(j[0]), v);
        }));
      }
    };
    out(1, h_);
    if (n_.kind == OpKind::LSTM) out(2, cell_);
    return Block::make(s);
  }

  // gates[k] = X[t] . W[k] + h . R[k] (+ Wb[k] + Rb[k]) for k in [0, count).
  Stmt matvec_gates(Expr t, Expr count) {
    const Operand &x = c_.in[0], &w = c_.in[1], &r = c_.in[2];
    return loop_nest(c_, {count}, [&](const std::vector<Expr> &k) {
      return reduce(
          c_, t_, make_zero(t_), {input_},
          [&](Expr acc, const std::vector<Expr> &i) {
            return acc + load(x, x_index(t, i[0])) * load(w, {d_, k[0], i[0]});
          },
          [&](Expr sx) {
            return reduce(
                c_, t_, sx, {hidden_},
                [&](Expr acc, const std::vector<Expr> &j) {
                  return acc + scratch(h_, j[0]) * load(r, {d_, k[0], j[0]});
                },
                [&](Expr s) { return Store::make(g_, s + bias(k[0]), k[0]); });
          });
    });
  }

  // Binds `value` to a fresh name for the statement `body` builds from it.
  Stmt let(Expr value, const std::function<Stmt(Expr)> &body) {
    std::string name = c_.fresh("v");
    return LetStmt::make(name, value, body(Var::make(value.type(), name)));
  }

  // Stores the new hidden value (bound once: it may read the old one) to h and Y.
  Stmt emit_h(Expr t, Expr j, Expr value) {
    return let(value, [&](Expr hv) {
      std::vector<Stmt> s = {Store::make(h_, hv, j)};
      if (c_.out[0].present()) s.push_back(store(c_.out[0], y_index(t, j), hv));
      return Block::make(s);
    });
  }

  Stmt time_step(Expr t) {
    switch (n_.kind) {
      case OpKind::LSTM:
        return lstm_step(t);
      case OpKind::GRU:
        return gru_step(t);
      default:
        return rnn_step(t);
    }
  }

  Stmt rnn_step(Expr t) {
    Stmt update = loop_nest(c_, {hidden_},
                            [&](const std::vector<Expr> &j) { return emit_h(t, j[0], act(0, scratch(g_, j[0]))); });
    return Block::make({matvec_gates(t, hidden_), update});
  }

  // Gates i, o, f, c (iofc); peepholes i, o, f.
  Stmt lstm_step(Expr t) {
    bool input_forget = n_.attr_i("input_forget", 0) != 0;
    bool peep = c_.has(7);
    Expr H = hidden_;
    Stmt update = loop_nest(c_, {H}, [&](const std::vector<Expr> &jv) {
      Expr j = jv[0];
      Expr cp = scratch(cell_, j);
      Expr pre_i = scratch(g_, j), pre_f = scratch(g_, Expr(2) * H + j);
      if (peep) {
        pre_i = pre_i + peephole(0, j) * cp;
        pre_f = pre_f + peephole(2, j) * cp;
      }
      return let(act(0, pre_i), [&](Expr gi) {
        Expr gf = input_forget ? make_const(t_, 1) - gi : act(0, pre_f);
        Expr gc = act(1, scratch(g_, Expr(3) * H + j));
        return let(gf * cp + gi * gc, [&](Expr cn) {
          Expr pre_o = scratch(g_, H + j);
          if (peep) pre_o = pre_o + peephole(1, j) * cn;
          return Block::make({Store::make(cell_, cn, j), emit_h(t, j, act(0, pre_o) * act(2, cn))});
        });
      });
    });
    return Block::make({matvec_gates(t, Expr(4) * H), update});
  }

  // Gates z, r, h (zrh). z and r are activated in place; then the candidate h~ uses
  // r * (h . Rh) (linear_before_reset) or (r * h) . Rh.
  Stmt gru_step(Expr t) {
    bool lbr = n_.attr_i("linear_before_reset", 0) != 0;
    Expr H = hidden_;
    const Operand &x = c_.in[0], &w = c_.in[1], &r = c_.in[2];
    Stmt zr = matvec_gates(t, Expr(2) * H);
    Stmt act_zr = loop_nest(c_, {Expr(2) * H}, [&](const std::vector<Expr> &k) {
      return Store::make(g_, act(0, scratch(g_, k[0])), k[0]);
    });
    Stmt cand = loop_nest(c_, {H}, [&](const std::vector<Expr> &kv) {
      Expr k = kv[0], row = Expr(2) * H + k;
      return reduce(
          c_, t_, make_zero(t_), {input_},
          [&](Expr acc, const std::vector<Expr> &i) {
            return acc + load(x, x_index(t, i[0])) * load(w, {d_, row, i[0]});
          },
          [&](Expr sx) {
            Expr wb = c_.has(3) ? load(c_.in[3], {d_, row}) : make_zero(t_);
            Expr rb = c_.has(3) ? load(c_.in[3], {d_, Expr(3) * H + row}) : make_zero(t_);
            return reduce(
                c_, t_, make_zero(t_), {H},
                [&](Expr acc, const std::vector<Expr> &j) {
                  Expr hj = scratch(h_, j[0]);
                  if (!lbr) hj = scratch(g_, H + j[0]) * hj;
                  return acc + hj * load(r, {d_, row, j[0]});
                },
                [&](Expr sh) {
                  Expr rh = lbr ? scratch(g_, H + k) * (sh + rb) : sh + rb;
                  return Store::make(g_, act(1, sx + wb + rh), row);
                });
          });
    });
    Stmt update = loop_nest(c_, {H}, [&](const std::vector<Expr> &jv) {
      Expr j = jv[0];
      return let(scratch(g_, j), [&](Expr z) {
        Expr hv = (make_const(t_, 1) - z) * scratch(g_, Expr(2) * H + j) + z * scratch(h_, j);
        return emit_h(t, j, hv);
      });
    });
    return Block::make({zr, act_zr, cand, update});
  }

  LowerContext &c_;
  const Node &n_;
  Type t_;
  int layout_ = 0, dirs_ = 1, gates_ = 1;
  bool reverse_ = false;
  Expr seq_, batch_, input_, hidden_, clip_;
  std::vector<std::vector<Activation>> acts_;
  std::string h_, cell_, g_;
  Expr d_, b_;
};

}  // namespace

Stmt lower_rnn(LowerContext &c) { return RnnLowering(c).lower(); }

}  // namespace kiln
