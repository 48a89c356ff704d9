// Loop IR construction, printing and LLVM code generation on small kernels.
#include <gtest/gtest.h>

#include <cmath>

#include "codegen/jit.h"
#include "loop/ir.h"
#include "loop/kernel.h"
#include "loop/printer.h"

namespace kiln {
namespace {

Expr idx(const std::string &n) { return Var::make(Type::index(), n); }

TEST(LoopIR, ConstantFoldingInOperators) {
  Expr a = Expr(2) + Expr(3);
  ASSERT_TRUE(a.as<IntImm>());
  EXPECT_EQ(a.as<IntImm>()->value, 5);
  EXPECT_EQ(to_string(idx("i") * 1 + 0), "i");
  EXPECT_EQ((Expr(-7) / Expr(2)).as<IntImm>()->value, -4);  // floor division
  EXPECT_EQ((Expr(-7) % Expr(2)).as<IntImm>()->value, 1);
}

TEST(LoopIR, PrintsLoopNest) {
  Stmt s = For::make("i", Expr(0), idx("n"), ForKind::Serial,
                     Store::make("y", Load::make(Type::f(32), "x", idx("i")) * 2.0, idx("i")));
  EXPECT_EQ(to_string(s), "for (i, 0, n) {\n  y[i] = (x[i] * 2.0)\n}\n");
}

TEST(Codegen, ScaleKernelWithRuntimeExtent) {
  Kernel k;
  k.name = "scale";
  k.buffers = {{"x", Type::f(32)}, {"y", Type::f(32)}};
  k.dims = {"n"};
  k.body = For::make("i", Expr(0), idx("n"), ForKind::Parallel,
                     Store::make("y", call("sqrt", {Load::make(Type::f(32), "x", idx("i"))}) + 1.0, idx("i")));
  Jit jit;
  auto fns = jit.compile({k});
  std::vector<float> x(1000), y(1000);
  for (int i = 0; i < 1000; ++i) x[i] = static_cast<float>(i);
  void *bufs[] = {x.data(), y.data()};
  int64_t dims[] = {1000};
  fns.at("scale")(bufs, dims);
  for (int i = 0; i < 1000; ++i) EXPECT_FLOAT_EQ(y[i], std::sqrt(static_cast<float>(i)) + 1.0f);
}

TEST(Codegen, FloorDivAndModOnNegativeInts) {
  Kernel k;
  k.name = "divmod";
  k.buffers = {{"a", Type::i(64)}, {"q", Type::i(64)}, {"r", Type::i(64)}};
  Expr a = Load::make(Type::i(64), "a", idx("i"));
  k.body = For::make("i", Expr(0), Expr(4), ForKind::Serial,
                     Block::make({Store::make("q", a / Expr(3), idx("i")), Store::make("r", a % Expr(3), idx("i"))}));
  Jit jit;
  auto fns = jit.compile({k});
  int64_t av[] = {-7, 7, -6, 0}, q[4], r[4];
  void *bufs[] = {av, q, r};
  fns.at("divmod")(bufs, nullptr);
  EXPECT_EQ(q[0], -3);
  EXPECT_EQ(r[0], 2);
  EXPECT_EQ(q[1], 2);
  EXPECT_EQ(r[1], 1);
  EXPECT_EQ(q[2], -2);
  EXPECT_EQ(r[2], 0);
}

TEST(Codegen, Bf16AndF16Conversions) {
  Kernel k;
  k.name = "halfs";
  k.buffers = {{"x", Type::f(32)}, {"h", Type::f(16)}, {"b", Type::bf16()}};
  Expr x = Load::make(Type::f(32), "x", idx("i"));
  k.body = For::make("i", Expr(0), Expr(3), ForKind::Serial,
                     Block::make({Store::make("h", cast(Type::f(16), x), idx("i")),
                                  Store::make("b", cast(Type::bf16(), x), idx("i"))}));
  Jit jit;
  auto fns = jit.compile({k});
  float xv[] = {1.0f, -2.5f, 65504.0f};
  uint16_t h[3], b[3];
  void *bufs[] = {xv, h, b};
  fns.at("halfs")(bufs, nullptr);
  EXPECT_EQ(h[0], 0x3c00);
  EXPECT_EQ(h[1], 0xc100);
  EXPECT_EQ(h[2], 0x7bff);
  EXPECT_EQ(b[0], 0x3f80);
  EXPECT_EQ(b[1], 0xc020);
}

}  // namespace
}  // namespace kiln
