// Shape functions of the signal-processing ops (opset 17): DFT, STFT,
// MelWeightMatrix. Lengths that arrive as scalar inputs (dft_length,
// frame_step, frame_length, the mel parameters) come from their contents when
// known, a fresh symbol otherwise.
#include "graph/shape_fn.h"
#include "support/error.h"

namespace kiln {

namespace {

// The single value of a scalar (or one-element) integer input, when known.
std::optional<Dim> scalar_dim(const ShapeContext &c, size_t i) {
  const ValueInfo &v = c.input(i);
  user_assert(v.dtype == DType::I32 || v.dtype == DType::I64)
      << c.node.describe() << ": input " << i << " must be int32 or int64, got "
      << dtype_name(v.dtype);
  auto d = c.dim_values(i);
  if (!d)
    return std::nullopt;
  user_assert(d->size() == 1)
      << c.node.describe() << ": input " << i << " must be a scalar";
  return (*d)[0];
}

void require_positive(const ShapeContext &c, const Dim &d, const char *what) {
  user_assert(!d.is_const() || d.value() > 0)
      << c.node.describe() << ": " << what << " must be positive, got "
      << d.value();
}

void require_complex_dim(const ShapeContext &c, const Dim &d,
                         const char *what) {
  user_assert(!d.is_const() || d.value() == 1 || d.value() == 2)
      << c.node.describe() << ": the last dimension of " << what
      << " must be 1 (real) or 2 (complex), got " << d.value();
}

} // namespace

void shape_dft(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  user_assert(dtype_is_float(c.input(0).dtype))
      << c.node.describe() << ": input must be floating-point";
  int rank = static_cast<int>(x.size());
  user_assert(rank >= 3)
      << c.node.describe()
      << ": input must be [batch, ..., signal, 1 or 2] (rank >= 3)";
  require_complex_dim(c, x.back(), "the input");
  int axis = normalize_axis(c.node.attr_i("axis", 1), rank - 1, c.node);
  user_assert(axis >= 1) << c.node.describe()
                         << ": axis must not be the batch axis";
  bool onesided = c.node.attr_i("onesided", 0) != 0;
  bool inverse = c.node.attr_i("inverse", 0) != 0;
  user_assert(!(onesided && inverse))
      << c.node.describe() << ": onesided inverse DFT is not supported";
  Dim n = x[axis];
  if (c.has(1)) {
    auto v = scalar_dim(c, 1);
    n = v ? *v : c.fresh();
  }
  require_positive(c, n, "dft_length");
  Shape y = x;
  y[axis] = onesided ? n / Dim(2) + Dim(1) : n;
  y.back() = Dim(2);
  c.set_output(0, c.input(0).dtype, y);
}

void shape_stft(ShapeContext &c) {
  const Shape &x = c.shape_of(0);
  user_assert(dtype_is_float(c.input(0).dtype))
      << c.node.describe() << ": signal must be floating-point";
  user_assert(x.size() == 3)
      << c.node.describe() << ": signal must be [batch, length, 1 or 2]";
  require_complex_dim(c, x[2], "the signal");
  auto step_v = scalar_dim(c, 1);
  Dim step = step_v ? *step_v : c.fresh();
  require_positive(c, step, "frame_step");
  std::optional<Dim> frame;
  if (c.has(2)) {
    const Shape &w = c.shape_of(2);
    user_assert(w.size() == 1) << c.node.describe() << ": window must be 1-D";
    frame = w[0];
  }
  if (c.has(3)) {
    auto v = scalar_dim(c, 3);
    if (v && frame && v->is_const() && frame->is_const()) {
      user_assert(v->value() == frame->value())
          << c.node.describe() << ": frame_length " << v->value()
          << " differs from the window length " << frame->value();
    }
    if (v || !frame)
      frame = v ? *v : c.fresh();
  }
  user_assert(frame.has_value())
      << c.node.describe() << ": needs a window or a frame_length";
  require_positive(c, *frame, "frame_length");
  if (x[1].is_const() && frame->is_const()) {
    user_assert(frame->value() <= x[1].value())
        << c.node.describe() << ": frame_length " << frame->value()
        << " exceeds the signal length " << x[1].value();
  }
  bool onesided = c.node.attr_i("onesided", 1) != 0;
  Dim frames = (x[1] - *frame) / step + Dim(1);
  Dim bins = onesided ? *frame / Dim(2) + Dim(1) : *frame;
  c.set_output(0, c.input(0).dtype, {x[0], frames, bins, Dim(2)});
}

void shape_mel_weight_matrix(ShapeContext &c) {
  int64_t t = c.node.attr_i("output_datatype", 1);
  user_assert(dtype_valid(static_cast<int>(t)) &&
              t != static_cast<int64_t>(DType::String) &&
              t != static_cast<int64_t>(DType::Bool))
      << c.node.describe() << ": unsupported output_datatype " << t;
  auto mels = scalar_dim(c, 0);
  auto dft = scalar_dim(c, 1);
  Dim m = mels ? *mels : c.fresh();
  Dim bins = dft ? *dft / Dim(2) + Dim(1) : c.fresh();
  require_positive(c, m, "num_mel_bins");
  if (dft)
    require_positive(c, *dft, "dft_length");
  c.set_output(0, static_cast<DType>(t), {bins, m});
}

} // namespace kiln
