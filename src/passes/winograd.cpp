// 3x3 stride-1 convolutions to the Winograd domain, F(4x4, 3x3): the weights g of every
// (output, input) channel pair become U = G g G^T (6x6) at compile time, stored as
// f32[36, M, C] so each of the 36 positions is one M x C matrix of a batched GEMM
// (lower/winograd.cpp). 36 multiplies per 4x4 outputs instead of 144, for a small loss
// of accuracy (relative L2 ~1e-6..1e-5 against direct convolution).
#include "passes/passes.h"
#include "passes/rewrite.h"

namespace kiln {

namespace {

// F(4x4, 3x3) weight transform, interpolation points 0, +-1, +-2, infinity.
constexpr double kG[6][3] = {{1.0 / 4, 0, 0},
                             {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                             {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                             {1.0 / 24, 1.0 / 12, 1.0 / 6},
                             {1.0 / 24, -1.0 / 12, 1.0 / 6},
                             {0, 0, 1}};

bool qualifies(const Node &n) {
  if (n.kind != OpKind::FusedConv) return false;
  const Tensor *w = f32_constant(n.input(1));
  const Value *x = n.input(0), *y = n.output(0);
  if (!w || w->rank() != 4 || w->shape()[2] != 3 || w->shape()[3] != 3 || n.attr_i("group", 1) != 1) return false;
  for (const char *a : {"strides", "dilations"}) {
    for (int64_t v : n.attr_ints(a, {1, 1})) {
      if (v != 1) return false;
    }
  }
  std::string pad = n.attr_s("auto_pad", "NOTSET");
  if (pad != "NOTSET" && pad != "") return false;
  if (!x->has_shape || !y->has_shape || y->shape.size() != 4 || !y->shape[2].is_const() || !y->shape[3].is_const()) {
    return false;
  }
  // Enough 4x4 tiles and channels for the transforms to pay off.
  int64_t tiles = ((y->shape[2].value() + 3) / 4) * ((y->shape[3].value() + 3) / 4);
  return tiles >= 16 && w->shape()[0] >= 8 && w->shape()[1] >= 8;
}

}  // namespace

void winograd_convs(Graph &g) {
  for (auto &n : g.nodes) {
    if (!qualifies(*n)) continue;
    const Tensor &w = *f32_constant(n->input(1));
    int64_t M = w.shape()[0], C = w.shape()[1];
    Tensor u(DType::F32, {36, M, C});
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t c = 0; c < C; ++c) {
        const float *k = w.as<float>() + (m * C + c) * 9;
        double t[6][3];  // G g
        for (int i = 0; i < 6; ++i) {
          for (int b = 0; b < 3; ++b) t[i][b] = kG[i][0] * k[b] + kG[i][1] * k[3 + b] + kG[i][2] * k[6 + b];
        }
        for (int i = 0; i < 6; ++i) {
          for (int j = 0; j < 6; ++j) {
            double v = t[i][0] * kG[j][0] + t[i][1] * kG[j][1] + t[i][2] * kG[j][2];
            u.as<float>()[((i * 6 + j) * M + m) * C + c] = static_cast<float>(v);
          }
        }
      }
    }
    n->kind = OpKind::WinogradConv;
    n->op_type = "WinogradConv";
    n->attrs["kernel_shape"].kind = Attribute::Kind::Ints;
    n->attrs["kernel_shape"].ints = {3, 3};
    n->inputs[1] = add_constant(g, n->input(1)->name + "_winograd", std::move(u));
  }
}

}  // namespace kiln
