// Compute definitions of the normalizations: BatchNormalization (inference and training
// statistics), InstanceNormalization, LayerNormalization, LpNormalization,
// MeanVarianceNormalization and LRN. Statistics accumulate in f32 (f64 for f64 inputs).
#include <algorithm>

#include "graph/shape_fn.h"
#include "lower/lower.h"
#include "lower/vector_loop.h"
#include "support/error.h"

namespace kiln {

namespace {

Type stat_type(const LowerContext &c) {
  Type t = c.in[0].compute();
  user_assert(t.is_float()) << c.node.describe() << ": needs a floating-point input, got " << t.str();
  return t;
}

// One row of x: the elements sharing an index of the kept axes. for_each runs body(outer)
// for every row (outermost kept loop in parallel); value and write address the row's
// elements by the loop variables of the reduced axes.
struct Rows {
  LowerContext &c;
  const Operand &x;
  std::vector<bool> reduced;
  Type t;

  std::vector<Expr> inner_extents() const { return extents_where(x, reduced, true); }
  Expr value(const std::vector<Expr> &outer, const std::vector<Expr> &inner) const {
    return cast(t, load(x, merge_index(reduced, outer, inner)));
  }
  Stmt for_each(const std::function<Stmt(const std::vector<Expr> &)> &body) const {
    return loop_nest(c, extents_where(x, reduced, false), body, ForKind::Parallel);
  }
  // Mean and population variance of the row (two passes), then use(mean, var).
  Stmt moments(const std::vector<Expr> &outer, const std::function<Stmt(Expr, Expr)> &use) const {
    std::vector<Expr> rext = inner_extents();
    Expr n = cast(t, numel(rext));
    auto sum = [&](const std::function<Expr(const std::vector<Expr> &)> &f, const std::function<Stmt(Expr)> &then) {
      return reduce(c, t, make_zero(t), rext, [&](Expr s, const std::vector<Expr> &r) { return s + f(r); }, then);
    };
    return sum([&](const std::vector<Expr> &r) { return value(outer, r); },
               [&](Expr s) {
                 Expr mean = s / n;
                 return sum([&](const std::vector<Expr> &r) {
                              Expr d = value(outer, r) - mean;
                              return d * d;
                            },
                            [&](Expr ss) { return use(mean, ss / n); });
               });
  }
  // out(row, r) = f(r) for every element of the row.
  Stmt write(const Operand &out, const std::vector<Expr> &outer,
             const std::function<Expr(const std::vector<Expr> &)> &f) const {
    return loop_nest(c, inner_extents(), [&](const std::vector<Expr> &r) {
      return store(out, merge_index(reduced, outer, r), cast(out.compute(), f(r)));
    });
  }
};

// A per-channel parameter at element `i` of the input: [C] indexes by channel; a
// parameter of shape [C, D1, ...] (BatchNorm with spatial=0) by all but the batch axis.
Expr channel_param(const Operand &p, const std::vector<Expr> &i, Type t) {
  if (p.rank() == 1) return cast(t, load(p, {i[1]}));
  return cast(t, load(p, std::vector<Expr>(i.begin() + 1, i.end())));
}

// Training mode: an attribute since opset 14; before, the statistics outputs being
// requested (and, before opset 7, is_test=0).
bool batch_norm_training(const Node &n) {
  if (n.opset >= 14) return n.attr_i("training_mode", 0) != 0;
  bool stats = std::any_of(n.outputs.begin() + std::min<size_t>(1, n.outputs.size()), n.outputs.end(),
                           [](const Value *v) { return v != nullptr; });
  return stats && (n.opset >= 7 || n.attr_i("is_test", 0) == 0);
}

Stmt batch_norm_training_stats(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  user_assert(c.node.attr_i("spatial", 1) != 0 && c.in[1].rank() == 1)
      << c.node.describe() << ": training mode with spatial=0 is not supported";
  Type t = stat_type(c);
  Expr eps = make_const(t, c.node.attr_f("epsilon", 1e-5));
  Expr mom = make_const(t, c.node.attr_f("momentum", 0.9));
  std::vector<bool> reduced(x.rank(), true);
  reduced[1] = false;
  Rows rows{c, x, reduced, t};
  return rows.for_each([&](const std::vector<Expr> &ch) {
    return rows.moments(ch, [&](Expr mean, Expr var) {
      Expr k = cast(t, load(c.in[1], ch)) / call("sqrt", {var + eps});
      Expr b = cast(t, load(c.in[2], ch));
      std::vector<Stmt> s = {
          rows.write(y, ch, [&](const std::vector<Expr> &r) { return (rows.value(ch, r) - mean) * k + b; })};
      // Outputs after Y: running mean and variance, then (before opset 14) the batch's own.
      Expr stats[] = {cast(t, load(c.in[3], ch)) * mom + mean * (make_const(t, 1) - mom),
                      cast(t, load(c.in[4], ch)) * mom + var * (make_const(t, 1) - mom), mean, var};
      for (size_t o = 1; o < c.out.size() && o <= 4; ++o) {
        if (c.out[o].present()) s.push_back(store(c.out[o], ch, cast(c.out[o].compute(), stats[o - 1])));
      }
      return Block::make(s);
    });
  });
}

// How the -O1 LayerNormalization reads Scale or B along a row of the normalized dims:
// absent, one value for the whole row, or one per element (contiguous).
enum class RowParam { Absent, Scalar, PerElement, Other };

RowParam row_param(const LowerContext &c, size_t i, Expr row_size) {
  if (!c.has(i)) return RowParam::Absent;
  const Operand &p = c.in[i];
  if (p.dtype != DType::F32) return RowParam::Other;
  Expr n = numel(p.shape);
  if (is_const(n, 1)) return RowParam::Scalar;
  // Broadcastable to the normalized shape with as many elements: the same elements.
  if (is_const(n) && is_const(row_size) && n.as<IntImm>()->value == row_size.as<IntImm>()->value) {
    return RowParam::PerElement;
  }
  return RowParam::Other;
}

// Elements per parallel block of rows in the -O1 LayerNormalization.
constexpr int64_t kRowBlockElements = 4096;

// -O1, f32: rows (the kept dims) in parallel blocks; per row the mean and the variance
// (two passes, as the reference) and the normalization, in vectors.
Stmt layer_norm_schedule(LowerContext &c, int axis, float eps, RowParam scale, RowParam bias) {
  const Operand &x = c.in[0], &y = c.out[0];
  Type t = Type::f(32);
  int lanes = c.opts.vector_lanes_f32();
  Expr n = numel(std::vector<Expr>(x.shape.begin() + axis, x.shape.end()));
  Expr rows = numel(std::vector<Expr>(x.shape.begin(), x.shape.begin() + axis));
  Expr nf = cast(t, n);
  auto add = [](Expr a, Expr b) { return a + b; };
  auto param = [&](RowParam k, size_t i, Expr j, int w) {
    return k == RowParam::Scalar ? splat(load_flat(c.in[i], Expr(0)), w) : run_load(t, c.in[i].buf, Expr(0), j, w);
  };
  return parallel_blocks(c, rows, rows_per_block(n, kRowBlockElements), [&](Expr begin, Expr count) {
    std::string r = c.fresh("row");
    Expr row = Var::make(Type::index(), r), base = row * n;
    auto xs = [&](Expr j, int w) { return run_load(t, x.buf, base, j, w); };
    Stmt body = vector_reduce(c, n, lanes, make_zero(t), xs, add, [&](Expr sum) {
      return let_stmt(c, "mean", sum / nf, [&](Expr mean) {
        auto dev2 = [&](Expr j, int w) {
          Expr d = xs(j, w) - splat(mean, w);
          return d * d;
        };
        return vector_reduce(c, n, lanes, make_zero(t), dev2, add, [&](Expr ss) {
          Expr inv_std = make_const(t, 1.0) / call("sqrt", {ss / nf + make_const(t, eps)});
          return let_stmt(c, "inv", inv_std, [&](Expr inv) {
            std::vector<Stmt> s = {vector_loop(c, n, lanes, [&](Expr j, int w) {
              Expr v = (xs(j, w) - splat(mean, w)) * splat(inv, w);
              if (scale != RowParam::Absent) v = v * param(scale, 1, j, w);
              if (bias != RowParam::Absent) v = v + param(bias, 2, j, w);
              return run_store(y.buf, base, j, v);
            })};
            if (c.out.size() > 1 && c.out[1].present()) s.push_back(store_flat(c.out[1], row, mean));
            if (c.out.size() > 2 && c.out[2].present()) s.push_back(store_flat(c.out[2], row, inv));
            return Block::make(s);
          });
        });
      });
    });
    return For::make(r, begin, count, ForKind::Serial, body);
  });
}

}  // namespace

Stmt lower_batch_norm(LowerContext &c) {
  if (batch_norm_training(c.node)) return batch_norm_training_stats(c);
  const Operand &x = c.in[0], &y = c.out[0];
  Type t = stat_type(c);
  Expr eps = make_const(t, c.node.attr_f("epsilon", 1e-5));
  return loop_nest(c, y.shape, [&](const std::vector<Expr> &i) {
    Expr scale = channel_param(c.in[1], i, t), bias = channel_param(c.in[2], i, t);
    Expr mean = channel_param(c.in[3], i, t), var = channel_param(c.in[4], i, t);
    Expr v = scale * (cast(t, load(x, i)) - mean) / call("sqrt", {var + eps}) + bias;
    return store(y, i, cast(y.compute(), v));
  }, ForKind::Parallel);
}

Stmt lower_instance_norm(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  Type t = stat_type(c);
  Expr eps = make_const(t, c.node.attr_f("epsilon", 1e-5));
  std::vector<bool> reduced(x.rank(), true);
  reduced[0] = reduced[1] = false;
  Rows rows{c, x, reduced, t};
  return rows.for_each([&](const std::vector<Expr> &nc) {
    return rows.moments(nc, [&](Expr mean, Expr var) {
      Expr k = cast(t, load(c.in[1], {nc[1]})) / call("sqrt", {var + eps});
      Expr b = cast(t, load(c.in[2], {nc[1]}));
      return rows.write(y, nc, [&](const std::vector<Expr> &r) { return (rows.value(nc, r) - mean) * k + b; });
    });
  });
}

Stmt lower_layer_norm(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  int r = x.rank();
  int axis = normalize_axis(c.node.attr_i("axis", -1), r, c.node);
  Type t = stat_type(c);
  Type stash = compute_type_of(static_cast<DType>(c.node.attr_i("stash_type", 1)));
  if (stash.bits > t.bits) t = stash;
  Expr eps = make_const(t, c.node.attr_f("epsilon", 1e-5));
  if (c.opts.opt_level >= 1 && x.dtype == DType::F32 && y.dtype == DType::F32 && t == Type::f(32)) {
    Expr n = numel(std::vector<Expr>(x.shape.begin() + axis, x.shape.end()));
    RowParam scale = row_param(c, 1, n), bias = row_param(c, 2, n);
    if (scale != RowParam::Other && bias != RowParam::Other) {
      return layer_norm_schedule(c, axis, static_cast<float>(c.node.attr_f("epsilon", 1e-5)), scale, bias);
    }
  }
  std::vector<bool> reduced(r, false);
  for (int a = axis; a < r; ++a) reduced[a] = true;
  Rows rows{c, x, reduced, t};
  return rows.for_each([&](const std::vector<Expr> &outer) {
    return rows.moments(outer, [&](Expr mean, Expr var) {
      Expr inv = make_const(t, 1) / call("sqrt", {var + eps});
      std::vector<Stmt> s = {rows.write(y, outer, [&](const std::vector<Expr> &in) {
        Expr v = (rows.value(outer, in) - mean) * inv;
        if (c.has(1)) v = v * cast(t, load(c.in[1], broadcast_index(c.in[1], in)));
        if (c.has(2)) v = v + cast(t, load(c.in[2], broadcast_index(c.in[2], in)));
        return v;
      })};
      std::vector<Expr> si = merge_index(reduced, outer, std::vector<Expr>(r - axis, Expr(0)));
      if (c.out.size() > 1 && c.out[1].present()) s.push_back(store(c.out[1], si, cast(c.out[1].compute(), mean)));
      if (c.out.size() > 2 && c.out[2].present()) s.push_back(store(c.out[2], si, cast(c.out[2].compute(), inv)));
      return Block::make(s);
    });
  });
}

Stmt lower_lp_norm(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  int axis = normalize_axis(c.node.attr_i("axis", -1), x.rank(), c.node);
  bool l1 = c.node.attr_i("p", 2) == 1;
  Type t = stat_type(c);
  std::vector<bool> reduced(x.rank(), false);
  reduced[axis] = true;
  Rows rows{c, x, reduced, t};
  return rows.for_each([&](const std::vector<Expr> &outer) {
    return reduce(c, t, make_zero(t), rows.inner_extents(),
                  [&](Expr s, const std::vector<Expr> &r) {
                    Expr v = rows.value(outer, r);
                    return s + (l1 ? call("abs", {v}) : v * v);
                  },
                  [&](Expr s) {
                    Expr norm = l1 ? s : call("sqrt", {s});
                    return rows.write(y, outer,
                                      [&](const std::vector<Expr> &r) { return rows.value(outer, r) / norm; });
                  });
  });
}

// (x - mean) / (std + 1e-9), the ONNX function's definition.
Stmt lower_mvn(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  Type t = stat_type(c);
  std::vector<bool> reduced(x.rank(), false);
  for (int64_t a : c.node.attr_ints("axes", {0, 2, 3})) reduced[normalize_axis(a, x.rank(), c.node)] = true;
  Rows rows{c, x, reduced, t};
  return rows.for_each([&](const std::vector<Expr> &outer) {
    return rows.moments(outer, [&](Expr mean, Expr var) {
      Expr den = call("sqrt", {var}) + make_const(t, 1e-9);
      return rows.write(y, outer, [&](const std::vector<Expr> &r) { return (rows.value(outer, r) - mean) / den; });
    });
  });
}

// y = x / (bias + alpha / size * sum of x^2 over a window of channels) ^ beta.
Stmt lower_lrn(LowerContext &c) {
  const Operand &x = c.in[0], &y = c.out[0];
  Type t = stat_type(c);
  int64_t size = c.node.attr_i("size", 0);
  user_assert(size > 0) << c.node.describe() << ": size must be a positive int";
  Expr alpha = make_const(t, c.node.attr_f("alpha", 1e-4) / static_cast<double>(size));
  Expr beta = make_const(t, c.node.attr_f("beta", 0.75)), bias = make_const(t, c.node.attr_f("bias", 1.0));
  int64_t before = (size - 1) / 2;
  Expr channels = x.shape[1];
  return loop_nest(c, y.shape, [&](const std::vector<Expr> &i) {
    return reduce(c, t, make_zero(t), {Expr(size)},
                  [&](Expr s, const std::vector<Expr> &r) {
                    Expr ch = i[1] - Expr(before) + r[0];
                    std::vector<Expr> xi = i;
                    xi[1] = max(min(ch, channels - Expr(1)), Expr(0));  // in bounds; select discards
                    Expr v = cast(t, load(x, xi));
                    return select(ch >= Expr(0) && ch < channels, s + v * v, s);
                  },
                  [&](Expr s) {
                    Expr v = cast(t, load(x, i)) / call("pow", {bias + alpha * s, beta});
                    return store(y, i, cast(y.compute(), v));
                  });
  }, ForKind::Parallel);
}

}  // namespace kiln
