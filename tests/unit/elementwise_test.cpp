// The -O1 schedules of elementwise ops (lower/elementwise.cpp) against the -O0
// reference: unary ops with vmath (vectorized) and without (libm, scalar), broadcasting
// binary, variadic and Where ops over static and symbolic shapes, sizes around the vector
// width and above the parallel threshold; and the Gelu op (opset 20) against its formula.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "opt_levels.h"

namespace kiln {
namespace {

using test::compile_at, test::expect_close, test::expect_o1_matches_o0, test::random_f32;

std::string unary_model(const std::string &op, const std::string &shape, const std::string &attrs = "",
                        int opset = 13) {
  return "model {opset = " + std::to_string(opset) + "}\ngraph g(%x: f32" + shape + ") {\n  %y: ? = " + op +
         "(%x)" + attrs + "\n  return %y\n}\n";
}

TEST(ElementwiseO1, UnaryOpsMatchReference) {
  std::mt19937 rng(1);
  const char *ops[] = {"Exp", "Sigmoid", "Tanh", "Erf", "Relu", "Elu", "Selu", "Celu", "Sqrt", "Abs", "Neg",
                       "Reciprocal", "Floor", "Round", "Sign", "HardSwish", "Softsign", "Log", "Sin", "Softplus"};
  // Empty, below one vector, a ragged tail, and above the parallel threshold.
  std::vector<std::vector<int64_t>> shapes = {{0}, {5}, {3, 37}, {2, 300, 129}};
  for (const char *op : ops) {
    bool positive = std::string(op) == "Sqrt" || std::string(op) == "Log";
    for (auto &s : shapes) {
      std::string shape = "[";
      for (size_t i = 0; i < s.size(); ++i) shape += (i ? ", " : "") + std::to_string(s[i]);
      Tensor x = random_f32(s, rng, positive ? 0.01f : -20, 20);
      SCOPED_TRACE(std::string(op) + " " + shape + "]");
      expect_o1_matches_o0(unary_model(op, shape + "]"), {{"x", x}}, 4e-7, 2e-7);
    }
  }
}

TEST(ElementwiseO1, UnarySpecialValuesAndSymbolicShape) {
  Tensor x(DType::F32, {2, 9});
  float v[] = {0, -0.0f, INFINITY, -INFINITY, NAN, 1e-40f, -1e-40f, 88.8f, -88.8f, 100, -100, 1e30f, -1e30f,
               3.9f, -3.9f, 0.6f, -0.6f, 1};
  for (int i = 0; i < 18; ++i) x.as<float>()[i] = v[i];
  for (const char *op : {"Exp", "Sigmoid", "Tanh", "Erf", "Elu"}) {
    SCOPED_TRACE(op);
    expect_o1_matches_o0(unary_model(op, "[n, m]"), {{"x", x}}, 4e-7, 1e-37);
  }
}

TEST(ElementwiseO1, GeluMatchesFormula) {
  std::mt19937 rng(2);
  Tensor x = random_f32({7, 301}, rng, -8, 8);
  for (std::string approx : {"none", "tanh"}) {
    std::string text = unary_model("Gelu", "[7, 301]", " {approximate = \"" + approx + "\"}", 20);
    for (int level : {0, 1}) {
      Tensor y = compile_at(text, level)->run({{"x", x}})[0];
      for (int64_t i = 0; i < x.numel(); ++i) {
        double v = x.as<float>()[i];
        double want = approx == "none" ? 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)))
                                       : 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
        ASSERT_NEAR(y.as<float>()[i], want, 1e-6 + 1e-6 * std::fabs(want)) << approx << " -O" << level << " x = " << v;
      }
    }
  }
}

std::string binary_model(const std::string &op, const std::string &a, const std::string &b) {
  return "model {opset = 13}\ngraph g(%a: f32" + a + ", %b: f32" + b + ") {\n  %y: ? = " + op +
         "(%a, %b)\n  return %y\n}\n";
}

struct Broadcast {
  std::vector<int64_t> a, b;
};

std::string dims(const std::vector<int64_t> &s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

TEST(ElementwiseO1, BroadcastingBinaryOps) {
  std::mt19937 rng(4);
  std::vector<Broadcast> cases = {
      {{4, 33}, {4, 33}},          {{3, 5, 40}, {40}},       {{3, 5, 40}, {3, 5, 1}}, {{3, 5, 40}, {}},
      {{6, 1, 17}, {5, 1}},        {{1}, {2, 3}},            {{3, 1}, {1, 19}},       {{2, 200, 300}, {300}},
      {{2, 200, 300}, {2, 1, 300}}, {{130, 1, 600}, {600}},
      // Trailing dims merged into one row (every operand broadcast or full across them):
      // an SE block's per-channel scale, a bias over [C, 1, 1], both full over H x W, and
      // mixed patterns that keep rows of the last dim.
      {{2, 6, 7, 9}, {2, 6, 1, 1}}, {{2, 6, 7, 9}, {6, 1, 1}}, {{2, 3, 4, 5}, {1, 1, 4, 5}},
      {{2, 3, 4, 5}, {3, 1, 5}},    {{1, 3, 1, 9}, {1, 3, 5, 9}},
      // Broadcast over the row's outer dims, full over its inner ones (NCHWc blocks scaled
      // per channel: 16 and 8 lanes a period), and a period no vector width divides.
      {{2, 3, 5, 7, 16}, {2, 3, 1, 1, 16}}, {{1, 2, 3, 3, 8}, {1, 2, 1, 1, 8}}, {{2, 3, 5, 7, 6}, {2, 3, 1, 1, 6}},
  };
  for (const char *op : {"Add", "Sub", "Mul", "Div", "PRelu", "Pow", "Max", "Greater"}) {
    for (auto &c : cases) {
      bool b_fits_a = c.b.size() <= c.a.size();
      for (size_t i = 0; b_fits_a && i < c.b.size(); ++i) b_fits_a = c.b[i] <= c.a[c.a.size() - c.b.size() + i];
      if (std::string(op) == "PRelu" && !b_fits_a) continue;  // the slope broadcasts to x only
      SCOPED_TRACE(std::string(op) + " " + dims(c.a) + " " + dims(c.b));
      bool pow = std::string(op) == "Pow";
      std::map<std::string, Tensor> in = {{"a", random_f32(c.a, rng, pow ? 0.1f : -5, 5)},
                                          {"b", random_f32(c.b, rng, pow ? -2 : -5, pow ? 2 : 5)}};
      expect_o1_matches_o0(binary_model(op, dims(c.a), dims(c.b)), in, 4e-7, 1e-7);
    }
  }
}

TEST(ElementwiseO1, SymbolicShapesMayBroadcastAtRunTime) {
  // n may be 1 at run time (then b broadcasts along it) or match a's dim.
  std::mt19937 rng(5);
  std::string text = binary_model("Mul", "[k, 24]", "[k, n]");
  auto ref = compile_at(text, 0), opt = compile_at(text, 1);
  for (auto [k, n] : {std::pair<int64_t, int64_t>{3, 24}, {3, 1}, {2000, 24}, {2000, 1}}) {
    std::map<std::string, Tensor> in = {{"a", random_f32({k, 24}, rng)}, {"b", random_f32({k, n}, rng)}};
    expect_close(ref->run(in)[0], opt->run(in)[0], 0, 0, "k = " + std::to_string(k) + ", n = " + std::to_string(n));
  }
}

TEST(ElementwiseO1, IntegerVariadicAndWhere) {
  std::mt19937 rng(6);
  std::string ints = R"(model {opset = 13}
graph g(%a: i64[3, 70], %b: i64[70]) {
  %y: ? = Add(%a, %b)
  %z: ? = Mul(%y, %b)
  return %y, %z
})";
  Tensor a(DType::I64, {3, 70}), b(DType::I64, {70});
  for (int64_t i = 0; i < a.numel(); ++i) a.as<int64_t>()[i] = static_cast<int64_t>(rng() % 1000) - 500;
  for (int64_t i = 0; i < b.numel(); ++i) b.as<int64_t>()[i] = static_cast<int64_t>(rng() % 1000) - 500;
  expect_o1_matches_o0(ints, {{"a", a}, {"b", b}}, 0, 0);
  std::string variadic = R"(model {opset = 13}
graph g(%a: f32[4, 50], %b: f32[50], %c: f32[4, 1]) {
  %mx: ? = Max(%a, %b, %c)
  %mn: ? = Min(%a, %b)
  %s: ? = Sum(%a, %b, %c)
  %m: ? = Mean(%a, %c)
  %cond: ? = Greater(%a, %b)
  %w: ? = Where(%cond, %a, %c)
  return %mx, %mn, %s, %m, %w
})";
  expect_o1_matches_o0(variadic,
                       {{"a", random_f32({4, 50}, rng)}, {"b", random_f32({50}, rng)}, {"c", random_f32({4, 1}, rng)}},
                       4e-7, 1e-7);
}

}  // namespace
}  // namespace kiln
