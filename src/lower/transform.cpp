// Compute definitions of data-movement ops: reshapes (a flat copy), Transpose, Concat,
// Split, Slice, Pad, Tile, Expand, DepthToSpace/SpaceToDepth, Trilu, EyeLike,
// ReverseSequence, and the generators Shape, Size, ConstantOfShape, Range.
//
// Pure copies move elements in their storage type (no conversion), so every dtype,
// including bf16 and bool, is copied bit for bit. Output extents always come from the
// output operand, so only values that decide *where* elements come from (Slice starts,
// Pad pads) are read with c.value().
#include <algorithm>
#include <limits>

#include "lower/transform_util.h"
#include "support/error.h"

namespace kiln {

namespace xform {

Expr load_raw(const Operand &o, const std::vector<Expr> &idx) {
  return Load::make(o.storage(), o.buf, flat_index(o.shape, idx));
}

Stmt store_raw(const Operand &o, const std::vector<Expr> &idx, Expr v) {
  return Store::make(o.buf, std::move(v), flat_index(o.shape, idx));
}

Stmt nest(LowerContext &c, const std::vector<Expr> &extents, const NestBody &body) {
  // Tiny nests (shape vectors, mostly) are not worth a trip through the thread pool.
  Expr n = numel(extents);
  if (auto *k = n.as<IntImm>(); k && k->value < 16384) return loop_nest(c, extents, body);
  return parallel_loop_nest(c, extents, body);
}

Stmt copy_nest(LowerContext &c, const Operand &dst, const std::vector<Expr> &extents, const IndexMap &dst_index,
               const Operand &src, const IndexMap &src_index) {
  return nest(c, extents, [&](const std::vector<Expr> &i) {
    return store_raw(dst, dst_index(i), load_raw(src, src_index(i)));
  });
}

Stmt fill(LowerContext &c, const Operand &out, const std::function<Expr(const std::vector<Expr> &)> &f) {
  return nest(c, out.shape, [&](const std::vector<Expr> &i) { return store(out, i, f(i)); });
}

IndexMap identity_map() {
  return [](const std::vector<Expr> &i) { return i; };
}

Expr index_value(Expr v) { return cast(Type::index(), std::move(v)); }

Expr wrap_index(Expr v, Expr extent) {
  v = index_value(std::move(v));
  v = select(v < Expr(0), v + extent, v);
  return max(min(v, extent - Expr(1)), Expr(0));
}

}  // namespace xform

using namespace xform;

namespace {

// Element k of integer input i: a constant when its contents are known, else read from
// its buffer at run time (so shape-derived Slice starts or Pad pads need no specialization).
Expr element(const LowerContext &c, size_t i, size_t k) {
  if (const Tensor *t = c.in[i].value) return Expr(t->get_i64(static_cast<int64_t>(k)));
  return index_value(load_flat(c.in[i], Expr(static_cast<int64_t>(k))));
}

// Number of elements of a 1-D input (its static extent, or its known contents).
int64_t count_of(LowerContext &c, size_t i) {
  if (auto *n = c.in[i].shape.at(0).as<IntImm>()) return n->value;
  return c.value(i).numel();
}

std::vector<int64_t> int_attr_or_value(LowerContext &c, size_t input, const char *attr, int since_opset) {
  if (c.node.opset < since_opset) return c.node.attr_ints(attr);
  if (!c.has(input)) return {};
  return c.value(input).to_i64_vector();
}

}  // namespace

// ---- reshapes and Transpose -----------------------------------------------------------

// Reshape, Flatten, Squeeze, Unsqueeze: the row-major order is unchanged.
Stmt lower_reshape(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  return nest(c, {numel(y.shape)}, [&](const std::vector<Expr> &i) {
    return Store::make(y.buf, Load::make(x.storage(), x.buf, i[0]), i[0]);
  });
}

Stmt lower_transpose(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  int r = x.rank();
  std::vector<int64_t> perm = c.node.attr_ints("perm");
  if (perm.empty()) {
    for (int i = r - 1; i >= 0; --i) perm.push_back(i);
  }
  return copy_nest(c, y, y.shape, identity_map(), x,
                   [&](const std::vector<Expr> &i) {
                     std::vector<Expr> j(r);
                     for (int k = 0; k < r; ++k) j[normalize_axis(perm[k], r, c.node)] = i[k];
                     return j;
                   });
}

// ---- Concat and Split ------------------------------------------------------------------

Stmt lower_concat(LowerContext &c) {
  const Operand &y = c.out[0];
  int axis = normalize_axis(c.node.attr_i("axis", 0), y.rank(), c.node);
  std::vector<Stmt> parts;
  Expr offset = Expr(0);
  for (const Operand &x : c.in) {
    Expr off = offset;
    parts.push_back(copy_nest(c, y, x.shape,
                              [&](const std::vector<Expr> &i) {
                                std::vector<Expr> j = i;
                                j[axis] = j[axis] + off;
                                return j;
                              },
                              x, identity_map()));
    offset = offset + x.shape[axis];
  }
  return Block::make(parts);
}

Stmt lower_split(LowerContext &c) {
  const Operand &x = c.in[0];
  int axis = normalize_axis(c.node.attr_i("axis", 0), x.rank(), c.node);
  size_t n = c.out.size();
  // An omitted output still occupies its part of the axis; its size comes from the split
  // sizes (or the even split) rather than from an operand.
  auto part = [&](size_t k) -> Expr {
    if (c.out[k].present()) return c.out[k].shape[axis];
    std::vector<int64_t> sizes = int_attr_or_value(c, 1, "split", 13);
    if (!sizes.empty()) return Expr(sizes.at(k));
    Expr chunk = (x.shape[axis] + Expr(static_cast<int64_t>(n) - 1)) / Expr(static_cast<int64_t>(n));
    return max(min(chunk, x.shape[axis] - chunk * Expr(static_cast<int64_t>(k))), Expr(0));
  };
  std::vector<Stmt> parts;
  Expr offset = Expr(0);
  for (size_t k = 0; k < n; ++k) {
    const Operand &y = c.out[k];
    Expr off = offset;
    offset = offset + part(k);
    if (!y.present()) continue;
    parts.push_back(copy_nest(c, y, y.shape, identity_map(), x,
                              [&](const std::vector<Expr> &i) {
                                std::vector<Expr> j = i;
                                j[axis] = j[axis] + off;
                                return j;
                              }));
  }
  return parts.empty() ? Stmt() : Block::make(parts);
}

// ---- Slice ----------------------------------------------------------------------------

Stmt lower_slice(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  int r = x.rank();
  bool attrs = c.node.opset < 10;
  std::vector<int64_t> axes = int_attr_or_value(c, 3, "axes", 10);
  if (axes.empty()) {
    int64_t n = attrs ? static_cast<int64_t>(c.node.attr_ints("starts").size()) : count_of(c, 1);
    for (int64_t i = 0; i < n; ++i) axes.push_back(i);
  }
  std::vector<Expr> first(r, Expr(0)), stride(r, Expr(1));
  for (size_t k = 0; k < axes.size(); ++k) {
    int a = normalize_axis(axes[k], r, c.node);
    Expr d = x.shape[a];
    Expr s = attrs ? Expr(c.node.attr_ints("starts").at(k)) : element(c, 1, k);
    Expr step = !attrs && c.has(4) ? element(c, 4, k) : Expr(1);
    // Clamp as ONNX does; int64 extremes ("to the end") are first kept finite.
    constexpr int64_t kBig = int64_t{1} << 62;
    s = max(min(s, Expr(kBig)), Expr(-kBig));
    s = select(s < Expr(0), s + d, s);
    first[a] = select(step > Expr(0), min(max(s, Expr(0)), d), min(max(s, Expr(0)), d - Expr(1)));
    stride[a] = step;
  }
  return copy_nest(c, y, y.shape, identity_map(), x,
                   [&](const std::vector<Expr> &i) {
                     std::vector<Expr> j(r);
                     for (int a = 0; a < r; ++a) j[a] = first[a] + i[a] * stride[a];
                     return j;
                   });
}

// ---- Pad, Tile, Expand ----------------------------------------------------------------

Stmt lower_pad(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  int r = x.rank();
  std::string mode = c.node.attr_s("mode", "constant");
  std::vector<Expr> before(r, Expr(0));
  Expr value;
  Type t = y.compute();
  if (c.node.opset < 11) {
    std::vector<int64_t> pads = c.node.attr_ints(c.node.opset < 2 ? "paddings" : "pads");
    user_assert(static_cast<int>(pads.size()) == 2 * r) << c.node.describe() << ": pads must have " << 2 * r
                                                        << " entries";
    for (int a = 0; a < r; ++a) before[a] = Expr(pads[a]);
    value = make_const(t, c.node.attr_f("value", 0.0));
  } else {
    // pads[k] is the leading pad of axes[k] (all axes in order by default).
    std::vector<int64_t> axes = c.has(3) ? c.value(3).to_i64_vector() : std::vector<int64_t>{};
    if (!c.has(3)) {
      for (int a = 0; a < r; ++a) axes.push_back(a);
    }
    for (size_t k = 0; k < axes.size(); ++k) before[normalize_axis(axes[k], r, c.node)] = element(c, 1, k);
    value = c.has(2) ? load_flat(c.in[2], Expr(0)) : make_zero(t);
  }
  return nest(c, y.shape, [&](const std::vector<Expr> &i) {
    std::vector<Expr> j(r);
    Expr inside = make_const(Type::boolean(), 1);
    for (int a = 0; a < r; ++a) {
      Expr d = x.shape[a], s = i[a] - before[a];
      if (mode == "constant") {
        inside = inside && s >= Expr(0) && s < d;
        j[a] = s;
      } else if (mode == "edge") {
        j[a] = max(min(s, d - Expr(1)), Expr(0));
      } else if (mode == "wrap") {
        j[a] = s % d;
      } else {
        // reflect without repeating the edge: period 2 * (d - 1)
        Expr period = max(Expr(2) * (d - Expr(1)), Expr(1));
        Expr m = s % period;
        j[a] = select(m < d, m, period - m);
      }
    }
    if (mode != "constant") return store(y, i, load(x, j));
    return IfThenElse::make(inside, store(y, i, load(x, j)), store(y, i, value));
  });
}

Stmt lower_tile(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  return copy_nest(c, y, y.shape, identity_map(), x,
                   [&](const std::vector<Expr> &i) {
                     std::vector<Expr> j(i.size());
                     for (size_t a = 0; a < i.size(); ++a) j[a] = i[a] % x.shape[a];
                     return j;
                   });
}

Stmt lower_expand(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  return copy_nest(c, y, y.shape, identity_map(), x,
                   [&](const std::vector<Expr> &i) { return broadcast_index(x, i); });
}

// ---- block rearrangements --------------------------------------------------------------

Stmt lower_depth_to_space(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  Expr b = Expr(c.node.attr_i("blocksize", 1));
  bool crd = c.node.attr_s("mode", "DCR") == "CRD";
  return copy_nest(c, y, y.shape, identity_map(), x,
                   [&](const std::vector<Expr> &i) {
                     Expr bh = i[2] % b, bw = i[3] % b;
                     Expr ch = crd ? i[1] * b * b + bh * b + bw : (bh * b + bw) * y.shape[1] + i[1];
                     return std::vector<Expr>{i[0], ch, i[2] / b, i[3] / b};
                   });
}

Stmt lower_space_to_depth(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  Expr b = Expr(c.node.attr_i("blocksize", 1));
  return copy_nest(c, y, y.shape, identity_map(), x,
                   [&](const std::vector<Expr> &i) {
                     Expr ch = i[1] % x.shape[1], blk = i[1] / x.shape[1];
                     return std::vector<Expr>{i[0], ch, i[2] * b + blk / b, i[3] * b + blk % b};
                   });
}

// ---- masks and generators --------------------------------------------------------------

Stmt lower_trilu(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  int r = x.rank();
  bool upper = c.node.attr_i("upper", 1) != 0;
  Expr k = c.has(1) ? index_value(load_flat(c.in[1], Expr(0))) : Expr(0);
  Type t = y.compute();
  return fill(c, y, [&](const std::vector<Expr> &i) {
    Expr diff = i[r - 1] - i[r - 2];
    Expr keep = upper ? diff >= k : diff <= k;
    return select(keep, load(x, i), make_zero(t));
  });
}

Stmt lower_eye_like(LowerContext &c) {
  const Operand &y = c.out[0];
  Expr k = Expr(c.node.attr_i("k", 0));
  Type t = y.compute();
  return fill(c, y, [&](const std::vector<Expr> &i) {
    return select(i[1] - i[0] == k, make_const(t, 1), make_zero(t));
  });
}

Stmt lower_reverse_sequence(LowerContext &c) {
  const Operand &x = c.in[0], &lens = c.in[1], &y = c.out[0];
  int ba = static_cast<int>(c.node.attr_i("batch_axis", 1)), ta = static_cast<int>(c.node.attr_i("time_axis", 0));
  return copy_nest(c, y, y.shape, identity_map(), x,
                   [&](const std::vector<Expr> &i) {
                     Expr len = min(index_value(load_flat(lens, i[ba])), x.shape[ta]);
                     std::vector<Expr> j = i;
                     j[ta] = select(i[ta] < len, len - Expr(1) - i[ta], i[ta]);
                     return j;
                   });
}

Stmt lower_shape(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  int64_t r = x.rank();
  int64_t start = c.node.attr_i("start", 0), end = c.node.attr_i("end", r);
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<int64_t>(start, 0, r);
  end = std::clamp<int64_t>(end, 0, r);
  std::vector<Stmt> s;
  for (int64_t a = start; a < end; ++a) s.push_back(store_flat(y, Expr(a - start), x.shape[a]));
  return s.empty() ? Stmt() : Block::make(s);
}

Stmt lower_size(LowerContext &c) { return store_flat(c.out[0], Expr(0), numel(c.in[0].shape)); }

Stmt lower_constant_of_shape(LowerContext &c) {
  const Operand &y = c.out[0];
  Expr v = make_zero(y.compute());
  auto it = c.node.attrs.find("value");
  if (it != c.node.attrs.end()) {
    const Tensor &t = it->second.t;
    Type ct = y.compute();
    v = ct.is_float() ? make_const(ct, t.get_f64(0)) : cast(ct, Expr(t.get_i64(0)));
  }
  return fill(c, y, [&](const std::vector<Expr> &) { return v; });
}

Stmt lower_range(LowerContext &c) {
  const Operand &y = c.out[0];
  Expr start = load_flat(c.in[0], Expr(0)), delta = load_flat(c.in[2], Expr(0));
  Type t = y.compute();
  return fill(c, y, [&](const std::vector<Expr> &i) { return start + cast(t, i[0]) * delta; });
}

}  // namespace kiln
