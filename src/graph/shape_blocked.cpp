// Shape functions of the NCHWc blocked-layout ops (ops.def; passes/blocked_layout.cpp):
// a blocked tensor is [N, ceil(C / b), H, W, b].
#include "graph/conv_attrs.h"
#include "graph/shape_fn.h"
#include "support/error.h"

namespace kiln {

namespace {

int64_t block_of(const ShapeContext &c, const Shape &x) {
  user_assert(x.size() == 5 && x[4].is_const() && x[4].value() > 0)
      << c.node.describe() << ": expects a blocked [N, C/b, H, W, b] input with a static block";
  return x[4].value();
}

// [N, blocks, OH, OW, b] from the spatial dims of input 0 (NCHW or blocked) and the conv
// attributes `a`.
void set_blocked_conv_output(ShapeContext &c, const ConvAttrs &a, int64_t blocks, int64_t b) {
  const Shape &x = c.shape_of(0);
  size_t h = x.size() == 4 ? 2 : x.size() - 3;
  Shape out = {x[0], Dim(blocks)};
  for (size_t i = 0; i < 2; ++i) {
    Dim o, pb;
    a.geometry(static_cast<int>(i), x[h + i], o, pb);
    if (o.is_const()) user_assert(o.value() > 0) << c.node.describe() << ": output size would be " << o.value();
    out.push_back(o);
  }
  out.push_back(Dim(b));
  c.set_output(0, c.input(0).dtype, out);
}

}  // namespace

void shape_to_blocked(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  int64_t b = c.node.attr_i("block", 0);
  user_assert(x.size() == 4 && b > 0) << c.node.describe() << ": expects an NCHW input and a positive block";
  c.set_output(0, c.input(0).dtype, {x[0], (x[1] + Dim(b - 1)) / Dim(b), x[2], x[3], Dim(b)});
}

void shape_from_blocked(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  int64_t b = block_of(c, x), ch = c.node.attr_i("channels", 0);
  user_assert(ch > 0) << c.node.describe() << ": needs a positive `channels`";
  if (x[1].is_const()) {
    user_assert(x[1].value() == (ch + b - 1) / b)
        << c.node.describe() << ": " << x[1].value() << " blocks of " << b << " cannot hold " << ch << " channels";
  }
  c.set_output(0, c.input(0).dtype, {x[0], Dim(ch), x[2], x[3]});
}

void shape_blocked_conv(ShapeContext &c) {
  const Shape &x = c.shape_of(0), &w = c.shape_of(1);
  // A stem reads NCHW [N, C, H, W] (attr `block`: the output's); the others blocked input.
  bool stem = x.size() == 4;
  int64_t b = stem ? c.node.attr_i("block", 0) : block_of(c, x);
  user_assert(b > 0) << c.node.describe() << ": an NCHW input needs a positive `block` for the output";
  user_assert(w.size() == 4 && w[0].is_const() && w[1].is_const() && w[2].is_const() && w[3].is_const())
      << c.node.describe() << ": weights must be static f32[Cp, ICp / group, kh, kw]";
  ConvAttrs a = ConvAttrs::read(c.node, 2, {w[2].value(), w[3].value()});
  user_assert(w[0].value() % b == 0) << c.node.describe() << ": " << w[0].value() << " output channels are not whole blocks of " << b;
  if (stem) {
    user_assert(a.group == 1 && (!x[1].is_const() || x[1].value() == w[1].value()))
        << c.node.describe() << ": weights expect " << w[1].value() << " input channels";
  } else if (x[1].is_const()) {
    user_assert(w[1].value() * a.group == x[1].value() * b)
        << c.node.describe() << ": weights expect " << w[1].value() * a.group << " input channels, the input holds "
        << x[1].value() * b;
  }
  set_blocked_conv_output(c, a, w[0].value() / b, b);
}

void shape_blocked_separable_conv(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  int64_t b = block_of(c, x);
  auto weights = [&](size_t i, const char *what) {
    user_assert(c.has(i)) << c.node.describe() << ": needs the " << what << " weights";
    const Shape &w = c.shape_of(i);
    user_assert(w.size() == 4 && w[0].is_const() && w[1].is_const() && w[2].is_const() && w[3].is_const() &&
                w[0].value() % b == 0)
        << c.node.describe() << ": the " << what << " weights must be static f32[whole blocks of " << b << ", ...]";
    return std::vector<int64_t>{w[0].value(), w[1].value(), w[2].value(), w[3].value()};
  };
  std::vector<int64_t> wd = weights(3, "depthwise"), wp = weights(5, "projection");
  int64_t mid = c.has(1) ? weights(1, "expansion")[0] : (x[1].is_const() ? x[1].value() * b : wd[0]);
  if (c.has(1) && x[1].is_const()) {
    user_assert(weights(1, "expansion")[1] == x[1].value() * b)
        << c.node.describe() << ": the expansion expects " << weights(1, "expansion")[1] << " input channels, the input holds "
        << x[1].value() * b;
  }
  user_assert(wd[0] == mid && wd[1] == 1 && wp[1] == mid && wp[2] == 1 && wp[3] == 1)
      << c.node.describe() << ": the depthwise weights must cover the " << mid << " middle channels and the projection read them";
  ConvAttrs a = ConvAttrs::read(c.node, 2, {wd[2], wd[3]});
  set_blocked_conv_output(c, a, wp[0] / b, b);
}

void shape_blocked_global_pool(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  int64_t b = block_of(c, x);
  c.set_output(0, c.input(0).dtype, {x[0], x[1], Dim(1), Dim(1), Dim(b)});
}

}  // namespace kiln
