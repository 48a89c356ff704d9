// DFT, STFT and MelWeightMatrix beyond what the ONNX node tests cover: symbolic
// signal lengths, zero-padding and truncation to dft_length, onesided and
// complex inputs, scalar inputs known only at run time, checked against a plain
// C++ DFT; and bad models.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <random>

#include "compiler/compiler.h"
#include "support/error.h"

#include "graph_builder.h"

namespace kiln {
namespace {

using test::compile_text;
using test::user_error_of;
using Cplx = std::complex<double>;

Tensor random_f32(std::vector<int64_t> shape, int seed) {
  Tensor t(DType::F32, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.as<float>()[i] = u(rng);
  return t;
}

Tensor scalar_i64(int64_t v) { return Tensor::from_i64({v}, {}); }

// X[k] = sum_{n < min(N, len)} x[n] exp(sign 2 pi i k n / N), k < bins.
std::vector<Cplx> dft_ref(const std::vector<Cplx> &x, int64_t n, int64_t bins,
                          bool inverse) {
  std::vector<Cplx> out(bins);
  double sign = inverse ? 1.0 : -1.0;
  for (int64_t k = 0; k < bins; ++k) {
    for (int64_t i = 0; i < std::min<int64_t>(n, x.size()); ++i) {
      out[k] += x[i] * std::polar(1.0, sign * 2 * M_PI *
                                           static_cast<double>(k * i % n) /
                                           static_cast<double>(n));
    }
    if (inverse)
      out[k] /= static_cast<double>(n);
  }
  return out;
}

void expect_complex_near(const Tensor &got, int64_t offset,
                         const std::vector<Cplx> &want, double tol = 1e-4) {
  for (size_t k = 0; k < want.size(); ++k) {
    EXPECT_NEAR(got.get_f64(offset + 2 * k), want[k].real(), tol)
        << "bin " << k;
    EXPECT_NEAR(got.get_f64(offset + 2 * k + 1), want[k].imag(), tol)
        << "bin " << k;
  }
}

TEST(Dft, SymbolicLengthPadsAndTruncatesToDftLength) {
  auto cm = compile_text(R"(model {opset = 17}
graph g(%x: f32[2, s, 2]) {
  init %n: i64[] = [6]
  %y: ? = DFT(%x, %n) {axis = 1}
  return %y
})");
  for (int64_t s : {4, 9}) {
    Tensor x = random_f32({2, s, 2}, static_cast<int>(s));
    auto out = cm->run({{"x", x}});
    ASSERT_EQ(out[0].shape(), (std::vector<int64_t>{2, 6, 2}));
    for (int64_t b = 0; b < 2; ++b) {
      std::vector<Cplx> sig;
      for (int64_t i = 0; i < s; ++i)
        sig.emplace_back(x.get_f64((b * s + i) * 2),
                         x.get_f64((b * s + i) * 2 + 1));
      expect_complex_near(out[0], b * 12, dft_ref(sig, 6, 6, false));
    }
  }
}

TEST(Dft, OnesidedRealAndInverseWithRuntimeLength) {
  auto cm = compile_text(R"(model {opset = 17}
graph g(%x: f32[1, 7, 1], %n: i64[]) {
  %y: ? = DFT(%x, %n) {onesided = 1}
  %z: ? = DFT(%x, %n) {inverse = 1}
  return %y, %z
})");
  Tensor x = random_f32({1, 7, 1}, 3);
  std::vector<Cplx> sig;
  for (int64_t i = 0; i < 7; ++i)
    sig.emplace_back(x.get_f64(i), 0.0);
  for (int64_t n : {7, 8}) {
    auto out = cm->run({{"x", x}, {"n", scalar_i64(n)}});
    ASSERT_EQ(out[0].shape(), (std::vector<int64_t>{1, n / 2 + 1, 2}));
    ASSERT_EQ(out[1].shape(), (std::vector<int64_t>{1, n, 2}));
    expect_complex_near(out[0], 0, dft_ref(sig, n, n / 2 + 1, false));
    expect_complex_near(out[1], 0, dft_ref(sig, n, n, true));
  }
}

TEST(Stft, SymbolicSignalLengthAndRuntimeStep) {
  auto cm = compile_text(R"(model {opset = 17}
graph g(%x: f32[1, len, 1], %step: i64[]) {
  init %w: f32[4] = [0.25, 0.5, 1.0, 0.75]
  %y: ? = STFT(%x, %step, %w) {onesided = 0}
  return %y
})");
  for (auto [len, step] : {std::pair<int64_t, int64_t>{10, 3},
                           std::pair<int64_t, int64_t>{13, 2}}) {
    Tensor x = random_f32({1, len, 1}, static_cast<int>(len));
    auto out = cm->run({{"x", x}, {"step", scalar_i64(step)}});
    int64_t frames = (len - 4) / step + 1;
    ASSERT_EQ(out[0].shape(), (std::vector<int64_t>{1, frames, 4, 2}));
    const double w[] = {0.25, 0.5, 1.0, 0.75};
    for (int64_t f = 0; f < frames; ++f) {
      std::vector<Cplx> frame;
      for (int64_t i = 0; i < 4; ++i)
        frame.emplace_back(x.get_f64(f * step + i) * w[i], 0.0);
      expect_complex_near(out[0], f * 8, dft_ref(frame, 4, 4, false));
    }
  }
}

TEST(MelWeightMatrix, RuntimeInputsGiveTriangularFilters) {
  auto cm = compile_text(R"(model {opset = 17}
graph g(%m: i64[], %n: i64[], %rate: i64[], %lo: f32[], %hi: f32[]) {
  %y: ? = MelWeightMatrix(%m, %n, %rate, %lo, %hi)
  return %y
})");
  Tensor lo = Tensor::scalar_f32(0.0f), hi = Tensor::scalar_f32(4000.0f);
  auto out = cm->run({{"m", scalar_i64(4)},
                      {"n", scalar_i64(32)},
                      {"rate", scalar_i64(8000)},
                      {"lo", lo},
                      {"hi", hi}});
  ASSERT_EQ(out[0].shape(), (std::vector<int64_t>{17, 4}));
  for (int64_t band = 0; band < 4; ++band) {
    double peak = 0;
    for (int64_t j = 0; j < 17; ++j) {
      double v = out[0].get_f64(j * 4 + band);
      EXPECT_GE(v, 0.0);
      EXPECT_LE(v, 1.0);
      peak = std::max(peak, v);
    }
    EXPECT_EQ(peak, 1.0) << "band " << band;
  }
}

TEST(Signal, BadModelsAreUserErrors) {
  EXPECT_NE(user_error_of([] {
              compile_text(R"(model {opset = 17}
graph g(%x: f32[1, 8, 3]) {
  %y: ? = DFT(%x)
  return %y
})");
            }).find("1 (real) or 2 (complex)"),
            std::string::npos);
  EXPECT_NE(user_error_of([] {
              compile_text(R"(model {opset = 17}
graph g(%x: f32[1, 8, 1]) {
  init %step: i64[] = [2]
  %y: ? = STFT(%x, %step)
  return %y
})");
            }).find("window or a frame_length"),
            std::string::npos);
  EXPECT_NE(user_error_of([] {
              compile_text(R"(model {opset = 17}
graph g(%x: f32[1, 8, 1]) {
  init %step: i64[] = [2]
  init %len: i64[] = [16]
  %y: ? = STFT(%x, %step, _, %len)
  return %y
})");
            }).find("exceeds the signal length"),
            std::string::npos);
}

} // namespace
} // namespace kiln
