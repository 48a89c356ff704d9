// Compute definitions of reductions (Reduce*, ArgMax/ArgMin), Softmax, LogSoftmax,
// Hardmax and CumSum. Each is a loop nest over the kept axes with reductions over the
// reduced ones nested inside (one kernel, several passes over a row where needed).
#include <algorithm>
#include <cmath>

#include "graph/shape_fn.h"
#include "lower/lower.h"
#include "lower/vector_loop.h"
#include "lower/vmath.h"
#include "support/error.h"

namespace kiln {

namespace {

// Accumulator of a reduction over values of type t: floats accumulate in their compute
// type (f16/bf16 in f32), small ints in 32 bits (wrap-around matches the ONNX results
// after narrowing), bools as i32.
Type acc_type_of(Type t) {
  if (t.is_float()) return t;
  if (t.is_bool()) return Type::i(32);
  int bits = std::max<int>(32, t.bits);
  return t.is_uint() ? Type::u(bits) : Type::i(bits);
}

// The output index of a reduction: kept axes, plus 0 for reduced ones when dims are kept.
std::vector<Expr> output_index(const std::vector<bool> &reduced, const std::vector<Expr> &outer, bool keep) {
  if (!keep) return outer;
  return merge_index(reduced, outer, std::vector<Expr>(reduced.size(), Expr(0)));
}

Expr neg_inf(Type t) { return t.is_float() ? make_const(t, -INFINITY) : type_min(t); }
Expr pos_inf(Type t) { return t.is_float() ? make_const(t, INFINITY) : type_max(t); }

// Whether v is the row's extreme m. A NaN propagates into m, and then the NaNs match (the
// first one is the argmax, as in numpy).
Expr matches(Expr v, Expr m) {
  if (!v.type().is_float()) return v == m;
  return v == m || call(Type::boolean(), "isnan", {v});
}

// One row of x: the elements sharing an index of the kept axes. for_each runs body(outer)
// for every row (outermost kept loop in parallel); value and write address the row's
// elements by the loop variables of the reduced axes.
struct Rows {
  LowerContext &c;
  const Operand &x;
  std::vector<bool> reduced;
  Type t;  // values are read as t

  std::vector<Expr> inner_extents() const { return extents_where(x, reduced, true); }
  Expr value(const std::vector<Expr> &outer, const std::vector<Expr> &inner) const {
    return cast(t, load(x, merge_index(reduced, outer, inner)));
  }
  Stmt for_each(const std::function<Stmt(const std::vector<Expr> &)> &body) const {
    return loop_nest(c, extents_where(x, reduced, false), body, ForKind::Parallel);
  }
  Stmt write(const Operand &out, const std::vector<Expr> &outer,
             const std::function<Expr(const std::vector<Expr> &)> &f) const {
    return loop_nest(c, inner_extents(), [&](const std::vector<Expr> &r) {
      return store(out, merge_index(reduced, outer, r), cast(out.compute(), f(r)));
    });
  }
};

using Update = std::function<Expr(Expr, const std::vector<Expr> &)>;
using Use = std::function<Stmt(Expr)>;

std::vector<bool> reduce_mask(LowerContext &c, int rank, bool &noop) {
  std::vector<int64_t> axes;
  if (c.has(1)) {
    axes = c.value(1).to_i64_vector();
  } else {
    axes = c.node.attr_ints("axes", {});
  }
  noop = axes.empty() && c.node.attr_i("noop_with_empty_axes", 0);
  std::vector<bool> reduced(rank, axes.empty());
  for (int64_t a : axes) reduced[normalize_axis(a, rank, c.node)] = true;
  return reduced;
}

// The axes Softmax/LogSoftmax/Hardmax normalize over: [axis, rank) before opset 13 (the
// input is coerced to 2-D), only `axis` since.
std::vector<bool> softmax_mask(const LowerContext &c, int rank) {
  bool v13 = c.node.opset >= 13;
  int axis = normalize_axis(c.node.attr_i("axis", v13 ? -1 : 1), rank, c.node);
  std::vector<bool> reduced(rank, false);
  for (int a = axis; a < rank; ++a) reduced[a] = v13 ? a == axis : true;
  return reduced;
}

// Elements per parallel block of rows in the -O1 Softmax.
constexpr int64_t kRowBlockElements = 4096;

// -O1, f32, over the last axis only: rows in parallel blocks; per row the max, exp(x - max)
// in vectors (vmath) and its sum, then the scaling -- three passes over a row in cache.
bool softmax_schedulable(const LowerContext &c, const std::vector<bool> &reduced) {
  const Operand &x = c.in[0], &y = c.out[0];
  int r = x.rank();
  if (c.opts.opt_level < 1 || c.node.kind == OpKind::Hardmax || x.dtype != DType::F32 || y.dtype != DType::F32 ||
      r == 0) {
    return false;
  }
  for (int a = 0; a < r; ++a) {
    if (reduced[a] != (a == r - 1)) return false;
  }
  return true;
}

Stmt softmax_schedule(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  Type t = Type::f(32);
  int lanes = c.opts.vector_lanes_f32();
  Expr n = x.shape.back();
  Expr rows = numel(std::vector<Expr>(x.shape.begin(), x.shape.end() - 1));
  bool log_softmax = c.node.kind == OpKind::LogSoftmax;
  auto add = [](Expr a, Expr b) { return a + b; };
  return parallel_blocks(c, rows, rows_per_block(n, kRowBlockElements), [&](Expr begin, Expr count) {
    std::string r = c.fresh("row");
    Expr base = Var::make(Type::index(), r) * n;
    auto xs = [&](Expr j, int w) { return run_load(t, x.buf, base, j, w); };
    auto ys = [&](Expr j, int w) { return run_load(t, y.buf, base, j, w); };
    auto max_of = [](Expr a, Expr b) { return max(a, b); };
    Stmt row = vector_reduce(c, n, lanes, make_const(t, -INFINITY), xs, max_of, [&](Expr m0) {
      return let_stmt(c, "m", m0, [&](Expr m) {
        auto shifted_exp = [&](Expr j, int w) { return vmath::exp(xs(j, w) - splat(m, w)); };
        if (log_softmax) {
          return vector_reduce(c, n, lanes, make_zero(t), shifted_exp, add, [&](Expr s) {
            return let_stmt(c, "lse", call("log", {s}), [&](Expr ls) {
              return vector_loop(c, n, lanes, [&](Expr j, int w) {
                return run_store(y.buf, base, j, xs(j, w) - splat(m, w) - splat(ls, w));
              });
            });
          });
        }
        Stmt exps = vector_loop(c, n, lanes, [&](Expr j, int w) {
          return run_store(y.buf, base, j, shifted_exp(j, w));
        });
        Stmt scale = vector_reduce(c, n, lanes, make_zero(t), ys, add, [&](Expr s) {
          return let_stmt(c, "inv", make_const(t, 1.0) / s, [&](Expr inv) {
            return vector_loop(c, n, lanes, [&](Expr j, int w) {
              return run_store(y.buf, base, j, ys(j, w) * splat(inv, w));
            });
          });
        });
        return Block::make({exps, scale});
      });
    });
    return For::make(r, begin, count, ForKind::Serial, row);
  });
}

}  // namespace

Stmt lower_reduce(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  bool noop = false;
  std::vector<bool> reduced = reduce_mask(c, x.rank(), noop);
  if (noop) return compute(c, y, [&](const std::vector<Expr> &i) { return load(x, i); });
  bool keep = c.node.attr_i("keepdims", 1) != 0;
  Type acc = acc_type_of(x.compute());
  // Square roots, exponentials and logarithms of integer inputs are taken in f64.
  Type ft = acc.is_float() ? acc : Type::f(64);
  Rows rows{c, x, reduced, acc};
  std::vector<Expr> rext = rows.inner_extents();
  return rows.for_each([&](const std::vector<Expr> &outer) {
    auto at = [&](const std::vector<Expr> &r) { return rows.value(outer, r); };
    Use finish = [&](Expr v) { return store(y, output_index(reduced, outer, keep), cast(y.compute(), v)); };
    auto fold = [&](Expr init, const std::function<Expr(Expr, Expr)> &f, const std::function<Expr(Expr)> &post) {
      return reduce(c, acc, init, rext, [&](Expr a, const std::vector<Expr> &r) { return f(a, at(r)); },
                    [&](Expr a) { return finish(post(a)); });
    };
    auto id = [](Expr v) { return v; };
    auto sum = [](Expr a, Expr v) { return a + v; };
    auto sum_sq = [](Expr a, Expr v) { return a + v * v; };
    Expr zero = make_zero(acc);
    switch (c.node.kind) {
      case OpKind::ReduceSum: return fold(zero, sum, id);
      case OpKind::ReduceSumSquare: return fold(zero, sum_sq, id);
      case OpKind::ReduceL1: return fold(zero, [](Expr a, Expr v) { return a + call("abs", {v}); }, id);
      case OpKind::ReduceL2: return fold(zero, sum_sq, [&](Expr a) { return call("sqrt", {cast(ft, a)}); });
      case OpKind::ReduceLogSum: return fold(zero, sum, [&](Expr a) { return call("log", {cast(ft, a)}); });
      case OpKind::ReduceMean: {
        Expr n = cast(acc, numel(rext));
        return fold(zero, sum, [&](Expr a) { return acc.is_float() ? a / n : call("trunc_div", {a, n}); });
      }
      case OpKind::ReduceProd: return fold(make_const(acc, 1), [](Expr a, Expr v) { return a * v; }, id);
      case OpKind::ReduceMax: return fold(neg_inf(acc), [](Expr a, Expr v) { return max(a, v); }, id);
      case OpKind::ReduceMin: return fold(pos_inf(acc), [](Expr a, Expr v) { return min(a, v); }, id);
      case OpKind::ReduceLogSumExp: {
        // log(sum(exp(x - m))) + m with m the row max, replaced by 0 when infinite so that
        // rows of infinities give +-inf rather than NaN.
        Rows f = rows;
        f.t = ft;
        Update max_of = [&](Expr m, const std::vector<Expr> &r) { return max(m, f.value(outer, r)); };
        return reduce(c, ft, neg_inf(ft), rext, max_of, [&](Expr m) {
          Expr shift = select(call(Type::boolean(), "isinf", {m}), make_zero(ft), m);
          Update sum_exp = [&](Expr s, const std::vector<Expr> &r) {
            return s + call("exp", {f.value(outer, r) - shift});
          };
          return reduce(c, ft, make_zero(ft), rext, sum_exp, [&](Expr s) { return finish(call("log", {s}) + shift); });
        });
      }
      default: internal_error << "not a reduction: " << c.node.describe();
    }
    return Stmt();
  });
}

// ArgMax/ArgMin: the row's extreme value, then the first (or last) index holding it.
Stmt lower_arg_reduce(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  int axis = normalize_axis(c.node.attr_i("axis", 0), x.rank(), c.node);
  bool keep = c.node.attr_i("keepdims", 1) != 0;
  bool last = c.node.attr_i("select_last_index", 0) != 0;
  bool is_max = c.node.kind == OpKind::ArgMax;
  std::vector<bool> reduced(x.rank(), false);
  reduced[axis] = true;
  Type t = acc_type_of(x.compute()), it = Type::index();
  Rows rows{c, x, reduced, t};
  return rows.for_each([&](const std::vector<Expr> &outer) {
    auto at = [&](const std::vector<Expr> &r) { return rows.value(outer, r); };
    Update extreme = [&](Expr m, const std::vector<Expr> &r) { return is_max ? max(m, at(r)) : min(m, at(r)); };
    return reduce(c, t, is_max ? neg_inf(t) : pos_inf(t), {x.shape[axis]}, extreme, [&](Expr m) {
      Update find = [&](Expr best, const std::vector<Expr> &r) {
        Expr hit = matches(at(r), m);
        if (!last) hit = hit && best < make_zero(it);
        return select(hit, r[0], best);
      };
      return reduce(c, it, make_const(it, -1), {x.shape[axis]}, find,
                    [&](Expr best) { return store(y, output_index(reduced, outer, keep), best); });
    });
  });
}

// Softmax: exp(x - m) / sum(exp(x - m)) with m the row max; LogSoftmax: x - m -
// log(sum(exp(x - m))); Hardmax: 1 at the row's first maximum, 0 elsewhere.
Stmt lower_softmax(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  if (softmax_schedulable(c, softmax_mask(c, x.rank()))) return softmax_schedule(c);
  Rows rows{c, x, softmax_mask(c, x.rank()), acc_type_of(x.compute())};
  Type t = rows.t, it = Type::index();
  user_assert(t.is_float()) << c.node.describe() << ": needs a floating-point input, got " << t.str();
  std::vector<Expr> rext = rows.inner_extents();
  OpKind k = c.node.kind;
  return rows.for_each([&](const std::vector<Expr> &outer) {
    auto at = [&](const std::vector<Expr> &r) { return rows.value(outer, r); };
    Update max_of = [&](Expr m, const std::vector<Expr> &r) { return max(m, at(r)); };
    return reduce(c, t, neg_inf(t), rext, max_of, [&](Expr m) {
      if (k == OpKind::Hardmax) {
        Update first = [&](Expr f, const std::vector<Expr> &r) {
          return select(matches(at(r), m) && f < make_zero(it), flat_index(rext, r), f);
        };
        return reduce(c, it, make_const(it, -1), rext, first, [&](Expr f) {
          return rows.write(y, outer, [&](const std::vector<Expr> &r) {
            return select(flat_index(rext, r) == f, make_const(t, 1), make_zero(t));
          });
        });
      }
      Update sum_exp = [&](Expr s, const std::vector<Expr> &r) { return s + call("exp", {at(r) - m}); };
      return reduce(c, t, make_zero(t), rext, sum_exp, [&](Expr s) {
        if (k == OpKind::LogSoftmax) {
          Expr log_s = call("log", {s});
          return rows.write(y, outer, [&](const std::vector<Expr> &r) { return at(r) - m - log_s; });
        }
        return rows.write(y, outer, [&](const std::vector<Expr> &r) { return call("exp", {at(r) - m}) / s; });
      });
    });
  });
}

// CumSum: a running sum along the axis (forward or reversed), the current element
// included or, when exclusive, not yet.
Stmt lower_cumsum(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  const Tensor &av = c.value(1);
  user_assert(av.numel() == 1) << c.node.describe() << ": axis must have one element";
  int axis = normalize_axis(av.get_i64(0), x.rank(), c.node);
  bool exclusive = c.node.attr_i("exclusive", 0) != 0, reverse = c.node.attr_i("reverse", 0) != 0;
  std::vector<bool> reduced(x.rank(), false);
  reduced[axis] = true;
  Type acc = acc_type_of(x.compute());
  Rows rows{c, x, reduced, acc};
  Expr n = x.shape[axis];
  return rows.for_each([&](const std::vector<Expr> &outer) {
    std::string buf = c.fresh("run"), k = c.fresh("k");
    Expr kv = Var::make(Type::index(), k);
    std::vector<Expr> idx = merge_index(reduced, outer, {reverse ? n - Expr(1) - kv : kv});
    Expr run = Load::make(acc, buf, Expr(0));
    Expr next = run + cast(acc, load(x, idx));
    Stmt step = Block::make(
        {store(y, idx, cast(y.compute(), exclusive ? run : next)), Store::make(buf, next, Expr(0))});
    Stmt loop = For::make(k, Expr(0), n, ForKind::Serial, step);
    return Allocate::make(buf, acc, Expr(1), Block::make({Store::make(buf, make_zero(acc), Expr(0)), loop}));
  });
}

}  // namespace kiln
