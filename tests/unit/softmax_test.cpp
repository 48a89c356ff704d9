// The -O1 Softmax / LogSoftmax schedule (lower/reduce.cpp: rows in parallel, vmath exp
// in vectors) against the -O0 reference: rows shorter and longer than a vector, ragged
// tails, symbolic dims, the pre-opset-13 form, rows with large, infinite and NaN values;
// axes other than the last keep the reference.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "opt_levels.h"

namespace kiln {
namespace {

using test::compile_at, test::expect_close, test::expect_o1_matches_o0, test::random_f32;

std::string softmax_model(const std::string &op, const std::string &shape, int axis = -1, int opset = 13) {
  return "model {opset = " + std::to_string(opset) + "}\ngraph g(%x: f32" + shape + ") {\n  %y: ? = " + op +
         "(%x) {axis = " + std::to_string(axis) + "}\n  return %y\n}\n";
}

TEST(SoftmaxO1, MatchesReferenceOverRowLengths) {
  std::mt19937 rng(1);
  for (const char *op : {"Softmax", "LogSoftmax"}) {
    for (int64_t n : {1, 7, 16, 100, 128, 1000}) {
      for (int64_t rows : {1, 3, 300}) {
        SCOPED_TRACE(std::string(op) + " rows " + std::to_string(rows) + " n " + std::to_string(n));
        Tensor x = random_f32({rows, n}, rng, -30, 30);
        std::string shape = "[" + std::to_string(rows) + ", " + std::to_string(n) + "]";
        // LogSoftmax near the row max is a difference of nearby values: absolute error.
        expect_o1_matches_o0(softmax_model(op, shape), {{"x", x}}, 1e-6, std::string(op) == "Softmax" ? 1e-7 : 1e-6);
      }
    }
  }
}

TEST(SoftmaxO1, SymbolicShapesAndOlderOpsets) {
  std::mt19937 rng(2);
  Tensor x = random_f32({2, 12, 37}, rng, -10, 10);
  for (const char *op : {"Softmax", "LogSoftmax"}) {
    SCOPED_TRACE(op);
    expect_o1_matches_o0(softmax_model(op, "[b, h, s]"), {{"x", x}}, 1e-6, 1e-6);
    // Before opset 13 the input is coerced to 2-D at `axis`: the last axis alone is rows.
    expect_o1_matches_o0(softmax_model(op, "[2, 12, 37]", 2, 11), {{"x", x}}, 1e-6, 1e-6);
    // ... and axis 1 spans two dims (the reference), as does axis 1 at opset 13.
    expect_o1_matches_o0(softmax_model(op, "[2, 12, 37]", 1, 11), {{"x", x}}, 0, 0);
    expect_o1_matches_o0(softmax_model(op, "[2, 12, 37]", 1), {{"x", x}}, 0, 0);
  }
}

TEST(SoftmaxO1, ExtremeRows) {
  // Huge spreads (underflow to 0), -inf entries (masked attention), an all -inf row and a
  // NaN row (both NaN, as in the reference).
  Tensor x(DType::F32, {4, 20});
  for (int i = 0; i < 20; ++i) {
    x.as<float>()[i] = i * 50.0f - 500;
    x.as<float>()[20 + i] = i % 3 == 0 ? -INFINITY : static_cast<float>(i);
    x.as<float>()[40 + i] = -INFINITY;
    x.as<float>()[60 + i] = i == 7 ? NAN : 1.0f;
  }
  for (const char *op : {"Softmax", "LogSoftmax"}) {
    SCOPED_TRACE(op);
    auto ref = compile_at(softmax_model(op, "[4, 20]"), 0)->run({{"x", x}})[0];
    auto opt = compile_at(softmax_model(op, "[4, 20]"), 1)->run({{"x", x}})[0];
    expect_close(ref, opt, 1e-6, 1e-30, op);
  }
}

}  // namespace
}  // namespace kiln
