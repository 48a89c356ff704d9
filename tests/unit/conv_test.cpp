// Conv's compute definition against a direct C++ reference on random data, over strides,
// dilations, asymmetric pads, groups, auto_pad and 1-D/2-D/3-D inputs.
#include <gtest/gtest.h>

#include <random>

#include "compiler/compiler.h"

#include "graph_builder.h"

namespace kiln {
namespace {

struct ConvCase {
  std::vector<int64_t> x, w;  // NC[D]HW, OI[k..]
  std::vector<int64_t> strides, dilations, pads;
  int64_t group;
  std::string auto_pad;
  bool bias;
};

Tensor random_tensor(const std::vector<int64_t> &shape, std::mt19937 &rng) {
  Tensor t(DType::F32, shape);
  std::uniform_real_distribution<float> u(-1, 1);
  for (int64_t i = 0; i < t.numel(); ++i) t.as<float>()[i] = u(rng);
  return t;
}

// Direct definition: y[n,o,p] = b[o] + sum_{c,k} x[n, g*Cg + c, p*s + k*d - pad] w[o,c,k].
Tensor reference(const ConvCase &cc, const Tensor &x, const Tensor &w, const Tensor *b, const std::vector<int64_t> &yshape,
                 const std::vector<int64_t> &pad_begin) {
  Tensor y(DType::F32, yshape);
  int sp = static_cast<int>(x.rank()) - 2;
  int64_t cg = w.shape()[1], og = yshape[1] / cc.group;
  std::vector<int64_t> yi(yshape.size());
  for (int64_t flat = 0; flat < y.numel(); ++flat) {
    int64_t r = flat;
    for (int d = static_cast<int>(yshape.size()) - 1; d >= 0; --d) {
      yi[d] = r % yshape[d];
      r /= yshape[d];
    }
    int64_t n = yi[0], o = yi[1], g = o / og;
    double acc = b ? b->as<float>()[o] : 0;
    int64_t kn = 1;
    for (int d = 0; d < sp; ++d) kn *= w.shape()[d + 2];
    for (int64_t c = 0; c < cg; ++c) {
      for (int64_t kf = 0; kf < kn; ++kf) {
        int64_t kr = kf, xoff = n * x.shape()[1] + g * cg + c, woff = o * cg + c;
        bool inside = true;
        std::vector<int64_t> k(sp);
        for (int d = sp - 1; d >= 0; --d) {
          k[d] = kr % w.shape()[d + 2];
          kr /= w.shape()[d + 2];
        }
        for (int d = 0; d < sp; ++d) {
          int64_t p = yi[d + 2] * cc.strides[d] + k[d] * cc.dilations[d] - pad_begin[d];
          inside = inside && p >= 0 && p < x.shape()[d + 2];
          xoff = xoff * x.shape()[d + 2] + p;
          woff = woff * w.shape()[d + 2] + k[d];
        }
        if (inside) acc += static_cast<double>(x.as<float>()[xoff]) * w.as<float>()[woff];
      }
    }
    y.as<float>()[flat] = static_cast<float>(acc);
  }
  return y;
}

void run_case(const ConvCase &cc, std::mt19937 &rng) {
  Model m;
  m.opset = 13;
  m.graph = std::make_shared<Graph>();
  Graph &g = *m.graph;
  Value *x = test::input(g, "x", DType::F32, shape_from(cc.x));
  Tensor wt = random_tensor(cc.w, rng), bt = random_tensor({cc.w[0]}, rng);
  auto constant = [&](const std::string &name, const Tensor &t) {
    return test::constant(g, name, t);
  };
  Node *n = g.new_node(OpKind::Conv, "");
  n->opset = 13;
  n->inputs = {x, constant("w", wt)};
  if (cc.bias) n->inputs.push_back(constant("b", bt));
  test::set_ints(n, "strides", cc.strides);
  test::set_ints(n, "dilations", cc.dilations);
  if (!cc.pads.empty()) test::set_ints(n, "pads", cc.pads);
  test::set_int(n, "group", cc.group);
  if (!cc.auto_pad.empty()) test::set_str(n, "auto_pad", cc.auto_pad);
  Value *y = g.new_value("y");
  y->producer = n;
  n->outputs = {y};
  g.outputs.push_back(y);
  auto cm = CompiledModel::compile(std::move(m));
  Tensor xt = random_tensor(cc.x, rng);
  Tensor got = cm->run({{"x", xt}})[0];
  int sp = static_cast<int>(cc.x.size()) - 2;
  std::vector<int64_t> pad_begin(sp);
  for (int d = 0; d < sp; ++d) {
    int64_t k_eff = cc.dilations[d] * (cc.w[d + 2] - 1) + 1;
    if (cc.auto_pad == "SAME_UPPER" || cc.auto_pad == "SAME_LOWER") {
      int64_t out = (cc.x[d + 2] + cc.strides[d] - 1) / cc.strides[d];
      int64_t total = std::max<int64_t>(0, (out - 1) * cc.strides[d] + k_eff - cc.x[d + 2]);
      pad_begin[d] = cc.auto_pad == "SAME_UPPER" ? total / 2 : (total + 1) / 2;
    } else {
      pad_begin[d] = cc.pads.empty() ? 0 : cc.pads[d];
    }
  }
  Tensor want = reference(cc, xt, wt, cc.bias ? &bt : nullptr, got.shape(), pad_begin);
  ASSERT_EQ(got.numel(), want.numel());
  for (int64_t i = 0; i < got.numel(); ++i) {
    ASSERT_NEAR(got.as<float>()[i], want.as<float>()[i], 1e-4) << "element " << i;
  }
}

TEST(Conv, MatchesDirectDefinition) {
  std::mt19937 rng(7);
  std::vector<ConvCase> cases = {
      {{1, 3, 9, 9}, {4, 3, 3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, "", true},
      {{2, 4, 10, 7}, {6, 2, 3, 2}, {2, 1}, {1, 2}, {0, 2, 1, 0}, 2, "", true},
      {{1, 6, 8, 8}, {6, 1, 5, 5}, {2, 2}, {1, 1}, {2, 2, 2, 2}, 6, "", false},   // depthwise 5x5 s2
      {{1, 2, 11, 5}, {3, 2, 3, 3}, {3, 2}, {2, 1}, {}, 1, "SAME_UPPER", true},
      {{1, 2, 6, 6}, {2, 2, 2, 2}, {2, 2}, {1, 1}, {}, 1, "SAME_LOWER", false},
      {{1, 3, 12}, {2, 3, 4}, {3}, {2}, {1, 2}, 1, "", true},                      // 1-D
      {{1, 2, 4, 5, 6}, {2, 2, 2, 3, 2}, {1, 2, 1}, {1, 1, 2}, {1, 0, 1, 0, 1, 1}, 1, "", true},  // 3-D
      {{1, 4, 7, 7}, {8, 4, 1, 1}, {1, 1}, {1, 1}, {}, 1, "VALID", true},       // 1x1
  };
  for (auto &c : cases) run_case(c, rng);
}

}  // namespace
}  // namespace kiln
