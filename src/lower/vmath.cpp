// Polynomial coefficients are near-minimax fits (Lawson's iteratively reweighted least
// squares, in double precision) of the named function on the stated interval; the
// errors quoted are those of the fit, before f32 rounding.
#include "lower/vmath.h"

#include <functional>
#include <initializer_list>

#include "support/error.h"

namespace kiln::vmath {

namespace {

Expr k(Type t, double v) { return make_const(t, v); }

// Binds `value` to a fresh variable for `body`, so it is computed once however often the
// body reads it. Names need only be distinct within one function: `value` is evaluated
// outside the binding, so a caller's variables are never shadowed.
Expr let(const std::string &name, Expr value, const std::function<Expr(Expr)> &body) {
  Expr v = Var::make(value.type(), name);
  return Let::make(name, std::move(value), body(v));
}

Expr fma(Expr a, Expr b, Expr c) { return call("fma", {std::move(a), std::move(b), std::move(c)}); }

// c[0] + c[1] x + c[2] x^2 + ..., by Horner's rule with fused multiply-adds. x is read
// once per coefficient: pass a variable.
Expr horner(Expr x, std::initializer_list<double> c) {
  internal_assert(x.as<Var>()) << "horner of a non-variable";
  const double *p = c.end();
  Expr acc = k(x.type(), *--p);
  while (p != c.begin()) acc = fma(acc, x, k(x.type(), *--p));
  return acc;
}

Type int_type(Type f) { return Type::i(32, f.lanes); }

// 2^n for an integral f32 n in [-126, 127], built from its exponent bits.
Expr pow2(Expr n) {
  Type it = int_type(n.type());
  Expr bits = call("shl", {cast(it, n) + Expr(127), k(it, 23)});
  return call(n.type(), "reinterpret", {bits});
}

void check_f32(const Expr &x, const char *fn) {
  internal_assert(x.type().code == Type::Float && x.type().bits == 32) << "vmath::" << fn << " of " << x.type().str();
}

}  // namespace

// exp(x) = 2^n * exp(r), n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2] (ln 2 in two
// parts, so r is exact to f32), exp(r) = 1 + r + r^2 Q(r) (fit error of Q 1.2e-7 relative,
// 1e-8 in exp). 2^n is applied as two factors, so n up to 128 overflows to inf and n down
// to -150 gives correctly rounded subnormals.
Expr exp(Expr x) {
  check_f32(x, "exp");
  Type t = x.type();
  return let("exp_x", x, [&](Expr x) {
    // Clamped to where the result is 0 or inf anyway; NaN maps to the low end here (the
    // compare is false) and is restored at the end.
    Expr lo = select(x > k(t, -104.0), x, k(t, -104.0));
    Expr xc = let("exp_lo", lo, [&](Expr lo) { return select(lo < k(t, 89.0), lo, k(t, 89.0)); });
    return let("exp_c", xc, [&](Expr xc) {
      return let("exp_n", call("round", {xc * k(t, 1.4426950408889634)}), [&](Expr n) {
        Expr r = fma(n, k(t, -0.693145751953125), xc);
        r = fma(n, k(t, -1.4286068203094172e-06), r);
        return let("exp_r", r, [&](Expr r) {
          Expr q = horner(r, {4.999999955e-01, 1.666657732e-01, 4.166685335e-02, 8.363140509e-03, 1.390128485e-03});
          Expr e = fma(r * r, q, r) + k(t, 1.0);
          return let("exp_h", call("floor", {n * k(t, 0.5)}), [&](Expr h) {
            Expr y = e * pow2(h) * pow2(n - h);
            return select(call(Type::boolean(t.lanes), "isnan", {x}), x, y);
          });
        });
      });
    });
  });
}

// |x| < 1: x P(x^2) (fit error 4e-8 relative). Otherwise erf(|x|) = 1 - exp(-x^2) H(u),
// H = erfc(x) exp(x^2) as a polynomial in u = 1 / (1 + x/2) on [1, 4] (fit error 3e-8
// relative); |x| is clamped to 4, where erf rounds to 1 in f32.
Expr erf(Expr x) {
  check_f32(x, "erf");
  Type t = x.type();
  return let("erf_x", x, [&](Expr x) {
    return let("erf_a", call("abs", {x}), [&](Expr a) {
      Expr small = let("erf_s", x * x, [&](Expr x2) {
        return x * horner(x2, {1.128379123e+00, -3.761232629e-01, 1.128018065e-01, -2.671132322e-02,
                               4.917563040e-03, -5.631463505e-04});
      });
      return let("erf_c", min(a, k(t, 4.0)), [&](Expr c) {
        Expr h = let("erf_u", k(t, 1.0) / fma(c, k(t, 0.5), k(t, 1.0)), [&](Expr u) {
          return horner(u, {5.366017363e-04, 2.745126328e-01, 3.261225034e-01, 1.143825006e-01, 3.835768521e-01,
                            -4.083639214e-02, -5.907793513e-02});
        });
        Expr tail = k(t, 1.0) - exp(-(c * c)) * h;
        return let("erf_t", tail, [&](Expr tail) {
          return select(a < k(t, 1.0), small, select(x < k(t, 0.0), -tail, tail));
        });
      });
    });
  });
}

// |x| < 0.625: x + x^3 P(x^2) (fit error of P 1.3e-7 relative, 2e-8 in tanh). Otherwise
// 1 - 2 / (exp(2|x|) + 1) with x's sign; exp overflowing to inf gives exactly 1.
Expr tanh(Expr x) {
  check_f32(x, "tanh");
  Type t = x.type();
  return let("tanh_x", x, [&](Expr x) {
    return let("tanh_a", call("abs", {x}), [&](Expr a) {
      Expr small = let("tanh_s", x * x, [&](Expr x2) {
        Expr p = horner(x2, {-3.333332895e-01, 1.333277026e-01, -5.385096915e-02, 2.099741011e-02, -6.097000410e-03});
        return fma(x * x2, p, x);
      });
      Expr tail = k(t, 1.0) - k(t, 2.0) / (exp(a * k(t, 2.0)) + k(t, 1.0));
      return let("tanh_t", tail, [&](Expr tail) {
        return select(a < k(t, 0.625), small, select(x < k(t, 0.0), -tail, tail));
      });
    });
  });
}

Expr sigmoid(Expr x) {
  check_f32(x, "sigmoid");
  Type t = x.type();
  return k(t, 1.0) / (k(t, 1.0) + exp(-x));
}

}  // namespace kiln::vmath
