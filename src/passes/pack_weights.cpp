// Conv weights packed at compile time for the GEMM tiles (lower/gemm.cpp): within each
// group, rows (output channels) in blocks of `mr` are stored k-major,
//   W'[block][k][i] = W[block * mr + i][k]     (k = input channel x kernel tap),
// so a tile's mr broadcasts of A per k are one contiguous 4*mr-byte read instead of mr
// strided streams. Rows of a last partial block stay row-major after the blocks, so the
// tensor keeps its shape and size. The node records `packed_mr`.
// A conv with few output pixels (at most 64 per image, e.g. 7x7 maps; more when strided)
// runs its GEMM transposed (lower/conv_schedule.cpp): its weights are stored in column
// panels of `nw` output channels instead, W'[panel][k][j] = W[panel * nw + j][k], and the
// node records `packed_nr`.
// WinogradConvs of at most 64 tiles (28x28 maps and smaller), or 256 with whole panels of
// input and output channels, run their 36 (F(2x2): 16) GEMMs transposed too (tiles as rows,
// output channels across the lanes): U[e] is stored in column panels,
// U'[e][panel][c][j] = U[e][panel * nw + j][c], `packed_nr`.
#include "passes/passes.h"
#include "passes/rewrite.h"

namespace kiln {

namespace {

// dst = the rows of an M x K row-major matrix (M a multiple of nw) in column panels of nw
// rows: dst[(p * K + k) * nw + j] = src[(p * nw + j) * K + k].
void rows_to_panels(const float *src, float *dst, int64_t M, int64_t K, int nw) {
  for (int64_t pn = 0; pn < M / nw; ++pn) {
    for (int64_t k = 0; k < K; ++k) {
      for (int j = 0; j < nw; ++j) dst[(pn * K + k) * nw + j] = src[(pn * nw + j) * K + k];
    }
  }
}

// The node's weight input (1) replaced by its packed copy `p`; the node records packed_nr.
void use_panels(Graph &g, Node &n, Tensor p, int nw) {
  n.inputs[1] = add_constant(g, n.input(1)->name + "_panels", std::move(p));
  n.attrs["packed_nr"].kind = Attribute::Kind::Int;
  n.attrs["packed_nr"].i = nw;
}

}  // namespace

void pack_conv_weights(Graph &g, int mr, int nw) {
  for (auto &n : g.nodes) {
    if (n->kind != OpKind::FusedConv || n->has_attr("packed_mr") || n->has_attr("packed_nr")) continue;
    const Tensor *w = f32_constant(n->input(1));
    const Value *x = n->input(0), *y = n->output(0);
    if (!w || (w->rank() != 3 && w->rank() != 4) || !x->has_shape || x->dtype != DType::F32 ||
        !y->has_shape || y->dtype != DType::F32) {
      continue;
    }
    int64_t group = n->attr_i("group", 1), M = w->shape()[0];
    int64_t K = w->numel() / M, Mg = M / group;
    if (M % group != 0 || (w->shape()[1] == 1 && Mg == 1)) continue;  // depthwise: not a GEMM
    int64_t pixels = 0;
    if (y->shape.size() == 4 && y->shape[2].is_const() && y->shape[3].is_const()) {
      pixels = y->shape[2].value() * y->shape[3].value();
    }
    // Transposed: up to 64 pixels (7x7 maps), 1x1 stride-1 convs included (they read their
    // input in place either way); strided convs up to 256 (14x14 maps: their direct rows
    // would be mostly copies), strided 1x1 convs up to 1024 (28x28 maps: a small im2col
    // matrix, K = the input channels). Measured against direct rows on ResNet-50's shapes.
    bool strided = n->attr_ints("strides", {1, 1}) != std::vector<int64_t>{1, 1};
    bool pointwise = w->rank() == 4 && w->shape()[2] == 1 && w->shape()[3] == 1;
    int64_t max_pixels = !strided ? 64 : pointwise ? 1024 : 256;
    if (group == 1 && pixels >= 2 && pixels <= max_pixels && M % nw == 0) {
      Tensor p(DType::F32, w->shape());
      rows_to_panels(w->as<float>(), p.as<float>(), M, K, nw);
      use_panels(g, *n, std::move(p), nw);
      continue;
    }
    Tensor p(DType::F32, w->shape());
    const float *src = w->as<float>();
    float *dst = p.as<float>();
    for (int64_t gi = 0; gi < group; ++gi) {
      const float *gs = src + gi * Mg * K;
      float *gd = dst + gi * Mg * K;
      int64_t blocks = Mg / mr;
      for (int64_t b = 0; b < blocks; ++b) {
        for (int64_t k = 0; k < K; ++k) {
          for (int i = 0; i < mr; ++i) gd[(b * K + k) * mr + i] = gs[(b * mr + i) * K + k];
        }
      }
      for (int64_t r = blocks * mr; r < Mg; ++r) {
        for (int64_t k = 0; k < K; ++k) gd[r * K + k] = gs[r * K + k];
      }
    }
    n->inputs[1] = add_constant(g, n->input(1)->name + "_packed", std::move(p));
    n->attrs["packed_mr"].kind = Attribute::Kind::Int;
    n->attrs["packed_mr"].i = mr;
  }
}

void pack_matmul_weights(Graph &g, int nw) {
  for (auto &n : g.nodes) {
    if (n->kind != OpKind::FusedMatMul || n->has_attr("packed_nr")) continue;
    const Tensor *b = f32_constant(n->input(1));
    const Value *a = n->input(0), *y = n->output(0);
    if (!b || b->rank() != 2 || b->shape()[1] < nw || !a->has_shape || a->shape.size() < 2 ||
        a->dtype != DType::F32 || y->dtype != DType::F32) {
      continue;
    }
    int64_t K = b->shape()[0], N = b->shape()[1], np = N / nw * nw;
    Tensor p(DType::F32, b->shape());
    const float *src = b->as<float>();
    float *dst = p.as<float>();
    for (int64_t pn = 0; pn < N / nw; ++pn) {
      for (int64_t k = 0; k < K; ++k) {
        for (int j = 0; j < nw; ++j) dst[(pn * K + k) * nw + j] = src[k * N + pn * nw + j];
      }
    }
    for (int64_t k = 0; k < K; ++k) {  // columns past the last whole panel, row-major
      for (int64_t j = np; j < N; ++j) dst[np * K + k * (N - np) + (j - np)] = src[k * N + j];
    }
    use_panels(g, *n, std::move(p), nw);
  }
}

void pack_winograd_weights(Graph &g, int nw) {
  for (auto &n : g.nodes) {
    if (n->kind != OpKind::WinogradConv || n->has_attr("packed_nr")) continue;
    const Tensor *u = f32_constant(n->input(1));
    const Value *y = n->output(0);
    if (!u || u->rank() != 3 || (u->shape()[0] != 36 && u->shape()[0] != 16) || !y->has_shape || y->shape.size() != 4 ||
        !y->shape[2].is_const() || !y->shape[3].is_const()) {
      continue;
    }
    int64_t M = u->shape()[1], C = u->shape()[2];
    int64_t positions = u->shape()[0], tm = positions == 16 ? 2 : 4;
    int64_t tiles = ((y->shape[2].value() + tm - 1) / tm) * ((y->shape[3].value() + tm - 1) / tm);
    // Up to 256 tiles (56x56 maps) when the channels are whole panels: those transform
    // channels-last (lower/winograd.cpp; ResNet-50's 56x56 convs 6% faster than tiles along
    // the lanes with a GEMM per position).
    bool channels_last = C % nw == 0 && tiles <= 256;
    if ((tiles > 64 && !channels_last) || M % nw != 0) continue;
    Tensor p(DType::F32, u->shape());
    for (int64_t e = 0; e < positions; ++e) rows_to_panels(u->as<float>() + e * M * C, p.as<float>() + e * M * C, M, C, nw);
    use_panels(g, *n, std::move(p), nw);
  }
}

}  // namespace kiln
