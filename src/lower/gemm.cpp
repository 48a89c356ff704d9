// Register-blocked GEMM tiles in the Loop IR (see gemm.h).
#include "lower/gemm.h"

#include <cmath>

#include "lower/vmath.h"

#include <algorithm>

#include "support/error.h"

namespace kiln {

GemmTile gemm_tile_for(const LowerOptions &o) {
  // 32 vector registers with AVX-512: 8 x 2 accumulators + 2 B vectors + 1 broadcast.
  // 16 with AVX2: 6 x 2 accumulators + 2 + 1.
  if (o.vector_bits >= 512) return {8, 2, 16};
  if (o.vector_bits >= 256) return {6, 2, 8};
  // NEON: 32 registers of 4 lanes, 8 x 2 accumulators + 2 + 1 like AVX-512.
  if (o.vector_registers >= 32) return {8, 2, 4};
  return {4, 2, 4};
}

GemmTile gemm_tile_for_rows(const LowerOptions &o, int64_t rows) {
  GemmTile tl = gemm_tile_for(o);
  for (int r = tl.mr; r >= (3 * tl.mr + 3) / 4; --r) {
    if (rows % r == 0) {
      tl.mr = r;
      break;
    }
  }
  return tl;
}

namespace {

// K block of gemm_panel_items: a 32-wide panel block of 32 KB.
constexpr int64_t kPanelKc = 256;

Expr f32_vec(Expr v, int lanes) { return lanes == 1 ? v : Broadcast::make(v, lanes); }

Expr vec_index(Expr base, int lanes) { return lanes == 1 ? base : Ramp::make(base, Expr(1), lanes); }

// Where a tile reads B: B(k, j) = buf[base + k * sk + col0 + j] for tile column j.
struct BSource {
  std::string buf;
  Expr base, sk, col0;
};

// Prefetch calls (see codegen's "prefetch") evaluated for their effect: each bound to a
// name nothing reads.
Stmt prefetch_stmt(LowerContext &c, const std::vector<Expr> &calls) {
  Stmt s = Block::make({});
  for (size_t i = calls.size(); i-- > 0;) s = LetStmt::make(c.fresh("pf"), calls[i], s);
  return s;
}

// A block of the reduction: k in [k0, k0 + len). Unless it is the first, the tile starts
// from the partial sums stored in C; unless it is the last, it stores partial sums to C
// instead of running the epilogue.
struct KBlock {
  Expr k0, len;
  Expr first, last;  // bool
};

// Row tile `r` of a packed B panel whose next panel starts at `base` (both defined when the
// tiles walk a panel's rows in turn): row tiles prefetch one line of the next panel per k,
// so the first row tile of that panel finds it in L2 instead of memory.
struct NextPanel {
  Expr base, r;
  // Lines per part (default K: the whole next panel) and the k at which they start
  // (default 0): a K-blocked item prefetches the panel's next block instead.
  Expr part_lines, k0;
};

// One tile: rows m0 .. m0+mr-1, columns n0 .. n0+nv*vl-1 of C. When `n_valid` is
// defined, only the first n_valid columns are finished (the rest is padding of B).
Stmt tile(LowerContext &c, const GemmSpec &g, const BSource &bs, Expr m0, Expr n0, int mr, int nv, int vl,
          Expr n_valid = Expr(), KBlock kb = {}, const NextPanel &next = {}) {
  if (!kb.k0.defined()) kb = {Expr(0), g.K, make_const(Type::boolean(), 1), make_const(Type::boolean(), 1)};
  Type vt = Type::f(32, vl);
  int nw = nv * vl;
  std::string acc = c.fresh("acc");
  auto acc_at = [&](int i, int v) { return vec_index(Expr(int64_t(i * nw + v * vl)), vl); };
  std::vector<Stmt> init;
  for (int i = 0; i < mr; ++i) {
    for (int v = 0; v < nv; ++v) init.push_back(Store::make(acc, f32_vec(make_zero(Type::f(32)), vl), acc_at(i, v)));
  }
  std::string k = c.fresh("k");
  Expr vk = Var::make(Type::index(), k);
  // Per k: nv vector loads of B and mr broadcasts of A bound once, then mr*nv FMAs.
  std::vector<std::pair<std::string, Expr>> lets;
  std::vector<Expr> bv, av;
  for (int v = 0; v < nv; ++v) {
    std::string n = c.fresh("b");
    lets.emplace_back(n, Load::make(vt, bs.buf, vec_index(bs.base + vk * bs.sk + bs.col0 + Expr(v * vl), vl)));
    bv.push_back(Var::make(vt, n));
  }
  for (int i = 0; i < mr; ++i) {
    std::string n = c.fresh("a");
    Expr ai = g.a_packed_mr == mr ? g.a_base + m0 * g.a_sm + vk * Expr(mr) + Expr(i)
              : g.a_row           ? g.a_base + g.a_row(m0 + Expr(i)) + vk * g.a_sk
                                  : g.a_base + (m0 + Expr(i)) * g.a_sm + vk * g.a_sk;
    lets.emplace_back(n, f32_vec(Load::make(Type::f(32), g.a, ai), vl));
    av.push_back(Var::make(vt, n));
  }
  std::vector<Stmt> fmas;
  for (int i = 0; i < mr; ++i) {
    for (int v = 0; v < nv; ++v) {
      Expr sum = call("fma", {av[i], bv[v], Load::make(vt, acc, acc_at(i, v))});
      fmas.push_back(Store::make(acc, sum, acc_at(i, v)));
    }
  }
  // Weights packed at compile time stream from memory (a model's weights do not stay in
  // the caches between runs): prefetched kPrefetchK iterations ahead, one line per k.
  constexpr int64_t kPrefetchK = 48;
  std::vector<Expr> ahead;
  Expr vk_ahead = vk + Expr(kPrefetchK);
  if (g.prefetch_packed && g.a_packed_mr == mr) {
    ahead.push_back(call(Type::index(), "prefetch", {Load::make(Type::f(32), g.a, g.a_base + m0 * g.a_sm + vk_ahead * Expr(mr)), Expr(0)}));
  }
  if (g.prefetch_packed && g.b_packed_nw && is_const(bs.sk, g.b_packed_nw)) {
    for (int l = 0; l < nw; l += 16) {
      ahead.push_back(call(Type::index(), "prefetch", {Load::make(Type::f(32), bs.buf, bs.base + vk_ahead * bs.sk + Expr(int64_t(l))), Expr(0)}));
    }
  }
  if (next.base.defined()) {
    // The next panel's K * nw / 16 lines in parts of K lines: row tile r takes part
    // (r - 1) mod parts, so row tiles 1 .. parts cover it (and row tile 0, streaming its
    // own panel, only the last part, which two row tiles per panel then need).
    int parts = std::max(1, nw / 16);  // panels narrower than a line (NEON): one part
    Expr part = (next.r + Expr(parts - 1)) % Expr(parts);
    Expr lines = next.part_lines.defined() ? next.part_lines : g.K, kfrom = next.k0.defined() ? next.k0 : Expr(0);
    ahead.push_back(call(Type::index(), "prefetch",
                         {Load::make(Type::f(32), g.b, next.base + (part * lines + vk - kfrom) * Expr(16)), Expr(0)}));
  }
  if (!ahead.empty()) fmas.push_back(prefetch_stmt(c, ahead));
  Stmt kbody = Block::make(fmas);
  for (size_t l = lets.size(); l-- > 0;) kbody = LetStmt::make(lets[l].first, lets[l].second, kbody);
  Stmt kloop = For::make(k, kb.k0, kb.len, ForKind::Serial, kbody);
  if (!is_const(kb.first, 1)) {
    std::vector<Stmt> resume;
    for (int i = 0; i < mr; ++i) {
      for (int v = 0; v < nv; ++v) {
        Expr ci = vec_index(g.c_index(m0 + Expr(i), n0 + Expr(v * vl)), vl);
        resume.push_back(Store::make(acc, Load::make(vt, g.c, ci), acc_at(i, v)));
      }
    }
    init = {IfThenElse::make(kb.first, Block::make(init), Block::make(resume))};
  }
  std::vector<Stmt> fin;
  for (int i = 0; i < mr; ++i) {
    for (int v = 0; v < nv; ++v) {
      fin.push_back(g.epilogue(m0 + Expr(i), n0 + Expr(v * vl), Load::make(vt, acc, acc_at(i, v)), vl));
    }
  }
  Stmt finish = Block::make(fin);
  if (n_valid.defined()) {
    // A partial tile: the accumulators go to a second scratch (so `acc` is only indexed
    // by constants and stays in registers), then the valid columns finish one by one.
    std::string spill = c.fresh("spill"), j = c.fresh("j");
    Expr vj = Var::make(Type::index(), j);
    std::vector<Stmt> part;
    for (int i = 0; i < mr; ++i) {
      for (int v = 0; v < nv; ++v) part.push_back(Store::make(spill, Load::make(vt, acc, acc_at(i, v)), acc_at(i, v)));
    }
    for (int i = 0; i < mr; ++i) {
      Expr lane = Load::make(Type::f(32), spill, Expr(int64_t(i * nw)) + vj);
      part.push_back(For::make(j, Expr(0), n_valid, ForKind::Serial, g.epilogue(m0 + Expr(i), n0 + vj, lane, 1)));
    }
    Stmt partial = Allocate::make(spill, Type::f(32), Expr(int64_t(mr * nw)), Block::make(part));
    finish = IfThenElse::make(n_valid >= Expr(nw), finish, partial);
  }
  if (!is_const(kb.last, 1)) {
    std::vector<Stmt> park;
    for (int i = 0; i < mr; ++i) {
      for (int v = 0; v < nv; ++v) {
        Expr ci = vec_index(g.c_index(m0 + Expr(i), n0 + Expr(v * vl)), vl);
        park.push_back(Store::make(g.c, Load::make(vt, acc, acc_at(i, v)), ci));
      }
    }
    finish = IfThenElse::make(kb.last, finish, Block::make(park));
  }
  std::vector<Stmt> body = init;
  if (g.epilogue_touches) {
    // One prefetch per cache line of every row's outputs (and what the epilogue reads).
    std::vector<Expr> lines;
    for (int i = 0; i < mr; ++i) {
      for (int l = 0; l < nw; l += 16) {
        for (const GemmSpec::Touch &t : g.epilogue_touches(m0 + Expr(i), n0 + Expr(l))) {
          lines.push_back(call(Type::index(), "prefetch", {t.load, Expr(int64_t(t.write))}));
        }
      }
    }
    Stmt pf = prefetch_stmt(c, lines);
    body.push_back(is_const(kb.last, 1) ? pf : IfThenElse::make(kb.last, pf));
  }
  body.push_back(kloop);
  body.push_back(finish);
  return Allocate::make(acc, Type::f(32), Expr(int64_t(mr * nw)), Block::make(body));
}

// A last column of tiles narrower than the others (`nv` vectors) starting at `n0`.
struct NarrowColumn {
  int nv = 0;
  Expr n0;
};

// All tiles of one phase: rows [m_lo, m_lo + mt*mr), columns [n_lo, n_lo + nt*nw), and
// the narrow column's row tiles after them in the same loop.
// With `n_last` / `m_last` defined, tile columns / rows start at most there (a last tile
// overlapping the one before it).
Stmt phase(LowerContext &c, const GemmSpec &g, Expr m_lo, Expr mt, int mr, Expr n_lo, Expr nt, int nv, int vl,
           const KBlock &kb, ForKind kind, Expr n_last = Expr(), Expr m_last = Expr(), const NarrowColumn &narrow = {}) {
  if (is_const(mt, 0) || (is_const(nt, 0) && narrow.nv == 0)) return Stmt();
  std::string t = c.fresh("tile");
  Expr vt = Var::make(Type::index(), t);
  Expr m0 = m_lo + (vt % mt) * Expr(mr), n0 = n_lo + (vt / mt) * Expr(nv * vl);
  if (n_last.defined()) n0 = min(n0, n_last);
  if (m_last.defined()) m0 = min(m0, m_last);
  BSource bs{g.b, g.b_base, g.b_sk, n0};
  if (g.b_packed_nw && g.b_packed_nw == nv * vl) {
    bs = {g.b, g.b_base + n0 * g.K, Expr(g.b_packed_nw), Expr(0)};  // n0 / nw * K * nw
  } else if (g.b_packed_nw) {
    // Columns past the whole panels: row-major [K][rem] after the panels.
    Expr np = g.N / Expr(g.b_packed_nw) * Expr(g.b_packed_nw), rem = g.N - np;
    bs = {g.b, g.b_base + np * g.K - np, rem, n0};
  }
  NextPanel next;
  if (g.prefetch_next_panel && g.b_packed_nw && g.b_packed_nw == nv * vl) {
    // The tiles walk each panel's row tiles in turn (m fastest): prefetch the next panel.
    Expr last_n0 = (g.N / Expr(g.b_packed_nw) - Expr(1)) * Expr(g.b_packed_nw);
    next = {g.b_base + max(Expr(0), min(n0 + Expr(g.b_packed_nw), last_n0)) * g.K, vt % mt, g.K, Expr(0)};
  }
  Stmt body = tile(c, g, bs, m0, n0, mr, nv, vl, Expr(), kb, next);
  Expr count = mt * nt;
  if (narrow.nv > 0) {
    internal_assert(!g.b_packed_nw) << "a narrow column of tiles over packed panels";
    Expr mn = m_lo + (vt - mt * nt) * Expr(mr);
    if (m_last.defined()) mn = min(mn, m_last);
    Stmt last = tile(c, g, BSource{g.b, g.b_base, g.b_sk, narrow.n0}, mn, narrow.n0, mr, narrow.nv, vl, Expr(), kb);
    body = is_const(nt, 0) ? last : IfThenElse::make(vt < mt * nt, body, last);
    count = count + mt;
  }
  return For::make(t, Expr(0), count, kind, body);
}

}  // namespace

Stmt gemm_tiles(LowerContext &c, const GemmSpec &g, const GemmTile &tile_shape, ForKind tiles) {
  // Fewer rows than a tile (a matrix-vector product, e.g. a classifier at batch 1): one
  // tile spans all rows, so they share every B load, with more columns per tile when B is
  // not packed in fixed-width panels (independent FMA chains); the reduction runs
  // unblocked (partial sums in C would only add passes over it).
  GemmTile tl = tile_shape;
  auto *m_const = g.M.as<IntImm>();
  const bool skinny = m_const && m_const->value > 0 && m_const->value < tl.mr;
  if (skinny) {
    tl.mr = static_cast<int>(m_const->value);
    if (!g.b_packed_nw) tl.nv = tl.mr <= 2 ? 4 : 2;
  }
  int nr = tl.nv * tl.vl;
  Expr mt = g.M / Expr(tl.mr), m_tail = g.M - mt * Expr(tl.mr);
  // Rows past the last whole row tile as one more whole tile ending at M, where allowed
  // (and A is not packed in row blocks, which a shifted tile would straddle).
  Expr m_last;
  if (g.overlap_last_tile && !g.a_packed_mr && m_const && m_const->value >= tl.mr && m_const->value % tl.mr != 0) {
    mt = Expr((m_const->value + tl.mr - 1) / tl.mr);
    m_tail = Expr(0);
    m_last = Expr(m_const->value - tl.mr);
  }
  Expr nt = g.N / Expr(nr);
  Expr n1 = nt * Expr(nr);
  Expr nt1 = (g.N - n1) / Expr(tl.vl);
  Expr n2 = n1 + nt1 * Expr(tl.vl);
  Expr nt2 = g.N - n2;
  // (row phase) x (column phase): full tiles, then one-vector columns, then scalar columns.
  struct Cols {
    Expr lo, count;
    int nv, vl;
  };
  std::vector<Cols> cols = {{Expr(0), nt, tl.nv, tl.vl}, {n1, nt1, 1, tl.vl}, {n2, nt2, 1, 1}};
  // Or, where allowed and N holds a whole tile: whole tiles, then one column of tiles of
  // as few vectors as cover the rest, ending at N (overlapping the tile before it; 196
  // columns: 6 x 32 + 16 instead of 7 x 32). Over packed panels, a whole tile ending at N.
  auto *n_const = g.N.as<IntImm>();
  Expr n_last;
  NarrowColumn narrow;
  if (g.overlap_last_tile && n_const && n_const->value >= nr) {
    int64_t rest = n_const->value % nr;
    int nv_rest = static_cast<int>((rest + tl.vl - 1) / tl.vl);
    if (rest == 0 || nv_rest == tl.nv || g.b_packed_nw) {
      cols = {{Expr(0), Expr((n_const->value + nr - 1) / nr), tl.nv, tl.vl}};
      n_last = Expr(n_const->value - nr);
    } else {
      cols = {{Expr(0), Expr(n_const->value / nr), tl.nv, tl.vl}};
      narrow = {nv_rest, Expr(n_const->value - nv_rest * tl.vl)};
    }
  }
  // A long reduction (K > 2 kKc) runs in blocks of <= kKc so a tile's rows of A and the
  // panel of B stay in L1 / L2; partial sums wait in C between blocks. Up to 2 kKc the
  // whole reduction runs at once: two blocks cost a round trip of C through memory and a
  // second parallel region (1024^3: one block -3.4% at 2 threads, 8 of 12 pairs).
  constexpr int64_t kKc = 512;
  auto *kconst = g.K.as<IntImm>();
  int64_t nkb = !skinny && g.c_index && !n_last.defined() && !narrow.nv && !m_last.defined() && kconst &&
                        kconst->value > 2 * kKc
                    ? (kconst->value + kKc - 1) / kKc
                    : 1;
  std::string kbn = c.fresh("kb");
  Expr vkb = Var::make(Type::index(), kbn);
  KBlock kb{Expr(0), g.K, make_const(Type::boolean(), 1), make_const(Type::boolean(), 1)};
  if (nkb > 1) {
    int64_t kc = (kconst->value + nkb - 1) / nkb;
    kb = {vkb * Expr(kc), min(Expr(kc), g.K - vkb * Expr(kc)), vkb == Expr(0), vkb == Expr(nkb - 1)};
  }
  std::vector<Stmt> phases;
  for (const Cols &cp : cols) {
    Stmt main = phase(c, g, Expr(0), mt, tl.mr, cp.lo, cp.count, cp.nv, cp.vl, kb, tiles, n_last, m_last, narrow);
    Stmt tail = phase(c, g, mt * Expr(tl.mr), m_tail, 1, cp.lo, cp.count, cp.nv, cp.vl, kb, tiles, n_last, Expr(), narrow);
    if (main.defined()) phases.push_back(main);
    if (tail.defined()) phases.push_back(tail);
  }
  internal_assert(!phases.empty() || is_const(g.M, 0) || is_const(g.N, 0)) << "empty GEMM schedule";
  Stmt all = Block::make(phases);
  return nkb > 1 ? For::make(kbn, Expr(0), Expr(nkb), ForKind::Serial, all) : all;
}

namespace {

// Few panels (small N): pack them all once, then split the rows (see gemm.h).
Stmt gemm_shared_panels(LowerContext &c, const GemmSpec &g, const GemmTile &tl, const PackPanel &pack,
                        int64_t panels, int64_t K) {
  int nw = tl.nv * tl.vl;
  std::string shared = c.fresh("panels"), t = c.fresh("pk");
  Expr vt = Var::make(Type::index(), t);
  // Stage 1: every (panel, block of 64 rows of K) packed in parallel.
  constexpr int64_t kPackRows = 64;
  int64_t nkp = (K + kPackRows - 1) / kPackRows;
  Expr pp = vt / Expr(nkp), pk0 = (vt % Expr(nkp)) * Expr(kPackRows);
  Stmt packing = For::make(t, Expr(0), Expr(panels * nkp), ForKind::Parallel,
                           pack(shared, (pp * Expr(K) + pk0) * Expr(nw), pp * Expr(nw), nw, pk0,
                                min(Expr(kPackRows), Expr(K) - pk0)));
  // Stage 2: row chunks, each over every panel, K in blocks with partial sums per chunk.
  int64_t mt = 0;
  if (auto *m = g.M.as<IntImm>()) mt = m->value / tl.mr;
  int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(mt, 8));
  constexpr int64_t kKc = 256;
  int64_t nkb = K > kKc + kKc / 2 ? (K + kKc - 1) / kKc : 1;
  int64_t kc = (K + nkb - 1) / nkb;
  std::string chn = c.fresh("chunk"), kbn = c.fresh("kb"), pn = c.fresh("p"), mi = c.fresh("mi"), ri = c.fresh("r"),
              part = c.fresh("part");
  Expr vch = Var::make(Type::index(), chn), vkb = Var::make(Type::index(), kbn), vp = Var::make(Type::index(), pn);
  Expr vmi = Var::make(Type::index(), mi), vri = Var::make(Type::index(), ri);
  Expr mtE = g.M / Expr(tl.mr);
  Expr m_lo = vch * mtE / Expr(chunks), m_hi = (vch + Expr(1)) * mtE / Expr(chunks);
  Expr row_base = m_lo * Expr(tl.mr), rows_here = (m_hi - m_lo) * Expr(tl.mr) + (g.M - mtE * Expr(tl.mr));
  int64_t npad = panels * nw;
  Expr k0 = nkb > 1 ? vkb * Expr(kc) : Expr(0), klen = nkb > 1 ? min(Expr(kc), Expr(K) - k0) : Expr(K);
  KBlock kb{k0, klen, make_const(Type::boolean(), 1), make_const(Type::boolean(), 1)};
  GemmSpec gp = g;
  if (nkb > 1) {
    kb.first = vkb == Expr(0);
    kb.last = vkb == Expr(nkb - 1);
    gp.c = part;
    gp.c_index = [row_base, npad](Expr m, Expr n) { return (m - row_base) * Expr(npad) + n; };
  }
  Expr n0 = vp * Expr(nw), n_valid = min(Expr(nw), g.N - n0);
  BSource bs{shared, vp * Expr(K * nw), Expr(nw), Expr(0)};
  Stmt rows = For::make(mi, m_lo, m_hi - m_lo, ForKind::Serial,
                        tile(c, gp, bs, vmi * Expr(tl.mr), n0, tl.mr, tl.nv, tl.vl, n_valid, kb));
  Stmt tail = For::make(ri, mtE * Expr(tl.mr), g.M - mtE * Expr(tl.mr), ForKind::Serial,
                        tile(c, gp, bs, vri, n0, 1, tl.nv, tl.vl, n_valid, kb));
  if (chunks > 1) tail = IfThenElse::make(vch == Expr(chunks - 1), tail);
  Stmt sweep = For::make(pn, Expr(0), Expr(panels), ForKind::Serial, Block::make({rows, tail}));
  Stmt body = nkb > 1 ? Allocate::make(part, Type::f(32), rows_here * Expr(npad),
                                       For::make(kbn, Expr(0), Expr(nkb), ForKind::Serial, sweep))
                      : sweep;
  Stmt compute = For::make(chn, Expr(0), Expr(chunks), ForKind::Parallel, body);
  return Allocate::make(shared, Type::f(32), Expr(panels * K * nw), Block::make({packing, compute}));
}

}  // namespace

Stmt gemm_packed_tiles(LowerContext &c, const GemmSpec &g, const GemmTile &tl, const PackPanel &pack) {
  int nw = tl.nv * tl.vl;
  Expr panels = (g.N + Expr(nw - 1)) / Expr(nw);
  Expr mt = g.M / Expr(tl.mr);
  auto *np = panels.as<IntImm>();
  auto *kconst = g.K.as<IntImm>();
  if (np && kconst && np->value <= 8 && mt.as<IntImm>() && mt.as<IntImm>()->value >= 2) {
    return gemm_shared_panels(c, g, tl, pack, np->value, kconst->value);
  }
  // Enough parallel work items for the threads: split the rows when there are few panels.
  int64_t chunks = 1;
  if (np && mt.as<IntImm>()) {
    int64_t want = (8 + np->value - 1) / np->value;
    chunks = std::max<int64_t>(1, std::min<int64_t>(want, mt.as<IntImm>()->value));
  }
  std::string t = c.fresh("work"), panel = c.fresh("panel"), mi = c.fresh("mi"), ri = c.fresh("r");
  Expr vt = Var::make(Type::index(), t), vmi = Var::make(Type::index(), mi), vri = Var::make(Type::index(), ri);
  Expr p = vt / Expr(chunks), ch = vt % Expr(chunks);
  Expr n0 = p * Expr(nw);
  Expr n_valid = min(Expr(nw), g.N - n0);
  Expr m_lo = ch * mt / Expr(chunks), m_hi = (ch + Expr(1)) * mt / Expr(chunks);
  // A long reduction packs and runs the panel in blocks of kKc rows (the panel block and
  // the tiles' rows of A stay in L1 / L2); partial sums wait in a per-item buffer.
  constexpr int64_t kKc = 256;
  int64_t nkb = kconst && kconst->value > kKc + kKc / 2 ? (kconst->value + kKc - 1) / kKc : 1;
  int64_t kc = nkb > 1 ? (kconst->value + nkb - 1) / nkb : 0;
  std::string kbn = c.fresh("kb"), part = c.fresh("part");
  Expr vkb = Var::make(Type::index(), kbn);
  Expr k0 = nkb > 1 ? vkb * Expr(kc) : Expr(0), klen = nkb > 1 ? min(Expr(kc), g.K - k0) : g.K;
  KBlock kb{k0, klen, make_const(Type::boolean(), 1), make_const(Type::boolean(), 1)};
  GemmSpec gp = g;
  Expr row_base = m_lo * Expr(tl.mr), rows_here = (m_hi - m_lo) * Expr(tl.mr) + (g.M - mt * Expr(tl.mr));
  if (nkb > 1) {
    kb.first = vkb == Expr(0);
    kb.last = vkb == Expr(nkb - 1);
    gp.c = part;
    gp.c_index = [row_base, n0, nw](Expr m, Expr n) { return (m - row_base) * Expr(nw) + (n - n0); };
  }
  BSource bs{panel, Expr(0) - k0 * Expr(nw), Expr(nw), Expr(0)};
  Stmt rows = For::make(mi, m_lo, m_hi - m_lo, ForKind::Serial,
                        tile(c, gp, bs, vmi * Expr(tl.mr), n0, tl.mr, tl.nv, tl.vl, n_valid, kb));
  Stmt tail = For::make(ri, mt * Expr(tl.mr), g.M - mt * Expr(tl.mr), ForKind::Serial,
                        tile(c, gp, bs, vri, n0, 1, tl.nv, tl.vl, n_valid, kb));
  if (chunks > 1) tail = IfThenElse::make(ch == Expr(chunks - 1), tail);
  Stmt step = Block::make({pack(panel, Expr(0), n0, nw, k0, klen), rows, tail});
  Stmt body;
  if (nkb > 1) {
    body = Allocate::make(panel, Type::f(32), Expr(kc * nw),
                          Allocate::make(part, Type::f(32), rows_here * Expr(nw),
                                         For::make(kbn, Expr(0), Expr(nkb), ForKind::Serial, step)));
  } else {
    body = Allocate::make(panel, Type::f(32), g.K * Expr(nw), step);
  }
  return For::make(t, Expr(0), panels * Expr(chunks), ForKind::Parallel, body);
}

bool gemm_panel_items_fit(const GemmSpec &g, const GemmTile &tl) {
  auto *m = g.M.as<IntImm>(), *n = g.N.as<IntImm>(), *k = g.K.as<IntImm>();
  int nw = tl.nv * tl.vl;
  return g.b_packed_nw == nw && !g.a_packed_mr && m && n && k && m->value >= tl.mr && n->value % nw == 0 &&
         k->value > kPanelKc + kPanelKc / 2;
}

Stmt gemm_panel_items(LowerContext &c, const GemmSpec &g, const GemmTile &tl) {
  internal_assert(gemm_panel_items_fit(g, tl)) << "gemm_panel_items: B must be whole packed panels and K long";
  const int nw = tl.nv * tl.vl;
  const int64_t M = g.M.as<IntImm>()->value, N = g.N.as<IntImm>()->value, K = g.K.as<IntImm>()->value;
  const int64_t panels = N / nw, mt = M / tl.mr, m_tail = M % tl.mr;
  // At least ~16 work items for the threads' guided claims; each more row chunk streams
  // every panel once more (from L3 by then).
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(mt, (16 + panels - 1) / panels));
  const int64_t nkb = (K + kPanelKc - 1) / kPanelKc, kc = (K + nkb - 1) / nkb;
  const int64_t rows_max = (mt + chunks - 1) / chunks * tl.mr + m_tail;
  std::string t = c.fresh("item"), kbn = c.fresh("kb"), mi = c.fresh("mi"), part = c.fresh("part");
  Expr vt = Var::make(Type::index(), t), vkb = Var::make(Type::index(), kbn), vmi = Var::make(Type::index(), mi);
  // Row chunks of one panel are neighbouring items (a thread's next item finds the panel in L2).
  Expr p = vt / Expr(chunks), ch = vt % Expr(chunks), n0 = p * Expr(int64_t(nw));
  Expr m_lo = ch * Expr(mt) / Expr(chunks), m_hi = (ch + Expr(1)) * Expr(mt) / Expr(chunks);
  Expr row_base = m_lo * Expr(int64_t(tl.mr));
  KBlock kb{vkb * Expr(kc), min(Expr(kc), Expr(K) - vkb * Expr(kc)), vkb == Expr(0), vkb == Expr(nkb - 1)};
  GemmSpec gp = g;
  gp.c = part;
  gp.c_index = [row_base, n0, nw](Expr m, Expr n) { return (m - row_base) * Expr(int64_t(nw)) + (n - n0); };
  BSource bs{g.b, g.b_base + n0 * Expr(K), Expr(int64_t(nw)), Expr(0)};
  // While a block runs, its row tiles prefetch the panel's next block (after the last, the
  // next panel's first), so that only the first item of a thread waits on memory.
  Expr last_n0 = Expr((panels - 1) * nw);
  Expr next_block = select(vkb == Expr(nkb - 1), min(n0 + Expr(int64_t(nw)), last_n0) * Expr(K),
                           n0 * Expr(K) + (kb.k0 + Expr(kc)) * Expr(int64_t(nw)));
  NextPanel next{g.b_base + next_block, vmi - m_lo, Expr(kc), kb.k0};
  std::vector<Stmt> steps = {For::make(mi, m_lo, m_hi - m_lo, ForKind::Serial,
                                       tile(c, gp, bs, vmi * Expr(int64_t(tl.mr)), n0, tl.mr, tl.nv, tl.vl, Expr(), kb, next))};
  if (m_tail > 0) {
    // The rows past the last whole row tile: one narrower tile, in the last chunk.
    steps.push_back(IfThenElse::make(ch == Expr(chunks - 1), tile(c, gp, bs, Expr(mt * tl.mr), n0, static_cast<int>(m_tail),
                                                                   tl.nv, tl.vl, Expr(), kb)));
  }
  Stmt body = Allocate::make(part, Type::f(32), Expr(rows_max * nw),
                             For::make(kbn, Expr(0), Expr(nkb), ForKind::Serial, Block::make(steps)));
  return For::make(t, Expr(0), Expr(panels * chunks), ForKind::Parallel, body);
}

Activation Activation::of(const Node &n, const std::string &prefix) {
  Activation a;
  a.kind = n.attr_s(prefix + "activation", "");
  std::string params = prefix + "activation_params";
  std::vector<double> p = n.has_attr(params) ? n.attr_floats(params) : std::vector<double>{};
  if (p.size() > 0) a.alpha = static_cast<float>(p[0]);
  if (p.size() > 1) a.beta = static_cast<float>(p[1]);
  user_assert(a.kind.empty() || a.kind == "Relu" || a.kind == "LeakyRelu" || a.kind == "Clip" ||
              a.kind == "HardSigmoid" || a.kind == "HardSwish" || a.kind == "Sigmoid" || a.kind == "SiLU" ||
              a.kind == "Gelu" || a.kind == "GeluTanh")
      << n.describe() << ": unknown fused activation '" << a.kind << "'";
  return a;
}

Expr Activation::apply(Expr v) const {
  Type t = v.type();
  auto k = [&](double x) { return v.type().is_vector() ? Broadcast::make(make_const(t.element(), x), t.lanes)
                                                       : make_const(t, x); };
  // Clamps as one compare-and-select each, v kept where the compare fails: NaN passes
  // through as max/min would let it, and x86 selects one vmaxps / vminps (max/min spell
  // NaN propagation from either side with two more instructions).
  auto at_least = [&](Expr x, Expr lo) {
    Expr u = Var::make(t, "act_lo");
    return Let::make("act_lo", x, select(u < lo, lo, u));
  };
  auto at_most = [&](Expr x, Expr hi) {
    Expr u = Var::make(t, "act_hi");
    return Let::make("act_hi", x, select(u > hi, hi, u));
  };
  if (kind == "Relu") return at_least(v, k(0));
  if (kind == "LeakyRelu") return select(v < k(0), v * k(alpha), v);
  if (kind == "Clip") return at_most(at_least(v, k(alpha)), k(beta));
  if (kind == "HardSigmoid") return at_most(at_least(v * k(alpha) + k(beta), k(0)), k(1));
  if (kind == "HardSwish") {
    Expr x = Var::make(t, "act_x");
    return Let::make("act_x", v, x * at_most(at_least(x * k(1.0 / 6) + k(0.5), k(0)), k(1)));
  }
  // The rest use the vectorizable polynomials of vmath.h (one evaluation of v: Let-bound).
  if (kind == "Sigmoid") return vmath::sigmoid(v);
  if (kind == "SiLU" || kind == "Gelu" || kind == "GeluTanh") {
    Expr x = Var::make(t, "act_x");
    Expr r = kind == "SiLU" ? x * vmath::sigmoid(x)
             : kind == "Gelu" ? k(0.5) * x * (k(1) + vmath::erf(x * k(M_SQRT1_2)))
                              : k(0.5) * x * (k(1) + vmath::tanh(k(std::sqrt(2.0 / M_PI)) * (x + k(0.044715) * x * x * x)));
    return Let::make("act_x", v, r);
  }
  return v;
}

}  // namespace kiln
