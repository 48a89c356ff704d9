// Reductions, softmax-like ops and normalizations beyond what the ONNX node tests cover:
// symbolic shape inference, axes known only at run time, the pre-opset-13 softmax
// semantics, f16 accumulation, and errors on bad models.
#include <gtest/gtest.h>

#include <cmath>

#include "compiler/compiler.h"
#include "graph/parser.h"
#include "support/error.h"

#include "graph_builder.h"

namespace kiln {
namespace {

using test::compile_text, test::user_error_of;

std::string shape_of(const CompiledModel &cm, const std::string &name) {
  const Value *v = cm.graph().find(name);
  if (!v) return "<missing>";
  return std::string(dtype_name(v->dtype)) + (v->has_shape ? shape_str(v->shape) : "[?]");
}

Tensor iota(DType dt, std::vector<int64_t> shape, double scale = 1.0, double offset = 0.0) {
  Tensor t(dt, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.set_f64(i, static_cast<double>(i) * scale + offset);
  return t;
}

TEST(ReduceShapes, SymbolicDimsSurviveReduction) {
  auto cm = compile_text(R"(model {opset = 13}
graph g(%x: f32[n, 4, m]) {
  init %axes: i64[1] = [1]
  %sum: ? = ReduceSum(%x, %axes) {keepdims = 0}
  %max: ? = ReduceMax(%x) {axes = [-1]}
  %all: ? = ReduceMean(%x) {keepdims = 0}
  %arg: ? = ArgMin(%x) {axis = 2, keepdims = 0}
  %sm: ? = Softmax(%x)
  return %sum, %max, %all, %arg, %sm
})");
  EXPECT_EQ(shape_of(*cm, "sum"), "f32[n, m]");
  EXPECT_EQ(shape_of(*cm, "max"), "f32[n, 4, 1]");
  EXPECT_EQ(shape_of(*cm, "all"), "f32[]");
  EXPECT_EQ(shape_of(*cm, "arg"), "i64[n, 4]");
  EXPECT_EQ(shape_of(*cm, "sm"), "f32[n, 4, m]");
  for (int n : {1, 3}) {
    auto out = cm->run({{"x", iota(DType::F32, {n, 4, 2})}});
    ASSERT_EQ(out[0].shape(), (std::vector<int64_t>{n, 2}));
    // sum over axis 1 of x[i, j, k] = 8i + 2j + k: 32i + 12 + 4k
    for (int i = 0; i < n; ++i) {
      for (int k = 0; k < 2; ++k) EXPECT_FLOAT_EQ(out[0].as<float>()[i * 2 + k], 32.0f * i + 12 + 4 * k);
    }
    EXPECT_FLOAT_EQ(out[2].as<float>()[0], (8.0f * n - 1) / 2);
    for (int64_t i = 0; i < out[3].numel(); ++i) EXPECT_EQ(out[3].as<int64_t>()[i], 0);
  }
}

TEST(ReduceShapes, AxesKnownOnlyAtRunTime) {
  auto cm = compile_text(R"(model {opset = 13}
graph g(%x: f32[2, 3, 4], %axes: i64[2]) {
  %kept: ? = ReduceSum(%x, %axes)
  %dropped: ? = ReduceSum(%x, %axes) {keepdims = 0}
  return %kept, %dropped
})");
  // The rank is known either way; the dims are data-dependent.
  const Value *kept = cm->graph().find("kept"), *dropped = cm->graph().find("dropped");
  ASSERT_TRUE(kept->has_shape && dropped->has_shape);
  EXPECT_EQ(kept->shape.size(), 3u);
  EXPECT_EQ(dropped->shape.size(), 1u);
  Tensor x = iota(DType::F32, {2, 3, 4});
  auto out = cm->run({{"x", x}, {"axes", Tensor::from_i64({0, -1}, {2})}});
  EXPECT_EQ(out[0].shape(), (std::vector<int64_t>{1, 3, 1}));
  ASSERT_EQ(out[1].shape(), (std::vector<int64_t>{3}));
  for (int j = 0; j < 3; ++j) {
    float want = 0;
    for (int i = 0; i < 2; ++i) {
      for (int k = 0; k < 4; ++k) want += static_cast<float>(i * 12 + j * 4 + k);
    }
    EXPECT_FLOAT_EQ(out[1].as<float>()[j], want);
  }
  out = cm->run({{"x", x}, {"axes", Tensor::from_i64({1, 2}, {2})}});
  EXPECT_EQ(out[1].shape(), (std::vector<int64_t>{2}));
  EXPECT_FLOAT_EQ(out[1].as<float>()[1], 12.0f * 23 - 66);  // sum of 12..23
}

// Since opset 18 every Reduce* takes its axes as an input; an empty list reduces all
// axes, or nothing with noop_with_empty_axes.
TEST(Reduce, Opset18AxesInputAndNoop) {
  auto cm = compile_text(R"(model {opset = 18}
graph g(%x: f32[2, 3]) {
  init %axes: i64[1] = [1]
  init %none: i64[0] = []
  %max: ? = ReduceMax(%x, %axes) {keepdims = 0}
  %same: ? = ReduceL2(%x, %none) {noop_with_empty_axes = 1}
  %all: ? = ReduceL1(%x, %none)
  %absent: ? = ReduceSumSquare(%x)
  return %max, %same, %all, %absent
})");
  EXPECT_EQ(shape_of(*cm, "max"), "f32[2]");
  EXPECT_EQ(shape_of(*cm, "same"), "f32[2, 3]");
  EXPECT_EQ(shape_of(*cm, "all"), "f32[1, 1]");
  EXPECT_EQ(shape_of(*cm, "absent"), "f32[1, 1]");
  Tensor x = iota(DType::F32, {2, 3}, 1.0, -2.0);  // -2 -1 0 / 1 2 3
  auto out = cm->run({{"x", x}});
  EXPECT_EQ(out[0].as<float>()[0], 0.0f);
  EXPECT_EQ(out[0].as<float>()[1], 3.0f);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(out[1].as<float>()[i], x.as<float>()[i]);
  EXPECT_EQ(out[2].as<float>()[0], 9.0f);
  EXPECT_EQ(out[3].as<float>()[0], 19.0f);
}

// Like numpy: a NaN is the extreme of its row, the first (or last) NaN its index.
TEST(ArgMax, NaNWinsAndTiesFollowSelectLastIndex) {
  auto cm = compile_text(R"(model {opset = 13}
graph g(%x: f32[2, 4]) {
  %first: ? = ArgMax(%x) {axis = 1, keepdims = 0}
  %last: ? = ArgMin(%x) {axis = 1, keepdims = 0, select_last_index = 1}
  return %first, %last
})");
  Tensor x(DType::F32, {2, 4});
  float xv[] = {1, NAN, 3, NAN, 2, 0, 2, 0};
  for (int i = 0; i < 8; ++i) x.as<float>()[i] = xv[i];
  auto out = cm->run({{"x", x}});
  EXPECT_EQ(out[0].as<int64_t>()[0], 1);
  EXPECT_EQ(out[0].as<int64_t>()[1], 0);
  EXPECT_EQ(out[1].as<int64_t>()[0], 3);
  EXPECT_EQ(out[1].as<int64_t>()[1], 3);
}

// Before opset 13 Softmax/Hardmax flatten the input to 2-D at `axis`; since, they work
// along that one axis.
TEST(Softmax, Opset11CoercesTo2DAndOpset13UsesOneAxis) {
  const char *text = R"(model {opset = %d}
graph g(%%x: f32[2, 3, 4]) {
  %%s: ? = Softmax(%%x) {axis = 1}
  %%h: ? = Hardmax(%%x) {axis = 1}
  return %%s, %%h
})";
  char buf[256];
  Tensor x = iota(DType::F32, {2, 3, 4}, 0.25, -1.0);
  for (int opset : {11, 13}) {
    std::snprintf(buf, sizeof buf, text, opset);
    auto cm = compile_text(buf);
    auto out = cm->run({{"x", x}});
    const float *s = out[0].as<float>(), *h = out[1].as<float>();
    for (int i = 0; i < 2; ++i) {
      if (opset == 11) {
        float sum = 0, ones = 0;
        for (int e = 0; e < 12; ++e) sum += s[i * 12 + e], ones += h[i * 12 + e];
        EXPECT_NEAR(sum, 1.0f, 1e-5f);
        EXPECT_EQ(ones, 1.0f);
        EXPECT_EQ(h[i * 12 + 11], 1.0f);  // the row's maximum is its last element
      } else {
        for (int k = 0; k < 4; ++k) {
          float sum = 0;
          for (int j = 0; j < 3; ++j) sum += s[i * 12 + j * 4 + k];
          EXPECT_NEAR(sum, 1.0f, 1e-5f);
          EXPECT_EQ(h[i * 12 + 2 * 4 + k], 1.0f);
        }
      }
    }
  }
}

TEST(Softmax, LargeInputsStayFinite) {
  auto cm = compile_text(R"(model {opset = 13}
graph g(%x: f32[1, 3]) {
  %s: ? = Softmax(%x)
  %l: ? = LogSoftmax(%x)
  %lse: ? = ReduceLogSumExp(%x) {keepdims = 0}
  return %s, %l, %lse
})");
  Tensor x(DType::F32, {1, 3});
  float xv[] = {1000.0f, 1001.0f, -INFINITY};
  for (int i = 0; i < 3; ++i) x.as<float>()[i] = xv[i];
  auto out = cm->run({{"x", x}});
  double z = std::log(1.0 + std::exp(-1.0));
  EXPECT_NEAR(out[0].as<float>()[1], 1.0 / (1.0 + std::exp(-1.0)), 1e-6);
  EXPECT_EQ(out[0].as<float>()[2], 0.0f);
  EXPECT_NEAR(out[1].as<float>()[0], -1.0 - z, 1e-4);
  EXPECT_NEAR(out[2].as<float>()[0], 1001.0 + z, 1e-3);
}

// f16 inputs accumulate in f32: a sum of 4096 ones is exact although f16 stops counting
// at 2048.
TEST(Reduce, HalfPrecisionAccumulatesInFloat) {
  auto cm = compile_text(R"(model {opset = 13}
graph g(%x: f16[4096]) {
  %s: ? = ReduceSum(%x)
  %m: ? = ReduceMean(%x) {keepdims = 0}
  return %s, %m
})");
  Tensor x(DType::F16, {4096});
  for (int64_t i = 0; i < x.numel(); ++i) x.set_f64(i, 1.0);
  auto out = cm->run({{"x", x}});
  EXPECT_EQ(out[0].dtype(), DType::F16);
  EXPECT_EQ(out[0].get_f64(0), 4096.0);
  EXPECT_EQ(out[1].get_f64(0), 1.0);
}

TEST(CumSum, ReverseExclusiveOnIntsWithSymbolicLength) {
  auto cm = compile_text(R"(model {opset = 14}
graph g(%x: i32[2, n]) {
  init %axis: i32[] = [-1]
  %y: ? = CumSum(%x, %axis) {exclusive = 1, reverse = 1}
  return %y
})");
  for (int n : {1, 5}) {
    Tensor x = iota(DType::I32, {2, n}, 1.0, 1.0);
    auto out = cm->run({{"x", x}});
    for (int i = 0; i < 2; ++i) {
      int want = 0;
      for (int k = n - 1; k >= 0; --k) {
        EXPECT_EQ(out[0].as<int32_t>()[i * n + k], want);
        want += x.as<int32_t>()[i * n + k];
      }
    }
  }
}

TEST(LayerNorm, HalfInputKeepsFloatStatistics) {
  auto cm = compile_text(R"(model {opset = 17}
graph g(%x: f16[b, 8]) {
  %y: ?, %mean: ?, %inv: ? = LayerNormalization(%x) {epsilon = 0.0}
  return %y, %mean, %inv
})");
  EXPECT_EQ(shape_of(*cm, "y"), "f16[b, 8]");
  EXPECT_EQ(shape_of(*cm, "mean"), "f32[b, 1]");
  auto out = cm->run({{"x", iota(DType::F16, {2, 8})}});
  EXPECT_FLOAT_EQ(out[1].as<float>()[1], 11.5f);
  EXPECT_NEAR(out[2].as<float>()[0], 1.0 / std::sqrt(5.25), 1e-6);
  EXPECT_NEAR(out[0].get_f64(15), 3.5 / std::sqrt(5.25), 2e-3);
}

TEST(BatchNorm, TrainingModeUpdatesRunningStatistics) {
  auto cm = compile_text(R"(model {opset = 15}
graph g(%x: f32[2, 2, 3]) {
  init %scale: f32[2] = [1, 2]
  init %bias: f32[2] = [0, 1]
  init %mean: f32[2] = [0, 10]
  init %var: f32[2] = [1, 1]
  %y: ?, %rm: ?, %rv: ? = BatchNormalization(%x, %scale, %bias, %mean, %var)
      {epsilon = 0.0, momentum = 0.5, training_mode = 1}
  return %y, %rm, %rv
})");
  auto out = cm->run({{"x", iota(DType::F32, {2, 2, 3})}});
  // Channel 1 holds 3, 4, 5, 9, 10, 11: mean 7, population variance 58/6.
  EXPECT_FLOAT_EQ(out[1].as<float>()[1], 0.5f * 10 + 0.5f * 7);
  EXPECT_NEAR(out[2].as<float>()[1], 0.5 + 0.5 * 58.0 / 6, 1e-5);
  EXPECT_NEAR(out[0].as<float>()[3], 2.0 * (3 - 7) / std::sqrt(58.0 / 6) + 1, 1e-5);
}

TEST(ReduceErrors, BadModelsGiveClearErrors) {
  auto compile_one = [](const std::string &node, const std::string &inits = "") {
    return user_error_of([&] {
      compile_text("model {opset = 13}\ngraph g(%x: f32[2, 3, 4]) {\n" + inits + "  %y: ? = " + node +
                   "\n  return %y\n}");
    });
  };
  EXPECT_NE(compile_one("Softmax(%x) {axis = 3}").find("axis 3 is out of range for rank 3"), std::string::npos);
  EXPECT_NE(compile_one("ReduceMax(%x) {axes = [0, -4]}").find("axis -4 is out of range"), std::string::npos);
  EXPECT_NE(compile_one("ArgMax(%x) {axis = 5}").find("out of range"), std::string::npos);
  EXPECT_NE(compile_one("LpNormalization(%x) {p = 3}").find("p must be 1 or 2"), std::string::npos);
  EXPECT_NE(compile_one("LRN(%x) {size = 0}").find("size must be a positive int"), std::string::npos);
  std::string bn = compile_one("BatchNormalization(%x, %s, %s, %s, %s)", "  init %s: f32[4] = [1, 1, 1, 1]\n");
  EXPECT_NE(bn.find("has 4 channels, expected 3"), std::string::npos) << bn;
  std::string ln = compile_one("LayerNormalization(%x, %s)", "  init %s: f32[5] = [1, 1, 1, 1, 1]\n");
  EXPECT_NE(ln.find("cannot be broadcast"), std::string::npos) << ln;
}

}  // namespace
}  // namespace kiln
