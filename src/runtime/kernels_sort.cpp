// Runtime kernels that order or select elements: TopK, Unique, NonZero.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "runtime/runtime_kernel.h"
#include "graph/shape_fn.h"
#include "support/error.h"

namespace kiln {

namespace {

// Total order on the elements of a tensor: exact for integers, numeric for floats with
// NaN after every number (numpy's sort order), lexicographic for strings.
class Keys {
 public:
  explicit Keys(const Tensor &t) : t_(t) {
    DType d = t.dtype();
    kind_ = d == DType::String ? Kind::Str : d == DType::U64 ? Kind::U64 : dtype_is_float(d) ? Kind::Float : Kind::Int;
  }
  // -1, 0, 1 comparing elements i and j.
  int cmp(int64_t i, int64_t j) const {
    switch (kind_) {
      case Kind::Str:
        return three_way(t_.strings()[i].compare(t_.strings()[j]), 0);
      case Kind::U64:
        return three_way(static_cast<uint64_t>(t_.get_i64(i)), static_cast<uint64_t>(t_.get_i64(j)));
      case Kind::Int:
        return three_way(t_.get_i64(i), t_.get_i64(j));
      case Kind::Float: {
        double a = t_.get_f64(i), b = t_.get_f64(j);
        bool na = std::isnan(a), nb = std::isnan(b);
        if (na || nb) return na == nb ? 0 : na ? 1 : -1;
        return three_way(a, b);
      }
    }
    return 0;
  }

 private:
  enum class Kind { Int, U64, Float, Str };
  template <typename T>
  static int three_way(T a, T b) {
    return a < b ? -1 : b < a ? 1 : 0;
  }
  const Tensor &t_;
  Kind kind_;
};

void copy_elem(const Tensor &src, int64_t si, Tensor &dst, int64_t di) {
  if (src.dtype() == DType::String) {
    dst.strings()[di] = src.strings()[si];
    return;
  }
  size_t es = dtype_size(src.dtype());
  std::memcpy(static_cast<char *>(dst.data()) + di * es, static_cast<const char *>(src.data()) + si * es, es);
}

int64_t prod(const std::vector<int64_t> &s, int from, int to) {
  int64_t n = 1;
  for (int i = from; i < to; ++i) n *= s[i];
  return n;
}

}  // namespace

void run_topk(RuntimeKernelContext &c) {
  const Node &n = c.node;
  const Tensor &x = c.input(0);
  user_assert(x.dtype() != DType::String) << n.describe() << ": string inputs are not supported";
  int axis = normalize_axis(n.attr_i("axis", -1), x.rank(), n);
  int64_t k;
  if (n.opset < 10) {
    k = n.attr_i("k", 0);
  } else {
    const Tensor &kt = c.input(1);
    user_assert(kt.numel() == 1) << n.describe() << ": K must have exactly one element";
    k = kt.get_i64(0);
  }
  const std::vector<int64_t> &shape = x.shape();
  int64_t len = shape[axis];
  user_assert(k >= 0 && k <= len) << n.describe() << ": K = " << k << " is out of range [0, " << len << "]";
  bool largest = n.attr_i("largest", 1) != 0;
  std::vector<int64_t> oshape = shape;
  oshape[axis] = k;
  Tensor values(x.dtype(), oshape), indices(DType::I64, oshape);
  int64_t outer = prod(shape, 0, axis), inner = prod(shape, axis + 1, x.rank());
  Keys keys(x);
  std::vector<int64_t> idx(len);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t in = 0; in < inner; ++in) {
      int64_t base = o * len * inner + in;
      std::iota(idx.begin(), idx.end(), 0);
      // Ties keep the lower index first, whichever direction is sorted.
      std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int64_t a, int64_t b) {
        int r = keys.cmp(base + a * inner, base + b * inner);
        if (r != 0) return largest ? r > 0 : r < 0;
        return a < b;
      });
      for (int64_t j = 0; j < k; ++j) {
        int64_t dst = (o * k + j) * inner + in;
        copy_elem(x, base + idx[j] * inner, values, dst);
        indices.as<int64_t>()[dst] = idx[j];
      }
    }
  }
  c.out[0] = std::move(values);
  if (c.out.size() > 1) c.out[1] = std::move(indices);
}

void run_nonzero(RuntimeKernelContext &c) {
  const Tensor &x = c.input(0);
  user_assert(x.dtype() != DType::String) << c.node.describe() << ": string inputs are not supported";
  std::vector<int64_t> shape = x.shape();
  if (shape.empty()) shape = {1};
  int rank = static_cast<int>(shape.size());
  std::vector<int64_t> hits;
  bool is_float = dtype_is_float(x.dtype());
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (is_float ? x.get_f64(i) != 0 : x.get_i64(i) != 0) hits.push_back(i);
  }
  int64_t nnz = static_cast<int64_t>(hits.size());
  Tensor out(DType::I64, {rank, nnz});
  int64_t *o = out.as<int64_t>();
  for (int64_t h = 0; h < nnz; ++h) {
    int64_t rem = hits[h];
    for (int d = rank - 1; d >= 0; --d) {
      o[d * nnz + h] = rem % shape[d];
      rem /= shape[d];
    }
  }
  c.out[0] = std::move(out);
}

// Unique elements (no axis) or unique slices along `axis`, compared lexicographically
// in row-major order like numpy.unique. Outputs: Y, first-occurrence indices, inverse
// indices, counts.
void run_unique(RuntimeKernelContext &c) {
  const Node &n = c.node;
  const Tensor &x = c.input(0);
  const std::vector<int64_t> &shape = x.shape();
  bool has_axis = n.has_attr("axis");
  int axis = has_axis ? normalize_axis(n.attr_i("axis", 0), x.rank(), n) : 0;
  int64_t outer = 1, len = x.numel(), inner = 1;
  if (has_axis) {
    outer = prod(shape, 0, axis);
    len = shape[axis];
    inner = prod(shape, axis + 1, x.rank());
  }
  Keys keys(x);
  auto elem = [&](int64_t slice, int64_t p) { return ((p / inner) * len + slice) * inner + p % inner; };
  int64_t width = outer * inner;
  auto cmp = [&](int64_t a, int64_t b) {
    for (int64_t p = 0; p < width; ++p) {
      int r = keys.cmp(elem(a, p), elem(b, p));
      if (r) return r;
    }
    return 0;
  };
  std::vector<int64_t> order(len);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return cmp(a, b) < 0; });
  // Groups of equal slices, in sorted order; each group's first member is its first
  // occurrence (the sort is stable).
  std::vector<int64_t> first, counts, group_of(len);
  for (size_t i = 0; i < order.size(); ++i) {
    if (i == 0 || cmp(order[i - 1], order[i]) != 0) {
      first.push_back(order[i]);
      counts.push_back(0);
    }
    group_of[order[i]] = static_cast<int64_t>(first.size()) - 1;
    ++counts.back();
  }
  int64_t u = static_cast<int64_t>(first.size());
  std::vector<int64_t> out_order(u);  // output position -> group
  std::iota(out_order.begin(), out_order.end(), 0);
  if (n.attr_i("sorted", 1) == 0) {
    std::sort(out_order.begin(), out_order.end(), [&](int64_t a, int64_t b) { return first[a] < first[b]; });
  }
  std::vector<int64_t> pos_of(u);
  for (int64_t p = 0; p < u; ++p) pos_of[out_order[p]] = p;

  std::vector<int64_t> yshape = {u};
  if (has_axis) {
    yshape = shape;
    yshape[axis] = u;
  }
  Tensor y(x.dtype(), yshape), indices(DType::I64, {u}), inverse(DType::I64, {len}), cnt(DType::I64, {u});
  for (int64_t p = 0; p < u; ++p) {
    int64_t g = out_order[p];
    for (int64_t q = 0; q < width; ++q) {
      int64_t dst = ((q / inner) * u + p) * inner + q % inner;
      copy_elem(x, elem(first[g], q), y, dst);
    }
    indices.as<int64_t>()[p] = first[g];
    cnt.as<int64_t>()[p] = counts[g];
  }
  for (int64_t i = 0; i < len; ++i) inverse.as<int64_t>()[i] = pos_of[group_of[i]];
  Tensor outs[] = {y, indices, inverse, cnt};
  for (size_t i = 0; i < c.out.size() && i < 4; ++i) c.out[i] = outs[i];
}

}  // namespace kiln
