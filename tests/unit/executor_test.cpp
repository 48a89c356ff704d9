// The executor runs one compiled model at every value of its symbolic dims, and checks
// inputs at run time.
#include <gtest/gtest.h>

#include "compiler/compiler.h"
#include "support/error.h"

#include "graph_builder.h"

namespace kiln {
namespace {

// x: f32[batch, 3] -> Relu -> MatMul(w: 3x2) -> Add(b: 2) -> y: f32[batch, 2]
Model small_model() {
  Model m;
  m.opset = 13;
  m.graph = std::make_shared<Graph>();
  Graph &g = *m.graph;
  Value *x = test::input(g, "x", DType::F32, {Dim::sym("batch"), Dim(3)});
  Tensor wt(DType::F32, {3, 2});
  for (int i = 0; i < 6; ++i) wt.as<float>()[i] = static_cast<float>(i + 1);
  Value *w = test::constant(g, "w", wt);
  Value *b = test::constant(g, "b", test::f32({0.5f, -0.5f}, {2}));
  auto add = [&](OpKind k, std::vector<Value *> ins, const std::string &out) {
    Node *n = g.new_node(k, "");
    n->opset = 13;
    n->inputs = ins;
    Value *o = g.new_value(out);
    o->producer = n;
    n->outputs = {o};
    return o;
  };
  Value *r = add(OpKind::Relu, {x}, "r");
  Value *mm = add(OpKind::MatMul, {r, w}, "mm");
  Value *y = add(OpKind::Add, {mm, b}, "y");
  g.outputs.push_back(y);
  return m;
}

Tensor input(int batch) {
  Tensor t(DType::F32, {batch, 3});
  for (int i = 0; i < t.numel(); ++i) t.as<float>()[i] = static_cast<float>(i % 5) - 1.0f;
  return t;
}

TEST(Executor, SymbolicShapeInferredAtCompileTime) {
  auto cm = CompiledModel::compile(small_model());
  const Value *y = cm->graph().outputs[0];
  ASSERT_TRUE(y->has_shape);
  EXPECT_EQ(shape_str(y->shape), "[batch, 2]");
}

TEST(Executor, OneCompiledModelServesEveryBatch) {
  auto cm = CompiledModel::compile(small_model());
  for (int batch : {1, 3, 7}) {
    Tensor x = input(batch);
    auto out = cm->run({{"x", x}});
    ASSERT_EQ(out.size(), 1u);
    ASSERT_EQ(out[0].shape(), (std::vector<int64_t>{batch, 2}));
    for (int i = 0; i < batch; ++i) {
      for (int j = 0; j < 2; ++j) {
        float ref = j == 0 ? 0.5f : -0.5f;
        for (int k = 0; k < 3; ++k) ref += std::max(0.0f, x.as<float>()[i * 3 + k]) * static_cast<float>(k * 2 + j + 1);
        EXPECT_FLOAT_EQ(out[0].as<float>()[i * 2 + j], ref);
      }
    }
  }
}

TEST(Executor, RejectsBadInputsWithUserErrors) {
  auto cm = CompiledModel::compile(small_model());
  auto expect_user_error = [&](const std::map<std::string, Tensor> &in, const std::string &word) {
    try {
      cm->run(in);
      FAIL() << "expected an error mentioning " << word;
    } catch (const Error &e) {
      EXPECT_EQ(e.kind(), ErrorKind::User);
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
    }
  };
  expect_user_error({}, "missing input");
  expect_user_error({{"x", Tensor(DType::F64, {1, 3})}}, "dtype");
  expect_user_error({{"x", Tensor(DType::F32, {1, 4})}}, "shape");
  expect_user_error({{"x", Tensor(DType::F32, {3})}}, "rank");
  expect_user_error({{"x", input(1)}, {"extra", input(1)}}, "no input named");
}

}  // namespace
}  // namespace kiln
