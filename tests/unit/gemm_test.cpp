// The -O1 MatMul schedule (lower/matmul_schedule.cpp on the tiles of lower/gemm.cpp)
// against -O0: shapes that reach every phase of the tiles -- full and one-row tiles times
// full, one-vector and scalar columns, for AVX-512's 8 x 32 tile and AVX2's 6 x 16, and
// fewer rows than a tile (one tile over all rows: 4 vectors wide for 1-2 rows, 2 for 3) --,
// K-blocking (constant K > 1024: partial sums parked in C), batched operands with a 2-D
// right operand (batch folded into rows) or broadcast batch dims, and FusedMatMul's
// epilogue (bias, residual, activation) on finished tiles.
#include <gtest/gtest.h>

#include <random>

#include "lower/gemm.h"
#include "opt_levels.h"

namespace kiln {
namespace {

using test::compile_at, test::expect_close, test::expect_o1_matches_o0, test::f32_list, test::o1_ops, test::random_f32;

const std::vector<int64_t> kRows = {1, 3, 7, 9, 37};
const std::vector<int64_t> kCols = {1, 15, 17, 33, 100};

std::string dims(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Reordering a sum of K products of numbers in [-1, 1] moves it by rounding errors of its
// partial sums (~1e-5 at K = 1500); a wrong or missing term moves it by ~0.1 or more.
double atol_for(int64_t K) { return 2e-6 * static_cast<double>(K + 4); }

// %a<M>: f32[M, K] for every M of kRows, %b<N>: f32[K, N] for every N of kCols, and one
// MatMul per pair: 20 GEMMs that together take every row and column phase.
std::string all_phases_model(int64_t K) {
  std::string params, body, ret;
  for (int64_t m : kRows) params += "%a" + std::to_string(m) + ": f32" + dims({m, K}) + ", ";
  for (int64_t n : kCols) params += "%b" + std::to_string(n) + ": f32" + dims({K, n}) + ", ";
  for (int64_t m : kRows) {
    for (int64_t n : kCols) {
      std::string y = "%y" + std::to_string(m) + "x" + std::to_string(n);
      body += "  " + y + ": ? = MatMul(%a" + std::to_string(m) + ", %b" + std::to_string(n) + ")\n";
      ret += (ret.empty() ? "" : ", ") + y;
    }
  }
  params.resize(params.size() - 2);
  return "model {opset = 13}\ngraph g(" + params + ") {\n" + body + "  return " + ret + "\n}\n";
}

void expect_all_phases_match(int64_t K) {
  std::mt19937 rng(static_cast<unsigned>(K));
  std::map<std::string, Tensor> in;
  for (int64_t m : kRows) in[std::string("a").append(std::to_string(m))] = random_f32({m, K}, rng, -1, 1);
  for (int64_t n : kCols) in[std::string("b").append(std::to_string(n))] = random_f32({K, n}, rng, -1, 1);
  expect_o1_matches_o0(all_phases_model(K), in, 1e-5, atol_for(K));
}

class Gemm : public ::testing::Test {
 protected:
  std::mt19937 rng{5};
};

// K shorter than any unroll; K = 1000 in one piece; K = 1100 and 1500: three K blocks
// (367 / 500 deep).
TEST_F(Gemm, EveryTilePhaseK1) { expect_all_phases_match(1); }
TEST_F(Gemm, EveryTilePhaseK3) { expect_all_phases_match(3); }
TEST_F(Gemm, EveryTilePhaseK1000Unblocked) { expect_all_phases_match(1000); }
TEST_F(Gemm, EveryTilePhaseK1100InThreeBlocks) { expect_all_phases_match(1100); }
TEST_F(Gemm, EveryTilePhaseK1500InThreeBlocks) { expect_all_phases_match(1500); }

TEST_F(Gemm, SymbolicDimsOneBlock) {
  // K unknown at compile time: no K blocks, whatever its run-time value.
  std::string text =
      "model {opset = 13}\ngraph g(%a: f32[m, k], %b: f32[k, n]) {\n  %y: ? = MatMul(%a, %b)\n  return %y\n}\n";
  auto o0 = compile_at(text, 0), o1 = compile_at(text, 1), v3 = compile_at(text, 1, "x86-64-v3");
  for (auto [m, k, n] : {std::tuple<int64_t, int64_t, int64_t>{37, 1000, 33}, {9, 3, 100}, {1, 1500, 17}}) {
    std::map<std::string, Tensor> in = {{"a", random_f32({m, k}, rng, -1, 1)}, {"b", random_f32({k, n}, rng, -1, 1)}};
    auto want = o0->run(in);
    expect_close(want[0], o1->run(in)[0], 1e-5, atol_for(k), "native");
    expect_close(want[0], v3->run(in)[0], 1e-5, atol_for(k), "x86-64-v3");
  }
}

TEST_F(Gemm, EmptyOperands) {
  // K = 0: every output is 0; M = 0 or N = 0: nothing to compute.
  std::string text = "model {opset = 13}\ngraph g(%a: f32[5, 0], %b: f32[0, 20], %c: f32[0, 7], %d: f32[7, 0]) {\n"
                     "  %y: ? = MatMul(%a, %b)\n  %z: ? = MatMul(%c, %d)\n  %u: ? = MatMul(%d, %b)\n"
                     "  return %y, %z, %u\n}\n";
  expect_o1_matches_o0(text, {{"a", Tensor(DType::F32, {5, 0})},
                              {"b", Tensor(DType::F32, {0, 20})},
                              {"c", Tensor(DType::F32, {0, 7})},
                              {"d", Tensor(DType::F32, {7, 0})}});
}

TEST_F(Gemm, BatchedLeftOperandFoldsIntoRows) {
  // A 2-D right operand, given and constant (FusedMatMul with no epilogue): the 2 x 3
  // batch of 7-row matrices is one GEMM of 42 rows; K = 1100 is blocked across it.
  for (int64_t K : {int64_t{20}, int64_t{1100}}) {
    Tensor w = random_f32({K, 17}, rng, -1, 1);
    std::string text = "model {opset = 13}\ngraph g(%a: f32" + dims({2, 3, 7, K}) + ", %b: f32" + dims({K, 33}) +
                       ") {\n  init %w: f32" + dims({K, 17}) + " = " + f32_list(w) +
                       "\n  %y: ? = MatMul(%a, %b)\n  %z: ? = MatMul(%a, %w)\n  return %y, %z\n}\n";
    EXPECT_EQ(o1_ops(text), (std::vector<std::string>{"MatMul", "FusedMatMul"}));
    expect_o1_matches_o0(
        text, {{"a", random_f32({2, 3, 7, K}, rng, -1, 1)}, {"b", random_f32({K, 33}, rng, -1, 1)}}, 1e-5, atol_for(K));
  }
}

TEST_F(Gemm, BatchedBothSidesWithBroadcast) {
  // [2, 1, M, K] x [3, K, N] -> [2, 3, M, N]; [M, K] x [2, K, N]; [2, 3, M, K] x [3, K, N];
  // [1, 3, M, K] x [2, 1, K, N] -> [2, 3, M, N].
  for (int64_t K : {int64_t{20}, int64_t{1100}}) {
    std::string text = "model {opset = 13}\ngraph g(%a: f32" + dims({2, 1, 9, K}) + ", %b: f32" + dims({3, K, 17}) +
                       ", %c: f32" + dims({7, K}) + ", %d: f32" + dims({2, K, 33}) + ", %e: f32" + dims({2, 3, 9, K}) +
                       ", %f: f32" + dims({1, 3, 9, K}) + ", %g: f32" + dims({2, 1, K, 17}) +
                       ") {\n  %y: ? = MatMul(%a, %b)\n  %z: ? = MatMul(%c, %d)\n  %u: ? = MatMul(%e, %b)\n"
                       "  %v: ? = MatMul(%f, %g)\n  return %y, %z, %u, %v\n}\n";
    std::map<std::string, Tensor> in = {{"a", random_f32({2, 1, 9, K}, rng, -1, 1)},
                                        {"b", random_f32({3, K, 17}, rng, -1, 1)},
                                        {"c", random_f32({7, K}, rng, -1, 1)},
                                        {"d", random_f32({2, K, 33}, rng, -1, 1)},
                                        {"e", random_f32({2, 3, 9, K}, rng, -1, 1)},
                                        {"f", random_f32({1, 3, 9, K}, rng, -1, 1)},
                                        {"g", random_f32({2, 1, K, 17}, rng, -1, 1)}};
    expect_o1_matches_o0(text, in, 1e-5, atol_for(K));
  }
}

// x: f32[B, M, K] times a constant w: f32[K, N], plus a bias, then `tail` (which ends in
// %out) -- all of it one FusedMatMul at -O1.
std::string fused_model(std::vector<int64_t> x, int64_t N, const std::string &tail, std::mt19937 &rng) {
  int64_t K = x.back();
  std::vector<int64_t> z = x;
  z.back() = N;
  return "model {opset = 13}\ngraph g(%x: f32" + dims(x) + ", %z: f32" + dims(z) + ") {\n  init %w: f32" +
         dims({K, N}) + " = " + f32_list(random_f32({K, N}, rng, -1, 1)) + "\n  init %bias: f32" + dims({N}) + " = " +
         f32_list(random_f32({N}, rng)) + "\n  %mm: ? = MatMul(%x, %w)\n  %y: ? = Add(%mm, %bias)\n" + tail +
         "  return %out\n}\n";
}

TEST_F(Gemm, FusedBiasAndRelu) {
  for (int64_t K : {int64_t{40}, int64_t{1100}}) {
    std::string text = fused_model({3, 37, K}, 33, "  %out: ? = Relu(%y)\n", rng);
    EXPECT_EQ(o1_ops(text), std::vector<std::string>{"FusedMatMul"});
    expect_o1_matches_o0(
        text, {{"x", random_f32({3, 37, K}, rng, -1, 1)}, {"z", random_f32({3, 37, 33}, rng)}}, 1e-5, atol_for(K));
  }
}

TEST_F(Gemm, FusedResidualAddThenRelu) {
  // With K = 1100 the tiles park partial sums in the output: bias and residual must be
  // added once, after the last block.
  for (int64_t K : {int64_t{40}, int64_t{1100}}) {
    std::string text = fused_model({2, 9, K}, 100, "  %s: ? = Add(%z, %y)\n  %out: ? = Relu(%s)\n", rng);
    EXPECT_EQ(o1_ops(text), std::vector<std::string>{"FusedMatMul"});
    expect_o1_matches_o0(
        text, {{"x", random_f32({2, 9, K}, rng, -1, 1)}, {"z", random_f32({2, 9, 100}, rng)}}, 1e-5, atol_for(K));
  }
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// -O2 packs constant MatMul weights into column panels (packed_nr) and conv weights into
// row blocks (packed_mr); both layouts must give the -O0 result, for the native and the
// AVX2 panel widths, with widths that are and are not a multiple of a panel.
TEST(GemmPacked, PackedWeightsMatchReference) {
  std::mt19937 rng(11);
  for (int64_t n : {int64_t{64}, int64_t{48}, int64_t{33}}) {
    for (int64_t k : {int64_t{20}, int64_t{1100}}) {
      std::string text = "model {opset = 13}\ngraph g(%a: f32[2, 9, " + std::to_string(k) + "], %x: f32[1, " +
                         std::to_string(k % 64 + 3) + ", 9, 11]) {\n  init %w: f32[" + std::to_string(k) + ", " +
                         std::to_string(n) + "] = " + test::f32_list(random_f32({k, n}, rng, -1, 1)) + "\n" +
                         "  init %cw: f32[" + std::to_string(n) + ", " + std::to_string(k % 64 + 3) + ", 3, 3] = " +
                         test::f32_list(random_f32({n, k % 64 + 3, 3, 3}, rng, -1, 1)) + "\n" +
                         "  %y: ? = MatMul(%a, %w)\n  %c: ? = Conv(%x, %cw) {kernel_shape = [3, 3], strides = [2, 1]}\n" +
                         "  return %y, %c\n}\n";
      std::map<std::string, Tensor> in = {{"a", random_f32({2, 9, k}, rng, -1, 1)},
                                          {"x", random_f32({1, k % 64 + 3, 9, 11}, rng, -1, 1)}};
      auto ref = test::compile_at(text, 0)->run(in);
      for (const char *target : {"native", "x86-64-v3"}) {
        if (std::string(target) != "native" && Jit::host_features().find("+avx2") == std::string::npos) continue;
        auto cm = test::compile_at(text, 2, target);
        bool packed_b = false, packed_a = false, conv_panels = false;
        for (auto &node : cm->graph().nodes) {
          if (node->kind == OpKind::FusedConv) {
            packed_a |= node->has_attr("packed_mr");
            conv_panels |= node->has_attr("packed_nr");
          } else {
            packed_b |= node->has_attr("packed_nr");
          }
        }
        int nw = Jit::host_features().find("+avx512f") != std::string::npos && std::string(target) == "native" ? 32 : 16;
        // MatMul weights at least a panel wide are packed (columns past the last whole
        // panel row-major after the panels).
        EXPECT_EQ(packed_b, n >= nw) << target << " n=" << n;
        // The conv has 4 x 9 = 36 output pixels: with a multiple of nw output channels it
        // runs the GEMM transposed (weights in column panels), else on row blocks.
        EXPECT_EQ(conv_panels, n % nw == 0) << target << " n=" << n;
        EXPECT_EQ(packed_a, n % nw != 0) << target << " n=" << n;
        auto got = cm->run(in);
        for (size_t i = 0; i < ref.size(); ++i) {
          test::expect_close(ref[i], got[i], 1e-5, 2e-6 * static_cast<double>(k + 4), target);
        }
      }
    }
  }
}

// Row tiles over A read in place (transposed conv and Winograd GEMMs): a size that divides
// the rows where one within a quarter of the register tile does, else the full tile.
TEST(GemmTile, RowTilesDivideTheRowsWhereOneCloseToTheTileDoes) {
  LowerOptions avx512{3, 512, 32}, avx2{3, 256, 16};
  EXPECT_EQ(gemm_tile_for_rows(avx512, 49).mr, 7);   // a 7x7 map, or 7 x 7 Winograd tiles
  EXPECT_EQ(gemm_tile_for_rows(avx512, 196).mr, 7);  // 14x14
  EXPECT_EQ(gemm_tile_for_rows(avx512, 36).mr, 6);
  EXPECT_EQ(gemm_tile_for_rows(avx512, 16).mr, 8);
  EXPECT_EQ(gemm_tile_for_rows(avx512, 50).mr, 8);   // 5 does not count: too far from 8
  EXPECT_EQ(gemm_tile_for_rows(avx512, 5).mr, 8);
  EXPECT_EQ(gemm_tile_for_rows(avx2, 49).mr, 6);
  EXPECT_EQ(gemm_tile_for_rows(avx2, 25).mr, 5);
  EXPECT_EQ(gemm_tile_for_rows(avx2, 49).nv * gemm_tile_for_rows(avx2, 49).vl, 16);
}

}  // namespace
}  // namespace kiln
