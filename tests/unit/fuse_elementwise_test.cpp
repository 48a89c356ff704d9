// fuse_elementwise (passes/fuse_elementwise.cpp) and the FusedElementwise lowering
// (lower/elementwise.cpp): trees of elementwise nodes become one node whose result, at
// -O0 (the reference loop) and -O1 (the vector schedule, native and AVX2), matches the
// unfused graph at -O0; what does not qualify is left alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "codegen/jit.h"
#include "graph/parser.h"
#include "opt_levels.h"
#include "passes/passes.h"

namespace kiln {
namespace {

using test::compile_at, test::expect_close, test::f32_list, test::random_f32;

// The model of `text` with fuse_elementwise applied (after shape inference).
Model fused_model(const std::string &text) {
  Model m = parse_model(text);
  infer_shapes(*m.graph);
  fuse_elementwise(*m.graph);
  return m;
}

// The one node fuse_elementwise leaves of `text` (a FusedElementwise).
Node sole_fused_node(const std::string &text) {
  Model m = fused_model(text);
  EXPECT_EQ(m.graph->nodes.size(), 1u);
  EXPECT_EQ(m.graph->nodes.at(0)->kind, OpKind::FusedElementwise);
  return *m.graph->nodes.at(0);
}

std::vector<std::string> fused_ops_of(const std::string &text) {
  Model m = fused_model(text);
  std::vector<std::string> ops;
  for (auto &n : m.graph->nodes) ops.push_back(op_name(n->kind));
  return ops;
}

// The fused model at -O0 and -O1 (native and, where the host has it, AVX2) against the
// unfused model at -O0.
void expect_fused_matches(const std::string &text, const std::map<std::string, Tensor> &in, double rtol = 2e-6,
                          double atol = 1e-6) {
  auto want = compile_at(text, 0)->run(in);
  bool avx2 = Jit::host_features().find("+avx2") != std::string::npos;
  for (auto [level, target] : std::vector<std::pair<int, std::string>>{{0, "native"}, {1, "native"}, {1, "x86-64-v3"}}) {
    if (target != "native" && !avx2) continue;
    CompileOptions o;
    o.opt_level = level;
    o.target = target;
    auto got = CompiledModel::compile(fused_model(text), o)->run(in);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      expect_close(want[i], got[i], rtol, atol, "-O" + std::to_string(level) + " " + target);
    }
  }
}

class FuseElementwise : public ::testing::Test {
 protected:
  std::mt19937 rng{11};
};

TEST_F(FuseElementwise, SwishWithAScaleReadsItsInputOnce) {
  // PP-OCR's swish: x * Sigmoid(x * c); 37 elements per row (a vector remainder).
  std::string text =
      "model {opset = 11}\ngraph g(%x: f32[2, 5, 3, 37]) {\n  init %c: f32[] = [1.5]\n"
      "  %a: ? = Mul(%x, %c)\n  %s: ? = Sigmoid(%a)\n  %y: ? = Mul(%x, %s)\n  return %y\n}\n";
  Node n = sole_fused_node(text);
  EXPECT_EQ(n.inputs.size(), 2u);  // x and c
  EXPECT_EQ(n.attrs.at("fused_ops").strings, (std::vector<std::string>{"Mul", "Sigmoid", "Mul"}));
  expect_fused_matches(text, {{"x", random_f32({2, 5, 3, 37}, rng)}});
}

TEST_F(FuseElementwise, PerChannelScaleThenResidualAdd) {
  // The SE block's channel scale times x, then a residual: Mul(x, s[n, c, 1, 1]) + r.
  std::string text =
      "model {opset = 13}\ngraph g(%x: f32[1, 8, 9, 11], %s: f32[1, 8, 1, 1], %r: f32[1, 8, 9, 11]) {\n"
      "  %m: ? = Mul(%x, %s)\n  %y: ? = Add(%m, %r)\n  return %y\n}\n";
  EXPECT_EQ(fused_ops_of(text), std::vector<std::string>{"FusedElementwise"});
  expect_fused_matches(text, {{"x", random_f32({1, 8, 9, 11}, rng)},
                              {"s", random_f32({1, 8, 1, 1}, rng)},
                              {"r", random_f32({1, 8, 9, 11}, rng)}});
}

TEST_F(FuseElementwise, LongChainWithAttributesAndConstants) {
  // Sub by a row constant, LeakyRelu (alpha), Div by a scalar, Clip (bound inputs), Tanh,
  // reversed operands of Sub; a symbolic leading dim.
  std::string text =
      "model {opset = 13}\ngraph g(%x: f32[n, 4, 19]) {\n  init %row: f32[19] = " +
      f32_list(random_f32({19}, rng)) +
      "\n  init %two: f32[] = [2]\n  init %lo: f32[] = [-1.5]\n  init %hi: f32[] = [0.75]\n"
      "  %a: ? = Sub(%x, %row)\n  %b: ? = LeakyRelu(%a) {alpha = 0.2}\n  %c: ? = Div(%b, %two)\n"
      "  %d: ? = Clip(%c, %lo, %hi)\n  %e: ? = Tanh(%d)\n  %y: ? = Sub(%two, %e)\n  return %y\n}\n";
  EXPECT_EQ(fused_ops_of(text), std::vector<std::string>{"FusedElementwise"});
  for (int64_t n : {1, 3}) expect_fused_matches(text, {{"x", random_f32({n, 4, 19}, rng)}});
}

TEST_F(FuseElementwise, ClipWithoutBoundsAndOldOpsetAttributes) {
  std::string old_clip =
      "model {opset = 9}\ngraph g(%x: f32[6, 10]) {\n  %a: ? = Relu(%x)\n"
      "  %y: ? = Clip(%a) {min = 0.5, max = 2.5}\n  return %y\n}\n";
  EXPECT_EQ(fused_ops_of(old_clip), std::vector<std::string>{"FusedElementwise"});
  expect_fused_matches(old_clip, {{"x", random_f32({6, 10}, rng)}});
  std::string upper_only =
      "model {opset = 13}\ngraph g(%x: f32[6, 10]) {\n  init %hi: f32[] = [1]\n  %a: ? = Neg(%x)\n"
      "  %y: ? = Clip(%a, _, %hi)\n  return %y\n}\n";
  EXPECT_EQ(fused_ops_of(upper_only), std::vector<std::string>{"FusedElementwise"});
  expect_fused_matches(upper_only, {{"x", random_f32({6, 10}, rng)}});
}

TEST_F(FuseElementwise, NotFusedWhenItDoesNotQualify) {
  // An intermediate that is also returned; an intermediate smaller than the result (it
  // would be recomputed per element); a lone op; an integer chain.
  std::string shared =
      "model {opset = 13}\ngraph g(%x: f32[4, 8]) {\n  %a: ? = Relu(%x)\n  %y: ? = Exp(%a)\n  return %y, %a\n}\n";
  EXPECT_EQ(fused_ops_of(shared), (std::vector<std::string>{"Relu", "Exp"}));
  std::string narrow =
      "model {opset = 13}\ngraph g(%x: f32[4, 8], %s: f32[4, 1]) {\n  %a: ? = Sigmoid(%s)\n"
      "  %y: ? = Mul(%x, %a)\n  return %y\n}\n";
  EXPECT_EQ(fused_ops_of(narrow), (std::vector<std::string>{"Sigmoid", "Mul"}));
  std::string lone = "model {opset = 13}\ngraph g(%x: f32[4, 8]) {\n  %y: ? = Relu(%x)\n  return %y\n}\n";
  EXPECT_EQ(fused_ops_of(lone), std::vector<std::string>{"Relu"});
  std::string ints =
      "model {opset = 13}\ngraph g(%x: i32[4, 8]) {\n  %a: ? = Abs(%x)\n  %y: ? = Neg(%a)\n  return %y\n}\n";
  EXPECT_EQ(fused_ops_of(ints), (std::vector<std::string>{"Abs", "Neg"}));
}

TEST_F(FuseElementwise, TreeReadingOneInputTwice) {
  // Two branches from x meet in an Add: one node, x its only input.
  std::string text =
      "model {opset = 13}\ngraph g(%x: f32[3, 33]) {\n  %a: ? = Exp(%x)\n  %b: ? = Neg(%a)\n"
      "  %c: ? = Sqrt(%x)\n  %d: ? = Relu(%c)\n  %y: ? = Add(%b, %d)\n  return %y\n}\n";
  EXPECT_EQ(sole_fused_node(text).inputs.size(), 1u);
  expect_fused_matches(text, {{"x", random_f32({3, 33}, rng, 0.1, 4)}}, 2e-6, 1e-6);
}

}  // namespace
}  // namespace kiln
