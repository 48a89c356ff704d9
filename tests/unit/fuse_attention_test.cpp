// fuse_attention (passes/fuse_attention.cpp) and the FusedAttention kernel
// (lower/attention.cpp): scaled dot-product attention in the forms exporters write
// becomes one node at -O1 with the -O0 result, for several head counts and sequence
// lengths (vector remainders, symbolic lengths), with and without masks, in the layouts
// torch's MultiheadAttention exports; patterns that do not qualify are left alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>

#include <onnx/onnx_pb.h>

#include "graph_builder.h"
#include "onnx/importer.h"
#include "opt_levels.h"

namespace kiln {
namespace {

using test::compile_at, test::expect_o1_matches_o0, test::f32_list, test::o1_ops, test::random_f32;

int count(const std::vector<std::string> &ops, const std::string &op) {
  return static_cast<int>(std::count(ops.begin(), ops.end(), op));
}

std::string dims(const std::vector<std::string> &d) {
  std::string s;
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + d[i];
  return "[" + s + "]";
}

// Attention over inputs q, k, v of f32[b, h, sq|sk, d|dv]: Transpose(k), MatMul, the
// scale step `scale` ("Div" or "Mul" of %c; "" for none), optional mask input %m added,
// Softmax(axis), MatMul with v. Dims are strings so they can be symbols.
struct Attention {
  std::string b = "2", h = "3", sq = "17", sk = "17", d = "16", dv = "16";
  std::string scale = "Div", c = "4";
  std::vector<std::string> mask;  // shape of the mask input, empty for none
  int axis = -1;
  bool return_scores = false;

  std::string text() const {
    std::string g = "model {opset = 13}\ngraph g(%q: f32" + dims({b, h, sq, d}) + ", %k: f32" + dims({b, h, sk, d}) +
                    ", %v: f32" + dims({b, h, sk, dv});
    if (!mask.empty()) g += ", %m: f32" + dims(mask);
    g += ") {\n  init %c: f32[] = [" + c + "]\n";
    g += "  %kt: ? = Transpose(%k) {perm = [0, 1, 3, 2]}\n  %s: ? = MatMul(%q, %kt)\n";
    std::string x = "%s";
    if (!scale.empty()) {
      g += "  %ss: ? = " + scale + "(%s, %c)\n";
      x = "%ss";
    }
    if (!mask.empty()) {
      g += "  %sm: ? = Add(" + x + ", %m)\n";
      x = "%sm";
    }
    g += "  %p: ? = Softmax(" + x + ") {axis = " + std::to_string(axis) + "}\n  %y: ? = MatMul(%p, %v)\n";
    g += return_scores ? "  return %y, %s\n}\n" : "  return %y\n}\n";
    return g;
  }
};

class FuseAttention : public ::testing::Test {
 protected:
  std::mt19937 rng{7};
  std::map<std::string, Tensor> inputs(const Attention &a, int64_t sq, int64_t sk) {
    int64_t b = std::stoll(a.b), h = std::stoll(a.h), d = std::stoll(a.d), dv = std::stoll(a.dv);
    std::map<std::string, Tensor> in = {{"q", random_f32({b, h, sq, d}, rng, -1, 1)},
                                        {"k", random_f32({b, h, sk, d}, rng, -1, 1)},
                                        {"v", random_f32({b, h, sk, dv}, rng, -2, 2)}};
    if (!a.mask.empty()) {
      std::vector<int64_t> ms;
      for (const std::string &m : a.mask) ms.push_back(m == a.sq ? sq : m == a.sk ? sk : std::stoll(m));
      in["m"] = random_f32(ms, rng, -3, 0);
    }
    return in;
  }
  void check(const Attention &a, int64_t sq, int64_t sk) {
    expect_o1_matches_o0(a.text(), inputs(a, sq, sk), 1e-5, 2e-6);
  }
};

TEST_F(FuseAttention, ScaledByDivAndByMulNoMask) {
  Attention a;
  EXPECT_EQ(o1_ops(a.text()), std::vector<std::string>{"FusedAttention"});
  check(a, 17, 17);
  a.scale = "Mul";
  a.c = "0.25";
  EXPECT_EQ(o1_ops(a.text()), std::vector<std::string>{"FusedAttention"});
  check(a, 17, 17);
  a.scale = "";
  EXPECT_EQ(o1_ops(a.text()), std::vector<std::string>{"FusedAttention"});
  check(a, 17, 17);
}

TEST_F(FuseAttention, HeadCountsAndSequenceLengths) {
  // Lengths below, at and past the vector width and the query block, and not multiples
  // of either; a key count different from the query count; a head size of 24 (a vector
  // and a remainder on AVX-512).
  for (auto [h, sq, sk, d] : std::vector<std::tuple<int, int, int, int>>{
           {1, 1, 1, 8}, {1, 5, 5, 16}, {4, 8, 8, 16}, {12, 33, 33, 64}, {2, 64, 64, 32}, {3, 7, 40, 24},
           {2, 50, 9, 64}}) {
    Attention a;
    a.b = "1";
    a.h = std::to_string(h);
    a.sq = std::to_string(sq);
    a.sk = std::to_string(sk);
    a.d = a.dv = std::to_string(d);
    a.c = std::to_string(std::sqrt(static_cast<double>(d)));
    SCOPED_TRACE(a.text());
    EXPECT_EQ(o1_ops(a.text()), std::vector<std::string>{"FusedAttention"});
    check(a, sq, sk);
  }
}

TEST_F(FuseAttention, HeadSizeOfValuesDiffers) {
  Attention a;
  a.dv = "40";
  a.sk = "23";
  EXPECT_EQ(o1_ops(a.text()), std::vector<std::string>{"FusedAttention"});
  check(a, 17, 23);
}

TEST_F(FuseAttention, Masks) {
  // Per key (BERT's padding mask), per query and key, per batch and head: each broadcast.
  for (std::vector<std::string> m : {std::vector<std::string>{"1", "1", "1", "17"}, {"17"}, {"17", "17"},
                                     {"2", "3", "17", "17"}, {"2", "1", "1", "17"}}) {
    Attention a;
    a.mask = m;
    a.scale = "Mul";
    a.c = "0.25";
    SCOPED_TRACE(a.text());
    EXPECT_EQ(o1_ops(a.text()), std::vector<std::string>{"FusedAttention"});
    check(a, 17, 17);
  }
}

TEST_F(FuseAttention, MaskWithMinusInfinity) {
  // Masked keys at -inf (as masked_fill writes them) get probability 0.
  Attention a;
  a.mask = {"1", "1", "1", "17"};
  std::string text = a.text();
  auto in = inputs(a, 17, 17);
  for (int j : {0, 3, 16}) in["m"].as<float>()[j] = -INFINITY;
  EXPECT_EQ(o1_ops(text), std::vector<std::string>{"FusedAttention"});
  expect_o1_matches_o0(text, in, 1e-5, 2e-6);
}

TEST_F(FuseAttention, SymbolicSequenceLength) {
  Attention a;
  a.sq = a.sk = "seq";
  a.mask = {"1", "1", "1", "seq"};
  EXPECT_EQ(o1_ops(a.text()), std::vector<std::string>{"FusedAttention"});
  for (int64_t s : {1, 9, 40}) check(a, s, s);
}

// torch.nn.MultiheadAttention as exported (batch_first = False): the heads split from
// [S, B, E] by Reshape to [S, B*H, D] and moved by Transposes; Q scaled before the
// product; the result transposed back. The transposes fold into the kernel.
std::string torch_mha(int s, int bh, int d) {
  std::string sh = "[" + std::to_string(s) + ", " + std::to_string(bh) + ", " + std::to_string(d) + "]";
  return "model {opset = 13}\ngraph g(%q: f32" + sh + ", %k: f32" + sh + ", %v: f32" + sh + ") {\n" +
         "  init %c: f32[] = [8]\n"
         "  %qt: ? = Transpose(%q) {perm = [1, 0, 2]}\n"
         "  %qs: ? = Div(%qt, %c)\n"
         "  %kt: ? = Transpose(%k) {perm = [1, 2, 0]}\n"
         "  %s: ? = MatMul(%qs, %kt)\n"
         "  %p: ? = Softmax(%s) {axis = -1}\n"
         "  %vt: ? = Transpose(%v) {perm = [1, 0, 2]}\n"
         "  %o: ? = MatMul(%p, %vt)\n"
         "  %y: ? = Transpose(%o) {perm = [1, 0, 2]}\n"
         "  return %y\n}\n";
}

TEST_F(FuseAttention, TorchMultiheadAttentionLayoutFoldsTransposes) {
  for (auto [s, bh] : std::vector<std::pair<int, int>>{{13, 12}, {32, 4}}) {
    std::string text = torch_mha(s, bh, 64);
    EXPECT_EQ(o1_ops(text), std::vector<std::string>{"FusedAttention"});
    auto cm = compile_at(text, 1);
    const Node &n = *cm->graph().nodes.at(0);
    EXPECT_EQ(n.attr_ints("q_perm"), (std::vector<int64_t>{1, 0, 2}));
    EXPECT_EQ(n.attr_ints("k_perm"), (std::vector<int64_t>{1, 0, 2}));
    EXPECT_EQ(n.attr_ints("out_perm"), (std::vector<int64_t>{1, 0, 2}));
    EXPECT_FLOAT_EQ(n.attr_f("scale", 0), 0.125f);
    std::vector<std::string> fused = n.attrs.at("fused_ops").strings;
    EXPECT_EQ(count(fused, "Transpose"), 4);
    EXPECT_EQ(count(fused, "MatMul"), 2);
    std::map<std::string, Tensor> in = {{"q", random_f32({s, bh, 64}, rng, -1, 1)},
                                        {"k", random_f32({s, bh, 64}, rng, -1, 1)},
                                        {"v", random_f32({s, bh, 64}, rng, -2, 2)}};
    expect_o1_matches_o0(text, in, 1e-5, 2e-6);
  }
}

TEST_F(FuseAttention, TransposeOfValuesThatMovesTheirLastAxisStays) {
  // V given as [b, h, dv, sk]: the kernel needs V's last axis contiguous, so that
  // Transpose stays a node of its own; the rest still fuses.
  std::string text =
      "model {opset = 13}\ngraph g(%q: f32[2, 3, 9, 16], %k: f32[2, 3, 9, 16], %vt: f32[2, 3, 16, 9]) {\n"
      "  %kt: ? = Transpose(%k) {perm = [0, 1, 3, 2]}\n  %s: ? = MatMul(%q, %kt)\n"
      "  %p: ? = Softmax(%s) {axis = -1}\n  %v: ? = Transpose(%vt) {perm = [0, 1, 3, 2]}\n"
      "  %y: ? = MatMul(%p, %v)\n  return %y\n}\n";
  auto ops = o1_ops(text);
  EXPECT_EQ(count(ops, "FusedAttention"), 1);
  EXPECT_EQ(count(ops, "Transpose"), 1);
  expect_o1_matches_o0(text, {{"q", random_f32({2, 3, 9, 16}, rng, -1, 1)},
                              {"k", random_f32({2, 3, 9, 16}, rng, -1, 1)},
                              {"vt", random_f32({2, 3, 16, 9}, rng, -2, 2)}},
                       1e-5, 2e-6);
}

TEST_F(FuseAttention, NotFusedWhenItDoesNotQualify) {
  // Softmax over another axis; the scores read outside the pattern; a mask that would
  // broadcast the scores to a larger shape.
  Attention other_axis;
  other_axis.axis = 2;
  EXPECT_EQ(count(o1_ops(other_axis.text()), "FusedAttention"), 0);
  check(other_axis, 17, 17);
  Attention shared;
  shared.return_scores = true;
  EXPECT_EQ(count(o1_ops(shared.text()), "FusedAttention"), 0);
  check(shared, 17, 17);
  Attention widening;
  widening.b = "1";
  widening.mask = {"2", "3", "17", "17"};
  EXPECT_EQ(count(o1_ops(widening.text()), "FusedAttention"), 0);
  check(widening, 17, 17);
}

TEST_F(FuseAttention, ReferenceLoweringMatchesTheSchedule) {
  // The node written directly (only kiln's text form can): -O0 runs the reference
  // lowering, -O1 the schedule; both against the unfused graph. Q is read through a
  // transpose, K is given as K^T, the output is transposed back, a per-key mask.
  std::string fused =
      "model {opset = 13}\ngraph g(%q: f32[11, 6, 16], %kt: f32[6, 16, 11], %v: f32[6, 11, 16], %m: f32[11]) {\n"
      "  %y: ? = FusedAttention(%q, %kt, %v, %m) {q_perm = [1, 0, 2], k_perm = [0, 2, 1], out_perm = [1, 0, 2], "
      "scale = 0.25}\n  return %y\n}\n";
  std::string unfused =
      "model {opset = 13}\ngraph g(%q: f32[11, 6, 16], %kt: f32[6, 16, 11], %v: f32[6, 11, 16], %m: f32[11]) {\n"
      "  init %c: f32[] = [0.25]\n  %qt: ? = Transpose(%q) {perm = [1, 0, 2]}\n  %s: ? = MatMul(%qt, %kt)\n"
      "  %ss: ? = Mul(%s, %c)\n  %sm: ? = Add(%ss, %m)\n  %p: ? = Softmax(%sm) {axis = -1}\n"
      "  %o: ? = MatMul(%p, %v)\n  %y: ? = Transpose(%o) {perm = [1, 0, 2]}\n  return %y\n}\n";
  std::map<std::string, Tensor> in = {{"q", random_f32({11, 6, 16}, rng, -1, 1)},
                                      {"kt", random_f32({6, 16, 11}, rng, -1, 1)},
                                      {"v", random_f32({6, 11, 16}, rng, -2, 2)},
                                      {"m", random_f32({11}, rng, -3, 0)}};
  Tensor want = compile_at(unfused, 0)->run(in)[0];
  for (int level : {0, 1}) {
    test::expect_close(want, compile_at(fused, level)->run(in)[0], 1e-5, 2e-6, "-O" + std::to_string(level));
  }
}

TEST_F(FuseAttention, ModelsCannotNameTheFusedOp) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(13);
  onnx::GraphProto *g = m.mutable_graph();
  g->set_name("g");
  for (const char *name : {"q", "k", "v"}) {
    auto *t = g->add_input();
    t->set_name(name);
    t->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
    for (int d : {2, 4, 8}) t->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(d);
  }
  onnx::NodeProto *n = g->add_node();
  n->set_op_type("FusedAttention");
  for (const char *name : {"q", "k", "v"}) n->add_input(name);
  n->add_output("y");
  g->add_output()->set_name("y");
  std::string err = test::user_error_of([&] { load_onnx_bytes(m.SerializeAsString(), ".", "fused.onnx"); });
  EXPECT_NE(err.find("unknown op 'FusedAttention'"), std::string::npos) << err;
}

}  // namespace
}  // namespace kiln
