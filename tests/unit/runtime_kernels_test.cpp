// Runtime kernels (compiler/kernels_*.cpp): data-dependent output shapes as fresh
// symbols at compile time and concrete at run time, tie ordering, exact integers,
// seeded random generators, and errors on bad inputs.
#include <gtest/gtest.h>

#include "compiler/compiler.h"
#include "graph_builder.h"
#include "graph/graph.h"
#include "passes/passes.h"
#include "support/error.h"

namespace kiln {
namespace {

constexpr int kOpset = 13;

using test::f32, test::set_int, test::user_error_of;

struct Builder : test::GraphBuilder {
  Builder() : GraphBuilder(kOpset, test::NodeStyle::op_named_outputs()) {}
};

std::vector<int64_t> ints(const Tensor &t) { return t.to_i64_vector(); }
std::vector<double> doubles(const Tensor &t) {
  std::vector<double> r;
  for (int64_t i = 0; i < t.numel(); ++i) r.push_back(t.get_f64(i));
  return r;
}

TEST(TopK, KFromInputIsSymbolicUntilRunTime) {
  Builder b;
  Value *x = b.input("x", DType::F32, {Dim::sym("n"), 6});
  Value *k = b.input("k", DType::I64, {1});
  Node *n = b.node(OpKind::TopK, {x, k}, 2);
  infer_shapes(b.g);
  ASSERT_TRUE(n->outputs[0]->has_shape);
  EXPECT_FALSE(n->outputs[0]->shape[1].is_const());
  EXPECT_TRUE(n->outputs[0]->shape[0].same_as(Dim::sym("n")));
  EXPECT_EQ(n->outputs[1]->dtype, DType::I64);
}

TEST(TopK, TiesKeepTheLowerIndexFirst) {
  for (int64_t largest : {1, 0}) {
    Builder b;
    Node *n = b.node(OpKind::TopK, {b.input("x", DType::F32, {1, 6}), b.input("k", DType::I64, {1})}, 2);
    set_int(n, "largest", largest);
    auto cm = CompiledModel::compile(b.m);
    auto out = cm->run({{"x", f32({2, 5, 2, 5, 1, 2}, {1, 6})}, {"k", Tensor::from_i64({4}, {1})}});
    EXPECT_EQ(out[0].shape(), (std::vector<int64_t>{1, 4}));
    if (largest) {
      EXPECT_EQ(doubles(out[0]), (std::vector<double>{5, 5, 2, 2}));
      EXPECT_EQ(ints(out[1]), (std::vector<int64_t>{1, 3, 0, 2}));
    } else {
      EXPECT_EQ(doubles(out[0]), (std::vector<double>{1, 2, 2, 2}));
      EXPECT_EQ(ints(out[1]), (std::vector<int64_t>{4, 0, 2, 5}));
    }
  }
}

TEST(TopK, IntegersCompareExactlyAndKIsChecked) {
  Builder b;
  Node *n = b.node(OpKind::TopK, {b.input("x", DType::I64, {3}), b.input("k", DType::I64, {1})}, 2);
  set_int(n, "axis", 0);
  auto cm = CompiledModel::compile(b.m);
  // Neighbours above 2^53 are indistinguishable as doubles.
  int64_t big = (int64_t{1} << 53) + 1;
  auto out = cm->run({{"x", Tensor::from_i64({big - 1, big, 3}, {3})}, {"k", Tensor::from_i64({1}, {1})}});
  EXPECT_EQ(ints(out[0]), (std::vector<int64_t>{big}));
  EXPECT_EQ(ints(out[1]), (std::vector<int64_t>{1}));
  std::string msg = user_error_of([&] {
    cm->run({{"x", Tensor::from_i64({1, 2, 3}, {3})}, {"k", Tensor::from_i64({4}, {1})}});
  });
  EXPECT_NE(msg.find("out of range"), std::string::npos) << msg;
}

TEST(NonZero, CoordinatesInRowMajorOrder) {
  Builder b;
  Node *n = b.node(OpKind::NonZero, {b.input("x", DType::F32, {2, 3})}, 1);
  infer_shapes(b.g);
  EXPECT_TRUE(n->outputs[0]->shape[0].is_const() && n->outputs[0]->shape[0].value() == 2);
  EXPECT_FALSE(n->outputs[0]->shape[1].is_const());
  auto cm = CompiledModel::compile(b.m);
  auto out = cm->run({{"x", f32({0, 1, 0, 2, 0, -3}, {2, 3})}});
  EXPECT_EQ(out[0].shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(ints(out[0]), (std::vector<int64_t>{0, 1, 1, 1, 0, 2}));
}

TEST(Unique, UnsortedSlicesAlongAnAxis) {
  Builder b;
  Node *n = b.node(OpKind::Unique, {b.input("x", DType::F32, {2, 4})}, 4);
  set_int(n, "axis", 1);
  set_int(n, "sorted", 0);
  auto cm = CompiledModel::compile(b.m);
  // Columns: (3,1) (0,0) (3,1) (0,5): unique in order of first occurrence.
  auto out = cm->run({{"x", f32({3, 0, 3, 0, 1, 0, 1, 5}, {2, 4})}});
  EXPECT_EQ(out[0].shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(doubles(out[0]), (std::vector<double>{3, 0, 0, 1, 0, 5}));
  EXPECT_EQ(ints(out[1]), (std::vector<int64_t>{0, 1, 3}));
  EXPECT_EQ(ints(out[2]), (std::vector<int64_t>{0, 1, 0, 2}));
  EXPECT_EQ(ints(out[3]), (std::vector<int64_t>{2, 1, 1}));
}

TEST(NonMaxSuppression, SelectsPerClassAndDefaultsToNoOutput) {
  Builder b;
  Value *boxes = b.input("boxes", DType::F32, {1, 3, 4});
  Value *scores = b.input("scores", DType::F32, {1, 1, 3});
  Value *mo = b.input("max", DType::I64, {1});
  Value *iou = b.input("iou", DType::F32, {1});
  Node *n = b.node(OpKind::NonMaxSuppression, {boxes, scores, mo, iou}, 1);
  infer_shapes(b.g);
  EXPECT_FALSE(n->outputs[0]->shape[0].is_const());
  auto cm = CompiledModel::compile(b.m);
  // Box 1 overlaps box 0 (IoU 0.81); box 2 is apart.
  Tensor bx = f32({0, 0, 1, 1, 0, 0, 0.9f, 0.9f, 5, 5, 6, 6}, {1, 3, 4});
  Tensor sc = f32({0.5f, 0.9f, 0.1f}, {1, 1, 3});
  auto out = cm->run({{"boxes", bx}, {"scores", sc}, {"max", Tensor::from_i64({5}, {1})}, {"iou", f32({0.5f}, {1})}});
  EXPECT_EQ(out[0].shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(ints(out[0]), (std::vector<int64_t>{0, 0, 1, 0, 0, 2}));
  out = cm->run({{"boxes", bx}, {"scores", sc}, {"max", Tensor::from_i64({0}, {1})}, {"iou", f32({0.5f}, {1})}});
  EXPECT_EQ(out[0].shape(), (std::vector<int64_t>{0, 3}));
}

TEST(Random, SeededGeneratorsRepeatAndStayInRange) {
  Builder b;
  Node *n = b.node(OpKind::RandomUniformLike, {b.input("x", DType::F64, {100})}, 1);
  n->attrs["seed"].kind = Attribute::Kind::Float;
  n->attrs["seed"].f = 3;
  n->attrs["low"].kind = Attribute::Kind::Float;
  n->attrs["low"].f = -2;
  n->attrs["high"].kind = Attribute::Kind::Float;
  n->attrs["high"].f = -1;
  auto cm = CompiledModel::compile(b.m);
  Tensor x(DType::F64, {100});
  auto a = cm->run({{"x", x}}), c = cm->run({{"x", x}});
  EXPECT_EQ(a[0].dtype(), DType::F64);
  EXPECT_EQ(doubles(a[0]), doubles(c[0]));
  for (double v : doubles(a[0])) {
    EXPECT_GE(v, -2);
    EXPECT_LT(v, -1);
  }
}

TEST(StringNormalizer, DropsStopwordsIgnoringCase) {
  Builder b;
  Node *n = b.node(OpKind::StringNormalizer, {b.input("x", DType::String, {3})}, 1);
  n->attrs["stopwords"].kind = Attribute::Kind::Strings;
  n->attrs["stopwords"].strings = {"the"};
  n->attrs["case_change_action"].kind = Attribute::Kind::String;
  n->attrs["case_change_action"].s = "LOWER";
  auto cm = CompiledModel::compile(b.m);
  Tensor x(DType::String, {3});
  x.strings() = {"The", "Quick", "FOX"};
  auto out = cm->run({{"x", x}});
  EXPECT_EQ(out[0].strings(), (std::vector<std::string>{"quick", "fox"}));
}

}  // namespace
}  // namespace kiln
