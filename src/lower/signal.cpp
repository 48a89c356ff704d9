// Compute definitions of the signal-processing ops (opset 17). DFT and STFT are
// the direct O(N^2) sums X[k] = sum_n x[n] exp(-+2 pi i k n / N), accumulated
// in f64 (the phase k*n is reduced mod N in integers first, so large k*n keep
// full precision). MelWeightMatrix follows the ONNX reference: triangular
// filters between mel-spaced FFT bin indices (floored), which are computed on
// the host from the scalar inputs.
#include <cmath>

#include "graph/shape_fn.h"
#include "lower/lower.h"
#include "support/error.h"

namespace kiln {

namespace {

const Type kF64 = Type::f(64);

int64_t scalar_value(LowerContext &c, size_t i) {
  const Tensor &v = c.value(i);
  user_assert(v.numel() == 1)
      << c.node.describe() << ": input " << i << " must be a scalar";
  return v.get_i64(0);
}

// One term of the complex product (re + i im) * exp(sign * i theta), theta = 2
// pi (kn mod N) / N: the real part for component 0, the imaginary part for
// component 1.
Expr rotate(Expr re, Expr im, Expr kn, Expr n, Expr component, double sign) {
  Expr theta = cast(kF64, kn % n) * make_const(kF64, 2 * M_PI) / cast(kF64, n);
  Expr cs = call("cos", {theta}),
       sn = call("sin", {theta}) * make_const(kF64, sign);
  return select(component == Expr(0), re * cs - im * sn, im * cs + re * sn);
}

// Real and imaginary parts of input x at `idx` (its last index replaced), as
// f64.
std::pair<Expr, Expr> load_complex(const Operand &x, std::vector<Expr> idx) {
  Expr last = x.shape.back();
  idx.back() = Expr(0);
  Expr re = cast(kF64, load(x, idx));
  if (is_const(last, 1))
    return {re, make_zero(kF64)};
  // A runtime last dimension is 1 or 2: clamp the index so the load stays in
  // bounds.
  idx.back() = min(last - Expr(1), Expr(1));
  Expr im = cast(kF64, load(x, idx));
  return {re, is_const(last, 2) ? im
                                : select(last == Expr(2), im, make_zero(kF64))};
}

} // namespace

Stmt lower_dft(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  int axis = normalize_axis(c.node.attr_i("axis", 1), x.rank() - 1, c.node);
  bool inverse = c.node.attr_i("inverse", 0) != 0;
  Expr n = c.has(1) ? Expr(scalar_value(c, 1)) : x.shape[axis];
  Expr used =
      min(n, x.shape[axis]); // zero-padding past the signal adds nothing
  double sign = inverse ? 1.0 : -1.0;
  Expr scale =
      inverse ? make_const(kF64, 1.0) / cast(kF64, n) : make_const(kF64, 1.0);
  return loop_nest(
      c, y.shape,
      [&](const std::vector<Expr> &i) {
        Expr k = i[axis], component = i.back();
        return reduce(
            c, kF64, make_zero(kF64), {used},
            [&](Expr acc, const std::vector<Expr> &r) {
              std::vector<Expr> xi = i;
              xi[axis] = r[0];
              auto [re, im] = load_complex(x, xi);
              return acc + rotate(re, im, k * r[0], n, component, sign);
            },
            [&](Expr sum) {
              return store(y, i, cast(y.compute(), sum * scale));
            });
      },
      ForKind::Parallel);
}

Stmt lower_stft(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  Expr step(scalar_value(c, 1));
  Expr frame = c.has(3) ? Expr(scalar_value(c, 3)) : c.in[2].shape[0];
  const Operand *window = c.has(2) ? &c.in[2] : nullptr;
  return loop_nest(
      c, y.shape,
      [&](const std::vector<Expr> &i) {
        Expr b = i[0], f = i[1], k = i[2], component = i[3];
        return reduce(
            c, kF64, make_zero(kF64), {frame},
            [&](Expr acc, const std::vector<Expr> &r) {
              auto [re, im] = load_complex(x, {b, f * step + r[0], Expr(0)});
              if (window) {
                Expr w = cast(kF64, load(*window, {r[0]}));
                re = re * w;
                im = im * w;
              }
              return acc + rotate(re, im, k * r[0], frame, component, -1.0);
            },
            [&](Expr sum) { return store(y, i, cast(y.compute(), sum)); });
      },
      ForKind::Parallel);
}

Stmt lower_mel_weight_matrix(LowerContext &c) {
  const Operand &y = c.out[0];
  int64_t mels = scalar_value(c, 0), dft = scalar_value(c, 1);
  double rate = c.value(2).get_f64(0);
  user_assert(rate > 0) << c.node.describe()
                        << ": sample_rate must be positive";
  // The reference computes the mel edges in the edges' own (single) precision.
  auto to_mel = [](double hz) {
    return 2595.0f * std::log10(1.0f + static_cast<float>(hz) / 700.0f);
  };
  float low = to_mel(c.value(3).get_f64(0)),
        high = to_mel(c.value(4).get_f64(0));
  float step = (high - low) / static_cast<float>(mels + 2);
  int64_t bins = dft / 2 + 1;
  std::vector<int64_t> edges(mels + 2);
  for (int64_t e = 0; e < mels + 2; ++e) {
    double hz =
        700.0 *
        (std::pow(10.0, (static_cast<double>(e) * step + low) / 2595.0) - 1.0);
    edges[e] = static_cast<int64_t>(
        std::floor(static_cast<double>(dft + 1) * hz / rate));
    user_assert(edges[e] >= 0 && edges[e] < bins)
        << c.node.describe() << ": mel band edge " << e << " falls outside the "
        << bins << " spectrogram bins";
  }
  std::string table = c.fresh("edges");
  std::vector<Stmt> fill;
  for (int64_t e = 0; e < mels + 2; ++e)
    fill.push_back(Store::make(table, Expr(edges[e]), Expr(e)));
  Type idx = Type::index();
  Stmt body = compute(c, y, [&](const std::vector<Expr> &i) {
    Expr j = i[0], band = i[1];
    Expr lo = Load::make(idx, table, band),
         mid = Load::make(idx, table, band + Expr(1)),
         hi = Load::make(idx, table, band + Expr(2));
    Expr one = make_const(kF64, 1.0), zero = make_zero(kF64);
    Expr rising =
        select(lo == mid, one,
               cast(kF64, j - lo) / cast(kF64, max(mid - lo, Expr(1))));
    Expr falling = cast(kF64, hi - j) / cast(kF64, max(hi - mid, Expr(1)));
    Expr v = select(mid <= j && j < hi, falling,
                    select(lo <= j && j <= mid, rising, zero));
    return cast(y.compute(), v);
  });
  fill.push_back(body);
  return Allocate::make(table, idx, Expr(mels + 2), Block::make(fill));
}

} // namespace kiln
