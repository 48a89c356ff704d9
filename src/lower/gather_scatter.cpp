// Compute definitions of indexing ops: Gather, GatherElements, GatherND, ScatterElements
// (and its deprecated alias Scatter), ScatterND, OneHot and Compress.
//
// Indices are read from their buffers at run time; negative indices count from the end,
// and every index is clamped into range so a bad model cannot access out of bounds.
// Scatters copy the data and then apply the updates in order, serially, so duplicate
// indices behave as in the ONNX reference (the last write wins, or reductions combine).
#include "lower/transform_util.h"
#include "support/error.h"

namespace kiln {

using namespace xform;

namespace {

std::vector<Expr> slice_of(const std::vector<Expr> &v, size_t begin, size_t end) {
  auto at = [&](size_t k) { return v.begin() + static_cast<std::ptrdiff_t>(k); };
  return std::vector<Expr>(at(begin), at(end));
}

// How a scatter combines the existing element with the update.
Expr combine(const Node &n, Expr old, Expr upd) {
  std::string r = n.attr_s("reduction", "none");
  if (r == "add") return old + upd;
  if (r == "mul") return old * upd;
  if (r == "max") return max(old, upd);
  if (r == "min") return min(old, upd);
  return upd;
}

bool has_reduction(const Node &n) { return n.attr_s("reduction", "none") != "none"; }

}  // namespace

Stmt lower_gather(LowerContext &c) {
  const Operand &x = c.in[0], &ind = c.in[1], &y = c.out[0];
  int r = x.rank(), q = ind.rank();
  int axis = normalize_axis(c.node.attr_i("axis", 0), r, c.node);
  return copy_nest(c, y, y.shape, identity_map(), x, [&](const std::vector<Expr> &i) {
    std::vector<Expr> j = slice_of(i, 0, axis);
    j.push_back(wrap_index(load(ind, slice_of(i, axis, axis + q)), x.shape[axis]));
    for (int a = axis + 1; a < r; ++a) j.push_back(i[a + q - 1]);
    return j;
  });
}

Stmt lower_gather_elements(LowerContext &c) {
  const Operand &x = c.in[0], &ind = c.in[1], &y = c.out[0];
  int axis = normalize_axis(c.node.attr_i("axis", 0), x.rank(), c.node);
  return copy_nest(c, y, y.shape, identity_map(), x, [&](const std::vector<Expr> &i) {
    std::vector<Expr> j = i;
    j[axis] = wrap_index(load(ind, i), x.shape[axis]);
    return j;
  });
}

Stmt lower_gather_nd(LowerContext &c) {
  const Operand &x = c.in[0], &ind = c.in[1], &y = c.out[0];
  int b = static_cast<int>(c.node.attr_i("batch_dims", 0));
  int q = ind.rank();
  auto *kk = ind.shape[q - 1].as<IntImm>();
  internal_assert(kk) << c.node.describe() << ": last dim of indices must be static";
  int k = static_cast<int>(kk->value);
  return copy_nest(c, y, y.shape, identity_map(), x, [&](const std::vector<Expr> &i) {
    std::vector<Expr> j = slice_of(i, 0, b);  // batch dims are shared
    std::vector<Expr> ii = slice_of(i, 0, q - 1);
    for (int t = 0; t < k; ++t) {
      std::vector<Expr> it = ii;
      it.push_back(Expr(t));
      j.push_back(wrap_index(load(ind, it), x.shape[b + t]));
    }
    for (size_t a = q - 1; a < i.size(); ++a) j.push_back(i[a]);
    return j;
  });
}

Stmt lower_scatter_elements(LowerContext &c) {
  const Operand &x = c.in[0], &ind = c.in[1], &upd = c.in[2], &y = c.out[0];
  int axis = normalize_axis(c.node.attr_i("axis", 0), x.rank(), c.node);
  Stmt copy = copy_nest(c, y, y.shape, identity_map(), x, identity_map());
  Stmt scatter = loop_nest(c, ind.shape, [&](const std::vector<Expr> &i) {
    std::vector<Expr> j = i;
    j[axis] = wrap_index(load(ind, i), y.shape[axis]);
    if (!has_reduction(c.node)) return store_raw(y, j, load_raw(upd, i));
    return store(y, j, combine(c.node, load(y, j), load(upd, i)));
  });
  return Block::make({copy, scatter});
}

Stmt lower_scatter_nd(LowerContext &c) {
  const Operand &x = c.in[0], &ind = c.in[1], &upd = c.in[2], &y = c.out[0];
  int q = ind.rank();
  auto *kk = ind.shape[q - 1].as<IntImm>();
  internal_assert(kk) << c.node.describe() << ": last dim of indices must be static";
  int k = static_cast<int>(kk->value);
  Stmt copy = copy_nest(c, y, y.shape, identity_map(), x, identity_map());
  // One iteration per element of updates: the index tuple prefix, then the slice dims.
  Stmt scatter = loop_nest(c, upd.shape, [&](const std::vector<Expr> &i) {
    std::vector<Expr> ii = slice_of(i, 0, q - 1), j;
    for (int t = 0; t < k; ++t) {
      std::vector<Expr> it = ii;
      it.push_back(Expr(t));
      j.push_back(wrap_index(load(ind, it), y.shape[t]));
    }
    for (size_t a = q - 1; a < i.size(); ++a) j.push_back(i[a]);
    if (!has_reduction(c.node)) return store_raw(y, j, load_raw(upd, i));
    return store(y, j, combine(c.node, load(y, j), load(upd, i)));
  });
  return Block::make({copy, scatter});
}

Stmt lower_one_hot(LowerContext &c) {
  const Operand &ind = c.in[0], &vals = c.in[2], &y = c.out[0];
  int r = y.rank();
  int64_t axis = c.node.attr_i("axis", -1);
  int a = static_cast<int>(axis < 0 ? axis + r : axis);
  Expr depth = y.shape[a];
  Expr off = load_flat(vals, Expr(0)), on = load_flat(vals, Expr(1));
  return fill(c, y, [&](const std::vector<Expr> &i) {
    std::vector<Expr> j = i;
    j.erase(j.begin() + a);
    Expr v = load(ind, j);
    // Non-integer indices are truncated toward zero, then negative ones count from the end.
    v = index_value(v.type().is_float() ? call("trunc", {v}) : v);
    v = select(v < Expr(0), v + depth, v);
    return select(v == i[a], on, off);
  });
}

Stmt lower_compress(LowerContext &c) {
  const Operand &x = c.in[0], &cond = c.in[1], &y = c.out[0];
  // View the input as [outer, extent, inner] along the axis (flattened without one).
  Expr outer = Expr(1), extent, inner = Expr(1), kept = y.shape[0];
  if (c.node.has_attr("axis")) {
    int axis = normalize_axis(c.node.attr_i("axis", 0), x.rank(), c.node);
    for (int a = 0; a < axis; ++a) outer = outer * x.shape[a];
    extent = x.shape[axis];
    kept = y.shape[axis];
    for (int a = axis + 1; a < x.rank(); ++a) inner = inner * x.shape[a];
  } else {
    extent = numel(x.shape);
  }
  Operand xv = x, yv = y;
  xv.shape = {outer, extent, inner};
  yv.shape = {outer, kept, inner};
  std::string cnt = c.fresh("count");
  Expr n = Load::make(Type::index(), cnt, Expr(0));
  Stmt body = loop_nest(c, {min(extent, cond.shape[0])}, [&](const std::vector<Expr> &j) {
    Stmt mv = loop_nest(c, {outer, inner}, [&](const std::vector<Expr> &i) {
      return store_raw(yv, {i[0], n, i[1]}, load_raw(xv, {i[0], j[0], i[1]}));
    });
    return IfThenElse::make(load_flat(cond, j[0]),
                            Block::make({mv, Store::make(cnt, n + Expr(1), Expr(0))}));
  });
  return Allocate::make(cnt, Type::index(), Expr(1), Block::make({Store::make(cnt, Expr(0), Expr(0)), body}));
}

}  // namespace kiln
