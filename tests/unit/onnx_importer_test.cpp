#include "onnx/importer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <variant>

#include "support/error.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// ---- building models ----

using DimSpec = std::variant<int64_t, std::string>;

onnx::ModelProto make_model(int64_t opset = 13) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("unit");
  m.set_producer_version("1.0");
  auto *imp = m.add_opset_import();
  imp->set_domain("");
  imp->set_version(opset);
  m.mutable_graph()->set_name("g");
  return m;
}

void set_type(onnx::ValueInfoProto *vi, int elem, const std::vector<DimSpec> &dims) {
  auto *tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem);
  auto *shape = tt->mutable_shape();
  for (const auto &d : dims) {
    auto *dim = shape->add_dim();
    if (std::holds_alternative<int64_t>(d)) {
      dim->set_dim_value(std::get<int64_t>(d));
    } else if (!std::get<std::string>(d).empty()) {
      dim->set_dim_param(std::get<std::string>(d));
    }
  }
}

onnx::ValueInfoProto *add_input(onnx::GraphProto *g, const std::string &name, int elem,
                                const std::vector<DimSpec> &dims) {
  auto *vi = g->add_input();
  vi->set_name(name);
  set_type(vi, elem, dims);
  return vi;
}

void add_output(onnx::GraphProto *g, const std::string &name) { g->add_output()->set_name(name); }

onnx::NodeProto *add_node(onnx::GraphProto *g, const std::string &op,
                          const std::vector<std::string> &inputs,
                          const std::vector<std::string> &outputs, const std::string &name = "") {
  auto *n = g->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (const auto &i : inputs) n->add_input(i);
  for (const auto &o : outputs) n->add_output(o);
  return n;
}

onnx::TensorProto f32_tensor(const std::string &name, const std::vector<int64_t> &dims,
                             const std::vector<float> &vals) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto_DataType_FLOAT);
  for (int64_t d : dims) t.add_dims(d);
  t.set_raw_data(std::string(reinterpret_cast<const char *>(vals.data()), vals.size() * 4));
  return t;
}

Model load(const onnx::ModelProto &m, const std::string &base_dir = "") {
  return load_onnx_bytes(m.SerializeAsString(), base_dir, "test.onnx");
}

// Runs f, which must raise a user error whose message contains `word`.
void expect_user_error(const std::function<void()> &f, const std::string &word) {
  try {
    f();
  } catch (const Error &e) {
    EXPECT_EQ(e.kind(), ErrorKind::User) << e.what();
    EXPECT_THAT(e.what(), HasSubstr(word));
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "message is one line";
    return;
  }
  ADD_FAILURE() << "expected a user error mentioning '" << word << "'";
}

void expect_load_error(const onnx::ModelProto &m, const std::string &word,
                       const std::string &base_dir = "") {
  expect_user_error([&] { load(m, base_dir); }, word);
}

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    const auto *info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / ("kiln_onnx_" + std::to_string(::getpid()) + "_" +
                                         info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path &path() const { return path_; }
  void write(const std::string &rel, const std::string &bytes) const {
    std::ofstream f(path_ / rel, std::ios::binary);
    f << bytes;
  }

 private:
  fs::path path_;
};

// ---- good models ----

TEST(OnnxImporter, ImportsValuesShapesAttributesAndConstants) {
  onnx::ModelProto m = make_model();
  auto *g = m.mutable_graph();
  add_input(g, "x", onnx::TensorProto_DataType_FLOAT, {DimSpec("batch"), int64_t{3}, DimSpec("")});
  // IR < 4 style: the weight is listed as an input too; it must stay an initializer.
  add_input(g, "w", onnx::TensorProto_DataType_FLOAT, {int64_t{3}});
  *g->add_initializer() = f32_tensor("w", {3}, {1, 2, 3});
  // Nodes out of order on purpose: the importer must sort them.
  auto *clip = add_node(g, "Clip", {"sum", "", "hi"}, {"y"}, "clip");
  auto *leaky = add_node(g, "LeakyRelu", {"x"}, {"a"}, "leaky");
  auto *alpha = leaky->add_attribute();
  alpha->set_name("alpha");
  alpha->set_type(onnx::AttributeProto::FLOAT);
  alpha->set_f(0.25f);
  add_node(g, "Add", {"a", "w"}, {"sum"}, "add");
  auto *cst = add_node(g, "Constant", {}, {"hi"}, "c");
  auto *ints = cst->add_attribute();
  ints->set_name("value_float");
  ints->set_type(onnx::AttributeProto::FLOAT);
  ints->set_f(6.0f);
  auto *shape_c = add_node(g, "Constant", {}, {"shape"}, "c2");
  auto *vi = shape_c->add_attribute();
  vi->set_name("value_ints");
  vi->set_type(onnx::AttributeProto::INTS);
  vi->add_ints(4);
  vi->add_ints(-1);
  auto *info = g->add_value_info();
  info->set_name("a");
  // A name like the importer's fresh symbols; the fresh one for x must not alias it.
  set_type(info, onnx::TensorProto_DataType_FLOAT,
           {DimSpec("batch"), int64_t{3}, DimSpec("unk__0")});
  add_output(g, "y");
  add_output(g, "shape");
  (void)clip;

  Model model = load(m);
  EXPECT_EQ(model.opset, 13);
  EXPECT_EQ(model.producer, "unit 1.0");
  EXPECT_EQ(model.path, "test.onnx");
  const Graph &graph = *model.graph;
  EXPECT_EQ(graph.name, "g");

  ASSERT_EQ(graph.inputs.size(), 1u);
  const Value *x = graph.inputs[0];
  EXPECT_EQ(x->name, "x");
  EXPECT_EQ(x->dtype, DType::F32);
  ASSERT_TRUE(x->has_shape);
  ASSERT_EQ(x->shape.size(), 3u);
  EXPECT_EQ(x->shape[0].kind(), Dim::Kind::Sym);
  EXPECT_EQ(x->shape[0].name(), "batch");
  EXPECT_TRUE(x->shape[1].is_const());
  EXPECT_EQ(x->shape[1].value(), 3);
  EXPECT_EQ(x->shape[2].kind(), Dim::Kind::Sym);  // unnamed: a fresh symbol
  EXPECT_NE(x->shape[2].name(), "batch");
  EXPECT_NE(x->shape[2].name(), "unk__0");

  verify_graph(graph);
  // The initializer, then the two Constant outputs.
  ASSERT_EQ(graph.initializers.size(), 3u);
  const Value *w = graph.initializers[0];
  EXPECT_EQ(w->name, "w");
  ASSERT_TRUE(w->constant.has_value());
  EXPECT_EQ(w->dtype, DType::F32);
  EXPECT_TRUE(w->has_shape);
  EXPECT_EQ(w->constant->as<float>()[2], 3.0f);

  // Constants are values, not nodes.
  ASSERT_EQ(graph.nodes.size(), 3u);
  EXPECT_EQ(graph.nodes[0]->name, "leaky");
  EXPECT_EQ(graph.nodes[1]->name, "add");
  EXPECT_EQ(graph.nodes[2]->name, "clip");
  const Value *hi = graph.find("hi");
  ASSERT_NE(hi, nullptr);
  ASSERT_TRUE(hi->constant.has_value());
  EXPECT_EQ(hi->producer, nullptr);
  EXPECT_EQ(hi->dtype, DType::F32);
  EXPECT_TRUE(hi->has_shape);
  EXPECT_TRUE(hi->shape.empty());
  EXPECT_EQ(hi->constant->as<float>()[0], 6.0f);
  const Value *shape = graph.find("shape");
  ASSERT_TRUE(shape && shape->constant);
  EXPECT_EQ(shape->dtype, DType::I64);
  EXPECT_EQ(shape->constant->to_i64_vector(), (std::vector<int64_t>{4, -1}));

  const Node *lk = graph.nodes[0].get();
  EXPECT_EQ(lk->kind, OpKind::LeakyRelu);
  EXPECT_EQ(lk->opset, 13);
  EXPECT_DOUBLE_EQ(lk->attr_f("alpha", 0), 0.25);
  const Value *a = lk->output(0);
  EXPECT_EQ(a->producer, lk);
  EXPECT_EQ(a->dtype, DType::F32);  // from value_info
  ASSERT_EQ(a->shape.size(), 3u);
  EXPECT_EQ(a->shape[2].name(), "unk__0");

  const Node *cl = graph.nodes[2].get();
  ASSERT_EQ(cl->inputs.size(), 3u);
  EXPECT_EQ(cl->inputs[0], graph.nodes[1]->output(0));
  EXPECT_EQ(cl->inputs[1], nullptr);  // omitted optional input keeps its position
  EXPECT_EQ(cl->inputs[2], hi);
  ASSERT_EQ(graph.outputs.size(), 2u);
  EXPECT_EQ(graph.outputs[0], cl->output(0));
  EXPECT_EQ(graph.outputs[1], shape);
}

TEST(OnnxImporter, ConvertsAllAttributeKinds) {
  onnx::ModelProto m = make_model();
  auto *g = m.mutable_graph();
  add_input(g, "x", onnx::TensorProto_DataType_FLOAT,
            {int64_t{1}, int64_t{2}, int64_t{4}, int64_t{4}});
  add_input(g, "k", onnx::TensorProto_DataType_FLOAT,
            {int64_t{2}, int64_t{2}, int64_t{3}, int64_t{3}});
  auto *n = add_node(g, "Conv", {"x", "k"}, {"y", ""}, "conv");
  auto *a = n->add_attribute();
  a->set_name("pads");
  a->set_type(onnx::AttributeProto::INTS);
  for (int i = 0; i < 4; ++i) a->add_ints(1);
  a = n->add_attribute();
  a->set_name("auto_pad");
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s("NOTSET");
  a = n->add_attribute();
  a->set_name("group");  // no type: an old exporter; inferred from the field
  a->set_i(1);
  a = n->add_attribute();
  a->set_name("scales");
  a->set_type(onnx::AttributeProto::FLOATS);
  a->add_floats(0.5f);
  a = n->add_attribute();
  a->set_name("names");
  a->set_type(onnx::AttributeProto::STRINGS);
  a->add_strings("p");
  a->add_strings("q");
  a = n->add_attribute();
  a->set_name("t");
  a->set_type(onnx::AttributeProto::TENSOR);
  *a->mutable_t() = f32_tensor("", {2}, {7, 8});
  add_output(g, "y");

  Model model = load(m);
  const Node *conv = model.graph->nodes.at(0).get();
  EXPECT_EQ(conv->kind, OpKind::Conv);
  EXPECT_EQ(conv->attr_ints("pads"), (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(conv->attr_s("auto_pad", ""), "NOTSET");
  EXPECT_EQ(conv->attr_i("group", 0), 1);
  EXPECT_EQ(conv->attr_floats("scales"), (std::vector<double>{0.5}));
  EXPECT_EQ(conv->attrs.at("names").strings, (std::vector<std::string>{"p", "q"}));
  EXPECT_EQ(conv->attrs.at("t").t.as<float>()[1], 8.0f);
  ASSERT_EQ(conv->outputs.size(), 2u);
  EXPECT_EQ(conv->outputs[1], nullptr);
}

TEST(OnnxImporter, IfSubgraphReadsOuterScope) {
  if (op_kind_from_name("If") == OpKind::Unknown) GTEST_SKIP() << "If is not in ops.def yet";
  onnx::ModelProto m = make_model();
  auto *g = m.mutable_graph();
  add_input(g, "cond", onnx::TensorProto_DataType_BOOL, {});
  add_input(g, "x", onnx::TensorProto_DataType_FLOAT, {int64_t{2}});
  // The If comes first in the file but reads `r`, produced by the later Relu, only from
  // inside its branches: the sort must still put Relu first.
  auto *iff = add_node(g, "If", {"cond"}, {"out"}, "if");
  add_node(g, "Relu", {"x"}, {"r"}, "relu");
  for (const char *branch : {"then_branch", "else_branch"}) {
    auto *a = iff->add_attribute();
    a->set_name(branch);
    a->set_type(onnx::AttributeProto::GRAPH);
    auto *sg = a->mutable_g();
    sg->set_name(branch);
    std::string out = std::string(branch) + "_out";
    add_node(sg, std::string(branch) == "then_branch" ? "Neg" : "Abs", {"r"}, {out});
    add_output(sg, out);
  }
  add_output(g, "out");

  Model model = load(m);
  const Graph &graph = *model.graph;
  verify_graph(graph);
  ASSERT_EQ(graph.nodes.size(), 2u);
  EXPECT_EQ(graph.nodes[0]->name, "relu");
  const Node *if_node = graph.nodes[1].get();
  const Graph *then_g = if_node->attr_graph("then_branch");
  ASSERT_NE(then_g, nullptr);
  EXPECT_EQ(then_g->parent, &graph);
  ASSERT_EQ(then_g->nodes.size(), 1u);
  EXPECT_EQ(then_g->nodes[0]->inputs[0], graph.nodes[0]->output(0));  // the outer Value
  ASSERT_EQ(then_g->outputs.size(), 1u);
  EXPECT_EQ(then_g->outputs[0], then_g->nodes[0]->output(0));
  EXPECT_EQ(then_g->find("r"), graph.find("r"));
}

onnx::GraphProto *add_graph_attr(onnx::NodeProto *n, const std::string &attr) {
  auto *a = n->add_attribute();
  a->set_name(attr);
  a->set_type(onnx::AttributeProto::GRAPH);
  a->mutable_g()->set_name(attr);
  return a->mutable_g();
}

TEST(OnnxImporter, NestedSubgraphsReachGrandparentScope) {
  onnx::ModelProto m = make_model();
  auto *g = m.mutable_graph();
  add_input(g, "trip", onnx::TensorProto_DataType_INT64, {});
  add_input(g, "cond", onnx::TensorProto_DataType_BOOL, {});
  add_input(g, "x", onnx::TensorProto_DataType_FLOAT, {int64_t{2}});
  auto *loop = add_node(g, "Loop", {"trip", "cond", "x"}, {"xf"}, "loop");
  add_node(g, "Relu", {"x"}, {"r"}, "relu");  // read only from two levels down
  auto *body = add_graph_attr(loop, "body");
  add_input(body, "iter", onnx::TensorProto_DataType_INT64, {});
  body->add_input()->set_name("c_in");  // untyped, as some exporters write it
  add_input(body, "acc", onnx::TensorProto_DataType_FLOAT, {int64_t{2}});
  auto *iff = add_node(body, "If", {"c_in"}, {"t"}, "inner_if");
  add_node(body, "Identity", {"c_in"}, {"c_out"}, "keep");
  auto *then_g = add_graph_attr(iff, "then_branch");
  add_node(then_g, "Add", {"acc", "r"}, {"sum"}, "add");
  add_output(then_g, "sum");
  auto *else_g = add_graph_attr(iff, "else_branch");
  add_output(else_g, "r");  // a branch may return an outer value directly
  add_output(body, "c_out");
  add_output(body, "t");
  add_output(g, "xf");

  Model model = load(m);
  const Graph &top = *model.graph;
  verify_graph(top);
  ASSERT_EQ(top.nodes.size(), 2u);
  EXPECT_EQ(top.nodes[0]->name, "relu");
  const Value *r = top.nodes[0]->output(0);
  const Graph *b = top.nodes[1]->attr_graph("body");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->parent, &top);
  ASSERT_EQ(b->inputs.size(), 3u);
  EXPECT_EQ(b->inputs[0]->dtype, DType::I64);
  EXPECT_EQ(b->inputs[1]->dtype, DType::Undefined);
  EXPECT_FALSE(b->inputs[1]->has_shape);
  ASSERT_EQ(b->nodes.size(), 2u);
  const Graph *tg = b->nodes[0]->attr_graph("then_branch");
  const Graph *eg = b->nodes[0]->attr_graph("else_branch");
  ASSERT_TRUE(tg && eg);
  EXPECT_EQ(tg->parent, b);
  EXPECT_EQ(tg->nodes.at(0)->inputs.at(0), b->inputs[2]);
  EXPECT_EQ(tg->nodes.at(0)->inputs.at(1), r);
  ASSERT_EQ(eg->outputs.size(), 1u);
  EXPECT_EQ(eg->outputs[0], r);
}

TEST(OnnxImporterErrors, UndefinedValueInsideSubgraph) {
  onnx::ModelProto m = make_model();
  auto *g = m.mutable_graph();
  add_input(g, "cond", onnx::TensorProto_DataType_BOOL, {});
  auto *iff = add_node(g, "If", {"cond"}, {"out"}, "if");
  auto *then_g = add_graph_attr(iff, "then_branch");
  add_node(then_g, "Neg", {"ghost"}, {"t"}, "inner");
  add_output(then_g, "t");
  add_output(g, "out");
  expect_load_error(m, "node 'inner' (Neg) uses undefined value 'ghost'");
}

TEST(OnnxImporter, MutatedBytesNeverCrash) {
  onnx::ModelProto m = make_model();
  auto *g = m.mutable_graph();
  add_input(g, "cond", onnx::TensorProto_DataType_BOOL, {});
  add_input(g, "x", onnx::TensorProto_DataType_FLOAT, {DimSpec("n"), int64_t{4}});
  *g->add_initializer() = f32_tensor("w", {4}, {1, 2, 3, 4});
  auto *ti = g->add_initializer();
  ti->set_name("k");
  ti->set_data_type(onnx::TensorProto_DataType_INT64);
  ti->add_dims(2);
  ti->add_int64_data(3);
  ti->add_int64_data(-1);
  add_node(g, "Add", {"x", "w"}, {"s"}, "add");
  auto *iff = add_node(g, "If", {"cond"}, {"out"}, "if");
  auto *then_g = add_graph_attr(iff, "then_branch");
  add_node(then_g, "Relu", {"s"}, {"t"}, "inner");
  add_output(then_g, "t");
  auto *else_g = add_graph_attr(iff, "else_branch");
  add_output(else_g, "s");
  auto *c = add_node(g, "Constant", {}, {"c"}, "c");
  auto *a = c->add_attribute();
  a->set_name("value_ints");
  a->set_type(onnx::AttributeProto::INTS);
  a->add_ints(7);
  add_output(g, "out");
  add_output(g, "c");
  const std::string good = m.SerializeAsString();
  ASSERT_NO_THROW(load_onnx_bytes(good, "", "good.onnx"));

  std::mt19937 rng(7);
  int loaded = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string bytes = good;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    if (iter % 5 == 0) bytes.resize(rng() % bytes.size());
    try {
      load_onnx_bytes(bytes, "", "fuzz.onnx");
      ++loaded;
    } catch (const Error &e) {
      ASSERT_EQ(e.kind(), ErrorKind::User) << e.what();
    }
  }
  EXPECT_GT(loaded, 0);  // some mutations only touch names or values
}

TEST(OnnxImporter, UnknownOpInsideSubgraph) {
  if (op_kind_from_name("If") == OpKind::Unknown) GTEST_SKIP() << "If is not in ops.def yet";
  onnx::ModelProto m = make_model();
  auto *g = m.mutable_graph();
  add_input(g, "cond", onnx::TensorProto_DataType_BOOL, {});
  auto *iff = add_node(g, "If", {"cond"}, {"out"}, "if");
  auto *a = iff->add_attribute();
  a->set_name("then_branch");
  a->set_type(onnx::AttributeProto::GRAPH);
  add_node(a->mutable_g(), "Frobnicate", {"cond"}, {"t"}, "inner");
  add_output(a->mutable_g(), "t");
  add_output(g, "out");
  expect_load_error(m, "unknown op 'Frobnicate'");
}

TEST(OnnxImporter, LoadsFileWithExternalData) {
  TempDir dir;
  std::vector<float> vals = {9, 1, 2, 3, 4, 5, 6};
  dir.write("w.bin", std::string(reinterpret_cast<const char *>(vals.data()), vals.size() * 4));
  onnx::ModelProto m = make_model();
  auto *g = m.mutable_graph();
  add_input(g, "x", onnx::TensorProto_DataType_FLOAT, {int64_t{2}, int64_t{3}});
  auto *w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto_DataType_FLOAT);
  w->add_dims(2);
  w->add_dims(3);
  w->set_data_location(onnx::TensorProto_DataLocation_EXTERNAL);
  auto *kv = w->add_external_data();
  kv->set_key("location");
  kv->set_value("w.bin");
  kv = w->add_external_data();
  kv->set_key("offset");
  kv->set_value("4");
  kv = w->add_external_data();
  kv->set_key("length");
  kv->set_value("24");
  add_node(g, "Add", {"x", "w"}, {"y"});
  add_output(g, "y");
  dir.write("model.onnx", m.SerializeAsString());

  Model model = load_onnx((dir.path() / "model.onnx").string());
  const Value *wv = model.graph->find("w");
  ASSERT_TRUE(wv && wv->constant);
  EXPECT_EQ(wv->constant->shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(wv->constant->as<float>()[0], 1.0f);
  EXPECT_EQ(wv->constant->as<float>()[5], 6.0f);
}

TEST(OnnxImporter, TensorFromProtoTypedFields) {
  onnx::TensorProto t;
  t.set_name("h");
  t.set_data_type(onnx::TensorProto_DataType_FLOAT16);
  t.add_dims(2);
  t.add_int32_data(0x3c00);  // 1.0
  t.add_int32_data(0xc000);  // -2.0
  Tensor h = tensor_from_proto(t, "");
  EXPECT_EQ(h.dtype(), DType::F16);
  EXPECT_EQ(h.get_f64(0), 1.0);
  EXPECT_EQ(h.get_f64(1), -2.0);

  onnx::TensorProto b;
  b.set_data_type(onnx::TensorProto_DataType_BOOL);
  b.add_dims(3);
  for (int v : {0, 1, 5}) b.add_int32_data(v);
  Tensor bt = tensor_from_proto(b, "");
  EXPECT_EQ(bt.to_i64_vector(), (std::vector<int64_t>{0, 1, 1}));

  onnx::TensorProto i8;
  i8.set_data_type(onnx::TensorProto_DataType_INT8);
  i8.add_int32_data(-7);  // scalar
  Tensor it = tensor_from_proto(i8, "");
  EXPECT_EQ(it.rank(), 0);
  EXPECT_EQ(it.get_i64(0), -7);

  onnx::TensorProto u32;
  u32.set_data_type(onnx::TensorProto_DataType_UINT32);
  u32.add_dims(1);
  u32.add_uint64_data(4000000000u);
  EXPECT_EQ(tensor_from_proto(u32, "").as<uint32_t>()[0], 4000000000u);

  onnx::TensorProto d;
  d.set_data_type(onnx::TensorProto_DataType_DOUBLE);
  d.add_dims(1);
  d.add_double_data(2.5);
  EXPECT_EQ(tensor_from_proto(d, "").as<double>()[0], 2.5);

  onnx::TensorProto s;
  s.set_data_type(onnx::TensorProto_DataType_STRING);
  s.add_dims(2);
  s.add_string_data("ab");
  s.add_string_data("");
  Tensor st = tensor_from_proto(s, "");
  EXPECT_EQ(st.strings(), (std::vector<std::string>{"ab", ""}));

  onnx::TensorProto e;  // zero elements, no data
  e.set_data_type(onnx::TensorProto_DataType_INT64);
  e.add_dims(0);
  e.add_dims(4);
  EXPECT_EQ(tensor_from_proto(e, "").numel(), 0);
}

// ---- bad input: every case is a one-line user error ----

TEST(OnnxImporterErrors, TruncatedBytes) {
  onnx::ModelProto m = make_model();
  auto *g = m.mutable_graph();
  add_input(g, "x", onnx::TensorProto_DataType_FLOAT, {int64_t{4}});
  *g->add_initializer() = f32_tensor("w", {4}, {1, 2, 3, 4});
  add_node(g, "Add", {"x", "w"}, {"y"});
  add_output(g, "y");
  std::string bytes = m.SerializeAsString();
  bytes.resize(bytes.size() - 10);
  expect_user_error([&] { load_onnx_bytes(bytes, "", "cut.onnx"); },
                    "cut.onnx: not a valid ONNX model");
}

TEST(OnnxImporterErrors, RandomBytes) {
  std::mt19937 rng(1234);
  std::string bytes(4096, '\0');
  for (auto &c : bytes) c = static_cast<char>(rng());
  expect_user_error([&] { load_onnx_bytes(bytes, "", "noise.onnx"); }, "not a valid ONNX model");
}

TEST(OnnxImporterErrors, EmptyAndMissingFiles) {
  expect_user_error([&] { load_onnx_bytes("", "", "empty.onnx"); }, "empty");
  TempDir dir;
  dir.write("empty.onnx", "");
  expect_user_error([&] { load_onnx((dir.path() / "empty.onnx").string()); }, "empty");
  dir.write("junk.onnx", std::string("\xff\xff\xff\xff\x0f", 5));
  expect_user_error([&] { load_onnx((dir.path() / "junk.onnx").string()); },
                    "junk.onnx: not a valid ONNX model (protobuf parse failed)");
  expect_user_error([&] { load_onnx((dir.path() / "nope.onnx").string()); }, "no such file");
  expect_user_error([&] { load_onnx(dir.path().string()); }, "directory");
}

TEST(OnnxImporterErrors, NegativeDims) {
  onnx::ModelProto m = make_model();
  add_input(m.mutable_graph(), "x", onnx::TensorProto_DataType_FLOAT, {int64_t{-2}});
  add_output(m.mutable_graph(), "x");
  expect_load_error(m, "negative");

  onnx::TensorProto t;
  t.set_name("w");
  t.set_data_type(onnx::TensorProto_DataType_FLOAT);
  t.add_dims(-1);
  expect_user_error([&] { tensor_from_proto(t, ""); }, "tensor 'w': dimension 0 is negative");
}

TEST(OnnxImporterErrors, HugeDimsWithLittleData) {
  onnx::ModelProto m = make_model();
  auto *g = m.mutable_graph();
  // 1e12 elements claimed, 4 bytes given: must fail before allocating 4 TB.
  *g->add_initializer() = f32_tensor("w", {1000000, 1000000}, {1});
  add_output(g, "w");
  expect_load_error(m, "needs");

  onnx::TensorProto t = f32_tensor("big", {int64_t{1} << 40, int64_t{1} << 40}, {1});
  expect_user_error([&] { tensor_from_proto(t, ""); }, "too many elements");

  onnx::TensorProto typed;  // typed field variant
  typed.set_name("t");
  typed.set_data_type(onnx::TensorProto_DataType_INT64);
  typed.add_dims(int64_t{1} << 33);
  typed.add_int64_data(1);
  expect_user_error([&] { tensor_from_proto(typed, ""); }, "needs");
}

TEST(OnnxImporterErrors, DataShorterThanShape) {
  onnx::TensorProto t = f32_tensor("w", {2, 3}, {1, 2, 3, 4, 5});
  expect_user_error([&] { tensor_from_proto(t, ""); },
                    "tensor 'w': data has 20 bytes but shape 2x3 of f32 needs 24");
  onnx::TensorProto typed;
  typed.set_name("v");
  typed.set_data_type(onnx::TensorProto_DataType_FLOAT);
  typed.add_dims(4);
  typed.add_float_data(1);
  expect_user_error([&] { tensor_from_proto(typed, ""); },
                    "float_data has 1 elements but shape 4 of f32 needs 4");
  onnx::TensorProto none;
  none.set_name("n");
  none.set_data_type(onnx::TensorProto_DataType_INT32);
  none.add_dims(2);
  expect_user_error([&] { tensor_from_proto(none, ""); }, "data has 0 bytes");
  onnx::TensorProto wrong;
  wrong.set_name("z");
  wrong.set_data_type(onnx::TensorProto_DataType_INT64);
  wrong.add_dims(1);
  wrong.add_float_data(1);
  expect_user_error([&] { tensor_from_proto(wrong, ""); }, "wrong field");
}

TEST(OnnxImporterErrors, UnsupportedTypes) {
  onnx::TensorProto c;
  c.set_name("c");
  c.set_data_type(onnx::TensorProto_DataType_COMPLEX64);
  c.add_dims(1);
  expect_user_error([&] { tensor_from_proto(c, ""); }, "unsupported data type complex64");

  onnx::ModelProto m = make_model();
  add_input(m.mutable_graph(), "x", onnx::TensorProto_DataType_COMPLEX128, {int64_t{1}});
  add_output(m.mutable_graph(), "x");
  expect_load_error(m, "input 'x' has unsupported element type COMPLEX128");

  onnx::ModelProto s = make_model();
  auto *in = s.mutable_graph()->add_input();
  in->set_name("seq");
  in->mutable_type()->mutable_sequence_type()->mutable_elem_type()->mutable_tensor_type()
      ->set_elem_type(1);
  add_output(s.mutable_graph(), "seq");
  expect_load_error(s, "input 'seq' has a sequence type; kiln supports tensors only");

  onnx::ModelProto sp = make_model();
  auto *si = sp.mutable_graph()->add_sparse_initializer();
  si->mutable_values()->set_name("sp");
  expect_load_error(sp, "sparse");
}

TEST(OnnxImporterErrors, UnknownOpAndForeignDomain) {
  onnx::ModelProto m = make_model();
  add_input(m.mutable_graph(), "x", onnx::TensorProto_DataType_FLOAT, {int64_t{1}});
  add_node(m.mutable_graph(), "Frobnicate", {"x"}, {"y"}, "f1");
  add_output(m.mutable_graph(), "y");
  expect_load_error(m, "unknown op 'Frobnicate' (node 'f1'): kiln does not support it");

  onnx::ModelProto d = make_model();
  add_input(d.mutable_graph(), "x", onnx::TensorProto_DataType_FLOAT, {int64_t{1}});
  add_node(d.mutable_graph(), "Relu", {"x"}, {"y"}, "r")->set_domain("com.example");
  add_output(d.mutable_graph(), "y");
  expect_load_error(d, "unsupported op 'Relu' from domain 'com.example' (node 'r')");
}

TEST(OnnxImporterErrors, UndefinedInput) {
  onnx::ModelProto m = make_model();
  add_input(m.mutable_graph(), "x", onnx::TensorProto_DataType_FLOAT, {int64_t{1}});
  add_node(m.mutable_graph(), "Add", {"x", "ghost"}, {"y"}, "add");
  add_output(m.mutable_graph(), "y");
  expect_load_error(m, "node 'add' (Add) uses undefined value 'ghost'");

  onnx::ModelProto o = make_model();
  add_input(o.mutable_graph(), "x", onnx::TensorProto_DataType_FLOAT, {int64_t{1}});
  add_output(o.mutable_graph(), "nowhere");
  expect_load_error(o, "output 'nowhere' is not defined");
}

TEST(OnnxImporterErrors, Cycle) {
  onnx::ModelProto m = make_model();
  auto *g = m.mutable_graph();
  add_input(g, "x", onnx::TensorProto_DataType_FLOAT, {int64_t{1}});
  add_node(g, "Relu", {"x"}, {"z"}, "before");
  add_node(g, "Add", {"z", "b"}, {"a"}, "n1");
  add_node(g, "Relu", {"a"}, {"b"}, "n2");
  add_output(g, "a");
  expect_load_error(m, "graph 'g' has a cycle through node 'n");
}

TEST(OnnxImporterErrors, DuplicateDefinition) {
  onnx::ModelProto m = make_model();
  auto *g = m.mutable_graph();
  add_input(g, "x", onnx::TensorProto_DataType_FLOAT, {int64_t{1}});
  add_node(g, "Relu", {"x"}, {"y"}, "a");
  add_node(g, "Neg", {"x"}, {"y"}, "b");
  add_output(g, "y");
  expect_load_error(m, "value 'y' is defined more than once");

  onnx::ModelProto i = make_model();
  add_input(i.mutable_graph(), "x", onnx::TensorProto_DataType_FLOAT, {int64_t{1}});
  add_node(i.mutable_graph(), "Relu", {"x"}, {"x"}, "a");
  add_output(i.mutable_graph(), "x");
  expect_load_error(i, "defined more than once");
}

TEST(OnnxImporterErrors, OpsetOutOfRange) {
  onnx::ModelProto m = make_model(18);
  expect_load_error(m, "kiln supports opsets up to 17");
  onnx::ModelProto none = make_model();
  none.clear_opset_import();
  add_input(none.mutable_graph(), "x", onnx::TensorProto_DataType_FLOAT, {int64_t{1}});
  add_node(none.mutable_graph(), "Relu", {"x"}, {"y"}, "r");
  add_output(none.mutable_graph(), "y");
  expect_load_error(none, "no opset for the default ONNX domain, which node 'r' (Relu) uses");
}

// An initializer stored externally at `location` with the given offset/length strings.
onnx::ModelProto external_model(const std::string &location, const std::string &offset,
                                const std::string &length) {
  onnx::ModelProto m = make_model();
  auto *w = m.mutable_graph()->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto_DataType_FLOAT);
  w->add_dims(4);
  w->set_data_location(onnx::TensorProto_DataLocation_EXTERNAL);
  auto add = [&](const char *k, const std::string &v) {
    if (v.empty()) return;
    auto *kv = w->add_external_data();
    kv->set_key(k);
    kv->set_value(v);
  };
  add("location", location);
  add("offset", offset);
  add("length", length);
  add_output(m.mutable_graph(), "w");
  return m;
}

TEST(OnnxImporterErrors, ExternalDataEscapingTheFolder) {
  TempDir dir;
  fs::create_directories(dir.path() / "model");
  dir.write("x.bin", std::string(16, '\0'));
  std::string base = (dir.path() / "model").string();
  expect_load_error(external_model("../x.bin", "", ""), "must not contain '..'", base);
  expect_load_error(external_model("sub/../../x.bin", "", ""), "..", base);
  expect_load_error(external_model((dir.path() / "x.bin").string(), "", ""), "absolute", base);
  // A symlink inside the folder pointing outside of it.
  fs::create_symlink(dir.path() / "x.bin", dir.path() / "model" / "link.bin");
  expect_load_error(external_model("link.bin", "", ""), "outside the model's folder", base);
}

TEST(OnnxImporterErrors, ExternalDataRange) {
  TempDir dir;
  dir.write("w.bin", std::string(16, '\0'));
  std::string base = dir.path().string();
  expect_load_error(external_model("w.bin", "8", "16"), "past the end", base);
  expect_load_error(external_model("w.bin", "20", ""), "past the end", base);
  expect_load_error(external_model("w.bin", "4", ""), "external data has 12 bytes", base);
  expect_load_error(external_model("w.bin", "x", ""), "not a non-negative integer", base);
  expect_load_error(external_model("missing.bin", "", ""), "does not exist", base);
  expect_load_error(external_model("", "", ""), "no 'location'", base);
  Model ok = load(external_model("w.bin", "0", "16"), base);
  EXPECT_EQ(ok.graph->initializers.at(0)->constant->numel(), 4);
}

TEST(OnnxImporterErrors, ConstantProblems) {
  onnx::ModelProto m = make_model();
  auto *c = add_node(m.mutable_graph(), "Constant", {}, {"c"}, "c");
  auto *a = c->add_attribute();
  a->set_name("sparse_value");
  a->set_type(onnx::AttributeProto::SPARSE_TENSOR);
  add_output(m.mutable_graph(), "c");
  expect_load_error(m, "sparse_value");

  onnx::ModelProto e = make_model();
  add_node(e.mutable_graph(), "Constant", {}, {"c"}, "c");
  add_output(e.mutable_graph(), "c");
  expect_load_error(e, "exactly one value attribute");

  onnx::ModelProto t = make_model();
  auto *ct = add_node(t.mutable_graph(), "Constant", {}, {"c"}, "c");
  auto *ta = ct->add_attribute();
  ta->set_name("value_ints");
  ta->set_type(onnx::AttributeProto::FLOATS);
  ta->add_floats(1);
  add_output(t.mutable_graph(), "c");
  expect_load_error(t, "attribute 'value_ints' must be of type INTS");
}

}  // namespace
}  // namespace kiln
