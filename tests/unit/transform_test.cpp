// Data-movement ops: symbolic shape inference through shape computations (the
// Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains of exported transformers),
// dynamic-shape execution, and errors on bad models.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <numeric>

#include "compiler/compiler.h"
#include "graph_builder.h"
#include "graph/graph.h"
#include "passes/passes.h"
#include "support/error.h"

namespace kiln {
namespace {

constexpr int kOpset = 13;

using test::set_int, test::set_ints, test::user_error_of;

struct Builder : test::GraphBuilder {
  Builder() : GraphBuilder(kOpset, test::NodeStyle::anonymous()) {}
};

Tensor iota_f32(std::vector<int64_t> shape) {
  Tensor t(DType::F32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.as<float>()[i] = static_cast<float>(i);
  return t;
}

// x[batch, seq, H * D] -> Reshape(x, Concat(Shape(x)[0], Shape(x)[1], [H, D])): the
// multi-head split of an exported BERT.
Value *heads_reshape(Builder &b, Value *x, int64_t heads, int64_t head_dim) {
  Value *shape = b.op(OpKind::Shape, {x});
  Value *batch = b.op(OpKind::Gather, {shape, b.ints_constant({0}, {})});
  Value *seq = b.op(OpKind::Gather, {shape, b.ints_constant({1}, {})});
  Value *axes = b.ints_constant({0}, {1});
  Value *b1 = b.op(OpKind::Unsqueeze, {batch, axes});
  Value *s1 = b.op(OpKind::Unsqueeze, {seq, axes});
  Node *cat = b.node(OpKind::Concat, {b1, s1, b.ints_constant({heads, head_dim}, {2})});
  set_int(cat, "axis", 0);
  return b.op(OpKind::Reshape, {x, cat->outputs[0]});
}

// One node at `opset` on the given inputs (graph inputs, or constants where `constant`).
struct NodeCase {
  OpKind kind;
  int opset = kOpset;
  std::vector<std::pair<Tensor, bool>> inputs;  // (value, is constant)
  std::map<std::string, Attribute> attrs;
  size_t outputs = 1;
};

std::vector<Tensor> run_node(const NodeCase &nc) {
  Builder b;
  std::map<std::string, Tensor> feeds;
  std::vector<Value *> ins;
  for (size_t i = 0; i < nc.inputs.size(); ++i) {
    const auto &[t, is_const] = nc.inputs[i];
    if (!t.defined()) {
      ins.push_back(nullptr);
      continue;
    }
    std::string name = "in" + std::to_string(i);
    Value *v = is_const ? b.g.new_value(name) : b.input(name, t.dtype(), shape_from(t.shape()));
    if (is_const) {
      v->constant = t;
      v->dtype = t.dtype();
      v->shape = shape_from(t.shape());
      v->has_shape = true;
      b.g.initializers.push_back(v);
    } else {
      feeds[name] = t;
    }
    ins.push_back(v);
  }
  Node *n = b.node(nc.kind, ins, nc.outputs);
  n->opset = nc.opset;
  n->attrs = nc.attrs;
  b.m.opset = nc.opset;
  b.g.outputs = n->outputs;
  return CompiledModel::compile(std::move(b.m))->run(feeds);
}

Attribute ints_attr(std::vector<int64_t> v) {
  Attribute a;
  a.kind = Attribute::Kind::Ints;
  a.ints = std::move(v);
  return a;
}

Attribute int_attr(int64_t v) {
  Attribute a;
  a.kind = Attribute::Kind::Int;
  a.i = v;
  return a;
}

Attribute string_attr(std::string v) {
  Attribute a;
  a.kind = Attribute::Kind::String;
  a.s = std::move(v);
  return a;
}

std::vector<float> floats_of(const Tensor &t) {
  std::vector<float> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(static_cast<float>(t.get_f64(i)));
  return v;
}

using Floats = std::vector<float>;
using Dims = std::vector<int64_t>;

TEST(TransformShapes, ShapeGatherConcatReshapeStaysSymbolic) {
  Builder b;
  Dim batch = Dim::sym("batch"), seq = Dim::sym("seq");
  Value *x = b.input("x", DType::F32, {batch, seq, 768});
  Value *y = heads_reshape(b, x, 12, 64);
  b.g.outputs = {y};
  infer_shapes(b.g);
  ASSERT_TRUE(y->has_shape);
  EXPECT_TRUE(shapes_same(y->shape, {batch, seq, 12, 64})) << shape_str(y->shape);
  // The target's contents are symbolic too.
  Value *target = y->producer->inputs[1];
  ASSERT_TRUE(target->sym_values);
  EXPECT_TRUE(shapes_same(*target->sym_values, {batch, seq, 12, 64}));
}

TEST(TransformShapes, ReshapeInfersMinusOneSymbolically) {
  Builder b;
  Dim batch = Dim::sym("batch"), seq = Dim::sym("seq");
  Value *x = b.input("x", DType::F32, {batch, seq, 768});
  Value *y = b.op(OpKind::Reshape, {x, b.ints_constant({0, 0, -1, 64}, {4})});
  Value *z = b.op(OpKind::Reshape, {x, b.ints_constant({-1, 768}, {2})});
  Node *fl = b.node(OpKind::Flatten, {x});
  set_int(fl, "axis", 2);
  b.g.outputs = {y, z, fl->outputs[0]};
  infer_shapes(b.g);
  EXPECT_TRUE(shapes_same(y->shape, {batch, seq, 12, 64})) << shape_str(y->shape);
  EXPECT_TRUE(shapes_same(z->shape, {batch * seq, 768})) << shape_str(z->shape);
  EXPECT_TRUE(shapes_same(fl->outputs[0]->shape, {batch * seq, 768})) << shape_str(fl->outputs[0]->shape);
}

TEST(TransformShapes, UnknownTargetGivesFreshDims) {
  Builder b;
  Value *x = b.input("x", DType::F32, {6, 4});
  Value *t = b.input("t", DType::I64, {3});
  Value *y = b.op(OpKind::Reshape, {x, t});
  b.g.outputs = {y};
  infer_shapes(b.g);
  ASSERT_TRUE(y->has_shape);
  ASSERT_EQ(y->shape.size(), 3u);
  for (const Dim &d : y->shape) EXPECT_EQ(d.kind(), Dim::Kind::Sym);
}

TEST(TransformShapes, SliceAndRangeOfSymbolicDims) {
  Builder b;
  Dim batch = Dim::sym("batch"), seq = Dim::sym("seq");
  Value *x = b.input("x", DType::F32, {batch, seq, 8});
  int64_t big = std::numeric_limits<int64_t>::max();
  // x[:, 1:], x[:, -1:], x[..., 2:6]
  Value *tail = b.op(OpKind::Slice, {x, b.ints_constant({1}, {1}), b.ints_constant({big}, {1}), b.ints_constant({1}, {1})});
  Value *last = b.op(OpKind::Slice, {x, b.ints_constant({-1}, {1}), b.ints_constant({big}, {1}), b.ints_constant({1}, {1})});
  Value *mid = b.op(OpKind::Slice, {x, b.ints_constant({2}, {1}), b.ints_constant({6}, {1}), b.ints_constant({-1}, {1})});
  // Shape(x)[1:2] feeds Range(0, seq, 1) via Squeeze.
  Value *shape = b.op(OpKind::Shape, {x});
  Value *s = b.op(OpKind::Slice, {shape, b.ints_constant({1}, {1}), b.ints_constant({2}, {1})});
  Value *n = b.op(OpKind::Squeeze, {s, b.ints_constant({0}, {1})});
  Value *r = b.op(OpKind::Range, {b.ints_constant({0}, {}), n, b.ints_constant({1}, {})});
  b.g.outputs = {tail, last, mid, r};
  infer_shapes(b.g);
  EXPECT_TRUE(shapes_same(tail->shape, {batch, dim_max(seq - 1, 0), 8})) << shape_str(tail->shape);
  EXPECT_TRUE(shapes_same(last->shape, {batch, dim_min(1, seq), 8})) << shape_str(last->shape);
  EXPECT_TRUE(shapes_same(mid->shape, {batch, seq, 4})) << shape_str(mid->shape);
  ASSERT_TRUE(s->sym_values);
  EXPECT_TRUE(shapes_same(*s->sym_values, {seq}));
  EXPECT_TRUE(shapes_same(r->shape, {seq})) << shape_str(r->shape);
}

TEST(TransformRun, DynamicShapesRunWithDifferentSizes) {
  Builder b;
  Value *x = b.input("x", DType::F32, {Dim::sym("batch"), Dim::sym("seq"), 6});
  Value *y = heads_reshape(b, x, 2, 3);
  Node *tr = b.node(OpKind::Transpose, {y});
  set_ints(tr, "perm", {0, 2, 1, 3});
  // Then the last time step of each head, reversed along the head dim.
  int64_t big = std::numeric_limits<int64_t>::max();
  Value *last = b.op(OpKind::Slice, {tr->outputs[0], b.ints_constant({-1, big}, {2}), b.ints_constant({big, -big}, {2}),
                                     b.ints_constant({2, 3}, {2}), b.ints_constant({1, -1}, {2})});
  b.g.outputs = {tr->outputs[0], last};
  auto cm = CompiledModel::compile(std::move(b.m));
  for (int64_t batch : {1, 3}) {
    for (int64_t seq : {1, 5}) {
      Tensor in = iota_f32({batch, seq, 6});
      auto outs = cm->run({{"x", in}});
      ASSERT_EQ(outs[0].shape(), (std::vector<int64_t>{batch, 2, seq, 3}));
      ASSERT_EQ(outs[1].shape(), (std::vector<int64_t>{batch, 2, 1, 3}));
      const float *t = outs[0].as<float>(), *l = outs[1].as<float>();
      for (int64_t n = 0; n < batch; ++n) {
        for (int64_t h = 0; h < 2; ++h) {
          for (int64_t s = 0; s < seq; ++s) {
            for (int64_t d = 0; d < 3; ++d) {
              float want = static_cast<float>(((n * seq + s) * 2 + h) * 3 + d);
              EXPECT_EQ(t[((n * 2 + h) * seq + s) * 3 + d], want);
              if (s == seq - 1) EXPECT_EQ(l[(n * 2 + h) * 3 + (2 - d)], want);
            }
          }
        }
      }
    }
  }
}

TEST(TransformRun, ConcatSplitPadExpandOnSymbolicDims) {
  Builder b;
  Dim n = Dim::sym("n");
  Value *x = b.input("x", DType::F32, {n, 2});
  Value *z = b.input("z", DType::F32, {n, 1});
  Node *cat = b.node(OpKind::Concat, {x, z});
  set_int(cat, "axis", 1);                                              // [n, 3]
  Node *sp = b.node(OpKind::Split, {cat->outputs[0]}, 3);               // 3 x [n, 1]
  set_int(sp, "axis", 1);
  Value *padded = b.op(OpKind::Pad, {sp->outputs[2], b.ints_constant({1, 0, 0, 2}, {4})});  // [n + 1, 3]
  Value *ex = b.op(OpKind::Expand, {b.ints_constant({7}, {1}), b.op(OpKind::Shape, {padded})});
  b.g.outputs = {padded, ex};
  infer_shapes(b.g);
  EXPECT_TRUE(shapes_same(padded->shape, {n + 1, 3})) << shape_str(padded->shape);
  EXPECT_TRUE(shapes_same(ex->shape, {n + 1, 3})) << shape_str(ex->shape);
  auto cm = CompiledModel::compile(std::move(b.m));
  for (int64_t rows : {1, 4}) {
    Tensor zt(DType::F32, {rows, 1});
    for (int64_t r = 0; r < rows; ++r) zt.as<float>()[r] = static_cast<float>(100 + r);
    auto outs = cm->run({{"x", iota_f32({rows, 2})}, {"z", zt}});
    ASSERT_EQ(outs[0].shape(), (Dims{rows + 1, 3}));
    ASSERT_EQ(outs[1].shape(), (Dims{rows + 1, 3}));
    for (int64_t r = 0; r <= rows; ++r) {
      EXPECT_EQ(outs[0].as<float>()[r * 3], r == 0 ? 0.0f : static_cast<float>(99 + r));
      EXPECT_EQ(outs[0].as<float>()[r * 3 + 1], 0.0f);
      EXPECT_EQ(outs[1].get_i64(r * 3 + 2), 7);
    }
  }
}

TEST(TransformRun, DataDependentOutputShapes) {
  Builder b;
  Value *x = b.input("x", DType::F32, {4, 3});
  Value *cond = b.input("cond", DType::Bool, {Dim::sym("n")});
  Node *cp = b.node(OpKind::Compress, {x, cond});
  set_int(cp, "axis", 0);
  Value *reps = b.input("reps", DType::I64, {2});
  Value *tiled = b.op(OpKind::Tile, {x, reps});
  Value *idx = b.input("idx", DType::I64, {2});
  Value *g = b.op(OpKind::Gather, {x, idx});
  // Squeeze without axes of a symbolic dim: even the rank is known only at run time.
  Value *sq = b.op(OpKind::Squeeze, {b.input("s", DType::F32, {1, Dim::sym("m"), 2})});
  b.g.outputs = {cp->outputs[0], tiled, g, sq};
  auto cm = CompiledModel::compile(std::move(b.m));
  Tensor c(DType::Bool, {3});
  c.as<uint8_t>()[0] = 0;
  c.as<uint8_t>()[1] = 1;
  c.as<uint8_t>()[2] = 1;
  auto outs = cm->run({{"x", iota_f32({4, 3})},
                       {"cond", c},
                       {"reps", Tensor::from_i64({2, 1}, {2})},
                       {"idx", Tensor::from_i64({-1, 0}, {2})},
                       {"s", iota_f32({1, 1, 2})}});
  ASSERT_EQ(outs[0].shape(), (std::vector<int64_t>{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(outs[0].as<float>()[i], static_cast<float>(i + 3));
  ASSERT_EQ(outs[1].shape(), (std::vector<int64_t>{8, 3}));
  for (int i = 0; i < 24; ++i) EXPECT_EQ(outs[1].as<float>()[i], static_cast<float>(i % 12));
  ASSERT_EQ(outs[2].shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(outs[2].as<float>()[0], 9.0f);
  EXPECT_EQ(outs[2].as<float>()[3], 0.0f);
  EXPECT_EQ(outs[3].shape(), (std::vector<int64_t>{2}));
  EXPECT_EQ(outs[3].as<float>()[1], 1.0f);
}


TEST(TransformRun, AttributeFormsOfOldOpsets) {
  Tensor x = iota_f32({2, 3});
  // Slice-1: starts/ends/axes attributes.
  auto y = run_node({OpKind::Slice, 9, {{x, false}},
                     {{"starts", ints_attr({1, -2})}, {"ends", ints_attr({100, -1})}, {"axes", ints_attr({1, 0})}}});
  EXPECT_EQ(y[0].shape(), (Dims{1, 2}));
  EXPECT_EQ(floats_of(y[0]), (Floats{1, 2}));
  // Pad-2: pads and value attributes.
  y = run_node({OpKind::Pad, 2, {{x, false}}, {{"pads", ints_attr({0, 1, 1, -1})}, {"value", [] {
                                                 Attribute a;
                                                 a.kind = Attribute::Kind::Float;
                                                 a.f = 9;
                                                 return a;
                                               }()}}});
  EXPECT_EQ(y[0].shape(), (Dims{3, 3}));
  EXPECT_EQ(floats_of(y[0]), (Floats{9, 0, 1, 9, 3, 4, 9, 9, 9}));
  // Split-11: split attribute; Squeeze-11 and Unsqueeze-11: axes attributes.
  y = run_node({OpKind::Split, 11, {{x, false}}, {{"axis", int_attr(1)}, {"split", ints_attr({1, 2})}}, 2});
  EXPECT_EQ(floats_of(y[0]), (Floats{0, 3}));
  EXPECT_EQ(floats_of(y[1]), (Floats{1, 2, 4, 5}));
  y = run_node({OpKind::Unsqueeze, 11, {{x, false}}, {{"axes", ints_attr({-1, 0})}}});
  EXPECT_EQ(y[0].shape(), (Dims{1, 2, 3, 1}));
  y = run_node({OpKind::Squeeze, 11, {{y[0], false}}, {{"axes", ints_attr({0, 3})}}});
  EXPECT_EQ(y[0].shape(), (Dims{2, 3}));
  // Split-13 without sizes: even parts.
  y = run_node({OpKind::Split, 13, {{iota_f32({6}), false}}, {}, 3});
  EXPECT_EQ(floats_of(y[2]), (Floats{4, 5}));
}

TEST(TransformRun, SplitWithAnOmittedOutput) {
  Builder b;
  Value *x = b.input("x", DType::F32, {7});
  Node *n = b.node(OpKind::Split, {x, b.ints_constant({2, 3, 2}, {3})}, 3);
  n->outputs[1] = nullptr;
  b.g.outputs = {n->outputs[0], n->outputs[2]};
  auto outs = CompiledModel::compile(std::move(b.m))->run({{"x", iota_f32({7})}});
  EXPECT_EQ(floats_of(outs[0]), (Floats{0, 1}));
  EXPECT_EQ(floats_of(outs[1]), (Floats{5, 6}));
}

TEST(TransformRun, PadModes) {
  Tensor x = iota_f32({3});
  Tensor pads = Tensor::from_i64({2, 3}, {2});
  auto run = [&](const char *mode, bool const_pads) {
    return floats_of(run_node({OpKind::Pad, 13, {{x, false}, {pads, const_pads}}, {{"mode", string_attr(mode)}}})[0]);
  };
  for (bool const_pads : {true, false}) {
    EXPECT_EQ(run("reflect", const_pads), (Floats{2, 1, 0, 1, 2, 1, 0, 1}));
    EXPECT_EQ(run("edge", const_pads), (Floats{0, 0, 0, 1, 2, 2, 2, 2}));
    EXPECT_EQ(run("wrap", const_pads), (Floats{1, 2, 0, 1, 2, 0, 1, 2}));
    EXPECT_EQ(run("constant", const_pads), (Floats{0, 0, 0, 1, 2, 0, 0, 0}));
  }
}

TEST(TransformRun, IndexingWithNegativeIndicesAndBatchDims) {
  // GatherND, batch_dims = 1: data [2, 2, 2], indices [2, 1] -> out [2, 2].
  Tensor data = iota_f32({2, 2, 2});
  auto y = run_node({OpKind::GatherND, 13, {{data, false}, {Tensor::from_i64({-1, 0}, {2, 1}), false}},
                     {{"batch_dims", int_attr(1)}}});
  EXPECT_EQ(y[0].shape(), (Dims{2, 2}));
  EXPECT_EQ(floats_of(y[0]), (Floats{2, 3, 4, 5}));
  // ScatterND with reduction max (opset 18) and a negative index.
  y = run_node({OpKind::ScatterND, 18,
                {{iota_f32({4}), false}, {Tensor::from_i64({-1, 0, -1}, {3, 1}), false},
                 {[] {
                    Tensor u(DType::F32, {3});
                    u.as<float>()[0] = 1;
                    u.as<float>()[1] = 7;
                    u.as<float>()[2] = 9;
                    return u;
                  }(),
                  false}},
                {{"reduction", string_attr("max")}}});
  EXPECT_EQ(floats_of(y[0]), (Floats{7, 1, 2, 9}));
  // OneHot with float indices and depth; negative index counts from the end.
  Tensor ind(DType::F32, {3});
  ind.as<float>()[0] = 0;
  ind.as<float>()[1] = -1;
  ind.as<float>()[2] = 1.7f;
  Tensor depth(DType::F32, {});
  *depth.as<float>() = 3;
  Tensor vals = iota_f32({2});
  y = run_node({OpKind::OneHot, 13, {{ind, false}, {depth, true}, {vals, true}}, {{"axis", int_attr(0)}}});
  EXPECT_EQ(y[0].shape(), (Dims{3, 3}));
  EXPECT_EQ(floats_of(y[0]), (Floats{1, 0, 0, 0, 0, 1, 0, 1, 0}));
}

TEST(TransformRun, CopiesKeepEveryDtypeBitExact) {
  Tensor h(DType::F16, {2, 2}), bf(DType::BF16, {2, 2}), bl(DType::Bool, {2, 2});
  for (int i = 0; i < 4; ++i) {
    h.as<uint16_t>()[i] = float_to_half(0.1f * static_cast<float>(i));
    bf.as<uint16_t>()[i] = float_to_bf16(0.3f * static_cast<float>(i));
    bl.as<uint8_t>()[i] = static_cast<uint8_t>(i % 3 == 0);
  }
  for (const Tensor &t : {h, bf, bl}) {
    auto y = run_node({OpKind::Transpose, 13, {{t, false}}, {}});
    auto z = run_node({OpKind::Concat, 13, {{t, false}, {t, true}}, {{"axis", int_attr(0)}}});
    size_t es = dtype_size(t.dtype());
    const auto *src = static_cast<const uint8_t *>(t.data());
    const auto *ty = static_cast<const uint8_t *>(y[0].data());
    const auto *tz = static_cast<const uint8_t *>(z[0].data());
    for (int i = 0; i < 2; ++i) {
      for (int j = 0; j < 2; ++j) {
        EXPECT_EQ(std::memcmp(ty + (j * 2 + i) * es, src + (i * 2 + j) * es, es), 0) << dtype_name(t.dtype());
      }
    }
    EXPECT_EQ(std::memcmp(tz, src, 4 * es), 0);
    EXPECT_EQ(std::memcmp(tz + 4 * es, src, 4 * es), 0);
  }
}

TEST(TransformErrors, BadModelsGiveUserErrors) {
  auto infer_one = [](auto build) {
    Builder b;
    build(b);
    infer_shapes(b.g);
  };
  EXPECT_NE(user_error_of([&] {
              infer_one([](Builder &b) {
                Node *n = b.node(OpKind::Transpose, {b.input("x", DType::F32, {2, 3})});
                set_ints(n, "perm", {0, 0});
              });
            }).find("repeated"),
            std::string::npos);
  EXPECT_NE(user_error_of([&] {
              infer_one([](Builder &b) {
                b.op(OpKind::Reshape, {b.input("x", DType::F32, {2, 3}), b.ints_constant({4, -1}, {2})});
              });
            }).find("cannot reshape"),
            std::string::npos);
  EXPECT_NE(user_error_of([&] {
              infer_one([](Builder &b) {
                Node *n = b.node(OpKind::Concat, {b.input("x", DType::F32, {2, 3}), b.input("y", DType::F32, {2})});
                set_int(n, "axis", 0);
              });
            }).find("rank"),
            std::string::npos);
  EXPECT_NE(user_error_of([&] {
              infer_one([](Builder &b) {
                b.node(OpKind::Split, {b.input("x", DType::F32, {5}), b.ints_constant({2, 2}, {2})}, 2);
              });
            }).find("split sizes sum to 4"),
            std::string::npos);
  EXPECT_NE(user_error_of([&] {
              infer_one([](Builder &b) {
                b.op(OpKind::Squeeze, {b.input("x", DType::F32, {2, 3}), b.ints_constant({1}, {1})});
              });
            }).find("cannot squeeze"),
            std::string::npos);
  EXPECT_NE(user_error_of([&] {
              infer_one([](Builder &b) {
                Node *n = b.node(OpKind::DepthToSpace, {b.input("x", DType::F32, {1, 6, 2, 2})});
                set_int(n, "blocksize", 2);
              });
            }).find("divisible"),
            std::string::npos);
  // Indices known only at run time are checked there.
  EXPECT_NE(user_error_of([&] {
              run_node({OpKind::Gather, 13, {{iota_f32({4}), false}, {Tensor::from_i64({1, 4}, {2}), false}}, {}});
            }).find("index 4 is out of range"),
            std::string::npos);
}

}  // namespace
}  // namespace kiln
