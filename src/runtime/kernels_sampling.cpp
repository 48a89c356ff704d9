// Runtime kernel of GridSample (opset 16, 4-D): samples X at normalized grid locations
// with bilinear, nearest or bicubic interpolation and zeros/border/reflection padding.
#include <algorithm>
#include <cmath>

#include "runtime/runtime_kernel.h"
#include "support/error.h"

namespace kiln {

namespace {

enum class Padding { Zeros, Border, Reflection };

// Reflects x into [lo, hi] (repeatedly, like a mirror at both ends).
double reflect(double x, double lo, double hi) {
  double range = hi - lo;
  if (range <= 0) return lo;
  if (x < lo) {
    double d = lo - x;
    int64_t k = static_cast<int64_t>(d / range);
    double r = d - static_cast<double>(k) * range;
    return k % 2 == 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    double d = x - hi;
    int64_t k = static_cast<int64_t>(d / range);
    double r = d - static_cast<double>(k) * range;
    return k % 2 == 0 ? hi - r : lo + r;
  }
  return x;
}

// Cubic convolution weights (A = -0.75) for the 4 taps around a point at fraction t.
void cubic_weights(double t, double w[4]) {
  const double a = -0.75;
  auto near = [&](double d) { return ((a + 2) * d - (a + 3)) * d * d + 1; };
  auto far = [&](double d) { return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a; };
  w[0] = far(t + 1);
  w[1] = near(t);
  w[2] = near(1 - t);
  w[3] = far(2 - t);
}

struct Plane {
  const Tensor &x;
  int64_t base, h, w;
  Padding pad;
  double lo_x, hi_x, lo_y, hi_y;  // reflection bounds

  double at(int64_t yi, int64_t xi) const {
    switch (pad) {
      case Padding::Zeros:
        if (yi < 0 || yi >= h || xi < 0 || xi >= w) return 0;
        break;
      case Padding::Border:
        yi = std::clamp<int64_t>(yi, 0, h - 1);
        xi = std::clamp<int64_t>(xi, 0, w - 1);
        break;
      case Padding::Reflection:
        yi = std::clamp<int64_t>(static_cast<int64_t>(reflect(static_cast<double>(yi), lo_y, hi_y)), 0, h - 1);
        xi = std::clamp<int64_t>(static_cast<int64_t>(reflect(static_cast<double>(xi), lo_x, hi_x)), 0, w - 1);
        break;
    }
    return x.get_f64(base + yi * w + xi);
  }
};

double denormalize(double v, int64_t len, bool align) {
  return align ? (v + 1) / 2 * static_cast<double>(len - 1) : ((v + 1) * static_cast<double>(len) - 1) / 2;
}

}  // namespace

void run_grid_sample(RuntimeKernelContext &c) {
  const Node &n = c.node;
  const Tensor &x = c.input(0), &grid = c.input(1);
  user_assert(x.rank() == 4 && grid.rank() == 4 && grid.shape()[3] == 2)
      << n.describe() << ": X must be [N, C, H, W] and grid [N, H_out, W_out, 2]";
  int64_t nb = x.shape()[0], ch = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
  int64_t oh = grid.shape()[1], ow = grid.shape()[2];
  user_assert(grid.shape()[0] == nb) << n.describe() << ": grid batch differs from X batch";
  std::string mode = n.attr_s("mode", "bilinear");
  if (mode == "linear") mode = "bilinear";
  if (mode == "cubic") mode = "bicubic";
  user_assert(mode == "bilinear" || mode == "nearest" || mode == "bicubic")
      << n.describe() << ": unsupported mode '" << mode << "'";
  std::string pm = n.attr_s("padding_mode", "zeros");
  user_assert(pm == "zeros" || pm == "border" || pm == "reflection")
      << n.describe() << ": unsupported padding_mode '" << pm << "'";
  Padding pad = pm == "zeros" ? Padding::Zeros : pm == "border" ? Padding::Border : Padding::Reflection;
  bool align = n.attr_i("align_corners", 0) != 0;
  double lo_x = align ? 0 : -0.5, hi_x = align ? static_cast<double>(w - 1) : static_cast<double>(w) - 0.5;
  double lo_y = align ? 0 : -0.5, hi_y = align ? static_cast<double>(h - 1) : static_cast<double>(h) - 0.5;
  Tensor y(x.dtype(), {nb, ch, oh, ow});
  for (int64_t b = 0; b < nb; ++b) {
    for (int64_t i = 0; i < oh; ++i) {
      for (int64_t j = 0; j < ow; ++j) {
        int64_t g = ((b * oh + i) * ow + j) * 2;
        double sx = denormalize(grid.get_f64(g), w, align), sy = denormalize(grid.get_f64(g + 1), h, align);
        if (mode == "nearest") {
          sx = std::nearbyint(sx);
          sy = std::nearbyint(sy);
        }
        if (sx < lo_x || sx > hi_x || sy < lo_y || sy > hi_y) {
          if (pad == Padding::Border) {
            sx = std::clamp(sx, 0.0, static_cast<double>(w - 1));
            sy = std::clamp(sy, 0.0, static_cast<double>(h - 1));
          } else if (pad == Padding::Reflection) {
            sx = reflect(sx, lo_x, hi_x);
            sy = reflect(sy, lo_y, hi_y);
          }
        }
        for (int64_t k = 0; k < ch; ++k) {
          Plane p{x, (b * ch + k) * h * w, h, w, pad, lo_x, hi_x, lo_y, hi_y};
          double v;
          if (mode == "nearest") {
            v = p.at(static_cast<int64_t>(sy), static_cast<int64_t>(sx));
          } else if (mode == "bilinear") {
            int64_t x0 = static_cast<int64_t>(std::floor(sx)), y0 = static_cast<int64_t>(std::floor(sy));
            double fx = sx - static_cast<double>(x0), fy = sy - static_cast<double>(y0);
            v = (1 - fy) * ((1 - fx) * p.at(y0, x0) + fx * p.at(y0, x0 + 1)) +
                fy * ((1 - fx) * p.at(y0 + 1, x0) + fx * p.at(y0 + 1, x0 + 1));
          } else {
            int64_t x0 = static_cast<int64_t>(std::floor(sx)) - 1, y0 = static_cast<int64_t>(std::floor(sy)) - 1;
            double wx[4], wy[4];
            cubic_weights(sx - static_cast<double>(x0) - 1, wx);
            cubic_weights(sy - static_cast<double>(y0) - 1, wy);
            v = 0;
            for (int r = 0; r < 4; ++r) {
              double row = 0;
              for (int q = 0; q < 4; ++q) row += wx[q] * p.at(y0 + r, x0 + q);
              v += wy[r] * row;
            }
          }
          y.set_f64(((b * ch + k) * oh + i) * ow + j, v);
        }
      }
    }
  }
  c.out[0] = std::move(y);
}

}  // namespace kiln
