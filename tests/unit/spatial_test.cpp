// Pooling, ConvTranspose, Resize, quantization, Einsum and Det beyond what the ONNX node
// tests cover: symbolic shapes (one compiled model serving several sizes), attribute
// combinations the suite lacks, checked against plain C++ references, and bad models.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "compiler/compiler.h"
#include "graph/parser.h"
#include "support/error.h"

#include "graph_builder.h"
#include "opt_levels.h"

namespace kiln {
namespace {

using test::compile_text, test::user_error_of;

Tensor random_f32(std::vector<int64_t> shape, int seed) {
  Tensor t(DType::F32, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  for (int64_t i = 0; i < t.numel(); ++i) t.as<float>()[i] = u(rng);
  return t;
}

void expect_near(const Tensor &got, const std::vector<float> &want, float tol = 1e-5f) {
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got.get_f64(i), want[i], tol) << "element " << i;
}

// 2-D window reference over an N x C x H x W tensor: f(values inside the input, number of
// window positions inside the padded input) for each output position.
std::vector<float> pool2d_ref(const Tensor &x, int k, int s, int pad, int oh, int ow,
                              const std::function<float(const std::vector<float> &, int)> &f) {
  auto &sh = x.shape();
  int64_t n = sh[0], c = sh[1], h = sh[2], w = sh[3];
  std::vector<float> out;
  for (int64_t b = 0; b < n * c; ++b) {
    for (int i = 0; i < oh; ++i) {
      for (int j = 0; j < ow; ++j) {
        std::vector<float> vals;
        int padded = 0;
        for (int r = 0; r < k; ++r) {
          for (int q = 0; q < k; ++q) {
            int64_t y = i * s + r - pad, z = j * s + q - pad;
            if (y >= -pad && y < h + pad && z >= -pad && z < w + pad) ++padded;
            if (y >= 0 && y < h && z >= 0 && z < w) vals.push_back(x.as<float>()[(b * h + y) * w + z]);
          }
        }
        out.push_back(f(vals, padded));
      }
    }
  }
  return out;
}

TEST(Pooling, SymbolicSpatialDimsServeEverySize) {
  auto cm = compile_text(R"(model {opset = 13}
graph g(%x: f32[n, 2, h, w]) {
  %y: ? = MaxPool(%x) {kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [2, 2]}
  return %y
})");
  const Value *y = cm->graph().outputs[0];
  ASSERT_TRUE(y->has_shape);
  EXPECT_EQ(y->shape.size(), 4u);
  EXPECT_FALSE(y->shape[2].is_const());
  for (auto [h, w] : {std::pair{7, 5}, std::pair{4, 9}}) {
    Tensor x = random_f32({1, 2, h, w}, h * 31 + w);
    auto out = cm->run({{"x", x}});
    int oh = (h + 2 - 3) / 2 + 1, ow = (w + 2 - 3) / 2 + 1;
    ASSERT_EQ(out[0].shape(), (std::vector<int64_t>{1, 2, oh, ow}));
    expect_near(out[0], pool2d_ref(x, 3, 2, 1, oh, ow, [](const std::vector<float> &v, int) {
                  float m = -INFINITY;
                  for (float e : v) m = std::max(m, e);
                  return m;
                }));
  }
}

TEST(Pooling, AveragePoolCeilModeCountIncludePad) {
  // 5x5 input, kernel 3, stride 2, pad 1, ceil: the last window overhangs the end
  // padding; the divisor counts the padded input only.
  auto cm = compile_text(R"(model {opset = 13}
graph g(%x: f32[1, 1, 6, 6]) {
  %y: ? = AveragePool(%x) {ceil_mode = 1, count_include_pad = 1, kernel_shape = [3, 3], pads = [1, 1, 1, 1],
                           strides = [2, 2]}
  %z: ? = AveragePool(%x) {ceil_mode = 1, kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [2, 2]}
  return %y, %z
})");
  Tensor x = random_f32({1, 1, 6, 6}, 3);
  auto out = cm->run({{"x", x}});
  ASSERT_EQ(out[0].shape(), (std::vector<int64_t>{1, 1, 4, 4}));
  auto sum = [](const std::vector<float> &v) {
    float s = 0;
    for (float e : v) s += e;
    return s;
  };
  expect_near(out[0], pool2d_ref(x, 3, 2, 1, 4, 4, [&](const std::vector<float> &v, int n) { return sum(v) / n; }));
  expect_near(out[1], pool2d_ref(x, 3, 2, 1, 4, 4, [&](const std::vector<float> &v, int) {
                return sum(v) / static_cast<float>(v.size());
              }));
}

TEST(Pooling, LpPoolAndGlobalLpPool) {
  auto cm = compile_text(R"(model {opset = 13}
graph g(%x: f32[2, 3, 5, 4]) {
  %y: ? = LpPool(%x) {kernel_shape = [2, 2], p = 3, pads = [1, 1, 1, 1], strides = [2, 2]}
  %z: ? = GlobalLpPool(%x) {p = 2}
  return %y, %z
})");
  Tensor x = random_f32({2, 3, 5, 4}, 9);
  auto out = cm->run({{"x", x}});
  ASSERT_EQ(out[0].shape(), (std::vector<int64_t>{2, 3, 3, 3}));
  expect_near(out[0], pool2d_ref(x, 2, 2, 1, 3, 3, [](const std::vector<float> &v, int) {
                double s = 0;
                for (float e : v) s += std::pow(std::fabs(e), 3.0);
                return static_cast<float>(std::cbrt(s));
              }), 1e-4f);
  ASSERT_EQ(out[1].shape(), (std::vector<int64_t>{2, 3, 1, 1}));
  std::vector<float> ref;
  for (int b = 0; b < 6; ++b) {
    double s = 0;
    for (int i = 0; i < 20; ++i) s += std::pow(x.as<float>()[b * 20 + i], 2.0);
    ref.push_back(static_cast<float>(std::sqrt(s)));
  }
  expect_near(out[1], ref, 1e-4f);
}

TEST(Pooling, BadAttributesAreUserErrors) {
  EXPECT_NE(user_error_of([] {
              compile_text(R"(graph g(%x: f32[1, 1, 4, 4]) {
  %y: ? = MaxPool(%x) {strides = [2, 2]}
  return %y
})");
            }).find("kernel_shape"),
            std::string::npos);
  EXPECT_NE(user_error_of([] {
              compile_text(R"(graph g(%x: f32[1, 1, 4, 4]) {
  %y: ? = AveragePool(%x) {kernel_shape = [5, 5]}
  return %y
})");
            }).find("output size"),
            std::string::npos);
  EXPECT_NE(user_error_of([] {
              compile_text(R"(graph g(%x: f32[4, 4]) {
  %y: ? = GlobalAveragePool(%x)
  return %y
})");
            }).find("rank"),
            std::string::npos);
}

TEST(GlobalPool, VectorSchedulesMatchReference) {
  // -O1 reduces each plane in vectors (16 / 8 lanes with a tail): planes of 49, 784 and 5
  // elements, batch 2, many planes split into parallel blocks; averages and maxima.
  for (const char *op : {"GlobalAveragePool", "GlobalMaxPool"}) {
    for (auto shape : {std::vector<int64_t>{2, 3, 7, 7}, {1, 40, 28, 28}, {2, 300, 1, 5}, {1, 2, 3, 4, 5}}) {
      std::string dims;
      for (int64_t d : shape) dims += (dims.empty() ? "" : ", ") + std::to_string(d);
      std::string text = "graph g(%x: f32[" + dims + "]) {\n  %y: ? = " + op + "(%x)\n  return %y\n}";
      SCOPED_TRACE(std::string(op) + " [" + dims + "]");
      test::expect_o1_matches_o0(text, {{"x", random_f32(shape, 3)}}, 1e-5, 1e-6);
    }
  }
}

TEST(ConvTranspose, GroupsStridesAndOutputShapeMatchScatterReference) {
  // x: 1x4x3x2, w: 4x3x3x2 (2 groups -> 6 output channels), strides [2, 3], dilations
  // [1, 2], output_shape [8, 9]: the scatter definition of ConvTranspose, cropped.
  Tensor w = random_f32({4, 3, 3, 2}, 5);
  std::string ws;
  for (int64_t i = 0; i < w.numel(); ++i) ws += (i ? ", " : "") + std::to_string(w.as<float>()[i]);
  auto cm = compile_text("model {opset = 13}\ngraph g(%x: f32[1, 4, 3, 2]) {\n  init %w: f32[4, 3, 3, 2] = [" + ws +
                         "]\n  %y: ? = ConvTranspose(%x, %w) {dilations = [1, 2], group = 2, output_shape = [8, 9], "
                         "strides = [2, 3]}\n  return %y\n}");
  Tensor x = random_f32({1, 4, 3, 2}, 6);
  auto out = cm->run({{"x", x}});
  ASSERT_EQ(out[0].shape(), (std::vector<int64_t>{1, 6, 8, 9}));
  // Full output: (3-1)*2 + 3 = 7 rows, (2-1)*3 + 3 = 6 cols (k_eff = 3); output_shape is
  // larger, so total padding is negative: nothing is cropped and the rest is zero.
  std::vector<float> ref(6 * 8 * 9, 0.0f);
  for (int ci = 0; ci < 4; ++ci) {
    int g = ci / 2;
    for (int mo = 0; mo < 3; ++mo) {
      int m = g * 3 + mo;
      for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 2; ++j) {
          for (int r = 0; r < 3; ++r) {
            for (int q = 0; q < 2; ++q) {
              int oy = i * 2 + r, ox = j * 3 + q * 2;
              float xv = x.as<float>()[(ci * 3 + i) * 2 + j], wv = w.as<float>()[((ci * 3 + mo) * 3 + r) * 2 + q];
              ref[(m * 8 + oy) * 9 + ox] += xv * wv;
            }
          }
        }
      }
    }
  }
  expect_near(out[0], ref, 1e-4f);
}

TEST(ConvTranspose, SymbolicInputKeepsDerivedDims) {
  auto cm = compile_text(R"(model {opset = 11}
graph g(%x: f32[n, 1, h, w]) {
  init %w: f32[1, 2, 2, 2] = [1, 2, 3, 4, 5, 6, 7, 8]
  %y: ? = ConvTranspose(%x, %w) {kernel_shape = [2, 2], strides = [2, 2]}
  return %y
})");
  const Value *y = cm->graph().outputs[0];
  ASSERT_TRUE(y->has_shape);
  EXPECT_EQ(y->shape[1].value(), 2);
  auto env = std::map<std::string, int64_t>{{"h", 5}, {"w", 3}};
  EXPECT_EQ(y->shape[2].eval(env), 10);
  EXPECT_EQ(y->shape[3].eval(env), 6);
  Tensor x(DType::F32, {1, 1, 1, 2});
  x.as<float>()[0] = 1;
  x.as<float>()[1] = 10;
  auto out = cm->run({{"x", x}});
  ASSERT_EQ(out[0].shape(), (std::vector<int64_t>{1, 2, 2, 4}));
  expect_near(out[0], {1, 2, 10, 20, 3, 4, 30, 40, 5, 6, 50, 60, 7, 8, 70, 80});
}

// f16 takes the gather form (accumulating in f32), f32 the scatter form: both must agree,
// with and without dilation.
TEST(ConvTranspose, HalfAndFloatDefinitionsAgree) {
  for (std::string attrs : {"dilations = [2, 1], pads = [1, 0, 0, 2], strides = [2, 3]",
                            "output_padding = [1, 0], pads = [0, 1, 1, 0], strides = [3, 2]"}) {
    std::string text = "model {opset = 13}\ngraph g(%x: f32[2, 3, 4, 3], %w: f32[3, 2, 3, 2]) {\n"
                       "  %y: ? = ConvTranspose(%x, %w) {" + attrs + "}\n"
                       "  %xh: ? = Cast(%x) {to = 10}\n  %wh: ? = Cast(%w) {to = 10}\n"
                       "  %yh: ? = ConvTranspose(%xh, %wh) {" + attrs + "}\n"
                       "  %yf: ? = Cast(%yh) {to = 1}\n  return %y, %yf\n}";
    auto cm = compile_text(text);
    auto out = cm->run({{"x", random_f32({2, 3, 4, 3}, 21)}, {"w", random_f32({3, 2, 3, 2}, 22)}});
    ASSERT_EQ(out[0].shape(), out[1].shape()) << attrs;
    std::vector<float> want;
    for (int64_t i = 0; i < out[0].numel(); ++i) want.push_back(out[0].as<float>()[i]);
    expect_near(out[1], want, 0.05f);
  }
}

TEST(Quantization, QLinearConvPerChannelWeights) {
  // 1x2x3x3 u8 input, 2 output channels with their own weight scale and zero point, pad 1.
  auto cm = compile_text(R"(model {opset = 13}
graph g(%x: u8[1, 2, 3, 3]) {
  init %xs: f32[] = [0.5]
  init %xz: u8[] = [10]
  init %w: i8[2, 2, 2, 2] = [1, -2, 3, 4, -5, 6, 7, -8, 2, 2, -1, 0, 3, -3, 1, 5]
  init %ws: f32[2] = [0.25, 0.125]
  init %wz: i8[2] = [0, 1]
  init %ys: f32[] = [0.2]
  init %yz: u8[] = [128]
  init %b: i32[2] = [7, -9]
  %y: ? = QLinearConv(%x, %xs, %xz, %w, %ws, %wz, %ys, %yz, %b) {pads = [1, 1, 0, 0]}
  return %y
})");
  Tensor x(DType::U8, {1, 2, 3, 3});
  for (int i = 0; i < 18; ++i) x.as<uint8_t>()[i] = static_cast<uint8_t>((i * 37) % 29);
  auto out = cm->run({{"x", x}});
  ASSERT_EQ(out[0].shape(), (std::vector<int64_t>{1, 2, 3, 3}));
  int8_t w[] = {1, -2, 3, 4, -5, 6, 7, -8, 2, 2, -1, 0, 3, -3, 1, 5};
  float ws[] = {0.25f, 0.125f};
  int wz[] = {0, 1}, bias[] = {7, -9};
  for (int m = 0; m < 2; ++m) {
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 3; ++j) {
        int acc = bias[m];
        for (int ci = 0; ci < 2; ++ci) {
          for (int r = 0; r < 2; ++r) {
            for (int q = 0; q < 2; ++q) {
              int yy = i + r - 1, xx = j + q - 1;
              if (yy < 0 || yy >= 3 || xx < 0 || xx >= 3) continue;
              acc += (x.as<uint8_t>()[(ci * 3 + yy) * 3 + xx] - 10) * (w[((m * 2 + ci) * 2 + r) * 2 + q] - wz[m]);
            }
          }
        }
        float real = static_cast<float>(acc) * (0.5f * ws[m] / 0.2f);
        long q = std::lrint(real) + 128;
        q = std::min(255L, std::max(0L, q));
        EXPECT_EQ(out[0].get_i64((m * 3 + i) * 3 + j), q) << m << " " << i << " " << j;
      }
    }
  }
}

TEST(Resize, ConstantScalesKeepSymbolicDims) {
  auto cm = compile_text(R"(model {opset = 13}
graph g(%x: f32[n, 3, h, w]) {
  init %scales: f32[4] = [1, 1, 2, 0.5]
  %y: ? = Resize(%x, _, %scales) {coordinate_transformation_mode = "asymmetric", mode = "nearest",
                                  nearest_mode = "floor"}
  return %y
})");
  const Value *y = cm->graph().outputs[0];
  ASSERT_TRUE(y->has_shape);
  EXPECT_EQ(shape_str(y->shape), "[n, 3, (h * 2), (w / 2)]");
  Tensor x = random_f32({1, 3, 2, 5}, 1);
  auto out = cm->run({{"x", x}});
  ASSERT_EQ(out[0].shape(), (std::vector<int64_t>{1, 3, 4, 2}));
  std::vector<float> ref;
  for (int c = 0; c < 3; ++c) {
    for (int i = 0; i < 4; ++i) {
      for (int j = 0; j < 2; ++j) ref.push_back(x.as<float>()[(c * 2 + i / 2) * 5 + j * 2]);
    }
  }
  expect_near(out[0], ref, 0);
}

TEST(Resize, SizesKnownOnlyAtRunTime) {
  auto cm = compile_text(R"(model {opset = 13}
graph g(%x: f32[1, 1, 2, 2], %sizes: i64[4]) {
  %y: ? = Resize(%x, _, _, %sizes) {coordinate_transformation_mode = "align_corners", mode = "linear"}
  return %y
})");
  Tensor x(DType::F32, {1, 1, 2, 2});
  for (int i = 0; i < 4; ++i) x.as<float>()[i] = static_cast<float>(i);
  for (int64_t n : {3, 5}) {
    auto out = cm->run({{"x", x}, {"sizes", Tensor::from_i64({1, 1, n, n}, {4})}});
    ASSERT_EQ(out[0].shape(), (std::vector<int64_t>{1, 1, n, n}));
    std::vector<float> ref;
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < n; ++j) ref.push_back(2.0f * i / (n - 1) + 1.0f * j / (n - 1));
    }
    expect_near(out[0], ref);
  }
}

// Upsample-7 (scales attribute) and Resize-10 (X, scales) sample at x / scale.
TEST(Resize, LegacyOpsetsSampleAsymmetrically) {
  auto up = compile_text(R"(model {opset = 7}
graph g(%x: f32[1, 1, 2, 2]) {
  %y: ? = Upsample(%x) {mode = "nearest", scales = [1.0, 1.0, 2.0, 2.0]}
  return %y
})");
  auto rs = compile_text(R"(model {opset = 10}
graph g(%x: f32[1, 1, 2, 2]) {
  init %scales: f32[4] = [1, 1, 2, 2]
  %y: ? = Resize(%x, %scales) {mode = "linear"}
  return %y
})");
  Tensor x(DType::F32, {1, 1, 2, 2});
  for (int i = 0; i < 4; ++i) x.as<float>()[i] = static_cast<float>(i);
  expect_near(up->run({{"x", x}})[0], {0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3});
  expect_near(rs->run({{"x", x}})[0], {0, 0.5, 1, 1, 1, 1.5, 2, 2, 2, 2.5, 3, 3, 2, 2.5, 3, 3});
}

TEST(Resize, Opset18AxesAreRefused) {
  EXPECT_NE(user_error_of([] {
              compile_text(R"(model {opset = 18}
graph g(%x: f32[1, 1, 2, 2]) {
  init %scales: f32[2] = [2, 2]
  %y: ? = Resize(%x, _, %scales) {axes = [2, 3]}
  return %y
})");
            }).find("axes"),
            std::string::npos);
}

TEST(Quantization, DynamicQuantizeLinearOfZeros) {
  auto cm = compile_text(R"(model {opset = 13}
graph g(%x: f32[3]) {
  %y: ?, %s: ?, %z: ? = DynamicQuantizeLinear(%x)
  return %y, %s, %z
})");
  auto out = cm->run({{"x", Tensor(DType::F32, {3})}});
  EXPECT_EQ(out[0].dtype(), DType::U8);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(out[0].get_i64(i), 0);
  EXPECT_EQ(out[1].get_f64(0), 0.0);
  EXPECT_EQ(out[2].get_i64(0), 0);
}

TEST(Quantization, PerAxisRoundTripSaturates) {
  auto cm = compile_text(R"(model {opset = 13}
graph g(%x: f32[2, 3]) {
  init %s: f32[2] = [0.5, 2]
  init %zp: i8[2] = [-3, 4]
  %q: ? = QuantizeLinear(%x, %s, %zp) {axis = 0}
  %d: ? = DequantizeLinear(%q, %s, %zp) {axis = 0}
  return %q, %d
})");
  Tensor x(DType::F32, {2, 3});
  float xv[] = {1.25f, -100.0f, 0.75f, 3.0f, 1000.0f, -5.0f};
  for (int i = 0; i < 6; ++i) x.as<float>()[i] = xv[i];
  auto out = cm->run({{"x", x}});
  EXPECT_EQ(out[0].dtype(), DType::I8);
  // round half to even: 1.25/0.5 = 2.5 -> 2; 0.75/0.5 = 1.5 -> 2; 3/2 = 1.5 -> 2; -5/2 -> -2.
  int64_t q[] = {-1, -128, -1, 6, 127, 2};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(out[0].get_i64(i), q[i]) << i;
  float d[] = {1.0f, -62.5f, 1.0f, 4.0f, 246.0f, -4.0f};
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(static_cast<float>(out[1].get_f64(i)), d[i]) << i;
}

TEST(Einsum, ImplicitOutputWithBroadcastEllipsis) {
  // "...ij,...jk" = batched matmul with the batch broadcast (1 vs 2); implicit output
  // "...ik".
  auto cm = compile_text(R"(model {opset = 12}
graph g(%a: f32[1, 2, 3], %b: f32[2, 3, 2]) {
  %y: ? = Einsum(%a, %b) {equation = "...ij,...jk"}
  return %y
})");
  Tensor a = random_f32({1, 2, 3}, 11), b = random_f32({2, 3, 2}, 12);
  auto out = cm->run({{"a", a}, {"b", b}});
  ASSERT_EQ(out[0].shape(), (std::vector<int64_t>{2, 2, 2}));
  std::vector<float> ref;
  for (int n = 0; n < 2; ++n) {
    for (int i = 0; i < 2; ++i) {
      for (int k = 0; k < 2; ++k) {
        float s = 0;
        for (int j = 0; j < 3; ++j) s += a.as<float>()[i * 3 + j] * b.as<float>()[(n * 3 + j) * 2 + k];
        ref.push_back(s);
      }
    }
  }
  expect_near(out[0], ref);
}

TEST(Einsum, MalformedEquationsAreUserErrors) {
  auto build = [](const std::string &eq) {
    return user_error_of([&] {
      compile_text("graph g(%a: f32[2, 3]) {\n  %y: ? = Einsum(%a) {equation = \"" + eq + "\"}\n  return %y\n}");
    });
  };
  EXPECT_NE(build("ijk->i"), "");
  EXPECT_NE(build("ij,jk->ik"), "");
  EXPECT_NE(build("ij->q"), "");
  EXPECT_NE(build("i.j->i"), "");
  EXPECT_EQ(build("ij->ji"), "");
}

TEST(Det, PivotingAndSingularMatrices) {
  auto cm = compile_text(R"(model {opset = 11}
graph g(%x: f32[3, 3, 3]) {
  %y: ? = Det(%x)
  return %y
})");
  // A zero leading entry (needs a row swap), a singular matrix, and a permutation.
  float xv[] = {0, 2, 1, 3, 1, 0, 1, 1, 1,  //
                1, 2, 3, 2, 4, 6, 0, 1, 1,  //
                0, 1, 0, 0, 0, 1, 1, 0, 0};
  Tensor x(DType::F32, {3, 3, 3});
  for (int i = 0; i < 27; ++i) x.as<float>()[i] = xv[i];
  auto out = cm->run({{"x", x}});
  ASSERT_EQ(out[0].shape(), (std::vector<int64_t>{3}));
  expect_near(out[0], {-4, 0, 1});
}

}  // namespace
}  // namespace kiln
