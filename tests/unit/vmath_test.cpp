// vmath's exp, erf, tanh and sigmoid, compiled through the JIT as scalar and vector
// (8 and 16 lanes) kernels, against libm in double precision: a dense sweep of the
// interesting range, 2^20 random bit patterns (every exponent, NaNs and infinities
// included) and the special values.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>

#include "codegen/jit.h"
#include "loop/ir.h"
#include "loop/kernel.h"
#include "lower/vmath.h"

namespace kiln {
namespace {

using Builder = Expr (*)(Expr);
using Reference = double (*)(double);

// y[i] = f(x[i]) over n elements (n a multiple of lanes), `lanes` at a time.
std::vector<float> run(Builder f, int lanes, const std::vector<float> &x) {
  static Jit jit;
  static int serial = 0;
  Kernel k;
  k.name = "vmath" + std::to_string(serial++);
  k.buffers = {{"x", Type::f(32)}, {"y", Type::f(32)}};
  Expr i = Var::make(Type::index(), "i");
  Expr at = lanes == 1 ? i : Ramp::make(i * Expr(lanes), Expr(1), lanes);
  Stmt body = Store::make("y", f(Load::make(Type::f(32), "x", at)), at);
  k.body = For::make("i", Expr(0), Expr(static_cast<int64_t>(x.size()) / lanes), ForKind::Serial, body);
  auto fns = jit.compile({k});
  std::vector<float> y(x.size());
  void *bufs[] = {const_cast<float *>(x.data()), y.data()};
  fns.at(k.name)(bufs, nullptr);
  return y;
}

std::vector<float> inputs(float lo, float hi) {
  std::vector<float> x;
  const int n = 1 << 20;
  for (int i = 0; i < n; ++i) x.push_back(lo + (hi - lo) * static_cast<float>(i) / n);
  std::mt19937 rng(42);
  for (int i = 0; i < n; ++i) {
    uint32_t bits = rng();
    float v;
    std::memcpy(&v, &bits, 4);
    x.push_back(v);
  }
  for (float v : {0.0f, -0.0f, 1.0f, -1.0f, FLT_MIN, -FLT_MIN, FLT_MAX, -FLT_MAX, FLT_TRUE_MIN, -FLT_TRUE_MIN,
                  INFINITY, -INFINITY, NAN, -NAN, 88.72f, 88.7228f, 88.73f, -87.33f, -103.9f, -104.0f, -150.0f,
                  3.9f, 4.0f, -4.0f, 0.625f, -0.625f, 9.0f, -9.0f}) {
    x.push_back(v);
  }
  while (x.size() % 16) x.push_back(0.5f);
  return x;
}

struct Error {
  double rel = 0, abs = 0;
};

// Largest errors of f against ref: relative where the result is a normal number, and
// within `tiny_abs` where it is below FLT_MIN. A NaN where ref has none (or the reverse),
// or a wrong infinity, fails at once.
Error measure(Builder f, Reference ref, int lanes, const std::vector<float> &x, double tiny_abs) {
  std::vector<float> y = run(f, lanes, x);
  Error e;
  for (size_t i = 0; i < x.size(); ++i) {
    double want = ref(x[i]);
    if (std::isnan(want) || std::isnan(y[i])) {
      EXPECT_EQ(std::isnan(want), std::isnan(y[i])) << "x = " << x[i] << " got " << y[i] << " want " << want;
      continue;
    }
    if (std::isinf(want) || std::isinf(y[i])) {
      // Beyond FLT_MAX after rounding to f32 is inf.
      EXPECT_EQ(static_cast<float>(want), y[i]) << "x = " << x[i];
      continue;
    }
    double d = std::fabs(y[i] - want);
    e.abs = std::max(e.abs, d);
    if (std::fabs(want) >= FLT_MIN) e.rel = std::max(e.rel, d / std::fabs(want));
    else EXPECT_LE(d, tiny_abs) << "x = " << x[i] << " got " << y[i] << " want " << want;
  }
  return e;
}

double sigmoid_ref(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double exp_ref(double x) { return std::exp(x); }
double erf_ref(double x) { return std::erf(x); }
double tanh_ref(double x) { return std::tanh(x); }

class VMath : public ::testing::TestWithParam<int> {};

TEST_P(VMath, Exp) {
  int lanes = GetParam();
  Error e = measure(vmath::exp, exp_ref, lanes, inputs(-110, 100), 1.5e-45);
  EXPECT_LE(e.rel, 1.5e-7);
  // Subnormal results are within one subnormal step.
  std::vector<float> x;
  for (int i = 0; i < 4096; ++i) x.push_back(-87.4f - 16.6f * i / 4096);
  std::vector<float> y = run(vmath::exp, lanes, x);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_LE(std::fabs(y[i] - std::exp(double(x[i]))), 1.5e-45) << x[i];
  EXPECT_EQ(run(vmath::exp, lanes, std::vector<float>(16, -INFINITY))[0], 0.0f);
  EXPECT_EQ(run(vmath::exp, lanes, std::vector<float>(16, 89.0f))[0], INFINITY);
  EXPECT_EQ(run(vmath::exp, lanes, std::vector<float>(16, 0.0f))[0], 1.0f);
}

TEST_P(VMath, Erf) {
  int lanes = GetParam();
  Error e = measure(vmath::erf, erf_ref, lanes, inputs(-5, 5), 1.5e-45);
  EXPECT_LE(e.abs, 1.5e-7);
  EXPECT_LE(e.rel, 2.5e-7);
  EXPECT_EQ(run(vmath::erf, lanes, std::vector<float>(16, INFINITY))[0], 1.0f);
  EXPECT_EQ(run(vmath::erf, lanes, std::vector<float>(16, -INFINITY))[0], -1.0f);
}

TEST_P(VMath, Tanh) {
  int lanes = GetParam();
  Error e = measure(vmath::tanh, tanh_ref, lanes, inputs(-10, 10), 1.5e-45);
  EXPECT_LE(e.rel, 2e-7);
  EXPECT_EQ(run(vmath::tanh, lanes, std::vector<float>(16, -INFINITY))[0], -1.0f);
  EXPECT_EQ(run(vmath::tanh, lanes, std::vector<float>(16, 50.0f))[0], 1.0f);
}

TEST_P(VMath, Sigmoid) {
  int lanes = GetParam();
  // Below ~-88.7, exp(-x) overflows and the result is 0 (as 1 / (1 + expf(-x)) is).
  Error e = measure(vmath::sigmoid, sigmoid_ref, lanes, inputs(-90, 90), FLT_MIN);
  EXPECT_LE(e.rel, 2e-7);
  EXPECT_LE(e.abs, 1.2e-7);
}

INSTANTIATE_TEST_SUITE_P(Lanes, VMath, ::testing::Values(1, 8, 16));

TEST(VMath, VectorCastsBetweenIntAndFloatLanes) {
  // The building blocks vmath relies on: f32 <-> i32 value casts and bit reinterpretation
  // on vectors.
  Kernel k;
  k.name = "casts";
  k.buffers = {{"x", Type::f(32)}, {"i", Type::i(32)}, {"b", Type::f(32)}};
  Expr at = Ramp::make(Expr(0), Expr(1), 8);
  Expr x = Load::make(Type::f(32), "x", at);
  Expr two = call(Type::f(32, 8), "reinterpret", {make_const(Type::i(32, 8), 0x40000000)});
  Expr back = cast(Type::f(32, 8), Load::make(Type::i(32), "i", at)) * two;
  k.body = Block::make({Store::make("i", cast(Type::i(32, 8), x), at), Store::make("b", back, at)});
  Jit jit;
  auto fns = jit.compile({k});
  float xv[8] = {-2.5f, -1, 0, 1.5f, 2, 3.75f, 100, -7};
  int32_t iv[8];
  float bv[8];
  void *bufs[] = {xv, iv, bv};
  fns.at("casts")(bufs, nullptr);
  for (int l = 0; l < 8; ++l) {
    EXPECT_EQ(iv[l], static_cast<int32_t>(xv[l]));
    EXPECT_EQ(bv[l], 2.0f * static_cast<int32_t>(xv[l]));
  }
}

}  // namespace
}  // namespace kiln
