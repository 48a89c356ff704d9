// Depthwise-separable chains as one kernel (passes/fuse_separable.cpp,
// lower/separable_conv.cpp): [1x1 expansion ->] depthwise -> 1x1 projection on blocked
// tensors at -O2 and above, run over bands of output rows, must match the -O0 NCHW reference
// for AVX-512 blocks of 16 and AVX2 blocks of 8: strides 1 and 2, residuals, channel counts
// that are not whole blocks, odd maps, 5x5 dilated kernels; maps too small for bands and
// expansions read elsewhere stay unfused.
#include <gtest/gtest.h>

#include <random>

#include "compiler/model_stats.h"
#include "opt_levels.h"

namespace kiln {
namespace {

using test::compile_at, test::expect_close, test::init, test::random_f32;

struct Chain {
  int64_t c_in, mid, c_out, h, w;
  int kernel, stride, dilation;
  bool expand, residual;
  std::string act;  // the activation after the expansion and the depthwise conv
  int64_t batch = 1;
};

std::string act_line(const std::string &act, const std::string &out, const std::string &in) {
  if (act == "Clip") return "  %" + out + ": ? = Clip(%" + in + ", %lo, %hi)\n";
  return "  %" + out + ": ? = " + act + "(%" + in + ")\n";
}

std::string chain_model(const Chain &c, std::mt19937 &rng, bool expansion_is_output = false) {
  auto d = [](int64_t v) { return std::to_string(v); };
  std::string shape = "[" + d(c.batch) + ", " + d(c.c_in) + ", " + d(c.h) + ", " + d(c.w) + "]";
  std::string s = "model {opset = 14}\ngraph g(%x: f32" + shape + ") {\n";
  s += "  init %lo: f32[] = [0]\n  init %hi: f32[] = [6]\n";
  if (c.expand) s += init("we", {c.mid, c.c_in, 1, 1}, rng) + init("be", {c.mid}, rng);
  s += init("wd", {c.mid, 1, c.kernel, c.kernel}, rng) + init("bd", {c.mid}, rng);
  s += init("wp", {c.c_out, c.mid, 1, 1}, rng) + init("bp", {c.c_out}, rng);
  std::string in = "x";
  if (c.expand) {
    s += "  %e0: ? = Conv(%x, %we, %be) {kernel_shape = [1, 1]}\n" + act_line(c.act, "e", "e0");
    in = "e";
  }
  int64_t pad = (c.kernel - 1) * c.dilation / 2;
  s += "  %d0: ? = Conv(%" + in + ", %wd, %bd) {group = " + d(c.mid) + ", kernel_shape = [" + d(c.kernel) + ", " +
       d(c.kernel) + "], pads = [" + d(pad) + ", " + d(pad) + ", " + d(pad) + ", " + d(pad) + "], strides = [" +
       d(c.stride) + ", " + d(c.stride) + "], dilations = [" + d(c.dilation) + ", " + d(c.dilation) + "]}\n";
  s += act_line(c.act, "d", "d0");
  s += "  %p: ? = Conv(%d, %wp, %bp) {kernel_shape = [1, 1]}\n";
  std::string out = "p";
  if (c.residual) {
    s += "  %r: ? = Add(%p, %x)\n";
    out = "r";
  }
  return s + "  return %" + out + (expansion_is_output ? ", %e" : "") + "\n}\n";
}

int count(const CompiledModel &m, OpKind k) {
  int n = 0;
  for (auto &node : m.graph().nodes) n += node->kind == k;
  return n;
}

// Compiles at -O2 and -O3 for the host and AVX2 (batches kept whole, as model libraries
// run them), checks the node counts and the outputs against -O0.
void check(const std::string &text, const Chain &c, int fused, int single, const std::string &what) {
  std::mt19937 rng(5);
  std::map<std::string, Tensor> in = {{"x", random_f32({c.batch, c.c_in, c.h, c.w}, rng, -1, 1)}};
  auto ref = compile_at(text, 0)->run(in);
  for (const char *target : {"native", "x86-64-v3"}) {
    if (std::string(target) != "native" && Jit::host_features().find("+avx2") == std::string::npos) continue;
    for (int level : {2, 3}) {
      std::string at = what + " " + target + " -O" + std::to_string(level);
      auto got = compile_at(text, level, target);
      EXPECT_EQ(count(*got, OpKind::BlockedSeparableConv), fused) << at;
      EXPECT_EQ(count(*got, OpKind::BlockedConv), single) << at;
      got->run(in);  // the second run uses the planned arena
      auto out = got->run(in);
      ASSERT_EQ(out.size(), ref.size()) << at;
      for (size_t i = 0; i < ref.size(); ++i) expect_close(ref[i], out[i], 2e-5, 2e-5, at + " output " + std::to_string(i));
    }
  }
}

TEST(SeparableConv, InvertedResidualMatchesReference) {
  // MobileNetV2's stride-1 block: 24 -> 72 -> 24 with ReLU6 and the residual, 16 x 15 map
  // (two bands of 8 rows, halo 2 rows), two images.
  Chain c{24, 72, 24, 16, 15, 3, 1, 1, true, true, "Clip", 2};
  std::mt19937 rng(1);
  check(chain_model(c, rng), c, 1, 0, "stride 1");
}

TEST(SeparableConv, StridedExpansionMatchesReference) {
  // Stride 2 over an odd 33 x 31 map, HardSwish, 20 -> 40 -> 12 channels (partial blocks).
  Chain c{20, 40, 12, 33, 31, 3, 2, 1, true, false, "HardSwish"};
  std::mt19937 rng(2);
  check(chain_model(c, rng), c, 1, 0, "stride 2");
}

TEST(SeparableConv, DilatedExpansionMatchesReference) {
  // A dilated 3x3 window spans 5 expanded rows: the ring holds 5, bands of 15 rows.
  Chain c{16, 48, 16, 30, 17, 3, 1, 2, true, true, "Relu"};
  std::mt19937 rng(6);
  check(chain_model(c, rng), c, 1, 0, "dilation 2");
}

TEST(SeparableConv, DepthwisePointwisePairMatchesReference) {
  // No expansion: a 5x5 depthwise conv with dilation 2 reading x directly, then the 1x1 and
  // the residual (24 channels: one and a half blocks of 16).
  Chain c{24, 24, 24, 20, 18, 5, 1, 2, false, true, "Relu"};
  std::mt19937 rng(3);
  check(chain_model(c, rng), c, 1, 0, "depthwise + 1x1");
}

TEST(SeparableConv, SmallMapsAndSharedExpansionsStayUnfused) {
  // A 7x7 map: bands of 3 rows would recompute 2/3 of the expansion again.
  Chain small{24, 72, 24, 7, 7, 3, 1, 1, true, true, "Relu"};
  std::mt19937 rng(4);
  check(chain_model(small, rng), small, 0, 3, "7x7");
  // The expanded tensor is a graph output too: only depthwise + projection fuse.
  Chain shared{16, 48, 16, 16, 16, 3, 1, 1, true, false, "Relu"};
  check(chain_model(shared, rng, true), shared, 1, 1, "expansion read elsewhere");
}

TEST(SeparableConv, InspectCountsTheChainsFlopsAndSavedTraffic) {
  // The fused node's FLOPs are its three convs' (real channels), and the traffic it saves
  // is at least the expanded and depthwise tensors written and read back.
  Chain c{20, 40, 12, 33, 31, 3, 2, 1, true, false, "HardSwish"};
  std::mt19937 rng(2);
  std::string text = chain_model(c, rng);
  auto conv_flops = [](const CompiledModel &m) {
    double f = 0;
    for (auto &g : compute_stats(m.graph()).groups) {
      if (g.node.find("Conv") != std::string::npos) f += g.flops;
    }
    return f;
  };
  auto fused = compile_at(text, 3);
  ASSERT_EQ(count(*fused, OpKind::BlockedSeparableConv), 1);
  EXPECT_EQ(conv_flops(*fused), conv_flops(*compile_at(text, 1)));
  for (auto &g : compute_stats(fused->graph()).groups) {
    if (g.node.rfind("BlockedSeparableConv", 0) != 0) continue;
    double expanded = 4.0 * 40 * 33 * 31, depthwise = 4.0 * 40 * 17 * 16;
    EXPECT_GE(g.bytes_unfused - g.bytes, 2 * (expanded + depthwise)) << g.ops;
    EXPECT_EQ(g.ops, "Conv+HardSwish+Conv+HardSwish+Conv");
  }
}

}  // namespace
}  // namespace kiln
