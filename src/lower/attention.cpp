// FusedAttention (made by passes/fuse_attention.cpp): out = Softmax(scale * Q @ K^T + M) @ V
// over the last axis, with Q, K, V, M and the output addressed through strides, so the
// head transposes around attention are never copied.
//
// -O1 schedule, f32: one parallel work item per (batch, block of `mb` query rows), mb the
// width of a GEMM register tile. Per item, in per-thread scratch:
//   1. the item's query rows, scaled, packed transposed (qt[d][i], mb wide);
//   2. S^T = K @ qt on the GEMM tiles: one row per key, the item's queries across the
//      vector lanes, the mask added in the tile's epilogue;
//   3. the softmax of every query down its column: lane-wise max, exp (vmath) and sum,
//      so no horizontal reduction is needed; the probabilities overwrite S^T;
//   4. out = P @ V on the GEMM tiles (A read transposed from S^T), divided by the sums in
//      the epilogue and stored through the output's strides.
// Only an Sk x mb block of scores ever exists. -O0 (and any layout the schedule does not
// take) runs the reference: a row of scores per query, softmax, then the product with V.
#include <cmath>
#include <optional>

#include "graph/shape_fn.h"
#include "lower/gemm.h"
#include "lower/lower.h"
#include "lower/vector_loop.h"
#include "lower/vmath.h"
#include "support/error.h"

namespace kiln {

namespace {

// An operand seen as its logical tensor: the buffer, and per logical axis the extent and
// the stride in elements (0 where the axis broadcasts).
struct View {
  std::string buf;
  std::vector<Expr> extent, stride;
  int rank() const { return static_cast<int>(extent.size()); }
  const Expr &rows_stride() const { return stride[rank() - 2]; }
  const Expr &cols_stride() const { return stride[rank() - 1]; }
};

std::vector<Expr> row_major_strides(const std::vector<Expr> &shape) {
  std::vector<Expr> s(shape.size());
  Expr step = Expr(1);
  for (size_t a = shape.size(); a-- > 0;) {
    s[a] = step;
    step = step * shape[a];
  }
  return s;
}

std::vector<int> perm_attr(const LowerContext &c, const char *name, int rank) {
  std::vector<int64_t> p = c.node.attr_ints(name);
  std::vector<int> perm(rank);
  for (int i = 0; i < rank; ++i) perm[i] = p.empty() ? i : normalize_axis(p[i], rank, c.node);
  return perm;
}

// Input `o` read through Transpose(o, perm).
View input_view(const LowerContext &c, const Operand &o, const char *perm_name) {
  std::vector<int> perm = perm_attr(c, perm_name, o.rank());
  std::vector<Expr> ps = row_major_strides(o.shape);
  View v{o.buf, {}, {}};
  for (int p : perm) {
    v.extent.push_back(o.shape[p]);
    v.stride.push_back(ps[p]);
  }
  return v;
}

// The logical result, stored as Transpose(result, out_perm): physical axis k holds logical
// axis out_perm[k].
View output_view(const LowerContext &c, const Operand &o) {
  std::vector<int> perm = perm_attr(c, "out_perm", o.rank());
  std::vector<Expr> ps = row_major_strides(o.shape);
  View v{o.buf, std::vector<Expr>(o.rank()), std::vector<Expr>(o.rank())};
  for (int k = 0; k < o.rank(); ++k) {
    v.extent[perm[k]] = o.shape[k];
    v.stride[perm[k]] = ps[k];
  }
  return v;
}

// The mask broadcast to the scores' logical shape `scores` (numpy rules, aligned right).
View mask_view(const Operand &m, const std::vector<Expr> &scores) {
  int r = static_cast<int>(scores.size()), off = r - m.rank();
  std::vector<Expr> ps = row_major_strides(m.shape);
  View v{m.buf, scores, std::vector<Expr>(r, Expr(0))};
  for (int a = 0; a < m.rank(); ++a) {
    const Expr &d = m.shape[a];
    v.stride[a + off] = is_const(d, 1) ? Expr(0) : is_const(d) ? ps[a] : select(d == Expr(1), Expr(0), ps[a]);
  }
  return v;
}

// Offset of the batch element with flat index `b` (over the logical batch axes of
// `extents`, row-major) in view v.
Expr batch_offset(const View &v, const std::vector<Expr> &extents, Expr b) {
  Expr off = Expr(0);
  for (size_t a = extents.size(); a-- > 0;) {
    off = off + (b % extents[a]) * v.stride[a];
    b = b / extents[a];
  }
  return off;
}

struct Attention {
  View q, k, v, out;
  std::optional<View> mask;
  std::vector<Expr> batch;  // logical batch extents
  Expr sq, sk, d, dv;
  float scale = 1.0f;

  static Attention of(const LowerContext &c) {
    Attention a;
    a.q = input_view(c, c.in[0], "q_perm");
    a.k = input_view(c, c.in[1], "k_perm");
    a.v = input_view(c, c.in[2], "v_perm");
    a.out = output_view(c, c.out[0]);
    int r = a.q.rank();
    user_assert(r >= 2 && a.k.rank() == r && a.v.rank() == r && a.out.rank() == r)
        << c.node.describe() << ": Q, K, V and the output must have one rank of at least 2";
    a.batch.assign(a.q.extent.begin(), a.q.extent.end() - 2);
    a.sq = a.q.extent[r - 2];
    a.d = a.q.extent[r - 1];
    a.sk = a.k.extent[r - 2];
    a.dv = a.v.extent[r - 1];
    if (c.has(3)) {
      std::vector<Expr> scores = a.batch;
      scores.push_back(a.sq);
      scores.push_back(a.sk);
      a.mask = mask_view(c.in[3], scores);
    }
    a.scale = static_cast<float>(c.node.attr_f("scale", 1.0));
    return a;
  }

  Expr batches() const { return numel(batch); }
  Expr mask_at(Expr b, Expr i, Expr j) const {
    return Load::make(Type::f(32), mask->buf,
                      batch_offset(*mask, batch, b) + i * mask->rows_stride() + j * mask->cols_stride());
  }
};

bool attention_schedulable(const LowerContext &c, const Attention &a) {
  // The tiles load V and store the output in vectors along their last axis.
  return c.opts.opt_level >= 1 && is_const(a.v.cols_stride(), 1) && is_const(a.out.cols_stride(), 1);
}

// Reference: per (batch, query) a row of scores in scratch, its softmax as the Softmax op
// computes it, then the row times V.
Stmt attention_reference(LowerContext &c, const Attention &a) {
  Type t = Type::f(32);
  std::string w = c.fresh("bq"), p = c.fresh("p"), j = c.fresh("j"), n = c.fresh("n");
  Expr vw = Var::make(Type::index(), w), vj = Var::make(Type::index(), j), vn = Var::make(Type::index(), n);
  Expr b = vw / a.sq, i = vw % a.sq;
  Expr qrow = batch_offset(a.q, a.batch, b) + i * a.q.rows_stride();
  Expr krow = batch_offset(a.k, a.batch, b) + vj * a.k.rows_stride();
  Expr pj = Load::make(t, p, vj);
  auto over_keys = [&](Stmt s) { return For::make(j, Expr(0), a.sk, ForKind::Serial, s); };
  // scores
  Stmt dot = reduce(c, t, make_zero(t), {a.d}, [&](Expr acc, const std::vector<Expr> &r) {
    return acc + Load::make(t, a.q.buf, qrow + r[0] * a.q.cols_stride()) *
                     Load::make(t, a.k.buf, krow + r[0] * a.k.cols_stride());
  }, [&](Expr s) {
    Expr score = s * make_const(t, a.scale);
    if (a.mask) score = score + a.mask_at(b, i, vj);
    return Store::make(p, score, vj);
  });
  // softmax
  std::string mx = c.fresh("max"), sum = c.fresh("sum");
  Expr vmx = Load::make(t, mx, Expr(0)), vsum = Load::make(t, sum, Expr(0));
  Stmt softmax = Block::make({
      Store::make(mx, make_const(t, -INFINITY), Expr(0)),
      over_keys(Store::make(mx, max(vmx, pj), Expr(0))),
      Store::make(sum, make_zero(t), Expr(0)),
      over_keys(Store::make(sum, vsum + call("exp", {pj - vmx}), Expr(0))),
      over_keys(Store::make(p, call("exp", {pj - vmx}) / vsum, vj)),
  });
  softmax = Allocate::make(mx, t, Expr(1), Allocate::make(sum, t, Expr(1), softmax));
  // out = p @ V
  Expr orow = batch_offset(a.out, a.batch, b) + i * a.out.rows_stride();
  Stmt product = reduce(c, t, make_zero(t), {a.sk}, [&](Expr acc, const std::vector<Expr> &r) {
    Expr vjn = batch_offset(a.v, a.batch, b) + r[0] * a.v.rows_stride() + vn * a.v.cols_stride();
    return acc + Load::make(t, p, r[0]) * Load::make(t, a.v.buf, vjn);
  }, [&](Expr s) { return Store::make(a.out.buf, s, orow + vn * a.out.cols_stride()); });
  Stmt row = Block::make({over_keys(dot), softmax, For::make(n, Expr(0), a.dv, ForKind::Serial, product)});
  return For::make(w, Expr(0), a.batches() * a.sq, ForKind::Parallel, Allocate::make(p, t, a.sk, row));
}

Stmt attention_schedule(LowerContext &c, const Attention &a) {
  Type t = Type::f(32);
  GemmTile tl = gemm_tile_for(c.opts);
  int vl = tl.vl, mb = tl.nv * tl.vl;
  Type vt = Type::f(32, vl);
  Expr nqb = (a.sq + Expr(mb - 1)) / Expr(mb);
  std::string w = c.fresh("item"), qt = c.fresh("qt"), st = c.fresh("st"), inv = c.fresh("inv");
  Expr vw = Var::make(Type::index(), w);
  Expr b = vw / nqb, q0 = (vw % nqb) * Expr(mb);
  Expr rows = min(Expr(mb), a.sq - q0);
  Expr qoff = batch_offset(a.q, a.batch, b), koff = batch_offset(a.k, a.batch, b);
  Expr voff = batch_offset(a.v, a.batch, b), ooff = batch_offset(a.out, a.batch, b);

  // 1. qt[d * mb + i] = scale * Q(q0 + i, d); rows past the end are zeros.
  std::string i = c.fresh("i"), dd = c.fresh("d");
  Expr vi = Var::make(Type::index(), i), vd = Var::make(Type::index(), dd);
  Expr qi = min(q0 + vi, a.sq - Expr(1));
  Expr qval = Load::make(t, a.q.buf, qoff + qi * a.q.rows_stride() + vd * a.q.cols_stride()) * make_const(t, a.scale);
  Stmt pack = For::make(i, Expr(0), Expr(mb), ForKind::Serial,
                        For::make(dd, Expr(0), a.d, ForKind::Serial,
                                  Store::make(qt, select(vi < rows, qval, make_zero(t)), vd * Expr(mb) + vi)));

  // 2. st[j * mb + i] = qt-column i . K row j (+ mask).
  GemmSpec s;
  s.a = a.k.buf;
  s.a_base = koff;
  s.a_sm = a.k.rows_stride();
  s.a_sk = a.k.cols_stride();
  s.b = qt;
  s.b_base = Expr(0);
  s.b_sk = Expr(mb);
  s.M = a.sk;
  s.N = Expr(mb);
  s.K = a.d;
  s.epilogue = [&](Expr j, Expr n, Expr v, int lanes) {
    if (a.mask) {
      // Lanes are queries; rows past the end read the last row's mask (their scores are
      // never used).
      Expr qrow = lanes == 1 ? min(q0 + n, a.sq - Expr(1))
                             : min(Ramp::make(q0 + n, Expr(1), lanes), Broadcast::make(a.sq - Expr(1), lanes));
      Expr base = batch_offset(*a.mask, a.batch, b) + j * a.mask->cols_stride();
      Expr idx = is_const(a.mask->rows_stride(), 0) ? base
                 : lanes == 1 ? base + qrow * a.mask->rows_stride()
                              : splat(base, lanes) + qrow * splat(a.mask->rows_stride(), lanes);
      Expr m = Load::make(t.with_lanes(idx.type().lanes), a.mask->buf, idx);
      v = v + (m.type().lanes == lanes ? m : splat(m, lanes));
    }
    Expr at = j * Expr(mb) + n;
    return Store::make(st, v, lanes == 1 ? at : Ramp::make(at, Expr(1), lanes));
  };
  Stmt scores = gemm_tiles(c, s, tl, ForKind::Serial);

  // 3. Per vector of queries: max down the keys, exp and its sum; inv = 1 / sum.
  std::vector<Stmt> softmax;
  for (int g = 0; g < tl.nv; ++g) {
    std::string j = c.fresh("j"), mx = c.fresh("max"), sum = c.fresh("sum");
    Expr vj = Var::make(Type::index(), j);
    Expr at = Ramp::make(vj * Expr(mb) + Expr(g * vl), Expr(1), vl), zero = Ramp::make(Expr(0), Expr(1), vl);
    Expr sv = Load::make(vt, st, at), vmx = Load::make(vt, mx, zero), vsum = Load::make(vt, sum, zero);
    std::string e = c.fresh("e");
    Expr ve = Var::make(vt, e);
    Stmt exp_step = LetStmt::make(e, vmath::exp(sv - vmx),
                                  Block::make({Store::make(st, ve, at), Store::make(sum, vsum + ve, zero)}));
    Stmt body = Block::make({
        Store::make(mx, splat(make_const(t, -INFINITY), vl), zero),
        For::make(j, Expr(0), a.sk, ForKind::Serial, Store::make(mx, max(vmx, sv), zero)),
        Store::make(sum, splat(make_zero(t), vl), zero),
        For::make(j, Expr(0), a.sk, ForKind::Serial, exp_step),
        Store::make(inv, splat(make_const(t, 1.0), vl) / vsum, Ramp::make(Expr(g * vl), Expr(1), vl)),
    });
    softmax.push_back(Allocate::make(mx, t, Expr(vl), Allocate::make(sum, t, Expr(vl), body)));
  }

  // 4. out(q0 + i, n) = inv[i] * sum_j st[j * mb + i] * V(j, n).
  GemmSpec o;
  o.a = st;
  o.a_base = Expr(0);
  o.a_sm = Expr(1);
  o.a_sk = Expr(mb);
  o.b = a.v.buf;
  o.b_base = voff;
  o.b_sk = a.v.rows_stride();
  o.M = rows;
  o.N = a.dv;
  o.K = a.sk;
  o.epilogue = [&](Expr m, Expr n, Expr v, int lanes) {
    Expr at = ooff + (q0 + m) * a.out.rows_stride() + n;
    Expr r = splat(Load::make(t, inv, m), lanes);
    return Store::make(a.out.buf, v * r, lanes == 1 ? at : Ramp::make(at, Expr(1), lanes));
  };
  Stmt product = gemm_tiles(c, o, tl, ForKind::Serial);

  Stmt item = Block::make({pack, scores, Block::make(softmax), product});
  item = Allocate::make(qt, t, a.d * Expr(mb),
                        Allocate::make(st, t, a.sk * Expr(mb), Allocate::make(inv, t, Expr(mb), item)));
  return For::make(w, Expr(0), a.batches() * nqb, ForKind::Parallel, item);
}

}  // namespace

Stmt lower_fused_attention(LowerContext &c) {
  for (size_t i = 0; i < c.in.size(); ++i) {
    user_assert(!c.has(i) || c.in[i].dtype == DType::F32) << c.node.describe() << ": only f32 is supported";
  }
  Attention a = Attention::of(c);
  if (attention_schedulable(c, a)) return attention_schedule(c, a);
  return attention_reference(c, a);
}

}  // namespace kiln
