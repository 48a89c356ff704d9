// fold_batchnorm and fuse_epilogues (passes/fold_batchnorm.cpp, passes/fuse_epilogues.cpp):
// every form of epilogue a Conv / MatMul / Gemm with constant weights absorbs -- bias,
// per-channel scale, residual, each activation (HardSwish also written out), the affine
// after the activation -- becomes one FusedConv / FusedMatMul at -O1 with the -O0 result;
// chains that do not qualify keep their nodes and still compute the same.
#include <gtest/gtest.h>

#include <random>
#include <regex>
#include <set>

#include "opt_levels.h"

namespace kiln {
namespace {

using test::compile_at, test::expect_close, test::f32_list, test::random_f32;

using Ops = std::vector<std::string>;

std::string dims(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// The -O1 model of `text` once its graph is checked to be `ops` and its outputs (and those
// of the AVX2 target) to be -O0's: one -O1 compile serves every check of a case.
std::unique_ptr<CompiledModel> expect_fused_as(const std::string &text, const Ops &ops,
                                               const std::map<std::string, Tensor> &in) {
  auto o1 = compile_at(text, 1);
  Ops got;
  for (auto &n : o1->graph().nodes) got.push_back(op_name(n->kind));
  EXPECT_EQ(got, ops) << text;
  auto want = compile_at(text, 0)->run(in);
  auto check = [&](const CompiledModel &cm, const std::string &target) {
    auto out = cm.run(in);
    ASSERT_EQ(out.size(), want.size());
    for (size_t i = 0; i < out.size(); ++i) {
      expect_close(want[i], out[i], 1e-5, 1e-5, target + ": output " + std::to_string(i) + " of\n" + text);
    }
  };
  check(*o1, "native");
  if (Jit::host_features().find("+avx2") != std::string::npos) check(*compile_at(text, 1, "x86-64-v3"), "x86-64-v3");
  return o1;
}

// The one node of a fused graph.
const Node &only_node(const CompiledModel &cm) {
  EXPECT_EQ(cm.graph().nodes.size(), 1u);
  return *cm.graph().nodes[0];
}

// One chain of a conv model: `body` reads %c = Conv(%x, %w[, %cb]) and defines %out; the
// chain returns `ret`.
struct Chain {
  std::string body;
  std::string ret = "%out";
  bool conv_bias = true;
};

// `text` with every value `body` defines, and %c, renamed %<name>_<i>.
std::string suffixed(const std::string &text, const std::string &body, int i) {
  std::set<std::string> local = {"c"};
  std::regex def(R"(%(\w+): \? =)"), ref(R"(%(\w+))");
  for (std::sregex_iterator it(body.begin(), body.end(), def), end; it != end; ++it) local.insert((*it)[1]);
  std::string out;
  size_t at = 0;
  for (std::sregex_iterator it(text.begin(), text.end(), ref), end; it != end; ++it) {
    out += text.substr(at, it->position() - at) + it->str();
    if (local.count((*it)[1])) out.append("_").append(std::to_string(i));
    at = it->position() + it->length();
  }
  return out + text.substr(at);
}

class FuseEpilogues : public ::testing::Test {
 protected:
  std::mt19937 rng{13};
  Tensor x = random_f32({2, 4, 9, 11}, rng, -2, 2);
  Tensor z = random_f32({2, 6, 9, 11}, rng, -2, 2);

  // An init line: %name of `shape`, random in [lo, hi].
  std::string init(const std::string &name, const std::vector<int64_t> &shape, float lo, float hi) {
    return "  init %" + name + ": f32" + dims(shape) + " = " + f32_list(random_f32(shape, rng, lo, hi)) + "\n";
  }

  // Conv -> BatchNormalization (-> `after`), as exported for inference.
  std::string bn_model(bool conv_bias, const std::string &after, const std::string &ret) {
    return "model {opset = 15}\ngraph g(%x: f32[2, 4, 9, 11], %z: f32[2, 6, 9, 11]) {\n" +
           init("w", {6, 4, 3, 3}, -0.5, 0.5) + init("cb", {6}, -1, 1) + init("gamma", {6}, 0.5, 1.5) +
           init("beta", {6}, -1, 1) + init("mean", {6}, -0.5, 0.5) + init("var", {6}, 0.2, 2) +
           "  %c: ? = Conv(%x, %w" + (conv_bias ? ", %cb" : "") + ") {pads = [1, 1, 1, 1], strides = [1, 2]}\n" +
           "  %n: ? = BatchNormalization(%c, %gamma, %beta, %mean, %var) {epsilon = 0.001}\n" + after +
           "  return " + ret + "\n}\n";
  }

  // %x: f32[2, 4, 9, 11] and %z: f32[2, 6, 9, 11] in; per chain a 3x3 conv, pad 1, of 6
  // channels, then the chain's body. Constants at hand: %s: [1, 6, 1, 1] and %t: [6, 1, 1]
  // per channel, scalars %zero, %one, %three, %six, %sixth, %lo, %hi, and `extra` init
  // lines. Independent chains share a model so that they share its compiles; with more
  // than one, chain i's values are suffixed _i.
  std::string conv_model(const std::vector<Chain> &chains, int opset = 13, const std::string &extra = "") {
    std::string text = "model {opset = " + std::to_string(opset) +
                       "}\ngraph g(%x: f32[2, 4, 9, 11], %z: f32[2, 6, 9, 11]) {\n" +
                       init("w", {6, 4, 3, 3}, -0.5, 0.5) + init("cb", {6}, -1, 1) + init("s", {1, 6, 1, 1}, -2, 2) +
                       init("t", {6, 1, 1}, -1, 1) +
                       "  init %zero: f32[] = [0]\n  init %one: f32[] = [1]\n  init %three: f32[] = [3]\n"
                       "  init %six: f32[] = [6]\n  init %sixth: f32[] = [0.166666672]\n"
                       "  init %lo: f32[] = [-0.5]\n  init %hi: f32[] = [0.7]\n" +
                       extra;
    std::string ret;
    for (size_t i = 0; i < chains.size(); ++i) {
      const Chain &c = chains[i];
      std::string body = "  %c: ? = Conv(%x, %w" + std::string(c.conv_bias ? ", %cb" : "") +
                         ") {pads = [1, 1, 1, 1]}\n" + c.body;
      bool one = chains.size() == 1;
      text += one ? body : suffixed(body, c.body, static_cast<int>(i));
      ret += (ret.empty() ? "" : ", ") + (one ? c.ret : suffixed(c.ret, c.body, static_cast<int>(i)));
    }
    return text + "  return " + ret + "\n}\n";
  }

  // Every chain fuses into one FusedConv.
  std::unique_ptr<CompiledModel> expect_fused(const std::vector<Chain> &chains, int opset = 13) {
    return expect_fused_as(conv_model(chains, opset), Ops(chains.size(), "FusedConv"), {{"x", x}, {"z", z}});
  }
};

TEST_F(FuseEpilogues, BiasAddsSumIntoOneBias) {
  expect_fused({{"  %out: ? = Add(%c, %s)\n"},
                {"  %out: ? = Add(%t, %c)\n", "%out", false},
                {"  %a: ? = Add(%c, %s)\n  %b: ? = Add(%one, %a)\n  %out: ? = Add(%b, %t)\n"}});
}

TEST_F(FuseEpilogues, PerChannelMulFoldsIntoWeightsAndBias) {
  expect_fused({{"  %out: ? = Mul(%c, %s)\n"},
                {"  %a: ? = Add(%c, %t)\n  %out: ? = Mul(%t, %a)\n"},
                {"  %a: ? = Mul(%c, %three)\n  %out: ? = Add(%a, %s)\n", "%out", false}});
}

TEST_F(FuseEpilogues, ResidualAdd) {
  expect_fused({{"  %out: ? = Add(%c, %z)\n"}, {"  %a: ? = Add(%z, %c)\n  %out: ? = Add(%a, %t)\n"}});
  // The residual is computed after the conv: the fused node moves to the Add's place.
  expect_fused_as(conv_model({{"  %e: ? = Sigmoid(%z)\n  %out: ? = Add(%c, %e)\n"}}), {"Sigmoid", "FusedConv"},
                  {{"x", x}, {"z", z}});
}

TEST_F(FuseEpilogues, EveryActivation) {
  // x * clip(x + 3, 0, 6) / 6, as exporters write HardSwish out, in several spellings.
  std::string hswish_div = "  %p: ? = Add(%c, %three)\n  %q: ? = Clip(%p, %zero, %six)\n  %m: ? = Mul(%c, %q)\n"
                           "  %out: ? = Div(%m, %six)\n";
  std::string hswish_mul = "  %p: ? = Add(%three, %c)\n  %q: ? = Clip(%p, %zero, %six)\n  %m: ? = Mul(%q, %c)\n"
                           "  %out: ? = Mul(%m, %sixth)\n";
  std::string hswish_attrs = "  %p: ? = Add(%c, %three)\n  %q: ? = Clip(%p) {max = 6.0, min = 0.0}\n"
                             "  %m: ? = Mul(%c, %q)\n  %out: ? = Div(%m, %six)\n";
  struct Group {
    int opset;
    std::vector<Chain> chains;
    Ops activations;
  };
  std::vector<Group> groups = {
      {13,
       {{"  %out: ? = Relu(%c)\n"},
        {"  %out: ? = LeakyRelu(%c) {alpha = 0.1}\n"},
        {"  %out: ? = Clip(%c, %lo, %hi)\n"},
        {"  %out: ? = Clip(%c, %lo)\n"},
        {"  %out: ? = Clip(%c, _, %hi)\n"},
        {"  %out: ? = HardSigmoid(%c) {alpha = 0.3, beta = 0.4}\n"},
        {hswish_div},
        {hswish_mul}},
       {"Relu", "LeakyRelu", "Clip", "Clip", "Clip", "HardSigmoid", "HardSwish", "HardSwish"}},
      // Clip's bounds as attributes before opset 11.
      {10,
       {{"  %out: ? = Clip(%c) {max = 0.7, min = -0.5}\n"}, {"  %out: ? = Clip(%c) {min = 0.0}\n"}, {hswish_attrs}},
       {"Clip", "Clip", "HardSwish"}},
      {14, {{"  %out: ? = HardSwish(%c)\n"}}, {"HardSwish"}},
  };
  for (const Group &g : groups) {
    auto cm = expect_fused(g.chains, g.opset);
    ASSERT_EQ(cm->graph().nodes.size(), g.activations.size());
    for (size_t i = 0; i < g.activations.size(); ++i) {
      EXPECT_EQ(cm->graph().nodes[i]->attr_s("activation", ""), g.activations[i]) << g.chains[i].body;
    }
  }
}

TEST_F(FuseEpilogues, AffineAfterTheActivation) {
  expect_fused({{"  %r: ? = Relu(%c)\n  %m: ? = Mul(%r, %s)\n  %out: ? = Add(%m, %t)\n"},
                {"  %r: ? = LeakyRelu(%c)\n  %a: ? = Add(%t, %r)\n  %out: ? = Mul(%a, %s)\n"},
                {"  %r: ? = HardSwish(%c)\n  %a: ? = Mul(%r, %s)\n  %b: ? = Mul(%a, %t)\n  %out: ? = Add(%b, %one)\n"}},
               14);
}

TEST_F(FuseEpilogues, WholeChainRecordsFusedOps) {
  auto cm = expect_fused(
      {{"  %a: ? = Add(%c, %s)\n  %b: ? = Mul(%a, %t)\n  %d: ? = Add(%b, %z)\n  %r: ? = Relu(%d)\n"
        "  %m: ? = Mul(%r, %s)\n  %out: ? = Add(%t, %m)\n"}});
  const Node &n = only_node(*cm);
  ASSERT_TRUE(n.has_attr("fused_ops"));
  EXPECT_EQ(n.attrs.at("fused_ops").strings, (Ops{"Conv", "Add", "Mul", "Add", "Relu", "Mul", "Add"}));
  EXPECT_EQ(n.attr_s("activation", ""), "Relu");
  ASSERT_EQ(n.inputs.size(), 6u);
  EXPECT_EQ(n.input(3)->name, "z");
  EXPECT_EQ(n.output(0)->name, "out");
}

TEST_F(FuseEpilogues, ThreeDimensionalConvKeepsTheReferenceLoops) {
  // No -O1 schedule for 3-D convs: the FusedConv runs the reference conv, then its
  // epilogue over the output.
  std::string text = "model {opset = 13}\ngraph g(%x: f32[1, 2, 4, 5, 6], %z: f32[1, 3, 4, 5, 6]) {\n" +
                     init("w", {3, 2, 3, 3, 3}, -0.5, 0.5) + init("cb", {3}, -1, 1) + init("s", {3, 1, 1, 1}, -2, 2) +
                     "  %c: ? = Conv(%x, %w, %cb) {pads = [1, 1, 1, 1, 1, 1]}\n  %m: ? = Mul(%c, %s)\n"
                     "  %d: ? = Add(%m, %z)\n  %r: ? = Relu(%d)\n  %out: ? = Add(%r, %s)\n  return %out\n}\n";
  expect_fused_as(text, {"FusedConv"},
                  {{"x", random_f32({1, 2, 4, 5, 6}, rng)}, {"z", random_f32({1, 3, 4, 5, 6}, rng)}});
}

// %x: f32[2, 5, 24] times a constant %w: f32[24, 20], then `body`; %z: f32[2, 5, 20];
// per-column constants %b, %s: [20]; %rows: [5, 1].
std::string matmul_model(const std::string &body, std::mt19937 &rng) {
  return "model {opset = 13}\ngraph g(%x: f32[2, 5, 24], %z: f32[2, 5, 20]) {\n  init %w: f32[24, 20] = " +
         f32_list(random_f32({24, 20}, rng, -0.5, 0.5)) + "\n  init %b: f32[20] = " + f32_list(random_f32({20}, rng)) +
         "\n  init %s: f32[20] = " + f32_list(random_f32({20}, rng, -2, 2)) + "\n  init %rows: f32[5, 1] = " +
         f32_list(random_f32({5}, rng)) + "\n  %c: ? = MatMul(%x, %w)\n" + body + "  return %out\n}\n";
}

TEST_F(FuseEpilogues, MatMulWholeChain) {
  std::map<std::string, Tensor> in = {{"x", random_f32({2, 5, 24}, rng, -2, 2)}, {"z", random_f32({2, 5, 20}, rng)}};
  std::string text = matmul_model(
      "  %a: ? = Add(%c, %b)\n  %m: ? = Mul(%s, %a)\n  %d: ? = Add(%m, %z)\n  %r: ? = LeakyRelu(%d) {alpha = 0.2}\n"
      "  %e: ? = Mul(%r, %s)\n  %out: ? = Add(%e, %b)\n",
      rng);
  auto cm = expect_fused_as(text, {"FusedMatMul"}, in);
  EXPECT_EQ(only_node(*cm).attrs.at("fused_ops").strings,
            (Ops{"MatMul", "Add", "Mul", "Add", "LeakyRelu", "Mul", "Add"}));
  // A per-row constant is not a bias: the Add stays.
  std::string rows = matmul_model("  %out: ? = Add(%c, %rows)\n", rng);
  expect_fused_as(rows, {"FusedMatMul", "Add"}, in);
}

// %a: f32[7, 12] (or [12, 7] with transA) through one Gemm %y with a constant %b of shape
// `b`, then `after` (which ends in %out); %bin: f32[12, 20] is an input.
std::string gemm_model(const std::vector<int64_t> &b, const std::string &c_init, const std::string &gemm,
                       const std::string &after, std::mt19937 &rng, const std::vector<int64_t> &a = {7, 12}) {
  return "model {opset = 13}\ngraph g(%a: f32" + dims(a) + ", %bin: f32[12, 20]) {\n  init %b: f32" + dims(b) +
         " = " + f32_list(random_f32(b, rng, -1, 1)) + "\n" + c_init + "  %y: ? = " + gemm + "\n" + after +
         "  return %out\n}\n";
}

TEST_F(FuseEpilogues, GemmWithTransBAlphaBeta) {
  Tensor c20 = random_f32({20}, rng), c7x20 = random_f32({7, 20}, rng);
  std::string c_vec = "  init %cv: f32[20] = " + f32_list(c20) + "\n";
  std::string c_row = "  init %cv: f32[1, 20] = " + f32_list(c20) + "\n";
  std::string c_one = "  init %cv: f32[1] = [0.75]\n";
  std::string c_full = "  init %cv: f32[7, 20] = " + f32_list(c7x20) + "\n";
  std::map<std::string, Tensor> in = {{"a", random_f32({7, 12}, rng, -2, 2)}, {"bin", random_f32({12, 20}, rng)}};
  struct Case {
    std::vector<int64_t> b;
    std::string c_init, gemm, after;
    Ops ops;
  };
  std::vector<Case> cases = {
      {{20, 12}, c_vec, "Gemm(%a, %b, %cv) {alpha = 0.5, beta = 2.0, transB = 1}", "  %out: ? = Relu(%y)\n",
       {"FusedMatMul"}},
      {{12, 20}, c_row, "Gemm(%a, %b, %cv) {alpha = 1.5}", "  %out: ? = Add(%y, %cv)\n", {"FusedMatMul"}},
      {{12, 20}, c_one, "Gemm(%a, %b, %cv) {beta = -1.0}", "  %out: ? = Mul(%y, %cv)\n", {"FusedMatMul"}},
      {{20, 12}, "", "Gemm(%a, %b) {beta = 3.0, transB = 1}", "  %out: ? = HardSigmoid(%y)\n", {"FusedMatMul"}},
      // Not fusable: a C per row and column, a weight that is an input.
      {{12, 20}, c_full, "Gemm(%a, %b, %cv)", "  %out: ? = Relu(%y)\n", {"Gemm", "Relu"}},
      {{12, 20}, c_vec, "Gemm(%a, %bin, %cv)", "  %out: ? = Relu(%y)\n", {"Gemm", "Relu"}},
  };
  for (const Case &c : cases) {
    std::string text = gemm_model(c.b, c.c_init, c.gemm, c.after, rng);
    auto cm = expect_fused_as(text, c.ops, in);
    // fused_ops names the Gemm, not the MatMul it became.
    if (&c == &cases.front()) {
      EXPECT_EQ(only_node(*cm).attrs.at("fused_ops").strings, (Ops{"Gemm", "Relu"}));
    }
  }
  // transA: not fused.
  std::string ta =
      gemm_model({12, 20}, c_vec, "Gemm(%a, %b, %cv) {transA = 1}", "  %out: ? = Relu(%y)\n", rng, {12, 7});
  expect_fused_as(ta, {"Gemm", "Relu"}, {{"a", random_f32({12, 7}, rng)}, {"bin", in["bin"]}});
}

TEST_F(FuseEpilogues, BatchNormFoldsIntoTheConv) {
  std::map<std::string, Tensor> in = {{"x", x}, {"z", z}};
  std::string plain = bn_model(true, "", "%n");
  EXPECT_EQ(only_node(*expect_fused_as(plain, {"FusedConv"}, in)).attrs.at("fused_ops").strings,
            (Ops{"Conv", "BatchNormalization"}));

  std::string relu = bn_model(false, "  %out: ? = Relu(%n)\n", "%out");
  EXPECT_EQ(only_node(*expect_fused_as(relu, {"FusedConv"}, in)).attrs.at("fused_ops").strings,
            (Ops{"Conv", "BatchNormalization", "Relu"}));

  // The conv's output is also returned: nothing folds into it.
  std::string shared = bn_model(true, "", "%n, %c");
  expect_fused_as(shared, {"FusedConv", "BatchNormalization"}, in);
}

TEST_F(FuseEpilogues, ChainsThatDoNotQualify) {
  struct Case {
    Chain chain;
    Ops ops;
  };
  std::vector<Case> cases = {
      // The conv's output read twice.
      // (Elementwise ops left over by epilogue fusion are then merged by fuse_elementwise.)
      {{"  %r: ? = Relu(%c)\n  %out: ? = Add(%r, %c)\n"}, {"FusedConv", "FusedElementwise"}},
      // A per-channel Mul after the residual (the residual is not scaled).
      {{"  %d: ? = Add(%c, %z)\n  %out: ? = Mul(%d, %s)\n"}, {"FusedConv", "Mul"}},
      // A non-constant Add that broadcasts (not a residual of the output's shape).
      {{"  %zb: ? = ReduceMean(%z) {axes = [2, 3]}\n  %out: ? = Add(%c, %zb)\n"}, {"FusedConv", "ReduceMean", "Add"}},
      // A constant of the output's shape is neither a bias nor a residual; nor is one
      // that varies along the image a per-channel scale.
      {{"  %a: ? = Add(%c, %full)\n  %out: ? = Relu(%a)\n"}, {"FusedConv", "FusedElementwise"}},
      {{"  %out: ? = Mul(%c, %plane)\n"}, {"FusedConv", "Mul"}},
      // A graph output in the middle of the chain.
      {{"  %out: ? = Relu(%c)\n", "%c, %out"}, {"FusedConv", "Relu"}},
      {{"  %a: ? = Add(%c, %s)\n  %out: ? = Relu(%a)\n", "%a, %out"}, {"FusedConv", "Relu"}},
      // A second activation; a second residual.
      {{"  %r: ? = Relu(%c)\n  %out: ? = LeakyRelu(%r)\n"}, {"FusedConv", "LeakyRelu"}},
      {{"  %a: ? = Add(%c, %z)\n  %out: ? = Add(%a, %z)\n"}, {"FusedConv", "Add"}},
      // A Clip bound that is not a constant; the conv's output added to itself.
      {{"  %m: ? = ReduceMax(%z) {keepdims = 0}\n  %out: ? = Clip(%c, %lo, %m)\n"}, {"FusedConv", "ReduceMax", "Clip"}},
      {{"  %out: ? = Add(%c, %c)\n"}, {"FusedConv", "Add"}},
      // Written-out HardSwish with the wrong constant, and with the conv's output returned.
      {{"  %p: ? = Add(%c, %one)\n  %q: ? = Clip(%p, %zero, %six)\n  %m: ? = Mul(%c, %q)\n  %out: ? = Div(%m, %six)\n"},
       {"FusedConv", "FusedElementwise"}},
      {{"  %p: ? = Add(%c, %three)\n  %q: ? = Clip(%p, %zero, %six)\n  %m: ? = Mul(%c, %q)\n"
        "  %out: ? = Div(%m, %six)\n",
        "%out, %c"},
       {"FusedConv", "FusedElementwise"}},
  };
  // All in one model: the graph is the chains' graphs one after the other.
  std::vector<Chain> chains;
  Ops ops;
  for (const Case &c : cases) {
    chains.push_back(c.chain);
    ops.insert(ops.end(), c.ops.begin(), c.ops.end());
  }
  std::string extra = init("full", {2, 6, 9, 11}, -1, 1) + init("plane", {1, 1, 9, 11}, -1, 1);
  expect_fused_as(conv_model(chains, 13, extra), ops, {{"x", x}, {"z", z}});
}

}  // namespace
}  // namespace kiln
