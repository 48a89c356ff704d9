// If, Loop and Scan run by the executor over compiled subgraphs: loop-carried values,
// scan outputs, outer-scope reads, zero-trip loops, scan axes and directions, and
// errors on bad models.
#include <gtest/gtest.h>

#include "compiler/compiler.h"
#include "graph/graph.h"
#include "support/error.h"

#include "graph_builder.h"

namespace kiln {
namespace {

using test::f32, test::input, test::set_graph, test::set_ints, test::typed, test::user_error_of;

Node *node(Graph &g, OpKind k, std::vector<Value *> ins, std::vector<std::string> outs, int opset) {
  Node *n = g.new_node(k, op_name(k));
  n->opset = opset;
  n->name = std::string(op_name(k)) + std::to_string(g.nodes.size());
  n->inputs = std::move(ins);
  for (auto &name : outs) {
    Value *o = name.empty() ? nullptr : g.new_value(name);
    if (o) o->producer = n;
    n->outputs.push_back(o);
  }
  return n;
}

Value *op(Graph &g, OpKind k, std::vector<Value *> ins, const std::string &out, int opset = 13) {
  return node(g, k, std::move(ins), {out}, opset)->outputs[0];
}

std::shared_ptr<Graph> subgraph(Graph &parent, const std::string &name) {
  auto g = std::make_shared<Graph>();
  g->name = name;
  g->parent = &parent;
  return g;
}

Model model_of(std::shared_ptr<Graph> g, int opset) { return Model{std::move(g), opset, "unit", ""}; }

Tensor i64(int64_t v) { return Tensor::from_i64({v}, {}); }

Tensor boolean(bool v) {
  Tensor t(DType::Bool, {});
  t.as<uint8_t>()[0] = v;
  return t;
}

std::vector<float> values(const Tensor &t) {
  std::vector<float> r;
  for (int64_t i = 0; i < t.numel(); ++i) r.push_back(static_cast<float>(t.get_f64(i)));
  return r;
}

// Loop(M, cond, x0) with body: x = x + step (step from the outer scope); scan = x * x;
// the condition continues while i < limit (outer scope).
struct LoopModel {
  Model m;
  explicit LoopModel(bool with_m, bool with_cond) {
    auto g = std::make_shared<Graph>();
    g->name = "main";
    Value *mv = with_m ? input(*g, "M", DType::I64, {}) : nullptr;
    Value *cv = with_cond ? input(*g, "cond", DType::Bool, {}) : nullptr;
    Value *x0 = input(*g, "x0", DType::F32, {2});
    Value *step = input(*g, "step", DType::F32, {2});
    Value *limit = input(*g, "limit", DType::I64, {});
    auto body = subgraph(*g, "body");
    Value *i = input(*body, "i", DType::I64, {});
    input(*body, "c", DType::Bool, {});
    Value *x_in = input(*body, "x_in", DType::F32, {2});
    Value *x_out = op(*body, OpKind::Add, {x_in, step}, "x_out");
    Value *cond_out = op(*body, OpKind::Less, {i, limit}, "cond_out");
    Value *scan = op(*body, OpKind::Mul, {x_out, x_out}, "scan");
    body->outputs = {cond_out, x_out, scan};
    Node *loop = node(*g, OpKind::Loop, {mv, cv, x0}, {"x_final", "scans"}, 13);
    set_graph(loop, "body", body);
    g->outputs = loop->outputs;
    m = model_of(g, 13);
  }
};

TEST(Loop, TripCountCarriedValuesAndScanOutputs) {
  LoopModel lm(true, false);
  auto cm = CompiledModel::compile(lm.m);
  auto out = cm->run({{"M", i64(3)}, {"x0", f32({1, 2}, {2})}, {"step", f32({1, 10}, {2})}, {"limit", i64(0)}});
  // Without a condition input the body's condition is ignored: all 3 trips run.
  EXPECT_EQ(values(out[0]), (std::vector<float>{4, 32}));
  EXPECT_EQ(out[1].shape(), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(values(out[1]), (std::vector<float>{4, 144, 9, 484, 16, 1024}));
}

TEST(Loop, ConditionEndsTheLoop) {
  LoopModel lm(true, true);
  auto cm = CompiledModel::compile(lm.m);
  // Iterations i = 0, 1, 2 run; after i = 2 the condition (i < 2) is false.
  auto out = cm->run({{"M", i64(10)},
                      {"cond", boolean(true)},
                      {"x0", f32({0, 0}, {2})},
                      {"step", f32({1, 2}, {2})},
                      {"limit", i64(2)}});
  EXPECT_EQ(values(out[0]), (std::vector<float>{3, 6}));
  EXPECT_EQ(out[1].shape(), (std::vector<int64_t>{3, 2}));
  // The trip count still bounds it.
  out = cm->run({{"M", i64(1)},
                 {"cond", boolean(true)},
                 {"x0", f32({0, 0}, {2})},
                 {"step", f32({1, 2}, {2})},
                 {"limit", i64(5)}});
  EXPECT_EQ(values(out[0]), (std::vector<float>{1, 2}));
}

TEST(Loop, ZeroTripsKeepInitialValuesAndGiveEmptyScans) {
  LoopModel lm(true, true);
  auto cm = CompiledModel::compile(lm.m);
  auto out = cm->run({{"M", i64(0)},
                      {"cond", boolean(true)},
                      {"x0", f32({5, 6}, {2})},
                      {"step", f32({1, 1}, {2})},
                      {"limit", i64(5)}});
  EXPECT_EQ(values(out[0]), (std::vector<float>{5, 6}));
  EXPECT_EQ(out[1].shape(), (std::vector<int64_t>{0, 2}));
  out = cm->run({{"M", i64(4)},
                 {"cond", boolean(false)},
                 {"x0", f32({5, 6}, {2})},
                 {"step", f32({1, 1}, {2})},
                 {"limit", i64(5)}});
  EXPECT_EQ(values(out[0]), (std::vector<float>{5, 6}));
}

TEST(Loop, WithoutTripCountOrConditionIsAUserError) {
  LoopModel lm(false, false);
  auto cm = CompiledModel::compile(lm.m);
  std::string msg = user_error_of([&] {
    cm->run({{"x0", f32({0, 0}, {2})}, {"step", f32({1, 1}, {2})}, {"limit", i64(5)}});
  });
  EXPECT_NE(msg.find("never end"), std::string::npos) << msg;
}

// Scan (opset 11) with state s and scan inputs A [3, 2] (axis 0, reversed) and
// B [2, 3] (axis 1): s += a + b; outputs s (axis 0) and a * b (axis 1, reversed).
Model scan_model() {
  auto g = std::make_shared<Graph>();
  g->name = "main";
  Value *s0 = input(*g, "s0", DType::F32, {2});
  Value *a = input(*g, "A", DType::F32, {3, 2});
  Value *b = input(*g, "B", DType::F32, {2, Dim::sym("n")});
  auto body = subgraph(*g, "body");
  Value *s = input(*body, "s", DType::F32, {2});
  Value *av = input(*body, "a", DType::F32, {2});
  Value *bv = input(*body, "b", DType::F32, {2});
  Value *s2 = op(*body, OpKind::Add, {op(*body, OpKind::Add, {s, av}, "t"), bv}, "s2");
  Value *o1 = op(*body, OpKind::Identity, {s2}, "o1");
  Value *o2 = op(*body, OpKind::Mul, {av, bv}, "o2");
  body->outputs = {s2, o1, o2};
  Node *scan = node(*g, OpKind::Scan, {s0, a, b}, {"s_final", "O1", "O2"}, 11);
  set_graph(scan, "body", body);
  scan->attrs["num_scan_inputs"].kind = Attribute::Kind::Int;
  scan->attrs["num_scan_inputs"].i = 2;
  set_ints(scan, "scan_input_axes", {0, 1});
  set_ints(scan, "scan_input_directions", {1, 0});
  set_ints(scan, "scan_output_axes", {0, -1});
  set_ints(scan, "scan_output_directions", {0, 1});
  g->outputs = scan->outputs;
  return model_of(g, 11);
}

TEST(Scan, AxesAndDirections) {
  auto cm = CompiledModel::compile(scan_model());
  Tensor a = f32({0, 1, 2, 3, 4, 5}, {3, 2}), b = f32({0, 10, 20, 30, 40, 50}, {2, 3});
  auto out = cm->run({{"s0", f32({0.5f, 0.25f}, {2})}, {"A", a}, {"B", b}});
  // Iteration k reads A row 2-k and B column k.
  std::vector<float> s = {0.5f, 0.25f}, o1, o2(6);
  for (int k = 0; k < 3; ++k) {
    float ar[2] = {a.as<float>()[(2 - k) * 2], a.as<float>()[(2 - k) * 2 + 1]};
    float bc[2] = {b.as<float>()[k], b.as<float>()[3 + k]};
    for (int j = 0; j < 2; ++j) {
      s[j] += ar[j] + bc[j];
      o1.push_back(s[j]);
      o2[j * 3 + (2 - k)] = ar[j] * bc[j];  // output axis 1, reversed
    }
  }
  EXPECT_EQ(values(out[0]), s);
  EXPECT_EQ(out[1].shape(), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(values(out[1]), o1);
  EXPECT_EQ(out[2].shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(values(out[2]), o2);
}

TEST(Scan, InputsOfDifferentLengthsAreAUserError) {
  auto cm = CompiledModel::compile(scan_model());
  std::string msg = user_error_of([&] {
    cm->run({{"s0", f32({0, 0}, {2})}, {"A", f32({0, 1, 2, 3, 4, 5}, {3, 2})}, {"B", f32({0, 1, 2, 3}, {2, 2})}});
  });
  EXPECT_NE(msg.find("different lengths"), std::string::npos) << msg;
}

TEST(If, BranchesReadOuterScope) {
  auto g = std::make_shared<Graph>();
  g->name = "main";
  Value *c = input(*g, "c", DType::Bool, {});
  Value *x = input(*g, "x", DType::F32, {3});
  auto then_g = subgraph(*g, "then");
  then_g->outputs = {op(*then_g, OpKind::Add, {x, x}, "twice")};
  auto else_g = subgraph(*g, "else");
  else_g->outputs = {op(*else_g, OpKind::Neg, {x}, "neg")};
  Node *n = node(*g, OpKind::If, {c}, {"y"}, 13);
  set_graph(n, "then_branch", then_g);
  set_graph(n, "else_branch", else_g);
  g->outputs = n->outputs;
  auto cm = CompiledModel::compile(model_of(g, 13));
  Tensor xv = f32({1, -2, 3}, {3});
  EXPECT_EQ(values(cm->run({{"c", boolean(true)}, {"x", xv}})[0]), (std::vector<float>{2, -4, 6}));
  EXPECT_EQ(values(cm->run({{"c", boolean(false)}, {"x", xv}})[0]), (std::vector<float>{-1, 2, -3}));
}

}  // namespace
}  // namespace kiln
