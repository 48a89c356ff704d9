// The Graph IR text form (printer + parser) and the verifier.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

#include "graph/graph.h"
#include "graph/parser.h"
#include "graph/printer.h"
#include "support/error.h"

#include "graph_builder.h"

namespace kiln {
namespace {

using test::typed, test::user_error_of;

bool contains(const std::string &s, const std::string &part) {
  return s.find(part) != std::string::npos;
}

Node *add_node(Graph &g, OpKind kind, std::vector<Value *> inputs, std::vector<Value *> outputs) {
  Node *n = g.new_node(kind, "");
  n->inputs = std::move(inputs);
  n->outputs = std::move(outputs);
  for (Value *v : n->outputs) {
    if (v) v->producer = n;
  }
  return n;
}

std::string round_trip(const std::string &text) { return print_model(parse_model(text)); }

// ---- printer ----

TEST(GraphText, PrintsHandBuiltGraph) {
  Model m;
  m.opset = 17;
  m.producer = "test";
  m.graph = std::make_shared<Graph>();
  Graph &g = *m.graph;
  g.name = "main";
  Dim batch = Dim::sym("batch"), h = Dim::sym("h");
  Value *x = typed(g, "x", DType::F32, {batch, 3, h / 2, 224});
  Value *w = typed(g, "onnx::Conv_123", DType::F32, {2, 3, 1, 1});
  Tensor wt(DType::F32, {2, 3, 1, 1});
  for (int i = 0; i < 6; ++i) wt.as<float>()[i] = 0.5f * static_cast<float>(i) - 1;
  w->constant = wt;
  g.inputs = {x};
  g.initializers = {w};
  Value *y = typed(g, "", DType::F32, {batch, 2, h / 2, 224});
  Node *conv = add_node(g, OpKind::Conv, {x, w, nullptr}, {y});
  conv->name = "conv1";
  conv->attrs["kernel_shape"].kind = Attribute::Kind::Ints;
  conv->attrs["kernel_shape"].ints = {1, 1};
  conv->attrs["auto_pad"].kind = Attribute::Kind::String;
  conv->attrs["auto_pad"].s = "NOTSET";
  Value *z = g.new_value("z");
  z->dtype = DType::F32;
  add_node(g, OpKind::Relu, {y}, {z});
  g.outputs = {z};

  const char *expected =
      "model {opset = 17, producer = \"test\"}\n"
      "graph main(%x: f32[batch, 3, (h / 2), 224]) {\n"
      "  init %\"onnx::Conv_123\": f32[2, 3, 1, 1] = [-1, -0.5, 0, 0.5, 1, 1.5]\n"
      "  %%2: f32[batch, 2, (h / 2), 224] = Conv(%x, %\"onnx::Conv_123\", _) @conv1 "
      "{auto_pad = \"NOTSET\", kernel_shape = [1, 1]}\n"
      "  %z: f32[?] = Relu(%%2)\n"
      "  return %z\n"
      "}\n";
  EXPECT_EQ(print_model(m), expected);
  EXPECT_EQ(round_trip(expected), expected);
  EXPECT_NO_THROW(verify_graph(g));
  EXPECT_EQ(print_node(*g.nodes[1]), "%z: f32[?] = Relu(%%2)");
  EXPECT_EQ(value_ref(nullptr), "_");
  EXPECT_TRUE(contains(print_graph(g), "graph main(%x"));
}

TEST(GraphText, LargeConstantsAreHexOrElided) {
  Model m;
  m.graph = std::make_shared<Graph>();
  Graph &g = *m.graph;
  g.name = "g";
  Value *c = typed(g, "c", DType::F32, {10, 10});
  Tensor t(DType::F32, {10, 10});
  for (int i = 0; i < 100; ++i) t.as<float>()[i] = static_cast<float>(i) / 7;
  c->constant = t;
  g.initializers = {c};
  g.outputs = {c};

  std::string exact = print_model(m);
  EXPECT_TRUE(contains(exact, "= hex\"")) << exact;
  Model back = parse_model(exact);
  const Tensor &bt = *back.graph->initializers[0]->constant;
  EXPECT_EQ(std::memcmp(bt.data(), t.data(), t.nbytes()), 0);

  PrintOptions all;
  all.show_constants_data = true;
  std::string listed = print_model(m, all);
  EXPECT_TRUE(contains(listed, "= [0, 0.14285715, ")) << listed;
  EXPECT_EQ(print_model(parse_model(listed)), exact);

  PrintOptions display;
  display.elide_large_constants = true;
  std::string shown = print_model(m, display);
  EXPECT_TRUE(contains(shown, "init %c: f32[10, 10] = <100 elements>")) << shown;
  EXPECT_TRUE(contains(user_error_of([&] { parse_model(shown); }), "elided"));

  PrintOptions small;
  small.max_elements = 200;
  EXPECT_TRUE(contains(print_model(m, small), "= [0, 0.14285715, "));
}

// ---- exact round trips ----

TEST(GraphText, ConstantsRoundTripBitExactly) {
  std::mt19937_64 rng(7);
  Model m;
  m.graph = std::make_shared<Graph>();
  Graph &g = *m.graph;
  g.name = "consts";
  const DType kTypes[] = {DType::F32, DType::F64, DType::F16, DType::BF16, DType::I8,
                          DType::U8,  DType::I16, DType::U16, DType::I32,  DType::U32,
                          DType::I64, DType::U64, DType::Bool};
  for (DType dt : kTypes) {
    for (int64_t n : {3, 40}) {
      // Random bytes: NaNs with payloads, subnormals, bools other than 0/1.
      Tensor t(dt, {n});
      auto *p = static_cast<unsigned char *>(t.data());
      for (size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<unsigned char>(rng());
      Value *v = typed(g, std::string(dtype_name(dt)) + "_" + std::to_string(n), dt, {n});
      v->constant = t;
      g.initializers.push_back(v);
    }
    // Readable values too: these print as lists.
    Tensor r(dt, {3});
    for (int i = 0; i < 3; ++i) r.set_f64(i, dt == DType::Bool ? i % 2 : (i - 1) * 3.25);
    Value *rv = typed(g, std::string(dtype_name(dt)) + "_list", dt, {3});
    rv->constant = r;
    g.initializers.push_back(rv);
  }
  Tensor strs(DType::String, {2});
  strs.strings() = {std::string("a\0b\xff\"", 5), ""};
  Value *sv = typed(g, "strs", DType::String, {2});
  sv->constant = strs;
  g.initializers.push_back(sv);
  g.outputs = g.initializers;

  std::string text = print_model(m);
  Model back = parse_model(text);
  EXPECT_EQ(print_model(back), text);
  ASSERT_EQ(back.graph->initializers.size(), g.initializers.size());
  for (size_t i = 0; i < g.initializers.size(); ++i) {
    const Tensor &a = *g.initializers[i]->constant, &b = *back.graph->initializers[i]->constant;
    ASSERT_EQ(a.dtype(), b.dtype());
    ASSERT_EQ(a.shape(), b.shape());
    if (a.dtype() == DType::String) {
      EXPECT_EQ(a.strings(), b.strings());
    } else {
      EXPECT_EQ(std::memcmp(a.data(), b.data(), a.nbytes()), 0) << g.initializers[i]->name;
    }
  }
}

TEST(GraphText, AttributesRoundTripExactly) {
  const double kDoubles[] = {0.1,
                             static_cast<double>(0.1f),
                             1e300,
                             -0.0,
                             5e-324,
                             1.0,
                             -2.5,
                             1e-5,
                             static_cast<double>(1e-5f),
                             std::numeric_limits<double>::infinity(),
                             static_cast<double>(std::numeric_limits<float>::denorm_min()),
                             3.0e38,
                             static_cast<double>(3.0e38f),
                             16777216.0,
                             123456789.0};
  Model m;
  m.graph = std::make_shared<Graph>();
  Graph &g = *m.graph;
  g.name = "attrs";
  Value *x = typed(g, "x", DType::F32, {2});
  g.inputs = {x};
  Value *y = typed(g, "y", DType::F32, {2});
  Node *n = add_node(g, OpKind::Identity, {x}, {y});
  int k = 0;
  for (double d : kDoubles) {
    Attribute a;
    a.kind = Attribute::Kind::Float;
    a.f = d;
    n->attrs["f" + std::to_string(k++)] = a;
  }
  Attribute fl;
  fl.kind = Attribute::Kind::Floats;
  fl.floats.assign(std::begin(kDoubles), std::end(kDoubles));
  n->attrs["floats"] = fl;
  Attribute big;
  big.kind = Attribute::Kind::Ints;
  big.ints = {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), 0};
  n->attrs["ints"] = big;
  Attribute s;
  s.kind = Attribute::Kind::String;
  const char kRaw[] = "tab\t nul\0 \x7f quote\" back\\ \xc3\xa9";
  s.s = std::string(kRaw, sizeof kRaw - 1);
  n->attrs["s"] = s;
  g.outputs = {y};

  std::string text = print_model(m);
  Model back = parse_model(text);
  EXPECT_EQ(print_model(back), text);
  const Node &bn = *back.graph->nodes[0];
  for (int i = 0; i < k; ++i) {
    double a = n->attrs["f" + std::to_string(i)].f, b = bn.attrs.at("f" + std::to_string(i)).f;
    EXPECT_EQ(std::memcmp(&a, &b, sizeof a), 0) << "f" << i << " = " << a << " came back as " << b;
  }
  EXPECT_EQ(bn.attrs.at("floats").floats.size(), fl.floats.size());
  for (size_t i = 0; i < fl.floats.size(); ++i) {
    EXPECT_EQ(std::memcmp(&fl.floats[i], &bn.attrs.at("floats").floats[i], sizeof(double)), 0);
  }
  EXPECT_EQ(bn.attrs.at("ints").ints, big.ints);
  EXPECT_EQ(bn.attrs.at("s").s, s.s);
  EXPECT_TRUE(contains(text, "f1 = 0.1f")) << text;
  EXPECT_TRUE(contains(text, "f0 = 0.1,")) << text;
  EXPECT_TRUE(contains(text, "f5 = 1.0,")) << text;
}

TEST(GraphText, SubgraphsResolveOuterValuesAndSetParents) {
  const std::string text =
      "model {opset = 17, producer = \"\"}\n"
      "graph main(%x: f32[4], %c: bool[]) {\n"
      "  %y: f32[4] = If(%c) {else_branch = graph e() {\n"
      "    return %x\n"
      "  }, then_branch = graph t() {\n"
      "    %r: f32[4] = Relu(%x)\n"
      "    return %r\n"
      "  }}\n"
      "  return %y\n"
      "}\n";
  Model m = parse_model(text);
  EXPECT_EQ(print_model(m), text);
  const Graph &g = *m.graph;
  const Graph *then_g = g.nodes[0]->attr_graph("then_branch");
  ASSERT_NE(then_g, nullptr);
  EXPECT_EQ(then_g->parent, &g);
  EXPECT_EQ(then_g->nodes[0]->inputs[0], g.inputs[0]);
  EXPECT_EQ(then_g->find("x"), g.inputs[0]);
  EXPECT_EQ(g.nodes[0]->opset, 17);
  EXPECT_EQ(g.find("y")->producer, g.nodes[0].get());
  EXPECT_NO_THROW(verify_graph(g));
  // A subgraph cannot see the outputs of the node that holds it.
  std::string self = text;
  self.replace(self.find("return %x"), 9, "return %y");
  EXPECT_TRUE(contains(user_error_of([&] { parse_model(self); }), "4:12: undefined value %y"));
}

TEST(GraphText, SymbolNamesThatNeedQuotes) {
  Dim d = Dim::sym("batch size") + 1;
  EXPECT_EQ(d.str(), "(\"batch size\" + 1)");
  ASSERT_TRUE(parse_dim(d.str()));
  EXPECT_TRUE(parse_dim(d.str())->same_as(d));
  Dim q = Dim::sym("a\"b\\c");
  EXPECT_TRUE(parse_dim(q.str())->same_as(q));
  Dim num = Dim::sym("2x");
  EXPECT_TRUE(parse_dim(num.str())->same_as(num));
  EXPECT_FALSE(parse_dim("-"));
  EXPECT_FALSE(parse_dim("99999999999999999999"));
}

// ---- lit files: every tests/lit/graph/*.kir is in printed form and verifies ----

std::filesystem::path lit_dir() {
  return std::filesystem::path(__FILE__).parent_path().parent_path() / "lit" / "graph";
}

TEST(GraphText, LitFilesRoundTrip) {
  int files = 0;
  for (const auto &entry : std::filesystem::directory_iterator(lit_dir())) {
    if (entry.path().extension() != ".kir") continue;
    ++files;
    SCOPED_TRACE(entry.path().string());
    std::ifstream in(entry.path());
    std::string text, line;
    std::string body;  // the file without its leading `#` comment lines
    bool header = true;
    while (std::getline(in, line)) {
      text += line + "\n";
      if (header && !line.empty() && line[0] == '#') continue;
      header = false;
      body += line + "\n";
    }
    Model m;
    ASSERT_NO_THROW(m = parse_model(text));
    std::string printed = print_model(m);
    EXPECT_EQ(printed, body);
    EXPECT_EQ(round_trip(printed), printed);
    EXPECT_NO_THROW(verify_graph(*m.graph));
  }
  EXPECT_GE(files, 4) << "no lit files in " << lit_dir();
}

// ---- parse errors ----

TEST(GraphText, ParseErrorsGiveLineAndColumn) {
  const std::string head = "model {opset = 17, producer = \"\"}\ngraph g(%x: f32[2]) {\n";
  struct Case {
    std::string body, where, what;
  };
  const Case kCases[] = {
      {"  %a: f32[2] = Relu(%b)\n  return %a\n}\n", "3:21:", "undefined value %b"},
      {"  %x: f32[2] = Relu(%x)\n  return %x\n}\n", "3:3:", "defined twice"},
      {"  %a: f33[2] = Relu(%x)\n  return %a\n}\n", "3:7:", "unknown dtype 'f33'"},
      {"  %a: f32[(h +] = Relu(%x)\n  return %a\n}\n", "3:11:", "malformed dimension"},
      {"  %a: f32[2] = Relu(%x) {s = \"open}\n  return %a\n}\n", "3:30:", "unterminated string"},
      {"  %a: f32[2] = Relu(%x\n  return %a\n}\n", "4:3:", "expected ')'"},
      {"  %a: f32[2] = Relu(%x)\n}\n", "4:1:", "expected 'return'"},
      {"  %a: f32[2] = Relu(%x)\n", "4:1:", "expected 'return'"},
      {"  return %x\n}\nextra\n", "5:1:", "unexpected text"},
      {"  init %c: u8[1] = [256]\n  return %c\n}\n", "3:21:", "out of range"},
      {"  init %c: f32[2] = [1]\n  return %c\n}\n", "3:21:", "1 elements given"},
      {"  init %c: f32[2] = hex\"00\"\n  return %c\n}\n", "3:21:", "hex data has 1 bytes"},
      {"  init %c: f32[?] = [1]\n  return %c\n}\n", "3:21:", "needs `tensor<"},
      {"  %a: f32[2] = Relu(%x) {k = []}\n  return %a\n}\n", "3:30:", "empty list"},
      {"  %a: f32[2] = Relu(%x) {k = 1, k = 2}\n  return %a\n}\n", "3:33:", "given twice"},
      {"  %a: f32[2] = Relu<Bogus>(%x)\n  return %a\n}\n", "3:21:", "unknown op kind"},
      {"  %a: f32[2] = Relu(%x) {k = 1.2.3}\n  return %a\n}\n", "3:30:", "malformed number"},
      {"  %a: f32[(4 / 0)] = Relu(%x)\n  return %a\n}\n", "3:11:", "division by zero"},
      {"  init %c: f32[1000000000] = [1]\n  return %c\n}\n", "3:30:", "too few elements"},
  };
  for (const auto &c : kCases) {
    std::string msg = user_error_of([&] { parse_model(head + c.body); });
    EXPECT_EQ(msg.rfind(c.where, 0), 0u) << "for:\n" << c.body << "got: " << msg;
    EXPECT_TRUE(contains(msg, c.what)) << "for:\n" << c.body << "got: " << msg;
  }
  EXPECT_TRUE(
      contains(user_error_of([] { parse_model("model {opset = \"x\"}\ngraph g() {\n return\n}"); }),
               "1:7:"));
  EXPECT_TRUE(contains(user_error_of([] { parse_model(""); }), "1:1: expected 'graph'"));
}

// Every prefix of a valid file is either valid or a clean user_error, never a crash.
TEST(GraphText, TruncatedTextFailsCleanly) {
  std::ifstream in(lit_dir() / "control_flow.kir");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  ASSERT_FALSE(text.empty());
  for (size_t n = 0; n < text.size(); ++n) {
    try {
      parse_model(text.substr(0, n));
    } catch (const Error &e) {
      ASSERT_EQ(e.kind(), ErrorKind::User) << e.what();
    }
  }
}

// ---- verifier ----

struct Chain {
  Model m;
  Value *x, *a, *b;
  Chain() {
    m = parse_model(
        "graph g(%x: f32[2]) {\n"
        "  %a: f32[2] = Relu(%x)\n"
        "  %b: f32[2] = Neg(%a)\n"
        "  return %b\n"
        "}\n");
    x = m.graph->inputs[0];
    a = m.graph->nodes[0]->outputs[0];
    b = m.graph->nodes[1]->outputs[0];
  }
  Graph &g() { return *m.graph; }
};

TEST(Verifier, AcceptsWellFormedGraph) {
  Chain c;
  EXPECT_NO_THROW(verify_graph(c.g()));
}

TEST(Verifier, CatchesUseBeforeDefinition) {
  Chain c;
  std::swap(c.g().nodes[0], c.g().nodes[1]);
  EXPECT_TRUE(
      contains(user_error_of([&] { verify_graph(c.g()); }), "Neg uses %a before it is defined"));
}

TEST(Verifier, CatchesUndefinedValues) {
  Chain c;
  Value *ghost = c.g().new_value("ghost");
  c.g().nodes[1]->inputs[0] = ghost;
  EXPECT_TRUE(
      contains(user_error_of([&] { verify_graph(c.g()); }), "Neg uses undefined value %ghost"));
}

TEST(Verifier, CatchesDoubleDefinition) {
  Chain c;
  c.g().nodes[1]->outputs[0] = c.a;
  EXPECT_TRUE(
      contains(user_error_of([&] { verify_graph(c.g()); }), "value %a is defined more than once"));

  Chain same_name;
  same_name.b->name = "a";
  EXPECT_TRUE(contains(user_error_of([&] { verify_graph(same_name.g()); }),
                       "two different values are named %a"));

  Chain input_twice;
  input_twice.g().initializers.push_back(input_twice.x);
  EXPECT_TRUE(contains(user_error_of([&] { verify_graph(input_twice.g()); }),
                       "%x is defined more than once"));
}

TEST(Verifier, CatchesUndefinedGraphOutputs) {
  Chain c;
  c.g().outputs.push_back(c.g().new_value("nowhere"));
  EXPECT_TRUE(contains(user_error_of([&] { verify_graph(c.g()); }),
                       "graph output %nowhere is not defined"));
}

TEST(Verifier, CatchesProducerMismatchAndUnknownKinds) {
  Chain c;
  c.b->producer = c.g().nodes[0].get();
  EXPECT_TRUE(contains(user_error_of([&] { verify_graph(c.g()); }),
                       "value %b has producer Relu, expected Neg"));

  Chain unknown;
  unknown.g().nodes[0]->kind = OpKind::Unknown;
  unknown.g().nodes[0]->op_type = "Frobnicate";
  EXPECT_TRUE(
      contains(user_error_of([&] { verify_graph(unknown.g()); }), "Frobnicate has an op kind"));
}

TEST(Verifier, ChecksSubgraphs) {
  const std::string text =
      "graph main(%x: f32[4], %c: bool[]) {\n"
      "  %y: f32[4] = If(%c) {else_branch = graph e() {\n"
      "    return %x\n"
      "  }, then_branch = graph t() {\n"
      "    %r: f32[4] = Relu(%x)\n"
      "    return %r\n"
      "  }}\n"
      "  %z: f32[4] = Neg(%y)\n"
      "  return %z\n"
      "}\n";
  {
    Model m = parse_model(text);
    EXPECT_NO_THROW(verify_graph(*m.graph));
  }
  {
    // The then-branch uses %z, which the outer graph defines only after the If.
    Model m = parse_model(text);
    Graph &then_g = *m.graph->nodes[0]->attrs["then_branch"].graphs[0];
    then_g.nodes[0]->inputs[0] = m.graph->nodes[1]->outputs[0];
    EXPECT_TRUE(contains(user_error_of([&] { verify_graph(*m.graph); }),
                         "graph 't': Relu uses undefined value %z"));
  }
  {
    Model m = parse_model(text);
    Graph &else_g = *m.graph->nodes[0]->attrs["else_branch"].graphs[0];
    else_g.outputs[0] = m.graph->nodes[0]->outputs[0];
    EXPECT_TRUE(
        contains(user_error_of([&] { verify_graph(*m.graph); }), "graph output %y is not defined"));
  }
  {
    Model m = parse_model(text);
    m.graph->nodes[0]->attrs["else_branch"].graphs[0]->parent = nullptr;
    EXPECT_TRUE(contains(user_error_of([&] { verify_graph(*m.graph); }),
                         "does not have this graph as its parent"));
  }
}

}  // namespace
}  // namespace kiln
