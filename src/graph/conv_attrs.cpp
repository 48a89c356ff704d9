#include "graph/conv_attrs.h"

namespace kiln {

ConvAttrs ConvAttrs::read(const Node &n, int spatial, const std::vector<int64_t> &kernel_from_weight) {
  ConvAttrs a;
  user_assert(spatial >= 1) << n.describe() << ": input must have at least one spatial dim";
  a.kernel = n.attr_ints("kernel_shape", kernel_from_weight);
  user_assert(static_cast<int>(a.kernel.size()) == spatial)
      << n.describe() << ": kernel_shape has " << a.kernel.size() << " dims, expected " << spatial;
  a.strides = n.attr_ints("strides", std::vector<int64_t>(spatial, 1));
  a.dilations = n.attr_ints("dilations", std::vector<int64_t>(spatial, 1));
  a.pads = n.attr_ints("pads", std::vector<int64_t>(2 * spatial, 0));
  a.auto_pad = n.attr_s("auto_pad", "NOTSET");
  a.ceil_mode = n.attr_i("ceil_mode", 0) != 0;
  a.group = n.attr_i("group", 1);
  user_assert(static_cast<int>(a.strides.size()) == spatial && static_cast<int>(a.dilations.size()) == spatial &&
              static_cast<int>(a.pads.size()) == 2 * spatial)
      << n.describe() << ": strides/dilations/pads do not match " << spatial << " spatial dims";
  for (int i = 0; i < spatial; ++i) {
    user_assert(a.kernel[i] > 0 && a.strides[i] > 0 && a.dilations[i] > 0)
        << n.describe() << ": kernel, strides and dilations must be positive";
    user_assert(a.pads[i] >= 0 && a.pads[i + spatial] >= 0) << n.describe() << ": negative pads";
  }
  user_assert(a.auto_pad == "NOTSET" || a.auto_pad == "VALID" || a.auto_pad == "SAME_UPPER" ||
              a.auto_pad == "SAME_LOWER")
      << n.describe() << ": unknown auto_pad '" << a.auto_pad << "'";
  user_assert(a.group >= 1) << n.describe() << ": group must be >= 1";
  a.output_padding = n.attr_ints("output_padding", std::vector<int64_t>(spatial, 0));
  a.output_shape = n.attr_ints("output_shape", {});
  if (static_cast<int>(a.output_shape.size()) == spatial + 2) {
    a.output_shape.erase(a.output_shape.begin(), a.output_shape.begin() + 2);  // N and C given too
  }
  user_assert(static_cast<int>(a.output_padding.size()) == spatial &&
              (a.output_shape.empty() || static_cast<int>(a.output_shape.size()) == spatial))
      << n.describe() << ": output_padding/output_shape do not match " << spatial << " spatial dims";
  for (int i = 0; i < spatial; ++i) {
    user_assert(a.output_padding[i] >= 0) << n.describe() << ": negative output_padding";
    user_assert(a.output_shape.empty() || a.output_shape[i] > 0) << n.describe() << ": output_shape must be positive";
  }
  return a;
}

Dim ConvAttrs::kselect_gt(const Dim &a, const Dim &b) {
  if (a.is_const() && b.is_const()) return Dim(a.value() > b.value() ? 1 : 0);
  // Symbolic: the correction is rare (only with ceil_mode and large pads); assume 0.
  return Dim(0);
}

}  // namespace kiln
