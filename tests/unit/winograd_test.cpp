// WinogradConv (passes/winograd.cpp, lower/winograd.cpp): -O3 turns qualifying 3x3
// stride-1 convs into F(4x4, 3x3) (small maps: F(2x2, 3x3)) and must match the -O0 direct convolution within the
// accuracy the transform costs (relative 1e-4 here; models stay within 1e-4 rel-L2).
#include <gtest/gtest.h>

#include <random>

#include "opt_levels.h"

namespace kiln {
namespace {

using test::compile_at, test::expect_close, test::f32_list, test::random_f32;

struct Case {
  int c, m, h, w;
  std::string pads;  // "[t, l, b, r]"
  bool bias, residual;
  std::string act;   // "" or an activation op
};

std::string conv_model(const Case &k, std::mt19937 &rng, int oh, int ow) {
  std::string s = "model {opset = 13}\ngraph g(%x: f32[2, " + std::to_string(k.c) + ", " + std::to_string(k.h) + ", " +
                  std::to_string(k.w) + "]";
  if (k.residual) s += ", %z: f32[2, " + std::to_string(k.m) + ", " + std::to_string(oh) + ", " + std::to_string(ow) + "]";
  s += ") {\n";
  s += "  init %w: f32[" + std::to_string(k.m) + ", " + std::to_string(k.c) + ", 3, 3] = " +
       f32_list(random_f32({k.m, k.c, 3, 3}, rng, -0.3f, 0.3f)) + "\n";
  if (k.bias) s += "  init %b: f32[" + std::to_string(k.m) + "] = " + f32_list(random_f32({k.m}, rng)) + "\n";
  s += "  %y: ? = Conv(%x, %w" + std::string(k.bias ? ", %b" : "") + ") {kernel_shape = [3, 3], pads = " + k.pads +
       ", strides = [1, 1]}\n";
  std::string last = "%y";
  if (k.residual) {
    s += "  %r: ? = Add(%y, %z)\n";
    last = "%r";
  }
  if (!k.act.empty()) {
    s += "  %a: ? = " + k.act + "(" + last + ")\n";
    last = "%a";
  }
  return s + "  return " + last + "\n}\n";
}

// Whether the WinogradConv kernel's loop IR prefetches (the transposed GEMMs' row tiles
// fetch the next panel of U, which streams from memory at batch 1).
bool prefetches(const CompiledModel &cm) {
  for (const std::string &k : cm.kernel_ir()) {
    if (k.find("WinogradConv") != std::string::npos && k.find("prefetch(") != std::string::npos) return true;
  }
  return false;
}

void check(const Case &k, int oh, int ow) {
  std::mt19937 rng(7);
  std::string text = conv_model(k, rng, oh, ow);
  std::map<std::string, Tensor> in = {{"x", random_f32({2, k.c, k.h, k.w}, rng, -1, 1)}};
  if (k.residual) in["z"] = random_f32({2, k.m, oh, ow}, rng, -1, 1);
  auto o3 = compile_at(text, 3);
  bool winograd = false;
  for (auto &n : o3->graph().nodes) winograd |= n->kind == OpKind::WinogradConv;
  EXPECT_TRUE(winograd) << "the conv was not turned into WinogradConv";
  auto ref = compile_at(text, 0)->run(in);
  for (const char *target : {"native", "x86-64-v3"}) {
    if (std::string(target) != "native" && Jit::host_features().find("+avx2") == std::string::npos) continue;
    auto got = compile_at(text, 3, target);
    got->run(in);  // the second run uses the planned arena
    auto out = got->run(in);
    expect_close(ref[0], out[0], 1e-4, 2e-4, target);
  }
}

// Without transposed GEMMs (or with channel counts that are not whole vectors) the
// transforms' vectors span at most a tile row: maps of at most 4 tiles per row (14x14; 7x7
// with 2x2 tiles) run them 4 lanes wide with cache-line-aligned V and Mb rows; the others
// full vectors. With transposed GEMMs and whole vectors of channels they run across
// channels (ChannelsLastTransforms).
TEST(Winograd, WholeTilesSamePadding) { check({16, 24, 32, 32, "[1, 1, 1, 1]", true, false, ""}, 32, 32); }

TEST(Winograd, EdgeTilesAndOddSizes) {
  // 19x23 outputs: partial tiles on the right and bottom, tile rows not a whole vector.
  check({9, 13, 19, 23, "[1, 1, 1, 1]", false, false, ""}, 19, 23);
}

TEST(Winograd, NoPaddingAsymmetricPadding) {
  check({8, 8, 20, 37, "[0, 0, 0, 0]", true, false, ""}, 18, 35);
  check({8, 16, 20, 21, "[2, 0, 1, 1]", true, false, ""}, 21, 20);
}

TEST(Winograd, FusedEpilogue) { check({12, 20, 17, 40, "[1, 1, 1, 1]", true, true, "Relu"}, 17, 40); }

TEST(Winograd, FewTilesRunTheGemmsTransposed) {
  // 14x14 (16 tiles), 13x18 (4 x 5 = 20 tiles, partial) and 27x26 (49 tiles: the last row
  // tile overlaps the one before) with a multiple of the panel width (32; AVX2 16) of
  // output channels: the 36 GEMMs run with image tiles as rows (`packed_nr`), with and
  // without the fused epilogue.
  check({16, 64, 14, 14, "[1, 1, 1, 1]", true, true, "Relu"}, 14, 14);
  check({8, 32, 13, 18, "[1, 1, 1, 1]", false, false, ""}, 13, 18);
  check({8, 32, 27, 26, "[1, 1, 1, 1]", true, false, ""}, 27, 26);
  std::mt19937 rng(3);
  auto o3 = compile_at(conv_model({16, 64, 14, 14, "[1, 1, 1, 1]", true, false, ""}, rng, 14, 14), 3);
  bool packed = false;
  for (auto &n : o3->graph().nodes) packed |= n->kind == OpKind::WinogradConv && n->has_attr("packed_nr");
  EXPECT_TRUE(packed);
  EXPECT_TRUE(prefetches(*o3)) << "the transposed GEMMs do not prefetch the next panel of U";
  // 8 input channels (not a whole AVX-512 vector): the planar transforms, same GEMMs.
  EXPECT_TRUE(prefetches(*compile_at(conv_model({8, 32, 13, 18, "[1, 1, 1, 1]", false, false, ""}, rng, 13, 18), 3)));
  // 49 image tiles (27x26, 28x28) run in row tiles of 7 with AVX-512's 8 x 32 tiles (no
  // overlapping last row tile): accumulators of 7 x 32. Planar and channels-last transforms.
  check({16, 32, 28, 28, "[1, 1, 1, 1]", true, true, "Relu"}, 28, 28);
  for (int c : {8, 16}) {
    auto cm = compile_at(conv_model({c, 32, 28, 28, "[1, 1, 1, 1]", true, false, ""}, rng, 28, 28), 3);
    for (auto &n : cm->graph().nodes) {
      if (n->kind != OpKind::WinogradConv || n->attr_i("packed_nr", 0) != 32) continue;
      bool seven = false;
      for (const std::string &k : cm->kernel_ir()) seven |= k.find("[f32 * 224]") != std::string::npos;
      EXPECT_TRUE(seven) << c << " channels: no 7 x 32 accumulator tile";
    }
  }
}

TEST(Winograd, AffineAfterTheActivation) {
  // Conv -> Relu -> per-channel Mul and Add constants (the post-activation affine, inputs 4
  // and 5 of the WinogradConv) on maps whose output rows leave through the channels-last
  // band and in-register transposes: the affine per channel row.
  // 30x30 (full-vector transposes, a partial last segment) and 14x14 (narrower than an
  // AVX-512 vector: 8 x 8 transposes per 8 of the 16 channels).
  for (int hw : {30, 14}) {
    std::mt19937 rng(11);
    const int c = 16, m = 32;
    const std::string dims = std::to_string(hw) + ", " + std::to_string(hw);
    std::string text = "model {opset = 13}\ngraph g(%x: f32[2, 16, " + dims + "], %z: f32[2, 32, " + dims + "]) {\n";
    text += "  init %w: f32[32, 16, 3, 3] = " + f32_list(random_f32({m, c, 3, 3}, rng, -0.3f, 0.3f)) + "\n";
    text += "  init %b: f32[32] = " + f32_list(random_f32({m}, rng)) + "\n";
    text += "  init %s: f32[32, 1, 1] = " + f32_list(random_f32({m, 1, 1}, rng, 0.5f, 2.0f)) + "\n";
    text += "  init %t: f32[32, 1, 1] = " + f32_list(random_f32({m, 1, 1}, rng)) + "\n";
    text += "  %y: ? = Conv(%x, %w, %b) {kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [1, 1]}\n";
    text += "  %r: ? = Add(%y, %z)\n  %a: ? = Relu(%r)\n  %p: ? = Mul(%a, %s)\n  %q: ? = Add(%p, %t)\n  return %q\n}\n";
    std::map<std::string, Tensor> in = {{"x", random_f32({2, c, hw, hw}, rng, -1, 1)},
                                        {"z", random_f32({2, m, hw, hw}, rng, -1, 1)}};
    auto ref = compile_at(text, 0)->run(in);
    for (const char *target : {"native", "x86-64-v3"}) {
      if (std::string(target) != "native" && Jit::host_features().find("+avx2") == std::string::npos) continue;
      auto got = compile_at(text, 3, target);
      bool affine = false;
      for (auto &n : got->graph().nodes) affine |= n->kind == OpKind::WinogradConv && n->input(4) && n->input(5);
      EXPECT_TRUE(affine) << target << ": the affine did not fuse into the WinogradConv";
      expect_close(ref[0], got->run(in)[0], 1e-4, 2e-4, std::string(target) + " " + dims);
    }
  }
}

TEST(Winograd, ChannelsLastTransforms) {
  // Channel counts of whole vectors with transposed GEMMs transform across channels
  // (V and Mb tile-major): asymmetric padding with partial tiles on both edges (31 x 28
  // outputs, 56 tiles), the residual and activation in the epilogue; and a 50x50 map (169
  // tiles), transposed only because its channels fill whole panels (32; AVX2 16).
  check({32, 32, 30, 29, "[2, 0, 1, 1]", true, true, "Relu"}, 31, 28);
  check({32, 64, 50, 50, "[1, 1, 1, 1]", false, false, ""}, 50, 50);
  std::mt19937 rng(4);
  auto o3 = compile_at(conv_model({32, 64, 50, 50, "[1, 1, 1, 1]", false, false, ""}, rng, 50, 50), 3);
  bool packed = false;
  for (auto &n : o3->graph().nodes) packed |= n->kind == OpKind::WinogradConv && n->has_attr("packed_nr");
  EXPECT_TRUE(packed);
  EXPECT_TRUE(prefetches(*o3));
}

TEST(Winograd, SmallMapsRunTwoByTwoTiles) {
  // Maps with fewer than 16 tiles of 4x4 but at least 16 of 2x2, with >= 64 channels, run
  // F(2x2, 3x3) (U: 16 positions): 7x7 (16 tiles; 64 output channels: the GEMMs
  // transposed) with the fused epilogue, 7x9 with 72 output channels (20 tiles, the last
  // tile row and column partial: plain GEMMs).
  check({64, 64, 7, 7, "[1, 1, 1, 1]", true, true, "Relu"}, 7, 7);
  check({64, 72, 7, 9, "[1, 1, 1, 1]", false, false, ""}, 7, 9);
  std::mt19937 rng(5);
  auto o3 = compile_at(conv_model({64, 64, 7, 7, "[1, 1, 1, 1]", true, false, ""}, rng, 7, 7), 3);
  int positions = 0;
  for (auto &n : o3->graph().nodes) {
    if (n->kind == OpKind::WinogradConv) positions = static_cast<int>(n->input(1)->shape[0].value());
  }
  EXPECT_EQ(positions, 16);
}

TEST(Winograd, SmallConvsStayDirect) {
  // 7x7 outputs are only 4 tiles of 4x4, and 16 channels too few for 2x2 tiles: no Winograd.
  std::mt19937 rng(1);
  std::string text = conv_model({16, 16, 7, 7, "[1, 1, 1, 1]", false, false, ""}, rng, 7, 7);
  auto cm = compile_at(text, 3);
  for (auto &n : cm->graph().nodes) EXPECT_NE(n->kind, OpKind::WinogradConv);
}

}  // namespace
}  // namespace kiln
