// Runtime kernels of object-detection ops: NonMaxSuppression and RoiAlign.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "runtime/runtime_kernel.h"
#include "support/error.h"

namespace kiln {

namespace {

struct Box {
  double y1, x1, y2, x2;  // y1 <= y2, x1 <= x2
  double area() const { return (y2 - y1) * (x2 - x1); }
};

Box read_box(const Tensor &t, int64_t off, bool center) {
  double a = t.get_f64(off), b = t.get_f64(off + 1), c = t.get_f64(off + 2), d = t.get_f64(off + 3);
  if (center) {  // [x_center, y_center, width, height]
    return {b - d / 2, a - c / 2, b + d / 2, a + c / 2};
  }
  return {std::min(a, c), std::min(b, d), std::max(a, c), std::max(b, d)};  // [y1, x1, y2, x2], any corners
}

// Whether b suppresses a: their IoU exceeds the threshold.
bool suppresses(const Box &a, const Box &b, double threshold) {
  double ia = a.area(), ib = b.area();
  if (ia <= 0 || ib <= 0) return false;
  double h = std::min(a.y2, b.y2) - std::max(a.y1, b.y1), w = std::min(a.x2, b.x2) - std::max(a.x1, b.x1);
  if (h <= 0 || w <= 0) return false;
  double inter = h * w;
  return inter / (ia + ib - inter) > threshold;
}

double scalar_or(const RuntimeKernelContext &c, size_t i, double def) {
  if (!c.has(i) || c.in[i]->numel() == 0) return def;
  return c.in[i]->get_f64(0);
}

}  // namespace

// Per batch and class: boxes by descending score (ties: lower index first), greedily
// kept unless a kept box overlaps by IoU > iou_threshold. Output rows are
// [batch, class, box], by batch, then class, then selection order.
void run_nms(RuntimeKernelContext &c) {
  const Node &n = c.node;
  const Tensor &boxes = c.input(0), &scores = c.input(1);
  user_assert(boxes.rank() == 3 && boxes.shape()[2] == 4 && scores.rank() == 3)
      << n.describe() << ": boxes must be [batch, boxes, 4] and scores [batch, classes, boxes]";
  int64_t batches = boxes.shape()[0], nb = boxes.shape()[1], classes = scores.shape()[1];
  user_assert(scores.shape()[0] == batches && scores.shape()[2] == nb)
      << n.describe() << ": scores " << shape_str(scores.shape()) << " do not match boxes " << shape_str(boxes.shape());
  bool center = n.attr_i("center_point_box", 0) != 0;
  int64_t max_out = c.has(2) && c.in[2]->numel() ? c.in[2]->get_i64(0) : 0;
  double iou = scalar_or(c, 3, 0.0);
  bool use_score = c.has(4) && c.in[4]->numel() > 0;
  double score_min = scalar_or(c, 4, 0.0);
  user_assert(iou >= 0 && iou <= 1) << n.describe() << ": iou_threshold must be in [0, 1], got " << iou;
  std::vector<int64_t> rows;
  for (int64_t b = 0; b < batches && max_out > 0; ++b) {
    std::vector<Box> bx(nb);
    for (int64_t i = 0; i < nb; ++i) bx[i] = read_box(boxes, (b * nb + i) * 4, center);
    for (int64_t cl = 0; cl < classes; ++cl) {
      int64_t base = (b * classes + cl) * nb;
      std::vector<int64_t> cand;
      for (int64_t i = 0; i < nb; ++i) {
        if (!use_score || scores.get_f64(base + i) > score_min) cand.push_back(i);
      }
      std::stable_sort(cand.begin(), cand.end(),
                       [&](int64_t p, int64_t q) { return scores.get_f64(base + p) > scores.get_f64(base + q); });
      std::vector<int64_t> kept;
      for (int64_t i : cand) {
        if (static_cast<int64_t>(kept.size()) >= max_out) break;
        bool ok = std::none_of(kept.begin(), kept.end(), [&](int64_t k) { return suppresses(bx[i], bx[k], iou); });
        if (!ok) continue;
        kept.push_back(i);
        rows.insert(rows.end(), {b, cl, i});
      }
    }
  }
  c.out[0] = Tensor::from_i64(rows, {static_cast<int64_t>(rows.size() / 3), 3});
}

namespace {

// Bilinear sample of one HxW plane at (y, x) with RoiAlign's border rules.
struct Sample {
  double w[4] = {0, 0, 0, 0};
  int64_t idx[4] = {0, 0, 0, 0};
};

Sample roi_sample(double y, double x, int64_t h, int64_t w) {
  Sample s;
  if (y < -1.0 || y > static_cast<double>(h) || x < -1.0 || x > static_cast<double>(w)) return s;
  y = std::max(y, 0.0);
  x = std::max(x, 0.0);
  int64_t y0 = static_cast<int64_t>(y), x0 = static_cast<int64_t>(x), y1, x1;
  if (y0 >= h - 1) {
    y0 = y1 = h - 1;
    y = static_cast<double>(y0);
  } else {
    y1 = y0 + 1;
  }
  if (x0 >= w - 1) {
    x0 = x1 = w - 1;
    x = static_cast<double>(x0);
  } else {
    x1 = x0 + 1;
  }
  double ly = y - y0, lx = x - x0, hy = 1 - ly, hx = 1 - lx;
  s.w[0] = hy * hx;
  s.w[1] = hy * lx;
  s.w[2] = ly * hx;
  s.w[3] = ly * lx;
  s.idx[0] = y0 * w + x0;
  s.idx[1] = y0 * w + x1;
  s.idx[2] = y1 * w + x0;
  s.idx[3] = y1 * w + x1;
  return s;
}

}  // namespace

// Each output bin averages (or maxes) a grid of bilinear samples inside the bin. In max
// mode each sample contributes the largest of its four weighted corners (as the ONNX
// reference and ONNX Runtime do).
void run_roi_align(RuntimeKernelContext &c) {
  const Node &n = c.node;
  const Tensor &x = c.input(0), &rois = c.input(1), &bidx = c.input(2);
  user_assert(x.rank() == 4) << n.describe() << ": X must be 4-D";
  int64_t nb = x.shape()[0], ch = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
  user_assert(rois.rank() == 2 && rois.shape()[1] == 4) << n.describe() << ": rois must be [num_rois, 4]";
  int64_t nr = rois.shape()[0];
  user_assert(bidx.numel() == nr) << n.describe() << ": batch_indices must have one entry per roi";
  int64_t oh = n.attr_i("output_height", 1), ow = n.attr_i("output_width", 1);
  int64_t ratio = n.attr_i("sampling_ratio", 0);
  double scale = n.attr_f("spatial_scale", 1.0);
  bool is_max = n.attr_s("mode", "avg") == "max";
  std::string ctm = n.attr_s("coordinate_transformation_mode", n.opset >= 16 ? "half_pixel" : "output_half_pixel");
  user_assert(ctm == "half_pixel" || ctm == "output_half_pixel")
      << n.describe() << ": coordinate_transformation_mode must be half_pixel or output_half_pixel";
  bool half = ctm == "half_pixel";
  double offset = half ? 0.5 : 0.0;
  Tensor y(x.dtype(), {nr, ch, oh, ow});
  for (int64_t r = 0; r < nr; ++r) {
    int64_t b = bidx.get_i64(r);
    user_assert(b >= 0 && b < nb) << n.describe() << ": batch index " << b << " is out of range";
    double x1 = rois.get_f64(r * 4) * scale - offset, y1 = rois.get_f64(r * 4 + 1) * scale - offset;
    double x2 = rois.get_f64(r * 4 + 2) * scale - offset, y2 = rois.get_f64(r * 4 + 3) * scale - offset;
    double rw = x2 - x1, rh = y2 - y1;
    if (!half) {
      rw = std::max(rw, 1.0);
      rh = std::max(rh, 1.0);
    }
    double bh = rh / oh, bw = rw / ow;
    int64_t gh = ratio > 0 ? ratio : static_cast<int64_t>(std::ceil(rh / oh));
    int64_t gw = ratio > 0 ? ratio : static_cast<int64_t>(std::ceil(rw / ow));
    double count = static_cast<double>(std::max<int64_t>(gh * gw, 1));
    for (int64_t ph = 0; ph < oh; ++ph) {
      for (int64_t pw = 0; pw < ow; ++pw) {
        std::vector<Sample> samples;
        for (int64_t iy = 0; iy < gh; ++iy) {
          double sy = y1 + ph * bh + (iy + 0.5) * bh / static_cast<double>(gh);
          for (int64_t ix = 0; ix < gw; ++ix) {
            double sx = x1 + pw * bw + (ix + 0.5) * bw / static_cast<double>(gw);
            samples.push_back(roi_sample(sy, sx, h, w));
          }
        }
        for (int64_t k = 0; k < ch; ++k) {
          int64_t plane = (b * ch + k) * h * w;
          double acc = 0;
          bool first = true;
          for (const Sample &s : samples) {
            if (is_max) {
              double m = s.w[0] * x.get_f64(plane + s.idx[0]);
              for (int q = 1; q < 4; ++q) m = std::max(m, s.w[q] * x.get_f64(plane + s.idx[q]));
              acc = first ? m : std::max(acc, m);
              first = false;
            } else {
              for (int q = 0; q < 4; ++q) acc += s.w[q] * x.get_f64(plane + s.idx[q]);
            }
          }
          y.set_f64(((r * ch + k) * oh + ph) * ow + pw, is_max ? acc : acc / count);
        }
      }
    }
  }
  c.out[0] = std::move(y);
}

}  // namespace kiln
