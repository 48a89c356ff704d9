// Convolution/pooling window geometry shared by shape inference (over Dim) and lowering
// (over Loop IR Expr): one definition of auto_pad, strides, dilations and output size.
#pragma once
#include <string>
#include <vector>

#include "graph/graph.h"
#include "support/error.h"

namespace kiln {

struct ConvAttrs {
  std::vector<int64_t> kernel, strides, dilations, pads;  // pads: begins then ends
  std::string auto_pad;
  bool ceil_mode = false;
  int64_t group = 1;
  // ConvTranspose only: extra size at the end of each output dim, and the requested
  // output spatial extents (empty when not given; pads are then derived from it).
  std::vector<int64_t> output_padding, output_shape;

  // Reads attributes for a window op over `spatial` dims; kernel from the attribute or
  // from `kernel_from_weight` (Conv). Fills defaults and validates.
  static ConvAttrs read(const Node &n, int spatial, const std::vector<int64_t> &kernel_from_weight);

  // Output extent and begin padding of spatial dim i for input extent `in`.
  template <typename T>
  void geometry(int i, const T &in, T &out, T &pad_begin) const {
    int sp = static_cast<int>(kernel.size());
    int64_t k_eff = dilations[i] * (kernel[i] - 1) + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      out = (in + T(strides[i] - 1)) / T(strides[i]);
      T total = (out - T(1)) * T(strides[i]) + T(k_eff) - in;
      total = kmax(total, T(0));
      pad_begin = auto_pad == "SAME_UPPER" ? total / T(2) : (total + T(1)) / T(2);
      return;
    }
    int64_t pb = auto_pad == "VALID" ? 0 : pads[i], pe = auto_pad == "VALID" ? 0 : pads[i + sp];
    T span = in + T(pb + pe) - T(k_eff);
    if (ceil_mode) {
      out = (span + T(strides[i] - 1)) / T(strides[i]) + T(1);
      // The last window must start inside the input or left padding (ONNX/PyTorch rule).
      out = out - kselect_gt((out - T(1)) * T(strides[i]), in + T(pb - 1));
    } else {
      out = span / T(strides[i]) + T(1);
    }
    pad_begin = T(pb);
  }

  // ConvTranspose: output extent and begin padding (cropped from the full transposed
  // output) of spatial dim i. With output_shape or SAME_*, the total padding is split as
  // the ONNX spec says: SAME_UPPER puts the smaller half first, otherwise the larger. An
  // output larger than the full one is not shifted (negative total padding counts as 0,
  // as ONNX Runtime does); its extra positions get only the bias.
  template <typename T>
  void transpose_geometry(int i, const T &in, T &out, T &pad_begin) const {
    int sp = static_cast<int>(kernel.size());
    int64_t k_eff = dilations[i] * (kernel[i] - 1) + 1;
    T full = (in - T(1)) * T(strides[i]) + T(output_padding[i] + k_eff);
    bool same = auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER";
    if (!output_shape.empty() || same) {
      out = output_shape.empty() ? in * T(strides[i]) : T(output_shape[i]);
      T total = kmax(full - out, T(0));
      pad_begin = auto_pad == "SAME_UPPER" ? total / T(2) : total - total / T(2);
      return;
    }
    int64_t pb = auto_pad == "VALID" ? 0 : pads[i], pe = auto_pad == "VALID" ? 0 : pads[i + sp];
    out = full - T(pb + pe);
    pad_begin = T(pb);
  }

 private:
  static Dim kmax(const Dim &a, const Dim &b) { return dim_max(a, b); }
  template <typename T>
  static T kmax(const T &a, const T &b) { return max(a, b); }
  static Dim kselect_gt(const Dim &a, const Dim &b);
  template <typename T>
  static T kselect_gt(const T &a, const T &b) { return select(a > b, T(1), T(0)); }
};

}  // namespace kiln
