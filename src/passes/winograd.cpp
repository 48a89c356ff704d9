// 3x3 stride-1 convolutions to the Winograd domain, F(m x m, 3x3) with m = 4, or m = 2
// for maps too small for 16 tiles of 4x4 (7x7: 16 tiles of 2x2): the weights g of every
// (output, input) channel pair become U = G g G^T (a x a, a = m + 2) at compile time,
// stored as f32[a^2, M, C] so each position is one M x C matrix of a batched GEMM
// (lower/winograd.cpp). 36 multiplies per 4x4 outputs instead of 144 (F(2x2): 16 per
// 2x2 instead of 36), for a small loss of accuracy (relative L2 ~1e-6..1e-5 against
// direct convolution; F(2x2) loses less).
#include "passes/passes.h"
#include "passes/rewrite.h"

namespace kiln {

namespace {

// F(2x2, 3x3) weight transform, interpolation points 0, +-1, infinity.
constexpr double kG4[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
// F(4x4, 3x3) weight transform, interpolation points 0, +-1, +-2, infinity.
constexpr double kG6[6][3] = {{1.0 / 4, 0, 0},
                             {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                             {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                             {1.0 / 24, 1.0 / 12, 1.0 / 6},
                             {1.0 / 24, -1.0 / 12, 1.0 / 6},
                             {0, 0, 1}};

// The output tile size m (4 or 2) the conv runs with, 0 when it does not qualify.
int tile_size(const Node &n) {
  if (n.kind != OpKind::FusedConv) return 0;
  const Tensor *w = f32_constant(n.input(1));
  const Value *x = n.input(0), *y = n.output(0);
  if (!w || w->rank() != 4 || w->shape()[2] != 3 || w->shape()[3] != 3 || n.attr_i("group", 1) != 1) return 0;
  for (const char *a : {"strides", "dilations"}) {
    for (int64_t v : n.attr_ints(a, {1, 1})) {
      if (v != 1) return 0;
    }
  }
  std::string pad = n.attr_s("auto_pad", "NOTSET");
  if (pad != "NOTSET" && pad != "") return 0;
  if (!x->has_shape || !y->has_shape || y->shape.size() != 4 || !y->shape[2].is_const() || !y->shape[3].is_const()) {
    return 0;
  }
  if (w->shape()[0] < 8 || w->shape()[1] < 8) return 0;
  // Enough tiles and channels for the transforms to pay off: 16 tiles of 4x4, or else of
  // 2x2 with enough channels that the GEMMs dominate (7x7 maps of 512 channels, where
  // F(2x2) does 16 / 36 of the multiplies on 16 / 9 of the weights).
  auto tiles = [&](int64_t m) { return ((y->shape[2].value() + m - 1) / m) * ((y->shape[3].value() + m - 1) / m); };
  if (tiles(4) >= 16) return 4;
  if (tiles(2) >= 16 && w->shape()[0] >= 64 && w->shape()[1] >= 64) return 2;
  return 0;
}

}  // namespace

void winograd_convs(Graph &g) {
  for (auto &n : g.nodes) {
    int tm = tile_size(*n);
    if (!tm) continue;
    const int al = tm + 2;
    auto G = [&](int i) { return tm == 2 ? kG4[i] : kG6[i]; };
    const Tensor &w = *f32_constant(n->input(1));
    int64_t M = w.shape()[0], C = w.shape()[1];
    Tensor u(DType::F32, {al * al, M, C});
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t c = 0; c < C; ++c) {
        const float *k = w.as<float>() + (m * C + c) * 9;
        double t[6][3];  // G g
        for (int i = 0; i < al; ++i) {
          for (int b = 0; b < 3; ++b) t[i][b] = G(i)[0] * k[b] + G(i)[1] * k[3 + b] + G(i)[2] * k[6 + b];
        }
        for (int i = 0; i < al; ++i) {
          for (int j = 0; j < al; ++j) {
            double v = t[i][0] * G(j)[0] + t[i][1] * G(j)[1] + t[i][2] * G(j)[2];
            u.as<float>()[((i * al + j) * M + m) * C + c] = static_cast<float>(v);
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
