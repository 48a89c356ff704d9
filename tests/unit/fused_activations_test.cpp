// The activations fused into FusedConv / FusedMatMul epilogues through vmath (Sigmoid,
// x * Sigmoid(x), Gelu in both forms) match their separate -O0 ops.
#include <gtest/gtest.h>

#include <random>

#include "opt_levels.h"

namespace kiln {
namespace {

using test::expect_o1_matches_o0, test::f32_list, test::o1_ops, test::random_f32;

std::string conv_with(const std::string &tail, std::mt19937 &rng) {
  return "model {opset = 20}\ngraph g(%x: f32[1, 8, 9, 10]) {\n  init %w: f32[12, 8, 3, 3] = " +
         f32_list(random_f32({12, 8, 3, 3}, rng, -0.3f, 0.3f)) + "\n  init %b: f32[12] = " +
         f32_list(random_f32({12}, rng)) + "\n  %y: ? = Conv(%x, %w, %b) {kernel_shape = [3, 3], pads = [1, 1, 1, 1]}\n" +
         tail + "}\n";
}

TEST(FusedActivations, ConvSigmoidAndSiLU) {
  std::mt19937 rng(5);
  std::map<std::string, Tensor> in = {{"x", random_f32({1, 8, 9, 10}, rng, -3, 3)}};
  std::string sig = conv_with("  %s: ? = Sigmoid(%y)\n  return %s\n", rng);
  EXPECT_EQ(o1_ops(sig), std::vector<std::string>{"FusedConv"});
  expect_o1_matches_o0(sig, in, 2e-6, 2e-6);
  std::string silu = conv_with("  %s: ? = Sigmoid(%y)\n  %m: ? = Mul(%y, %s)\n  return %m\n", rng);
  EXPECT_EQ(o1_ops(silu), std::vector<std::string>{"FusedConv"});
  expect_o1_matches_o0(silu, in, 2e-6, 2e-6);
}

TEST(FusedActivations, MatMulBiasGelu) {
  std::mt19937 rng(6);
  for (const char *approx : {"none", "tanh"}) {
    std::string text = "model {opset = 20}\ngraph g(%a: f32[2, 7, 24]) {\n  init %w: f32[24, 40] = " +
                       f32_list(random_f32({24, 40}, rng, -0.5f, 0.5f)) + "\n  init %c: f32[40] = " +
                       f32_list(random_f32({40}, rng)) + "\n  %m: ? = MatMul(%a, %w)\n  %s: ? = Add(%m, %c)\n" +
                       "  %g: ? = Gelu(%s) {approximate = \"" + approx + "\"}\n  return %g\n}\n";
    EXPECT_EQ(o1_ops(text), std::vector<std::string>{"FusedMatMul"}) << approx;
    expect_o1_matches_o0(text, {{"a", random_f32({2, 7, 24}, rng, -3, 3)}}, 2e-6, 2e-6);
  }
}

}  // namespace
}  // namespace kiln
