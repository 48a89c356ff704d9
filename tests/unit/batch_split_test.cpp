// Batch splitting (passes/batch_split.cpp, CompiledModel::run_split): a conv net pinned to a
// batch of N compiles for one sample and runs the samples one after another -- all of its
// nodes, or those before a SampleGather where the weights come to outweigh a sample's
// activations -- matching the whole batch at -O0; graphs that mix samples, or have no convs,
// keep the batch whole.
#include <gtest/gtest.h>

#include <random>

#include "graph_builder.h"
#include "graph/parser.h"
#include "opt_levels.h"
#include "compiler/model_stats.h"
#include "passes/passes.h"

namespace kiln {
namespace {

using test::compile_at, test::expect_close, test::f32_list, test::init, test::random_f32;

// A small ResNet: conv + BN + ReLU, max pool, a bottleneck with a residual, global pool,
// flatten (or a reshape to [-1, 8]) and a classifier; `tail` replaces the classifier.
std::string resnet(std::mt19937 &rng, int batch, const std::string &flatten = "Flatten(%g) {axis = 1}",
                   const std::string &tail = "") {
  std::string s = "model {opset = 13}\ngraph g(%x: f32[" + std::to_string(batch) + ", 3, 18, 18]) {\n";
  s += init("w1", {8, 3, 3, 3}, rng) + init("sc", {8}, rng) + init("bi", {8}, rng) + init("me", {8}, rng);
  s += "  init %va: f32[8] = " + f32_list(random_f32({8}, rng, 0.5f, 1.5f)) + "\n";
  s += init("w2", {4, 8, 1, 1}, rng) + init("w3", {4, 4, 3, 3}, rng) + init("w4", {8, 4, 1, 1}, rng);
  s += init("fw", {8, 5}, rng) + init("fb", {5}, rng);
  s += "  init %flat: i64[2] = [-1, 8]\n";
  s += "  %c: ? = Conv(%x, %w1) {kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [2, 2]}\n";
  s += "  %bn: ? = BatchNormalization(%c, %sc, %bi, %me, %va)\n";
  s += "  %r: ? = Relu(%bn)\n";
  s += "  %p: ? = MaxPool(%r) {kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [1, 1]}\n";
  s += "  %a: ? = Conv(%p, %w2) {kernel_shape = [1, 1]}\n";
  s += "  %a1: ? = Relu(%a)\n";
  s += "  %b: ? = Conv(%a1, %w3) {kernel_shape = [3, 3], pads = [1, 1, 1, 1]}\n";
  s += "  %b1: ? = Relu(%b)\n";
  s += "  %d: ? = Conv(%b1, %w4) {kernel_shape = [1, 1]}\n";
  s += "  %e: ? = Add(%d, %p)\n";
  s += "  %e1: ? = Relu(%e)\n";
  s += "  %g: ? = GlobalAveragePool(%e1)\n";
  s += "  %f: ? = " + flatten + "\n";
  if (!tail.empty()) return s + tail + "}\n";
  s += "  %y: ? = Gemm(%f, %fw, %fb)\n";
  s += "  %z: ? = Softmax(%y) {axis = 1}\n";
  return s + "  return %z, %e1\n}\n";
}

int64_t factor(const std::string &text) {
  Model m = parse_model(text);
  infer_shapes(*m.graph);
  return batch_split_factor(*m.graph);
}

TEST(BatchSplit, SplitConvNetMatchesWholeBatch) {
  std::mt19937 rng(5);
  std::string text = resnet(rng, 3);
  std::map<std::string, Tensor> in = {{"x", random_f32({3, 3, 18, 18}, rng, -1, 1)}};
  auto ref = compile_at(text, 0)->run(in);
  for (int level : {2, 3}) {
    auto split = compile_at(text, level, "native", /*split_batch=*/true);
    EXPECT_EQ(split->stats().batch_split, 3);
    EXPECT_EQ(shape_str(shape_values(split->graph().inputs[0]->shape)), "1x3x18x18");
    auto whole = compile_at(text, level);
    EXPECT_EQ(whole->stats().batch_split, 0);
    split->run(in);
    auto got = split->run(in), want = whole->run(in);
    ASSERT_EQ(got.size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) {
      expect_close(ref[i], got[i], 1e-4, 1e-5, "-O" + std::to_string(level) + " split, output " + std::to_string(i));
      expect_close(want[i], got[i], 1e-4, 1e-5, "-O" + std::to_string(level) + " split vs whole, output " + std::to_string(i));
    }
    // Another batch size than the one compiled for is a clear error.
    std::map<std::string, Tensor> two = {{"x", random_f32({2, 3, 18, 18}, rng, -1, 1)}};
    std::string err = test::user_error_of([&] { split->run(two); });
    EXPECT_NE(err.find("compiled for a batch of 3"), std::string::npos) << err;
  }
  // Below -O2, and for a batch of one, nothing is split.
  EXPECT_EQ(compile_at(text, 1, "native", true)->stats().batch_split, 0);
  std::mt19937 rng1(5);
  EXPECT_EQ(compile_at(resnet(rng1, 1), 3, "native", true)->stats().batch_split, 0);
}

// A conv over the image (small weights, large activations), a max pool to a 6x6 map, two
// convs whose weights outweigh one sample's activations, global pool, classifier.
std::string wide_then_deep(std::mt19937 &rng, int batch) {
  std::string s = "model {opset = 13}\ngraph g(%x: f32[" + std::to_string(batch) + ", 3, 24, 24]) {\n";
  s += init("w1", {8, 3, 3, 3}, rng) + init("w2", {64, 8, 3, 3}, rng) + init("b2", {64}, rng);
  s += init("w3", {64, 64, 3, 3}, rng) + init("fw", {64, 10}, rng) + init("fb", {10}, rng);
  s += "  %c: ? = Conv(%x, %w1) {kernel_shape = [3, 3], pads = [1, 1, 1, 1]}\n  %r: ? = Relu(%c)\n";
  s += "  %p: ? = MaxPool(%r) {kernel_shape = [4, 4], strides = [4, 4]}\n";
  s += "  %d: ? = Conv(%p, %w2, %b2) {kernel_shape = [3, 3], pads = [1, 1, 1, 1]}\n  %d1: ? = Relu(%d)\n";
  s += "  %e: ? = Conv(%d1, %w3) {kernel_shape = [3, 3], pads = [1, 1, 1, 1]}\n  %e1: ? = Relu(%e)\n";
  s += "  %g: ? = GlobalAveragePool(%e1)\n  %f: ? = Flatten(%g) {axis = 1}\n";
  return s + "  %y: ? = Gemm(%f, %fw, %fb)\n  return %y\n}\n";
}

TEST(BatchSplit, SamplesRejoinWhereWeightsOutweighActivations) {
  // The image conv runs per sample; from the first value after which every conv's weights
  // are at least one sample's input, a SampleGather stacks the samples and the rest runs
  // on the whole batch (batch_split_cut). Same outputs as the whole batch and -O0.
  std::mt19937 rng(8);
  std::string text = wide_then_deep(rng, 3);
  std::map<std::string, Tensor> in = {{"x", random_f32({3, 3, 24, 24}, rng, -1, 1)}};
  auto ref = compile_at(text, 0)->run(in);
  for (int level : {2, 3}) {
    std::string what = "-O" + std::to_string(level);
    auto split = compile_at(text, level, "native", /*split_batch=*/true);
    auto whole = compile_at(text, level);
    EXPECT_EQ(split->stats().batch_split, 3) << what;
    const size_t prefix = split->stats().split_prefix_nodes;
    ASSERT_GT(prefix, 0u) << what;
    const Graph &g = split->graph();
    ASSERT_LT(prefix, g.nodes.size()) << what;
    const Node &gather = *g.nodes[prefix];
    ASSERT_EQ(gather.kind, OpKind::SampleGather) << what;
    EXPECT_EQ(gather.input(0)->shape[0].value(), 1) << what;
    EXPECT_EQ(gather.output(0)->shape[0].value(), 3) << what;
    EXPECT_EQ(shape_str(shape_values(g.inputs[0]->shape)), "1x3x24x24") << what;
    EXPECT_EQ(shape_str(shape_values(g.outputs[0]->shape)), "3x10") << what;
    for (int run = 0; run < 2; ++run) {  // the second run uses the planned arena
      auto got = split->run(in);
      ASSERT_EQ(got.size(), 1u);
      expect_close(ref[0], got[0], 1e-4, 1e-5, what + " split");
      expect_close(whole->run(in)[0], got[0], 1e-5, 1e-6, what + " split vs whole");
    }
    // kiln inspect's whole-batch FLOPs: the per-sample nodes count three times.
    EXPECT_DOUBLE_EQ(compute_stats(g, {}, prefix, 3).flops, compute_stats(whole->graph()).flops) << what;
    std::map<std::string, Tensor> two = {{"x", random_f32({2, 3, 24, 24}, rng, -1, 1)}};
    std::string err = test::user_error_of([&] { split->run(two); });
    EXPECT_NE(err.find("compiled for a batch of 3"), std::string::npos) << err;
  }
}

TEST(BatchSplit, OnlySampleSeparableConvNetsSplit) {
  std::mt19937 rng(6);
  EXPECT_EQ(factor(resnet(rng, 4)), 4);
  // A reshape to [-1, 8] keeps samples apart; one with a literal batch does not.
  EXPECT_EQ(factor(resnet(rng, 4, "Reshape(%g, %flat)")), 4);
  std::string lit = resnet(rng, 4, "Reshape(%g, %flat4)");
  lit.insert(lit.find("  %c:"), "  init %flat4: i64[2] = [4, 8]\n");
  EXPECT_EQ(factor(lit), 0);
  // Ops that mix samples: a softmax over the batch, a reduction over it, a transpose
  // moving it, a concat along it, a Shape.
  EXPECT_EQ(factor(resnet(rng, 4, "Flatten(%g) {axis = 1}", "  %s: ? = Softmax(%f) {axis = 0}\n  return %s\n")), 0);
  EXPECT_EQ(factor(resnet(rng, 4, "Flatten(%g) {axis = 1}",
                          "  %s: ? = ReduceMean(%f) {axes = [0], keepdims = 1}\n  return %s\n")),
            0);
  EXPECT_EQ(factor(resnet(rng, 4, "Flatten(%g) {axis = 1}", "  %s: ? = Transpose(%f) {perm = [1, 0]}\n  return %s\n")),
            0);
  EXPECT_EQ(factor(resnet(rng, 4, "Flatten(%g) {axis = 1}", "  %s: ? = Concat(%f, %f) {axis = 0}\n  return %s\n")), 0);
  EXPECT_EQ(factor(resnet(rng, 4, "Flatten(%g) {axis = 1}", "  %s: ? = Shape(%f)\n  return %f, %s\n")), 0);
  // A constant with a row per sample pairs rows with samples.
  std::string rows = resnet(rng, 4, "Flatten(%g) {axis = 1}", "  %s: ? = Add(%f, %per)\n  return %s\n");
  rows.insert(rows.find("  %c:"), init("per", {4, 8}, rng));
  EXPECT_EQ(factor(rows), 0);
  // A concat along channels and a transpose keeping dim 0 are per sample.
  EXPECT_EQ(factor(resnet(rng, 4, "Flatten(%g) {axis = 1}", "  %s: ? = Concat(%f, %f) {axis = 1}\n  return %s\n")), 4);
  // No convs: a MatMul model shares its weights across the batch and stays whole.
  std::string mm = "model {opset = 13}\ngraph g(%x: f32[4, 8]) {\n" + init("w", {8, 8}, rng) +
                   "  %y: ? = MatMul(%x, %w)\n  return %y\n}\n";
  EXPECT_EQ(factor(mm), 0);
}

}  // namespace
}  // namespace kiln
