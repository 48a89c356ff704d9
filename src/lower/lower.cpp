#include "lower/lower.h"

#include "support/error.h"

namespace kiln {

const Tensor &LowerContext::value(size_t i) const {
  internal_assert(has(i)) << node.describe() << ": value of absent input " << i;
  if (!in[i].value) throw NeedsValue{static_cast<int>(i)};
  return *in[i].value;
}

std::string LowerContext::fresh(const std::string &prefix) { return prefix + std::to_string(counter_++); }

LowerFn lower_fn_of(OpKind k) {
  static const LowerFn table[] = {
      nullptr,
#define KILN_OP(name, pattern, shape_fn, lower_fn) &lower_fn,
#define KILN_RUNTIME_OP(name, shape_fn, run_fn) nullptr,
#define KILN_CONTROL_OP(name) nullptr,
#include "graph/ops.def"
#undef KILN_OP
#undef KILN_RUNTIME_OP
#undef KILN_CONTROL_OP
  };
  return table[static_cast<int>(k)];
}

Expr flat_index(const std::vector<Expr> &shape, const std::vector<Expr> &idx) {
  internal_assert(shape.size() == idx.size()) << "flat_index rank mismatch";
  Expr off = Expr(0);
  for (size_t i = 0; i < idx.size(); ++i) off = off * shape[i] + idx[i];
  return off;
}

Expr numel(const std::vector<Expr> &shape) {
  Expr n = Expr(1);
  for (auto &d : shape) n = n * d;
  return n;
}

std::vector<Expr> broadcast_index(const Operand &o, const std::vector<Expr> &out_idx) {
  int r = o.rank(), R = static_cast<int>(out_idx.size());
  internal_assert(r <= R) << "broadcast of rank " << r << " to " << R;
  std::vector<Expr> idx(r);
  for (int i = 0; i < r; ++i) {
    const Expr &d = o.shape[i];
    Expr j = out_idx[i + R - r];
    if (is_const(d, 1)) {
      idx[i] = Expr(0);
    } else if (is_const(d)) {
      idx[i] = j;
    } else {
      idx[i] = select(d == Expr(1), Expr(0), j);  // runtime dim may be 1 (broadcast)
    }
  }
  return idx;
}

Expr load_flat(const Operand &o, Expr flat) {
  Expr v = Load::make(o.storage(), o.buf, flat);
  Type ct = o.compute();
  return ct == o.storage() ? v : cast(ct, v);
}

Expr load(const Operand &o, const std::vector<Expr> &idx) { return load_flat(o, flat_index(o.shape, idx)); }

Stmt store_flat(const Operand &o, Expr flat, Expr v) {
  Type st = o.storage();
  if (v.type() != st) v = cast(st, v);
  return Store::make(o.buf, v, flat);
}

Stmt store(const Operand &o, const std::vector<Expr> &idx, Expr v) {
  return store_flat(o, flat_index(o.shape, idx), v);
}

Stmt loop_nest(LowerContext &c, const std::vector<Expr> &extents,
               const std::function<Stmt(const std::vector<Expr> &)> &body, ForKind outer) {
  std::vector<std::string> names;
  std::vector<Expr> vars;
  for (size_t i = 0; i < extents.size(); ++i) {
    names.push_back(c.fresh("i"));
    vars.push_back(Var::make(Type::index(), names.back()));
  }
  Stmt s = body(vars);
  for (size_t i = extents.size(); i-- > 0;) {
    ForKind k = i == 0 ? outer : ForKind::Serial;
    s = For::make(names[i], Expr(0), extents[i], k, s);
  }
  return s;
}

Stmt parallel_loop_nest(LowerContext &c, const std::vector<Expr> &extents,
                        const std::function<Stmt(const std::vector<Expr> &)> &body) {
  if (extents.size() < 2) return loop_nest(c, extents, body, ForKind::Parallel);
  std::vector<Expr> fused = {extents[0] * extents[1]};
  fused.insert(fused.end(), extents.begin() + 2, extents.end());
  return loop_nest(c, fused, [&](const std::vector<Expr> &i) {
    std::vector<Expr> idx = {i[0] / extents[1], i[0] % extents[1]};
    idx.insert(idx.end(), i.begin() + 1, i.end());
    return body(idx);
  }, ForKind::Parallel);
}

std::vector<Expr> merge_index(const std::vector<bool> &reduced, const std::vector<Expr> &outer,
                              const std::vector<Expr> &inner) {
  std::vector<Expr> idx;
  size_t o = 0, i = 0;
  for (bool r : reduced) idx.push_back(r ? inner.at(i++) : outer.at(o++));
  return idx;
}

std::vector<Expr> extents_where(const Operand &x, const std::vector<bool> &reduced, bool want) {
  std::vector<Expr> e;
  for (size_t a = 0; a < reduced.size(); ++a) {
    if (reduced[a] == want) e.push_back(x.shape[a]);
  }
  return e;
}

std::vector<int64_t> static_kernel_dims(const LowerContext &c, const Operand &w) {
  std::vector<int64_t> wk;
  for (int d = 2; d < w.rank(); ++d) {
    auto *k = w.shape[d].as<IntImm>();
    user_assert(k != nullptr) << c.node.describe() << ": weight kernel dims must be static";
    wk.push_back(k->value);
  }
  return wk;
}

Stmt compute(LowerContext &c, const Operand &out, const std::function<Expr(const std::vector<Expr> &)> &f) {
  return loop_nest(c, out.shape, [&](const std::vector<Expr> &idx) { return store(out, idx, f(idx)); });
}

Stmt reduce(LowerContext &c, Type acc_type, Expr init, const std::vector<Expr> &extents,
            const std::function<Expr(Expr acc, const std::vector<Expr> &r)> &update,
            const std::function<Stmt(Expr result)> &use) {
  std::string acc = c.fresh("acc");
  Expr acc_val = Load::make(acc_type, acc, Expr(0));
  Stmt loop = loop_nest(c, extents, [&](const std::vector<Expr> &r) {
    return Store::make(acc, update(acc_val, r), Expr(0));
  });
  Stmt body = Block::make({Store::make(acc, init, Expr(0)), loop, use(acc_val)});
  return Allocate::make(acc, acc_type, Expr(1), body);
}

}  // namespace kiln
