// fuse_normalizations (passes/fuse_patterns.cpp): PyTorch's decomposed LayerNorm and
// exact GELU, in the forms torch exports, become LayerNormalization / Gelu at -O1, with
// the -O0 result; patterns that do not qualify are left alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "opt_levels.h"

namespace kiln {
namespace {

using test::expect_o1_matches_o0, test::f32_list, test::o1_ops, test::random_f32;

int count(const std::vector<std::string> &ops, const std::string &op) {
  return static_cast<int>(std::count(ops.begin(), ops.end(), op));
}

// x: f32[2, 5, 24] normalized over the last dim into %n = %d / %den (%d the deviation
// from the mean, %den = sqrt(var + eps)); `square` writes d^2, `after` continues from %n
// and returns.
std::string layer_norm_model(const std::string &square, const std::string &after, const std::string &inits,
                             int opset = 13) {
  std::string axes = opset >= 18 ? ", %axes)" : ") {axes = [-1]}";
  return "model {opset = " + std::to_string(opset) + "}\ngraph g(%x: f32[2, 5, 24]) {\n" +
         "  init %axes: i64[1] = [-1]\n  init %two: f32[] = [2]\n  init %eps: f32[] = [1e-05]\n" + inits +
         "  %m: ? = ReduceMean(%x" + axes + "\n" + "  %d: ? = Sub(%x, %m)\n" + "  %sq: ? = " + square + "\n" +
         "  %v: ? = ReduceMean(%sq" + axes + "\n" + "  %ve: ? = Add(%v, %eps)\n" + "  %den: ? = Sqrt(%ve)\n" +
         "  %n: ? = Div(%d, %den)\n" + after + "}\n";
}

class FusePatterns : public ::testing::Test {
 protected:
  std::mt19937 rng{3};
  std::string gamma = "  init %gamma: f32[24] = " + f32_list(random_f32({24}, rng, 0.5, 1.5)) + "\n";
  std::string beta = "  init %beta: f32[24] = " + f32_list(random_f32({24}, rng)) + "\n";
  Tensor x = random_f32({2, 5, 24}, rng, -3, 5);
};

TEST_F(FusePatterns, LayerNormWithScaleAndBias) {
  std::string text = layer_norm_model(
      "Pow(%d, %two)", "  %s: ? = Mul(%n, %gamma)\n  %y: ? = Add(%s, %beta)\n  return %y\n", gamma + beta);
  auto ops = o1_ops(text);
  EXPECT_EQ(ops, std::vector<std::string>{"LayerNormalization"});
  expect_o1_matches_o0(text, {{"x", x}});
}

TEST_F(FusePatterns, LayerNormSquaredByMulWithAxesInput) {
  // opset 18: ReduceMean takes its axes as an input; no scale or bias; operands of the
  // affine part swapped.
  std::string text = layer_norm_model("Mul(%d, %d)", "  return %n\n", "", 18);
  EXPECT_EQ(o1_ops(text), std::vector<std::string>{"LayerNormalization"});
  expect_o1_matches_o0(text, {{"x", x}});
  std::string affine = layer_norm_model(
      "Mul(%d, %d)", "  %s: ? = Mul(%gamma, %n)\n  %y: ? = Add(%beta, %s)\n  return %y\n", gamma + beta, 18);
  EXPECT_EQ(o1_ops(affine), std::vector<std::string>{"LayerNormalization"});
  expect_o1_matches_o0(affine, {{"x", x}});
}

TEST_F(FusePatterns, LayerNormScaleOfRankThree) {
  std::string g3 = "  init %gamma: f32[1, 1, 24] = " + f32_list(random_f32({24}, rng)) + "\n";
  std::string text = layer_norm_model("Pow(%d, %two)", "  %y: ? = Mul(%n, %gamma)\n  return %y\n", g3);
  EXPECT_EQ(o1_ops(text), std::vector<std::string>{"LayerNormalization"});
  expect_o1_matches_o0(text, {{"x", x}});
}

TEST_F(FusePatterns, LayerNormNotFusedWhenItDoesNotQualify) {
  // An intermediate read elsewhere (returned), a scale that is not per-column (stays a
  // Mul after the fused node), a reduction over another axis.
  std::string shared = layer_norm_model("Pow(%d, %two)", "  return %n, %d\n", "");
  EXPECT_EQ(count(o1_ops(shared), "LayerNormalization"), 0);
  expect_o1_matches_o0(shared, {{"x", x}});
  std::string per_row = layer_norm_model(
      "Pow(%d, %two)", "  %y: ? = Mul(%n, %rows)\n  return %y\n",
      "  init %rows: f32[5, 1] = " + f32_list(random_f32({5}, rng)) + "\n");
  auto ops = o1_ops(per_row);
  EXPECT_EQ(ops, (std::vector<std::string>{"LayerNormalization", "Mul"}));
  expect_o1_matches_o0(per_row, {{"x", x}});
  std::string other_axis = layer_norm_model("Pow(%d, %two)", "  return %n\n", "");
  other_axis.replace(other_axis.find("axes = [-1]"), 11, "axes = [1]");
  EXPECT_EQ(count(o1_ops(other_axis), "LayerNormalization"), 0);
  std::string cube = layer_norm_model("Pow(%d, %three)", "  return %n\n", "  init %three: f32[] = [3]\n");
  EXPECT_EQ(count(o1_ops(cube), "LayerNormalization"), 0);
}

// x: f32[3, 40, 70]; `body` computes %y from %x with %c (sqrt 2 or its inverse), %one, %half.
std::string gelu_model(const std::string &body, const char *c = "1.41421354") {
  return std::string("model {opset = 13}\ngraph g(%x: f32[3, 40, 70]) {\n") + "  init %c: f32[] = [" + c +
         "]\n  init %one: f32[] = [1]\n  init %half: f32[] = [0.5]\n" + body + "  return %y\n}\n";
}

TEST_F(FusePatterns, GeluInTheOrdersTorchExports) {
  std::vector<std::string> bodies = {
      // x * (erf(x / c) + 1) * 0.5  (torch.nn.GELU in recent exports)
      "  %u: ? = Div(%x, %c)\n  %e: ? = Erf(%u)\n  %p: ? = Add(%e, %one)\n  %m: ? = Mul(%x, %p)\n"
      "  %y: ? = Mul(%m, %half)\n",
      // x * 0.5 * (1 + erf(x / c))
      "  %h: ? = Mul(%x, %half)\n  %u: ? = Div(%x, %c)\n  %e: ? = Erf(%u)\n  %p: ? = Add(%one, %e)\n"
      "  %y: ? = Mul(%h, %p)\n",
      // (1 + erf(x / c)) * 0.5 * x
      "  %u: ? = Div(%x, %c)\n  %e: ? = Erf(%u)\n  %p: ? = Add(%e, %one)\n  %m: ? = Mul(%p, %half)\n"
      "  %y: ? = Mul(%m, %x)\n",
  };
  Tensor x = random_f32({3, 40, 70}, rng, -6, 6);
  for (const std::string &b : bodies) {
    std::string text = gelu_model(b);
    EXPECT_EQ(o1_ops(text), std::vector<std::string>{"Gelu"}) << text;
    expect_o1_matches_o0(text, {{"x", x}}, 1e-5, 2e-7);
  }
  // x / sqrt 2 written as x * (1 / sqrt 2)
  std::string mul = gelu_model(
      "  %u: ? = Mul(%c, %x)\n  %e: ? = Erf(%u)\n  %p: ? = Add(%e, %one)\n  %m: ? = Mul(%x, %p)\n"
      "  %y: ? = Mul(%m, %half)\n",
      "0.707106769");
  EXPECT_EQ(o1_ops(mul), std::vector<std::string>{"Gelu"});
  expect_o1_matches_o0(mul, {{"x", x}}, 1e-5, 2e-7);
}

TEST_F(FusePatterns, GeluNotFusedWhenItDoesNotQualify) {
  // Wrong constant; the erf term read twice.
  std::string wrong = gelu_model(
      "  %u: ? = Div(%x, %c)\n  %e: ? = Erf(%u)\n  %p: ? = Add(%e, %one)\n  %m: ? = Mul(%x, %p)\n"
      "  %y: ? = Mul(%m, %half)\n",
      "2");
  EXPECT_EQ(count(o1_ops(wrong), "Gelu"), 0);
  std::string shared = gelu_model(
      "  %u: ? = Div(%x, %c)\n  %e: ? = Erf(%u)\n  %p: ? = Add(%e, %one)\n  %m: ? = Mul(%x, %p)\n"
      "  %g: ? = Mul(%m, %half)\n  %y: ? = Add(%g, %e)\n");
  EXPECT_EQ(count(o1_ops(shared), "Gelu"), 0);
  expect_o1_matches_o0(shared, {{"x", random_f32({3, 40, 70}, rng)}}, 1e-5, 2e-7);
}

}  // namespace
}  // namespace kiln
