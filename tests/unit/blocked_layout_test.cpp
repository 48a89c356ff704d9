// NCHWc blocked activations (passes/blocked_layout.cpp, lower/conv_blocked.cpp): regions
// of depthwise and 1x1 convs run on [N, C/b, H, W, b] tensors at -O2 and above and must
// match the -O0 NCHW reference, for AVX-512 blocks of 16 and AVX2 blocks of 8, with
// channel counts that are not whole blocks, odd map sizes, strides, padding, a
// squeeze-and-excitation broadcast Mul, a residual and an output read inside the region.
#include <gtest/gtest.h>

#include <random>

#include "compiler/model_stats.h"
#include "opt_levels.h"

namespace kiln {
namespace {

using test::compile_at, test::expect_close, test::f32_list, test::init, test::random_f32;

// An inverted-residual block with squeeze-and-excitation (MobileNetV3-like), 24 -> 40 -> 24
// channels on a 13x11 map, then a strided 1x1 conv and a depthwise one; `r` (inside the region)
// is an output too.
std::string mobile_block(std::mt19937 &rng) {
  std::string s = "model {opset = 13}\ngraph g(%x: f32[2, 24, 13, 11]) {\n";
  s += init("w1", {40, 24, 1, 1}, rng) + init("b1", {40}, rng);
  s += init("wd", {40, 1, 5, 5}, rng) + init("bd", {40}, rng);
  s += init("ws1", {8, 40, 1, 1}, rng) + init("bs1", {8}, rng);
  s += init("ws2", {40, 8, 1, 1}, rng) + init("bs2", {40}, rng);
  s += init("wp", {24, 40, 1, 1}, rng) + init("bp", {24}, rng);
  s += init("wd2", {24, 1, 3, 3}, rng);
  s += init("wq", {32, 24, 1, 1}, rng) + init("wd3", {32, 1, 3, 3}, rng);
  s += "  %e0: ? = Conv(%x, %w1, %b1) {kernel_shape = [1, 1]}\n";
  s += "  %e: ? = Relu(%e0)\n";
  s += "  %d0: ? = Conv(%e, %wd, %bd) {group = 40, kernel_shape = [5, 5], pads = [2, 2, 2, 2], strides = [2, 2]}\n";
  s += "  %d1: ? = HardSigmoid(%d0) {alpha = 0.16666667, beta = 0.5}\n";
  s += "  %d: ? = Mul(%d0, %d1)\n";
  s += "  %g: ? = GlobalAveragePool(%d)\n";
  s += "  %s0: ? = Conv(%g, %ws1, %bs1) {kernel_shape = [1, 1]}\n";
  s += "  %s1: ? = Relu(%s0)\n";
  s += "  %s2: ? = Conv(%s1, %ws2, %bs2) {kernel_shape = [1, 1]}\n";
  s += "  %s: ? = HardSigmoid(%s2) {alpha = 0.16666667, beta = 0.5}\n";
  s += "  %m: ? = Mul(%s, %d)\n";
  s += "  %p: ? = Conv(%m, %wp, %bp) {kernel_shape = [1, 1]}\n";
  s += "  %k: ? = Conv(%x, %wd2) {group = 24, kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [2, 2]}\n";
  s += "  %r: ? = Add(%p, %k)\n";
  s += "  %q: ? = Conv(%r, %wq) {kernel_shape = [1, 1], strides = [2, 2]}\n";
  s += "  %o: ? = Conv(%q, %wd3) {group = 32, kernel_shape = [3, 3], pads = [1, 1, 1, 1]}\n";
  return s + "  return %o, %r\n}\n";
}

int count(const CompiledModel &m, OpKind k) {
  int n = 0;
  for (auto &node : m.graph().nodes) n += node->kind == k;
  return n;
}

// Convs running blocked: BlockedConvs and the stages of the depthwise-separable chains fused
// after the layout pass (BlockedSeparableConv: [expansion,] depthwise, projection).
int blocked_convs(const CompiledModel &m) {
  int n = 0;
  for (auto &node : m.graph().nodes) {
    if (node->kind == OpKind::BlockedConv) ++n;
    if (node->kind == OpKind::BlockedSeparableConv) n += node->input(1) ? 3 : 2;
  }
  return n;
}

TEST(BlockedLayout, MobileBlockMatchesReference) {
  std::mt19937 rng(11);
  std::string text = mobile_block(rng);
  std::map<std::string, Tensor> in = {{"x", random_f32({2, 24, 13, 11}, rng, -1, 1)}};
  auto ref = compile_at(text, 0)->run(in);
  for (const char *target : {"native", "x86-64-v3"}) {
    if (std::string(target) != "native" && Jit::host_features().find("+avx2") == std::string::npos) continue;
    for (int level : {2, 3}) {
      auto got = compile_at(text, level, target);
      // Every conv, the pool and the SE Mul run blocked; x enters once (both of its
      // readers share one reorder), o and r leave.
      EXPECT_EQ(count(*got, OpKind::BlockedConv), 8) << target;
      EXPECT_EQ(count(*got, OpKind::BlockedGlobalAveragePool), 1) << target;
      EXPECT_EQ(count(*got, OpKind::ToBlocked), 1) << target;
      EXPECT_EQ(count(*got, OpKind::FromBlocked), 2) << target;
      EXPECT_EQ(count(*got, OpKind::FusedConv), 0) << target;
      got->run(in);  // the second run uses the planned arena
      auto out = got->run(in);
      ASSERT_EQ(out.size(), ref.size());
      for (size_t i = 0; i < ref.size(); ++i) {
        expect_close(ref[i], out[i], 2e-5, 2e-5, std::string(target) + " -O" + std::to_string(level) + " output " + std::to_string(i));
      }
    }
  }
}

TEST(BlockedLayout, FlopsCountRealChannels) {
  // Each blocked conv's FLOPs (kiln inspect) are its NCHW conv's: 24 / 40 / 8 channels are
  // padded to whole blocks, but the padding multiplies zero weights.
  std::mt19937 rng(11);
  std::string text = mobile_block(rng);
  auto by_node = [](const CompiledModel &m) {  // conv FLOPs in graph order
    std::vector<double> f;
    for (auto &g : compute_stats(m.graph()).groups) {
      if (g.node.rfind("FusedConv", 0) == 0 || g.node.rfind("BlockedConv", 0) == 0) f.push_back(g.flops);
    }
    return f;
  };
  auto nchw = by_node(*compile_at(text, 1)), blocked = by_node(*compile_at(text, 3));
  EXPECT_EQ(count(*compile_at(text, 3), OpKind::BlockedConv), 8);
  ASSERT_EQ(nchw.size(), 8u);
  EXPECT_EQ(blocked, nchw);
}

// A stem (3 -> 24 channels, kernel x kernel with half-kernel padding on an odd 19x17 image,
// HardSwish) in front of a depthwise + 1x1 pair (narrowing to 16, so the region keeps it):
// the stem reads the NCHW image and writes blocked output, so there is no ToBlocked at all.
// A stem of `ch` channels over a 19 x `width` image, then a depthwise and a 1x1 conv.
std::string stem_block(std::mt19937 &rng, int kernel, int stride, int64_t ch = 24, int64_t width = 17) {
  std::string k = std::to_string(kernel), p = std::to_string(kernel / 2), st = std::to_string(stride), c = std::to_string(ch);
  std::string s = "model {opset = 14}\ngraph g(%x: f32[2, 3, 19, " + std::to_string(width) + "]) {\n";
  s += init("ws", {ch, 3, kernel, kernel}, rng) + init("bs", {ch}, rng);
  s += init("wd", {ch, 1, 3, 3}, rng) + init("bd", {ch}, rng) + init("wp", {16, ch, 1, 1}, rng) + init("bp", {16}, rng);
  s += "  %s0: ? = Conv(%x, %ws, %bs) {kernel_shape = [" + k + ", " + k + "], pads = [" + p + ", " + p + ", " + p + ", " +
       p + "], strides = [" + st + ", " + st + "]}\n";
  s += "  %s: ? = HardSwish(%s0)\n";
  s += "  %d0: ? = Conv(%s, %wd, %bd) {group = " + c + ", kernel_shape = [3, 3], pads = [1, 1, 1, 1]}\n";
  s += "  %d: ? = Relu(%d0)\n";
  s += "  %o: ? = Conv(%d, %wp, %bp) {kernel_shape = [1, 1]}\n";
  return s + "  return %o\n}\n";
}

TEST(BlockedLayout, StemWritesBlockedOutput) {
  // 24 channels: two blocks with AVX-512 (tiles of 8 pixels x 2 blocks), three with AVX2;
  // 16 over a wide image: one block (tiles of 14 pixels), the last tile of a row
  // overlapping the one before.
  struct Case {
    int kernel, stride;
    int64_t ch, width;
  };
  for (Case cs : {Case{3, 2, 24, 17}, Case{5, 1, 24, 17}, Case{7, 2, 24, 17}, Case{3, 2, 16, 61}, Case{5, 1, 16, 45}}) {
    auto [kernel, stride, ch, width] = cs;
    std::mt19937 rng(3);
    std::string text = stem_block(rng, kernel, stride, ch, width);
    std::map<std::string, Tensor> in = {{"x", random_f32({2, 3, 19, width}, rng, -1, 1)}};
    auto ref = compile_at(text, 0)->run(in);
    for (const char *target : {"native", "x86-64-v3"}) {
      if (std::string(target) != "native" && Jit::host_features().find("+avx2") == std::string::npos) continue;
      for (int level : {2, 3}) {
        auto got = compile_at(text, level, target);
        std::string what = std::string(target) + " -O" + std::to_string(level) + " " + std::to_string(kernel) + "x" +
                           std::to_string(kernel) + " stride " + std::to_string(stride) + ", " + std::to_string(ch) + " channels";
        EXPECT_EQ(blocked_convs(*got), 3) << what;
        EXPECT_EQ(count(*got, OpKind::ToBlocked), 0) << what;
        EXPECT_EQ(count(*got, OpKind::FusedConv), 0) << what;
        got->run(in);
        auto out = got->run(in);
        expect_close(ref[0], out[0], 2e-5, 2e-5, what);
      }
    }
  }
}

TEST(BlockedLayout, NotBelowO2) {
  std::mt19937 rng(11);
  auto m = compile_at(mobile_block(rng), 1);
  EXPECT_EQ(count(*m, OpKind::BlockedConv), 0);
  EXPECT_EQ(count(*m, OpKind::ToBlocked), 0);
}

TEST(BlockedLayout, RegionsWithoutDepthwiseStayNchw) {
  // 1x1 convs alone (ResNet's bottlenecks between 3x3 convs) would only pay the reorders.
  std::mt19937 rng(5);
  std::string s = "model {opset = 13}\ngraph g(%x: f32[1, 32, 14, 14]) {\n";
  s += init("w1", {64, 32, 1, 1}, rng) + init("w2", {32, 64, 1, 1}, rng);
  s += "  %a: ? = Conv(%x, %w1) {kernel_shape = [1, 1]}\n  %b: ? = Relu(%a)\n";
  s += "  %c: ? = Conv(%b, %w2) {kernel_shape = [1, 1]}\n  return %c\n}\n";
  auto m = compile_at(s, 3);
  EXPECT_EQ(count(*m, OpKind::BlockedConv), 0);
  EXPECT_EQ(count(*m, OpKind::ToBlocked), 0);
  EXPECT_EQ(count(*m, OpKind::FusedConv), 2);
}

TEST(BlockedLayout, RegionEdgesMoveToSmallerTensors) {
  // The last 1x1 conv widens 16 channels to 96 right where the region ends: it stays NCHW
  // and the region hands over its 16-channel tensor instead.
  std::mt19937 rng(9);
  std::string s = "model {opset = 13}\ngraph g(%x: f32[1, 16, 20, 20]) {\n";
  s += init("w1", {32, 16, 1, 1}, rng) + init("wd", {32, 1, 3, 3}, rng) + init("w2", {16, 32, 1, 1}, rng) +
       init("w3", {96, 16, 1, 1}, rng);
  s += "  %a: ? = Conv(%x, %w1) {kernel_shape = [1, 1]}\n";
  s += "  %b: ? = Conv(%a, %wd) {group = 32, kernel_shape = [3, 3], pads = [1, 1, 1, 1]}\n";
  s += "  %c: ? = Conv(%b, %w2) {kernel_shape = [1, 1]}\n";
  s += "  %d: ? = Conv(%c, %w3) {kernel_shape = [1, 1]}\n  return %d\n}\n";
  auto m = compile_at(s, 3);
  EXPECT_EQ(blocked_convs(*m), 3);
  EXPECT_EQ(count(*m, OpKind::FusedConv), 1);
  ASSERT_EQ(count(*m, OpKind::FromBlocked), 1);
  for (auto &n : m->graph().nodes) {
    if (n->kind == OpKind::FromBlocked) {
      EXPECT_EQ(n->attr_i("channels", 0), 16);
    }
  }
  std::map<std::string, Tensor> in = {{"x", random_f32({1, 16, 20, 20}, rng, -1, 1)}};
  expect_close(compile_at(s, 0)->run(in)[0], m->run(in)[0], 2e-5, 2e-5, "peeled region");
}

}  // namespace
}  // namespace kiln
