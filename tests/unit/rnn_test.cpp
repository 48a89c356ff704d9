// LSTM, GRU and RNN: symbolic shape inference, errors on bad models, and the compute
// definition against a plain C++ reference on random data, over every direction, both
// layouts, the optional inputs (sequence_lens included) and symbolic dims.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "compiler/compiler.h"
#include "graph_builder.h"
#include "graph/graph.h"
#include "passes/passes.h"
#include "support/error.h"

namespace kiln {
namespace {

constexpr int kOpset = 14;

using test::set_int, test::set_str, test::user_error_of;

struct Builder : test::GraphBuilder {
  Builder() : GraphBuilder(kOpset, test::NodeStyle::fixed("rnn")) {}
};

int gates_of(OpKind k) { return k == OpKind::LSTM ? 4 : k == OpKind::GRU ? 3 : 1; }

// ---- shapes and errors ----

TEST(RnnShapes, SymbolicDimsBothLayouts) {
  Dim seq = Dim::sym("seq"), batch = Dim::sym("batch");
  for (int layout : {0, 1}) {
    Builder b;
    Shape xs = layout == 0 ? Shape{seq, batch, 8} : Shape{batch, seq, 8};
    Value *x = b.input("X", DType::F32, xs);
    Value *w = b.input("W", DType::F32, {2, 16, 8});
    Value *r = b.input("R", DType::F32, {2, 16, 4});
    Node *n = b.node(OpKind::LSTM, {x, w, r}, 3);
    set_int(n, "hidden_size", 4);
    set_str(n, "direction", "bidirectional");
    set_int(n, "layout", layout);
    infer_shapes(b.g);
    Shape y = layout == 0 ? Shape{seq, 2, batch, 4} : Shape{batch, seq, 2, 4};
    Shape yh = layout == 0 ? Shape{2, batch, 4} : Shape{batch, 2, 4};
    EXPECT_TRUE(shapes_same(n->outputs[0]->shape, y)) << shape_str(n->outputs[0]->shape);
    EXPECT_TRUE(shapes_same(n->outputs[1]->shape, yh)) << shape_str(n->outputs[1]->shape);
    EXPECT_TRUE(shapes_same(n->outputs[2]->shape, yh)) << shape_str(n->outputs[2]->shape);
  }
}

TEST(RnnShapes, HiddenSizeDefaultsToR) {
  Builder b;
  Node *n = b.node(
      OpKind::GRU,
      {b.input("X", DType::F32, {5, 2, 3}), b.input("W", DType::F32, {1, 18, 3}), b.input("R", DType::F32, {1, 18, 6})},
      2);
  infer_shapes(b.g);
  EXPECT_TRUE(shapes_same(n->outputs[0]->shape, {5, 1, 2, 6})) << shape_str(n->outputs[0]->shape);
}

TEST(RnnShapes, RejectsBadModels) {
  auto make = [](auto &&tweak) {
    Builder b;
    Node *n = b.node(OpKind::LSTM,
                     {b.input("X", DType::F32, {5, 2, 3}), b.input("W", DType::F32, {1, 16, 3}),
                      b.input("R", DType::F32, {1, 16, 4})},
                     3);
    set_int(n, "hidden_size", 4);
    tweak(b, n);
    infer_shapes(b.g);
  };
  EXPECT_NE(user_error_of([&] {
              make([](Builder &, Node *n) { set_str(n, "direction", "sideways"); });
            }).find("direction must be"),
            std::string::npos);
  EXPECT_NE(user_error_of([&] { make([](Builder &, Node *n) { set_int(n, "hidden_size", 5); }); }).find("R's last dim"),
            std::string::npos);
  EXPECT_NE(user_error_of([&] {
              make([](Builder &, Node *n) { set_str(n, "direction", "bidirectional"); });
            }).find("direction dim"),
            std::string::npos);
  EXPECT_NE(user_error_of([&] { make([](Builder &, Node *n) { set_int(n, "layout", 2); }); }).find("layout"),
            std::string::npos);
  EXPECT_NE(user_error_of([&] {
              make([](Builder &b, Node *n) { n->inputs.push_back(b.input("B", DType::F32, {1, 16})); });
            }).find("B's second dim"),
            std::string::npos);
}

TEST(RnnShapes, UnknownActivationIsAUserError) {
  Builder b;
  Node *n = b.node(
      OpKind::RNN,
      {b.input("X", DType::F32, {2, 1, 3}), b.input("W", DType::F32, {1, 4, 3}), b.input("R", DType::F32, {1, 4, 4})},
      2);
  n->attrs["activations"].kind = Attribute::Kind::Strings;
  n->attrs["activations"].strings = {"Swish"};
  b.g.outputs = {n->outputs[1]};
  std::string msg = user_error_of([&] { CompiledModel::compile(b.m); });
  EXPECT_NE(msg.find("unsupported activation 'Swish'"), std::string::npos) << msg;
}

// ---- numerics against a reference ----

struct Case {
  OpKind kind = OpKind::LSTM;
  std::string direction = "forward";
  int layout = 0;
  int64_t seq = 4, batch = 3, input = 3, hidden = 5;
  bool bias = false, lens = false, h0 = false, c0 = false, peep = false;
  double clip = 0;  // 0: none
  bool lbr = false, input_forget = false;
  std::string relu_activation_f;  // non-empty: activations = Relu for f (RNN only)
  DType dtype = DType::F32;
  bool symbolic = false;  // seq and batch symbolic at compile time
};

struct Inputs {
  Tensor x, w, r, b, lens, h0, c0, p;
};

Tensor random_tensor(DType t, std::vector<int64_t> shape, std::mt19937 &rng, double scale) {
  Tensor r(t, std::move(shape));
  std::uniform_real_distribution<double> d(-scale, scale);
  for (int64_t i = 0; i < r.numel(); ++i) r.set_f64(i, d(rng));
  return r;
}

// Reference outputs Y, Y_h, Y_c (ONNX shapes for the case's layout) in double precision.
std::vector<std::vector<double>> reference(const Case &k, const Inputs &in) {
  int dirs = k.direction == "bidirectional" ? 2 : 1;
  int64_t S = k.seq, B = k.batch, I = k.input, H = k.hidden;
  int G = gates_of(k.kind);
  auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
  std::function<double(double)> f = sig, g = [](double v) { return std::tanh(v); }, hf = g;
  if (k.kind == OpKind::RNN) f = g;
  if (!k.relu_activation_f.empty()) f = [](double v) { return std::max(v, 0.0); };
  auto clip = [&](double v) { return k.clip > 0 ? std::min(std::max(v, -k.clip), k.clip) : v; };
  auto xat = [&](int64_t t, int64_t b, int64_t i) {
    return in.x.get_f64(k.layout == 0 ? (t * B + b) * I + i : (b * S + t) * I + i);
  };
  auto st = [&](int d, int64_t b, int64_t j) { return k.layout == 0 ? (d * B + b) * H + j : (b * dirs + d) * H + j; };
  auto yat = [&](int64_t t, int d, int64_t b, int64_t j) {
    return k.layout == 0 ? ((t * dirs + d) * B + b) * H + j : ((b * S + t) * dirs + d) * H + j;
  };
  std::vector<double> y(S * dirs * B * H, 0.0), yh(dirs * B * H, 0.0), yc(dirs * B * H, 0.0);
  for (int d = 0; d < dirs; ++d) {
    bool rev = k.direction == "reverse" || d == 1;
    for (int64_t b = 0; b < B; ++b) {
      int64_t len = k.lens ? in.lens.get_i64(b) : S;
      std::vector<double> h(H, 0.0), c(H, 0.0);
      for (int64_t j = 0; j < H; ++j) {
        if (k.h0) h[j] = in.h0.get_f64(st(d, b, j));
        if (k.c0) c[j] = in.c0.get_f64(st(d, b, j));
      }
      auto wx = [&](int64_t row, int64_t t) {
        double s = k.bias ? in.b.get_f64(d * 2 * G * H + row) : 0.0;
        for (int64_t i = 0; i < I; ++i) s += in.w.get_f64((d * G * H + row) * I + i) * xat(t, b, i);
        return s;
      };
      auto rh = [&](int64_t row, const std::vector<double> &v) {
        double s = k.bias ? in.b.get_f64(d * 2 * G * H + G * H + row) : 0.0;
        for (int64_t j = 0; j < H; ++j) s += in.r.get_f64((d * G * H + row) * H + j) * v[j];
        return s;
      };
      auto peep = [&](int gate, int64_t j) { return k.peep ? in.p.get_f64(d * 3 * H + gate * H + j) : 0.0; };
      for (int64_t s = 0; s < len; ++s) {
        int64_t t = rev ? len - 1 - s : s;
        std::vector<double> hn(H), cn(H);
        for (int64_t j = 0; j < H; ++j) {
          if (k.kind == OpKind::RNN) {
            hn[j] = f(clip(wx(j, t) + rh(j, h)));
          } else if (k.kind == OpKind::GRU) {
            double z = f(clip(wx(j, t) + rh(j, h)));
            double cand;
            if (k.lbr) {
              double r = f(clip(wx(H + j, t) + rh(H + j, h)));
              cand = g(clip(wx(2 * H + j, t) + r * rh(2 * H + j, h)));
            } else {
              std::vector<double> rhv(H);
              for (int64_t q = 0; q < H; ++q) rhv[q] = f(clip(wx(H + q, t) + rh(H + q, h))) * h[q];
              cand = g(clip(wx(2 * H + j, t) + rh(2 * H + j, rhv)));
            }
            hn[j] = (1 - z) * cand + z * h[j];
          } else {
            double i = f(clip(wx(j, t) + rh(j, h) + peep(0, j) * c[j]));
            double fg = k.input_forget ? 1 - i : f(clip(wx(2 * H + j, t) + rh(2 * H + j, h) + peep(2, j) * c[j]));
            cn[j] = fg * c[j] + i * g(clip(wx(3 * H + j, t) + rh(3 * H + j, h)));
            double o = f(clip(wx(H + j, t) + rh(H + j, h) + peep(1, j) * cn[j]));
            hn[j] = o * hf(cn[j]);
          }
        }
        h = hn;
        if (k.kind == OpKind::LSTM) c = cn;
        for (int64_t j = 0; j < H; ++j) y[yat(t, d, b, j)] = h[j];
      }
      for (int64_t j = 0; j < H; ++j) {
        yh[st(d, b, j)] = len > 0 ? h[j] : 0.0;
        yc[st(d, b, j)] = len > 0 ? c[j] : 0.0;
      }
    }
  }
  return {y, yh, yc};
}

void check_case(const Case &k) {
  SCOPED_TRACE(std::string(op_name(k.kind)) + " " + k.direction + " layout " + std::to_string(k.layout));
  std::mt19937 rng(7);
  int dirs = k.direction == "bidirectional" ? 2 : 1;
  int G = gates_of(k.kind);
  int64_t S = k.seq, B = k.batch, H = k.hidden;
  Inputs in;
  std::vector<int64_t> xs = k.layout == 0 ? std::vector<int64_t>{S, B, k.input} : std::vector<int64_t>{B, S, k.input};
  std::vector<int64_t> ss = k.layout == 0 ? std::vector<int64_t>{dirs, B, H} : std::vector<int64_t>{B, dirs, H};
  in.x = random_tensor(k.dtype, xs, rng, 1.0);
  in.w = random_tensor(k.dtype, {dirs, G * H, k.input}, rng, 0.7);
  in.r = random_tensor(k.dtype, {dirs, G * H, H}, rng, 0.7);
  if (k.bias) in.b = random_tensor(k.dtype, {dirs, 2 * G * H}, rng, 0.5);
  if (k.lens) {
    in.lens = Tensor(DType::I32, {B});
    for (int64_t b = 0; b < B; ++b) in.lens.as<int32_t>()[b] = static_cast<int32_t>((b * 2 + 1) % (S + 1));
  }
  if (k.h0) in.h0 = random_tensor(k.dtype, ss, rng, 1.0);
  if (k.c0) in.c0 = random_tensor(k.dtype, ss, rng, 1.0);
  if (k.peep) in.p = random_tensor(k.dtype, {dirs, 3 * H}, rng, 0.5);

  Builder b;
  auto shape_of = [&](const Tensor &t, bool is_x) {
    Shape s = shape_from(t.shape());
    if (k.symbolic && is_x) {
      s[k.layout == 0 ? 0 : 1] = Dim::sym("seq");
      s[k.layout == 0 ? 1 : 0] = Dim::sym("batch");
    }
    return s;
  };
  std::map<std::string, Tensor> feeds;
  std::vector<Value *> ins;
  auto add = [&](const std::string &name, const Tensor &t, bool present) {
    if (!present) {
      ins.push_back(nullptr);
      return;
    }
    ins.push_back(b.input(name, t.dtype(), shape_of(t, name == "X")));
    feeds[name] = t;
  };
  add("X", in.x, true);
  add("W", in.w, true);
  add("R", in.r, true);
  add("B", in.b, k.bias);
  add("sequence_lens", in.lens, k.lens);
  add("initial_h", in.h0, k.h0);
  if (k.kind == OpKind::LSTM) {
    add("initial_c", in.c0, k.c0);
    add("P", in.p, k.peep);
  }
  while (!ins.empty() && !ins.back()) ins.pop_back();
  size_t nout = k.kind == OpKind::LSTM ? 3 : 2;
  Node *n = b.node(k.kind, ins, nout);
  set_int(n, "hidden_size", H);
  set_str(n, "direction", k.direction);
  if (k.layout) set_int(n, "layout", 1);
  if (k.clip > 0) {
    n->attrs["clip"].kind = Attribute::Kind::Float;
    n->attrs["clip"].f = k.clip;
  }
  if (k.lbr) set_int(n, "linear_before_reset", 1);
  if (k.input_forget) set_int(n, "input_forget", 1);
  if (!k.relu_activation_f.empty()) {
    n->attrs["activations"].kind = Attribute::Kind::Strings;
    n->attrs["activations"].strings = std::vector<std::string>(dirs, k.relu_activation_f);
  }
  b.g.outputs = n->outputs;
  auto model = CompiledModel::compile(b.m);
  std::vector<Tensor> got = model->run(feeds);
  std::vector<std::vector<double>> want = reference(k, in);
  double tol = k.dtype == DType::F64 ? 1e-9 : 1e-4;
  for (size_t o = 0; o < nout; ++o) {
    ASSERT_EQ(got[o].numel(), static_cast<int64_t>(want[o].size())) << "output " << o;
    for (int64_t i = 0; i < got[o].numel(); ++i) {
      ASSERT_NEAR(got[o].get_f64(i), want[o][i], tol) << "output " << o << " element " << i;
    }
  }
}

TEST(RnnCompute, EveryDirectionAndLayout) {
  for (OpKind kind : {OpKind::LSTM, OpKind::GRU, OpKind::RNN}) {
    for (const char *dir : {"forward", "reverse", "bidirectional"}) {
      for (int layout : {0, 1}) {
        Case k;
        k.kind = kind;
        k.direction = dir;
        k.layout = layout;
        check_case(k);
      }
    }
  }
}

TEST(RnnCompute, AllOptionalInputsWithSequenceLengths) {
  for (OpKind kind : {OpKind::LSTM, OpKind::GRU, OpKind::RNN}) {
    for (const char *dir : {"forward", "reverse", "bidirectional"}) {
      Case k;
      k.kind = kind;
      k.direction = dir;
      k.bias = k.lens = k.h0 = k.c0 = k.peep = true;
      check_case(k);
      k.layout = 1;
      check_case(k);
    }
  }
}

TEST(RnnCompute, GateVariants) {
  Case k;
  k.kind = OpKind::GRU;
  k.lbr = true;
  k.bias = k.h0 = true;
  k.direction = "bidirectional";
  check_case(k);
  k.kind = OpKind::LSTM;
  k.lbr = false;
  k.input_forget = true;
  k.peep = true;
  check_case(k);
  k.clip = 0.3;  // clips gate pre-activations, not the cell state
  check_case(k);
  Case r;
  r.kind = OpKind::RNN;
  r.relu_activation_f = "Relu";
  r.direction = "bidirectional";
  r.bias = true;
  check_case(r);
}

TEST(RnnCompute, SymbolicSequenceAndBatchAndF64) {
  Case k;
  k.symbolic = true;
  k.bias = k.lens = k.h0 = true;
  k.direction = "bidirectional";
  check_case(k);
  k.kind = OpKind::GRU;
  k.layout = 1;
  k.dtype = DType::F64;
  check_case(k);
}

}  // namespace
}  // namespace kiln
