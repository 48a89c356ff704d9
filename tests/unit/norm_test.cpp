// The -O1 LayerNormalization schedule (lower/norm.cpp: rows in parallel, vectorized
// moments and normalization) against the -O0 reference: the last axis and several
// trailing axes, per-element and one-value scale and bias, no bias, the Mean and
// InvStdDev outputs, symbolic dims, and a scale that broadcasts along the row (which
// keeps the reference).
#include <gtest/gtest.h>

#include <random>

#include "opt_levels.h"

namespace kiln {
namespace {

using test::expect_o1_matches_o0, test::f32_list, test::random_f32;

std::string layer_norm_model(const std::string &x, int axis, const std::string &scale, const std::string &bias,
                             const std::string &outs = "%y") {
  std::string ins = "%x, %scale" + std::string(bias.empty() ? "" : ", %bias");
  return "model {opset = 17}\ngraph g(%x: f32" + x + ") {\n  init %scale: " + scale + "\n" +
         (bias.empty() ? "" : "  init %bias: " + bias + "\n") + "  " +
         (outs == "%y" ? "%y: ?" : "%y: ?, %mean: ?, %inv: ?") + " = LayerNormalization(" + ins +
         ") {axis = " + std::to_string(axis) + ", epsilon = 0.001}\n  return " + outs + "\n}\n";
}

std::string values(const std::string &type, std::vector<int64_t> shape, std::mt19937 &rng) {
  return type + " = " + f32_list(random_f32(std::move(shape), rng, -2, 2));
}

TEST(LayerNormO1, MatchesReference) {
  std::mt19937 rng(1);
  for (int64_t d : {1, 5, 16, 40, 768}) {
    SCOPED_TRACE("d = " + std::to_string(d));
    std::string dd = std::to_string(d);
    Tensor x = random_f32({3, 7, d}, rng, -3, 6);
    std::string shape = "[3, 7, " + dd + "]", row = "f32[" + dd + "]";
    expect_o1_matches_o0(layer_norm_model(shape, -1, values(row, {d}, rng), values(row, {d}, rng)), {{"x", x}}, 1e-5,
                         1e-5);
    // One value for the whole row; no bias.
    expect_o1_matches_o0(layer_norm_model(shape, 2, values("f32[1]", {1}, rng), ""), {{"x", x}}, 1e-5, 1e-5);
  }
}

TEST(LayerNormO1, SeveralAxesStatisticsAndSymbolicRows) {
  std::mt19937 rng(2);
  Tensor x = random_f32({4, 6, 9}, rng, -3, 3);
  expect_o1_matches_o0(layer_norm_model("[4, 6, 9]", 1, values("f32[6, 9]", {6, 9}, rng), values("f32[]", {}, rng),
                                        "%y, %mean, %inv"),
                       {{"x", x}}, 1e-5, 1e-5);
  expect_o1_matches_o0(layer_norm_model("[b, s, 9]", -1, values("f32[9]", {9}, rng), values("f32[9]", {9}, rng)),
                       {{"x", x}}, 1e-5, 1e-5);
  // The scale repeats along the normalized dims: not one value per element, the reference.
  expect_o1_matches_o0(layer_norm_model("[4, 6, 9]", 1, values("f32[9]", {9}, rng), ""), {{"x", x}}, 1e-5, 1e-5);
}

}  // namespace
}  // namespace kiln
