// Compute definition of ConvTranspose. Output position o along a spatial dim receives
// input position t / stride through kernel tap r whenever t = o + pad_begin - r * dilation
// is a non-negative multiple of the stride: a gather (used for f16/bf16, accumulated in
// f32), or equivalently each input position scattering into o = i * stride + r *
// dilation - pad_begin (used for f32/f64, accumulated in the output).
#include "graph/conv_attrs.h"
#include "lower/conv_schedule.h"
#include "lower/lower.h"
#include "support/error.h"

namespace kiln {

namespace {

// Float outputs: the scatter form, accumulated in place. Per (batch, output channel):
// y = bias, then for every input channel of the group and kernel tap, each input row
// adds x * w into the output row it reaches; the innermost loop runs along an input row
// over the columns whose output lands inside y.
Stmt accumulate_into_output(LowerContext &c, const ConvAttrs &a, const std::vector<Expr> &pad) {
  const Operand &x = c.in[0], &w = c.in[1], &y = c.out[0];
  int sp = x.rank() - 2;
  Expr cin_g = x.shape[1] / Expr(a.group), cout_g = w.shape[1];
  Type t = y.compute();
  std::string n = c.fresh("n"), oc = c.fresh("oc");
  Expr vn = Var::make(Type::index(), n), voc = Var::make(Type::index(), oc);
  std::vector<Expr> ysp(y.shape.begin() + 2, y.shape.end());
  Stmt init = loop_nest(c, ysp, [&](const std::vector<Expr> &o) {
    std::vector<Expr> yi = {vn, voc};
    yi.insert(yi.end(), o.begin(), o.end());
    return store(y, yi, c.has(2) ? load(c.in[2], {voc}) : make_zero(t));
  });
  std::vector<Expr> rext = {cin_g};
  for (int d = 0; d < sp; ++d) rext.push_back(Expr(a.kernel[d]));
  Stmt accumulate = loop_nest(c, rext, [&](const std::vector<Expr> &r) {
    Expr ci = voc / cout_g * cin_g + r[0];
    std::vector<Expr> wi = {ci, voc % cout_g};
    wi.insert(wi.end(), r.begin() + 1, r.end());
    std::string wname = c.fresh("wv");
    Expr wv = Var::make(t, wname);
    std::vector<Expr> rows(x.shape.begin() + 2, x.shape.end() - 1);
    Stmt body = loop_nest(c, rows, [&](const std::vector<Expr> &ir) {
      std::vector<Expr> xi = {vn, ci}, yi = {vn, voc};
      Expr inside = make_const(Type::boolean(), 1);
      for (int d = 0; d + 1 < sp; ++d) {
        Expr o = ir[d] * Expr(a.strides[d]) + r[d + 1] * Expr(a.dilations[d]) - pad[d];
        inside = inside && o >= Expr(0) && o < ysp[d];
        xi.push_back(ir[d]);
        yi.push_back(o);
      }
      int L = sp - 1;
      Expr s = Expr(a.strides[L]), off = r[L + 1] * Expr(a.dilations[L]) - pad[L];
      // Input columns iw with 0 <= iw*s + off < OW.
      Expr lo = max(Expr(0), (Expr(0) - off + s - Expr(1)) / s);
      Expr hi = min(x.shape[L + 2], (ysp[L] - off + s - Expr(1)) / s);
      std::string iw = c.fresh("iw");
      Expr viw = Var::make(Type::index(), iw);
      xi.push_back(viw);
      yi.push_back(viw * s + off);
      Stmt st = store(y, yi, load(y, yi) + load(x, xi) * wv);
      Stmt loop = For::make(iw, lo, max(hi - lo, Expr(0)), ForKind::Serial, st);
      return is_const(inside, 1) ? loop : IfThenElse::make(inside, loop);
    });
    return LetStmt::make(wname, load(w, wi), body);
  });
  return For::make(n, Expr(0), y.shape[0], ForKind::Serial,
                   For::make(oc, Expr(0), y.shape[1], ForKind::Parallel, Block::make({init, accumulate})));
}

}  // namespace

Stmt lower_conv_transpose(LowerContext &c) {
  const Operand &x = c.in[0], &w = c.in[1], &y = c.out[0];
  int sp = x.rank() - 2;
  ConvAttrs a = ConvAttrs::read(c.node, sp, static_kernel_dims(c, w));
  std::vector<Expr> pad(sp);
  for (int d = 0; d < sp; ++d) {
    Expr out;
    a.transpose_geometry(d, x.shape[d + 2], out, pad[d]);
  }
  if (auto fast = conv_transpose_schedule(c, a, pad)) return *fast;
  if (y.compute() == y.storage() && y.compute().is_float()) return accumulate_into_output(c, a, pad);
  Expr cin_g = x.shape[1] / Expr(a.group);  // input channels per group
  Expr cout_g = w.shape[1];                 // output channels per group
  Type t = x.compute();
  Type acc = t.is_float() ? t : Type::i(std::max<int>(32, t.bits));
  // Without dilation, the taps that reach output o along a dim are r = phase + j*stride
  // (phase = (o + pad_begin) mod stride), so the reduction runs over j only.
  bool phased = true;
  for (int64_t d : a.dilations) phased = phased && d == 1;
  std::vector<Expr> rext = {cin_g};
  for (int d = 0; d < sp; ++d) {
    int64_t s = a.strides[d], k = a.kernel[d];
    rext.push_back(Expr(phased ? (k + s - 1) / s : k));
  }
  return parallel_loop_nest(c, y.shape, [&](const std::vector<Expr> &i) {
    Expr g = i[1] / cout_g;
    return reduce(c, acc, make_zero(acc), rext,
                  [&](Expr s, const std::vector<Expr> &r) {
                    Expr ci = g * cin_g + r[0];
                    std::vector<Expr> xi = {i[0], ci}, wi = {ci, i[1] % cout_g};
                    Expr hit = make_const(Type::boolean(), 1);
                    for (int d = 0; d < sp; ++d) {
                      Expr stride = Expr(a.strides[d]), shifted = i[d + 2] + pad[d], q, tap;
                      if (phased) {
                        tap = shifted % stride + r[d + 1] * stride;
                        q = shifted / stride - r[d + 1];
                        hit = hit && tap < Expr(a.kernel[d]) && q >= Expr(0) && q < x.shape[d + 2];
                      } else {
                        tap = r[d + 1];
                        Expr tpos = shifted - tap * Expr(a.dilations[d]);
                        q = tpos / stride;
                        hit = hit && tpos >= Expr(0) && q < x.shape[d + 2];
                        if (a.strides[d] != 1) hit = hit && tpos % stride == Expr(0);
                      }
                      xi.push_back(max(min(q, x.shape[d + 2] - Expr(1)), Expr(0)));
                      wi.push_back(max(min(tap, Expr(a.kernel[d] - 1)), Expr(0)));
                    }
                    return select(hit, s + cast(acc, load(x, xi)) * cast(acc, load(w, wi)), s);
                  },
                  [&](Expr s) {
                    if (c.has(2)) s = s + cast(acc, load(c.in[2], {i[1]}));
                    return store(y, i, cast(y.compute(), s));
                  });
  });
}

}  // namespace kiln
