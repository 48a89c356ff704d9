// Runtime kernels of the random generators: RandomNormal(Like), RandomUniform(Like),
// Bernoulli, Multinomial. With a `seed` attribute every run draws the same values;
// without one each run draws fresh ones.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "runtime/runtime_kernel.h"
#include "support/error.h"

namespace kiln {

namespace {

std::mt19937_64 make_rng(const Node &n) {
  if (n.has_attr("seed")) {
    double s = n.attr_f("seed", 0);
    uint64_t bits;
    std::memcpy(&bits, &s, sizeof bits);
    return std::mt19937_64(bits);
  }
  std::random_device rd;
  return std::mt19937_64((static_cast<uint64_t>(rd()) << 32) ^ rd());
}

DType out_dtype(const Node &n, DType def) {
  DType t = n.has_attr("dtype") ? static_cast<DType>(n.attr_i("dtype", 0)) : def;
  user_assert(dtype_valid(static_cast<int>(t))) << n.describe() << ": unsupported dtype";
  return t;
}

std::vector<int64_t> out_shape(const RuntimeKernelContext &c) {
  if (c.node.kind == OpKind::RandomNormal || c.node.kind == OpKind::RandomUniform) return c.node.attr_ints("shape");
  return c.input(0).shape();
}

}  // namespace

void run_random(RuntimeKernelContext &c) {
  const Node &n = c.node;
  bool like = n.kind == OpKind::RandomNormalLike || n.kind == OpKind::RandomUniformLike;
  DType t = out_dtype(n, like ? c.input(0).dtype() : DType::F32);
  user_assert(dtype_is_float(t)) << n.describe() << ": dtype must be a floating-point type";
  Tensor y(t, out_shape(c));
  std::mt19937_64 rng = make_rng(n);
  if (n.kind == OpKind::RandomNormal || n.kind == OpKind::RandomNormalLike) {
    std::normal_distribution<double> d(n.attr_f("mean", 0.0), n.attr_f("scale", 1.0));
    for (int64_t i = 0; i < y.numel(); ++i) y.set_f64(i, d(rng));
  } else {
    double lo = n.attr_f("low", 0.0), hi = n.attr_f("high", 1.0);
    user_assert(lo <= hi) << n.describe() << ": low must not exceed high";
    std::uniform_real_distribution<double> d(lo, hi);
    for (int64_t i = 0; i < y.numel(); ++i) y.set_f64(i, d(rng));
  }
  c.out[0] = std::move(y);
}

void run_bernoulli(RuntimeKernelContext &c) {
  const Tensor &p = c.input(0);
  Tensor y(out_dtype(c.node, p.dtype()), p.shape());
  std::mt19937_64 rng = make_rng(c.node);
  std::uniform_real_distribution<double> d(0.0, 1.0);
  for (int64_t i = 0; i < y.numel(); ++i) {
    double pi = p.get_f64(i);
    user_assert(pi >= 0 && pi <= 1) << c.node.describe() << ": probability " << pi << " is outside [0, 1]";
    y.set_f64(i, d(rng) < pi ? 1 : 0);
  }
  c.out[0] = std::move(y);
}

// Input [batch, classes] holds unnormalized log-probabilities; each row draws
// sample_size class indices.
void run_multinomial(RuntimeKernelContext &c) {
  const Tensor &x = c.input(0);
  user_assert(x.rank() == 2) << c.node.describe() << ": input must be [batch, classes]";
  int64_t batch = x.shape()[0], classes = x.shape()[1], samples = c.node.attr_i("sample_size", 1);
  DType t = out_dtype(c.node, DType::I32);
  user_assert(t == DType::I32 || t == DType::I64) << c.node.describe() << ": dtype must be int32 or int64";
  user_assert(classes > 0) << c.node.describe() << ": needs at least one class";
  Tensor y(t, {batch, samples});
  std::mt19937_64 rng = make_rng(c.node);
  std::vector<double> w(classes);
  for (int64_t b = 0; b < batch; ++b) {
    double mx = -INFINITY;
    for (int64_t k = 0; k < classes; ++k) mx = std::max(mx, x.get_f64(b * classes + k));
    for (int64_t k = 0; k < classes; ++k) w[k] = std::exp(x.get_f64(b * classes + k) - mx);
    std::discrete_distribution<int64_t> d(w.begin(), w.end());
    for (int64_t s = 0; s < samples; ++s) y.set_f64(b * samples + s, static_cast<double>(d(rng)));
  }
  c.out[0] = std::move(y);
}

}  // namespace kiln
